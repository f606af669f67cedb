// Issue 16 §5, "a CLI without dead ends", as a new user meets it: the built `coffer` binary
// against a real listening server on each storage engine — one-line errors with codes (JSON with
// --json), project and environment rename and delete (roles, tenants, audit), `audit log`, names
// instead of ids, re-imports that write nothing, `login --export` on a host with no credential
// store, `doctor`, `completion`.
import { spawn, spawnSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { csrfTokenFor, createSession } from '../../src/identity/sessions.js'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'
import { describeEachEngine } from '../helpers/engines.js'
import { type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI without blocking the event loop: the server answering it lives in this process. */
function run(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { cwd?: string; input?: string; onStderr?: (text: string) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      opts.onStderr?.(stderr)
    })
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000)
    c.on('error', reject)
    c.on('exit', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
    c.stdin.end(opts.input ?? '')
  })
}

/** The one error line of a failed command, checked to be exactly one line with `code`. */
function oneLineError(r: Run, code: string): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '')
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`)
  assert.match(lines[0]!, new RegExp(`^coffer: .*\\(${code}\\)$`))
  assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace')
  return lines[0]!
}

/** The JSON error object a failed --json command prints on stderr. */
function jsonError(r: Run): { code: string; message: string } {
  assert.notEqual(r.status, 0)
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '')
  assert.equal(lines.length, 1, `one JSON line on stderr, got:\n${r.stderr}`)
  const parsed = JSON.parse(lines[0]!) as { error: { code: string; message: string } }
  assert.deepEqual(Object.keys(parsed.error).sort(), ['code', 'message'])
  return parsed.error
}

describeEachEngine((engine: EngineName) => {
  let h: Harness
  let url = ''
  const work = mkdtempSync(join(tmpdir(), 'coffer-cli-ux-'))
  const home = join(work, 'home')
  const cwd = join(work, 'cwd')
  // Storage-independent tests are registered once, on SQLite (not registered-and-skipped on PostgreSQL).
  const testOnce = (name: string, fn: () => Promise<void>) => {
    if (engine === 'sqlite') test(name, fn)
  }

  const env = (extra: Record<string, string> = {}) =>
    childEnv({
      COFFER_URL: url,
      COFFER_TOKEN: h.a.token,
      HOME: home,
      XDG_STATE_HOME: join(home, '.local', 'state'),
      // No session bus: no OS credential store on this host.
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
      NO_COLOR: '1',
      ...extra,
    })
  const coffer = (args: string[], extra: Record<string, string> = {}, opts: Parameters<typeof run>[2] = {}) =>
    run(args, env(extra), { cwd, ...opts })
  const ok = async (args: string[], extra: Record<string, string> = {}, opts: Parameters<typeof run>[2] = {}) => {
    const r = await coffer(args, extra, opts)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 600)}`)
    return r
  }

  before(async () => {
    ensureBuilt()
    mkdirSync(home, { recursive: true })
    mkdirSync(cwd, { recursive: true })
    h = await startHarness(engine)
    url = (await h.app.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1')
  })
  after(async () => {
    await h?.close()
    rmSync(work, { recursive: true, force: true })
  })

  testOnce('every error is one line with a stable code; with --json a JSON object on stderr', async () => {
    const usage = await coffer(['secrets', 'lst'])
    assert.equal(usage.status, 2, 'a usage error exits 2')
    assert.match(oneLineError(usage, 'ERR_USAGE'), /unknown command 'lst'/)
    const missing = await coffer(['secrets', 'get'])
    assert.equal(missing.status, 2)
    assert.match(oneLineError(missing, 'ERR_USAGE'), /missing required argument 'key'/)
    const usageJson = await coffer(['projects', 'list', '--json', '--bogus'])
    assert.equal(usageJson.status, 2)
    assert.deepEqual(jsonError(usageJson), { code: 'ERR_USAGE', message: "unknown option '--bogus'" })

    const down = await coffer(['projects', 'list'], { COFFER_URL: 'http://127.0.0.1:1' })
    assert.equal(down.status, 1)
    assert.match(oneLineError(down, 'ERR_CONNECTION'), /ECONNREFUSED/)
    const downJson = await coffer(['projects', 'list', '--json'], { COFFER_URL: 'http://127.0.0.1:1' })
    assert.equal(jsonError(downJson).code, 'ERR_CONNECTION')
    assert.equal(downJson.stdout, '')

    const invalid = await coffer(['audit', 'log', '--limit', '0'])
    assert.equal(invalid.status, 1)
    assert.match(oneLineError(invalid, 'ERR_CLI'), /--limit/)
    assert.equal(jsonError(await coffer(['audit', 'log', '--since', 'yesterday', '--json'])).code, 'ERR_CLI')

    const refused = await coffer(['projects', 'rename', 'no-such-project', 'X', '--json'])
    assert.equal(refused.status, 1)
    assert.equal(jsonError(refused).code, 'ERR_NOT_FOUND')
    const unauth = await coffer(['whoami'], { COFFER_TOKEN: 'coffer_pat_nope' })
    oneLineError(unauth, 'ERR_UNAUTHENTICATED')
  })

  testOnce('coffer server on a port in use: ERR_PORT_IN_USE on one line, no stack trace, exit 1, and the process ends', async () => {
    const port = new URL(url).port
    const dataDir = join(work, 'second-server')
    const started = Date.now()
    const r = await run(
      ['server', '--port', port, '--host', '127.0.0.1'],
      childEnv({ COFFER_DATA_DIR: dataDir, COFFER_LOG_LEVEL: 'silent', HOME: home }),
    )
    assert.equal(r.status, 1, r.stderr)
    assert.match(
      oneLineError(
        {
          ...r,
          stderr: r.stderr
            .split('\n')
            .filter((l) => !l.startsWith('{'))
            .join('\n'),
        },
        'ERR_PORT_IN_USE',
      ),
      new RegExp(`Port ${port}`),
    )
    assert.ok(!r.stderr.includes('internal error'))
    assert.ok(Date.now() - started < 30_000, 'it exits instead of hanging')
    const elsewhere = await run(
      ['server', '--port', '0', '--host', '10.255.255.1'],
      childEnv({ COFFER_DATA_DIR: dataDir, COFFER_LOG_LEVEL: 'silent', HOME: home }),
    )
    assert.equal(elsewhere.status, 1, elsewhere.stderr)
    assert.match(
      oneLineError(
        {
          ...elsewhere,
          stderr: elsewhere.stderr
            .split('\n')
            .filter((l) => !l.startsWith('{'))
            .join('\n'),
        },
        'ERR_PORT_DENIED',
      ),
      /10\.255\.255\.1 is not an address of this host/,
    )
  })

  test('projects and environments: rename and delete, confirmed, role-checked, tenant-isolated and audited', async () => {
    assert.equal((await ok(['projects', 'create', 'Shop'])).stdout.trim(), 'shop')
    const renamed = JSON.parse((await ok(['projects', 'rename', 'shop', 'Web Shop', '--json'])).stdout) as {
      slug: string
      name: string
      id: string
    }
    assert.deepEqual([renamed.slug, renamed.name], ['shop', 'Web Shop'])
    assert.match((await ok(['projects', 'list'])).stdout, /shop\s+Web Shop/)
    await ok(['envs', 'create', 'QA', '--project', 'shop'])
    await ok(['envs', 'rename', 'qa', 'Quality', '--project', 'shop'])
    const envs = JSON.parse((await ok(['envs', 'list', '--project', 'shop', '--json'])).stdout) as Array<{ slug: string; name: string }>
    assert.equal(envs.find((e) => e.slug === 'qa')?.name, 'Quality')

    // A developer of the project may do neither.
    const dev = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: renamed.id, role: 'developer' }, label: 'dev' })
    const devDelete = await coffer(['envs', 'delete', 'qa', '--project', 'shop', '--yes'], { COFFER_TOKEN: dev.token })
    oneLineError(devDelete, 'ERR_FORBIDDEN')
    oneLineError(await coffer(['projects', 'delete', 'shop', '--yes'], { COFFER_TOKEN: dev.token }), 'ERR_FORBIDDEN')
    oneLineError(await coffer(['projects', 'rename', 'shop', 'Mine'], { COFFER_TOKEN: dev.token }), 'ERR_FORBIDDEN')

    // Another workspace's project, by id or through its slug: 404, and it is untouched.
    const theirs = await h.app.inject({
      method: 'POST',
      url: `/v1/workspaces/${h.b.slug}/projects`,
      headers: { authorization: `Bearer ${h.b.token}` },
      payload: { name: 'Secret Plans' },
    })
    assert.equal(theirs.statusCode, 201, theirs.body)
    const theirId = (JSON.parse(theirs.body) as { project: { id: string } }).project.id
    oneLineError(await coffer(['projects', 'rename', theirId, 'Pwned']), 'ERR_NOT_FOUND')
    oneLineError(await coffer(['projects', 'delete', theirId, '--yes']), 'ERR_NOT_FOUND')
    oneLineError(await coffer(['projects', 'delete', 'secret-plans', '--yes', '--workspace', h.b.slug]), 'ERR_NOT_FOUND')
    oneLineError(await coffer(['envs', 'delete', 'production', '--project', theirId, '--yes']), 'ERR_NOT_FOUND')
    const still = await h.app.inject({
      method: 'GET',
      url: `/v1/workspaces/${h.b.slug}/projects/${theirId}`,
      headers: { authorization: `Bearer ${h.b.token}` },
    })
    assert.equal((JSON.parse(still.body) as { project: { name: string } }).project.name, 'Secret Plans')

    // No --yes and no terminal: refused, nothing deleted.
    const unconfirmed = await coffer(['envs', 'delete', 'qa', '--project', 'shop'])
    assert.equal(unconfirmed.status, 1)
    assert.match(oneLineError(unconfirmed, 'ERR_CONFIRMATION_REQUIRED'), /--yes/)
    oneLineError(await coffer(['projects', 'delete', 'shop']), 'ERR_CONFIRMATION_REQUIRED')
    assert.equal(JSON.parse((await ok(['envs', 'list', '--project', 'shop', '--json'])).stdout).length, 4)

    // Holding secrets, deletion needs --force too.
    await ok(['secrets', 'set', 'K=v', '--project', 'shop', '--env', 'qa'])
    const unforced = await coffer(['envs', 'delete', 'qa', '--project', 'shop', '--yes'])
    assert.notEqual(unforced.status, 0)
    assert.equal(unforced.stderr.trim().split('\n').length, 1)
    const gone = JSON.parse((await ok(['envs', 'delete', 'qa', '--project', 'shop', '--yes', '--force', '--json'])).stdout) as {
      environment: { slug: string; secrets: number }
    }
    assert.deepEqual([gone.environment.slug, gone.environment.secrets], ['qa', 1])
    assert.match((await ok(['projects', 'delete', 'shop', '--yes'])).stderr, /Deleted project shop: 3 environments/)
    assert.deepEqual(JSON.parse((await ok(['projects', 'list', '--json'])).stdout), [])

    await h.settle()
    const log = JSON.parse((await ok(['audit', 'log', '--action', 'project.*', '--json'])).stdout) as {
      entries: Array<{ action: string; target: { id: string } }>
    }
    assert.deepEqual(
      log.entries.map((e) => e.action),
      ['project.delete', 'project.rename', 'project.create'],
    )
    assert.ok(log.entries.every((e) => e.target.id === renamed.id))
    const envLog = JSON.parse((await ok(['audit', 'log', '--action', 'environment.*', '--json'])).stdout) as {
      entries: Array<{ action: string }>
    }
    assert.deepEqual(
      envLog.entries.map((e) => e.action).filter((a) => a !== 'environment.create'),
      ['environment.delete', 'environment.delete', 'environment.delete', 'environment.delete', 'environment.rename'],
    )
  })

  test('audit log: filters by actor email, action prefix, time and limit; people and places by name', async () => {
    await ok(['projects', 'create', 'Audit App'])
    await ok(['secrets', 'set', 'TOKEN=abc', '--project', 'audit-app', '--env', 'staging'])
    await ok(['secrets', 'get', 'TOKEN', '--project', 'audit-app', '--env', 'staging'])
    await h.settle()
    const table = (await ok(['audit', 'log', '--action', 'secret.*', '--since', '1h'])).stdout
    const rows = table.trim().split('\n')
    assert.match(rows[0]!, /^SEQ\s+TIME\s+ACTOR\s+ACTION\s+TARGET$/)
    assert.match(rows[1]!, /owner@acme\.test\s+secret\.reveal\s+secret TOKEN$/)
    assert.match(rows[2]!, /owner@acme\.test\s+secret\.create\s+secret TOKEN$|owner@acme\.test\s+secret\.set\s+secret TOKEN$/)
    assert.ok(!/[0-9a-f]{8}-[0-9a-f]{4}-/.test(table), 'no uuid in the table')
    const one = JSON.parse((await ok(['audit', 'log', '--limit', '1', '--json'])).stdout) as { entries: unknown[]; next: number | null }
    assert.equal(one.entries.length, 1)
    assert.notEqual(one.next, null)
    const mine = JSON.parse((await ok(['audit', 'log', '--actor', 'OWNER@acme.test', '--action', 'secret.reveal', '--json'])).stdout) as {
      entries: Array<{ action: string }>
    }
    assert.deepEqual(
      mine.entries.map((e) => e.action),
      ['secret.reveal'],
    )
    const future = JSON.parse((await ok(['audit', 'log', '--since', '2999-01-01', '--json'])).stdout) as { entries: unknown[] }
    assert.deepEqual(future.entries, [])
    oneLineError(await coffer(['audit', 'log', '--actor', 'nobody@nowhere.test']), 'ERR_CLI')
    // Another workspace's log is not there to read.
    oneLineError(await coffer(['audit', 'log', '--workspace', h.b.slug]), 'ERR_NOT_FOUND')
  })

  test('names instead of ids: history shows emails, service tokens and machines show project/env:access', async () => {
    await ok(['projects', 'create', 'Names'])
    await ok(['secrets', 'set', 'A=1', '--project', 'names', '--env', 'production'])
    await ok(['secrets', 'set', 'A=2', '--project', 'names', '--env', 'production'])
    const history = (await ok(['secrets', 'history', 'A', '--project', 'names', '--env', 'production'])).stdout
    assert.equal(history.match(/owner@acme\.test/g)?.length, 2, history)
    await ok(['token', 'create-service', 'deploy', '--project', 'names', '--env', 'production', '--access', 'read'])
    await ok(['token', 'create-service', 'all', '--project', 'names', '--access', 'write'])
    const services = (await ok(['token', 'list-services'])).stdout
    assert.match(services, /deploy .*names\/production:read/)
    assert.match(services, /all .*names\/\*:write/)
    await ok(['machine', 'create', 'ci', '--project', 'names', '--env', 'staging', '--env', 'development', '--access', 'read'])
    const machines = (await ok(['machine', 'list'])).stdout
    assert.match(machines, /names\/staging:read names\/development:read/)
    for (const t of [history, services, machines])
      assert.ok(!/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-/.test(t.split('\n').slice(1).join('\n').replace(/^\S+/gm, '')), t)
  })

  test('re-importing identical values reports them unchanged and writes no version', async () => {
    await ok(['projects', 'create', 'Imports'])
    const file = join(work, `import-${engine}.env`)
    writeFileSync(file, 'ALPHA=one\nBETA="two words"\n')
    const scope = ['--project', 'imports', '--env', 'development']
    assert.match((await ok(['import', file, ...scope])).stderr, /2 added, 0 changed, 0 unchanged/)
    await ok(['secrets', 'set', 'BETA=two words', '--comment', 'kept', ...scope])
    const versions = () =>
      ok(['secrets', 'list', '--json', ...scope]).then((r) =>
        (JSON.parse(r.stdout) as Array<{ key: string; version: number }>).map((s) => [s.key, s.version]),
      )
    const before = await versions()
    const again = await ok(['import', file, ...scope])
    assert.match(again.stderr, /0 added, 0 changed, 2 unchanged/)
    assert.deepEqual(await versions(), before, 'no new version')
    assert.deepEqual(JSON.parse((await ok(['import', file, '--json', ...scope])).stdout), {
      added: [],
      changed: [],
      unchanged: ['ALPHA', 'BETA'],
    })
    writeFileSync(file, 'ALPHA=one\nBETA=three\nGAMMA=new\n')
    assert.match((await ok(['import', file, ...scope])).stderr, /1 added, 1 changed, 1 unchanged/)
    const history = JSON.parse((await ok(['secrets', 'history', 'ALPHA', '--json', ...scope])).stdout) as { versions: unknown[] }
    assert.equal(history.versions.length, 1, 'ALPHA was never rewritten')
  })

  test('doctor: one line per check, --json, and a failing check exits non-zero', async () => {
    const good = await ok(['doctor'])
    const lines = good.stdout.trim().split('\n')
    for (const name of ['project-config', 'credential-store', 'server', 'tls', 'clock', 'token'])
      assert.ok(
        lines.some((l) => new RegExp(`^(ok|warn)\\s+${name}\\s`).test(l)),
        `${name} has a line:\n${good.stdout}`,
      )
    assert.match(good.stdout, /token\s+valid \(from COFFER_TOKEN\): owner@acme\.test, owner of/)
    const json = JSON.parse((await ok(['doctor', '--json'])).stdout) as { ok: boolean; checks: Array<{ name: string; status: string }> }
    assert.equal(json.ok, true)
    assert.equal(json.checks.find((c) => c.name === 'clock')?.status, 'ok')

    await ok(['projects', 'create', 'Doc'])
    const svc = (await ok(['token', 'create-service', 'reader', '--project', 'doc', '--env', 'production'])).stdout.trim()
    assert.match((await ok(['doctor'], { COFFER_TOKEN: svc })).stdout, /token\s+valid .*service reader .*scopes doc\/production:read/)

    const bad = await coffer(['doctor'], { COFFER_TOKEN: 'coffer_pat_revoked' })
    assert.equal(bad.status, 1)
    assert.match(bad.stdout, /^fail\s+token\s+.*ERR_UNAUTHENTICATED/m)
    oneLineError(bad, 'ERR_DOCTOR_FAILED')
    const down = await coffer(['doctor', '--json'], { COFFER_URL: 'http://127.0.0.1:1' })
    assert.equal(down.status, 1)
    const report = JSON.parse(down.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; message: string }> }
    assert.equal(report.ok, false)
    assert.match(report.checks.find((c) => c.name === 'server')?.message ?? '', /ECONNREFUSED/)
    assert.equal(jsonError(down).code, 'ERR_DOCTOR_FAILED')

    writeFileSync(join(cwd, '.coffer.json'), '{ not json')
    const broken = await coffer(['doctor'])
    assert.match(broken.stdout, /^fail\s+project-config\s/m)
    rmSync(join(cwd, '.coffer.json'))
  })

  testOnce('doctor over HTTPS: a certificate the CLI cannot verify fails the tls check; with COFFER_CA_CERT it is ok', async () => {
    const dir = join(work, 'tls')
    mkdirSync(dir, { recursive: true })
    const openssl = (args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
      assert.equal(r.status, 0, r.stderr)
    }
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Coffer Doctor CA'])
    openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'])
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
    openssl([
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ])
    const tls = await startServer(
      [],
      childEnv({
        COFFER_DATA_DIR: join(dir, 'data'),
        COFFER_LOG_LEVEL: 'silent',
        COFFER_TLS_CERT: join(dir, 'server.pem'),
        COFFER_TLS_KEY: join(dir, 'server.key'),
        HOME: home,
      }),
    )
    try {
      const httpsUrl = tls.url.replace('localhost', '127.0.0.1')
      assert.match(httpsUrl, /^https:/)
      const untrusted = await coffer(['doctor', '--json'], { COFFER_URL: httpsUrl })
      assert.equal(untrusted.status, 1)
      const failed = (JSON.parse(untrusted.stdout) as { checks: Array<{ name: string; status: string; message: string }> }).checks.find(
        (c) => c.name === 'tls',
      )
      assert.equal(failed?.status, 'fail', untrusted.stdout)
      assert.match(failed?.message ?? '', /CERT|certificate/i)
      const trusted = await coffer(['doctor'], { COFFER_URL: httpsUrl, COFFER_CA_CERT: join(dir, 'ca.pem') })
      assert.match(trusted.stdout, /^ok\s+tls\s+HTTPS, the certificate verified$/m)
      assert.match(trusted.stdout, /^ok\s+server\s+https:/m)
      // This server is another vault: the token of the first one is refused there.
      assert.match(trusted.stdout, /^fail\s+token\s+.*ERR_UNAUTHENTICATED/m)
    } finally {
      await stopChild(tls.child)
    }
  })

  testOnce('login --device --export with no credential store: the token reaches the shell only, nothing on disk', async () => {
    // Without --export: a clear way forward, before any code is made.
    const plain = await coffer(['login', '--url', url, '--device'], { COFFER_TOKEN: '' })
    assert.match(oneLineError(plain, 'ERR_NO_CREDENTIAL_STORE'), /--device --export/)

    const userId = (await h.db.selectFrom('users').select('id').where('email', '=', 'owner@acme.test').executeTakeFirstOrThrow()).id
    const session = await h.ctx.committer.run((tx) =>
      createSession(tx, { userId, method: 'password', ip: '127.0.0.1', userAgent: 'test' }, h.ctx.config.auth.session, new Date()),
    )
    let approved: Promise<void> | undefined
    const login = run(['login', '--url', url, '--device', '--export'], env({ COFFER_TOKEN: '', COFFER_URL: '' }), {
      cwd,
      onStderr: (text) => {
        const code = /\b([B-DF-HJ-NP-TV-Z]{4}-[B-DF-HJ-NP-TV-Z]{4})\b/.exec(text)?.[1]
        if (!code || approved) return
        approved = (async () => {
          const r = await h.app.inject({
            method: 'POST',
            url: '/v1/cli/device/approve',
            headers: { cookie: `coffer_session=${session.cookieValue}`, 'content-type': 'application/x-www-form-urlencoded' },
            payload: new URLSearchParams({
              userCode: code,
              decision: 'approve',
              workspace: h.a.slug,
              _csrf: csrfTokenFor(session.cookieValue),
            }).toString(),
          })
          assert.equal(r.statusCode, 303, r.body)
        })()
      },
    })
    const r = await login
    await approved
    assert.equal(r.status, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    assert.equal(lines.length, 2, r.stdout)
    assert.equal(lines[0], `export COFFER_URL=${url}`)
    assert.match(lines[1]!, /^export COFFER_TOKEN=coffer_cli_[0-9A-Za-z_]+$/)
    assert.ok(!r.stderr.includes('coffer_cli_'), 'the token is on stdout only')
    // eval "$(coffer login … --export)" then a command: it works with what the shell holds.
    const shell = await new Promise<Run>((resolve) => {
      const c = spawn('sh', ['-c', `eval "$(cat)"; exec "${process.execPath}" "${BIN}" whoami`], {
        env: env({ COFFER_TOKEN: '', COFFER_URL: '' }),
        cwd,
      })
      let stdout = ''
      let stderr = ''
      c.stdout.on('data', (d: Buffer) => {
        stdout += d.toString()
      })
      c.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      c.on('exit', (status) => resolve({ status, stdout, stderr }))
      c.stdin.end(r.stdout)
    })
    assert.equal(shell.status, 0, shell.stderr)
    assert.equal(shell.stdout.trim(), 'owner@acme.test')
    assert.deepEqual(
      readdirSync(home).filter((f) => f !== '.local'),
      [],
      'nothing written to the home directory',
    )
    assert.deepEqual(readdirSync(cwd), [], 'nothing written to the working directory')
  })
})
