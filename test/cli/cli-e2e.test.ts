// The CLI as a user drives it: the built `coffer` binary against a real listening server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import BetterSqlite3 from 'better-sqlite3'
import { waitListening } from '../helpers/child-server.js'
import { copyRunPackage, runBundleBuild } from '../helpers/run-bundle.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')

/** npm test (scripts/test.mjs) builds the bundle once before any test runs. */
function ensureBuilt(): void {
  assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
}

interface Result {
  status: number | null
  stdout: string
  stderr: string
}

describe('coffer CLI end to end (SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-cli-'))
  const dataDir = join(work, 'data')
  const projectDir = join(work, 'app')
  let server: ChildProcess
  let url = ''
  let token = ''
  const canary = `canary-${randomBytes(12).toString('hex')}`

  const env = (extra: Record<string, string> = {}) => {
    const e: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL') e[k] = v
    // No session bus: the CLI must rely on COFFER_TOKEN and never write the token to disk.
    e.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent'
    return { ...e, COFFER_URL: url, COFFER_TOKEN: token, NO_COLOR: '1', ...extra }
  }
  const coffer = (args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string> } = {}): Result => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? projectDir,
      env: env(opts.env),
      input: opts.input ?? '',
      encoding: 'utf8',
      timeout: 30_000,
    })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const ok = (args: string[], opts?: Parameters<typeof coffer>[1]): Result => {
    const r = coffer(args, opts)
    assert.equal(r.status, 0, `coffer ${args[0]} ${args[1] ?? ''} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }

  before(async () => {
    ensureBuilt()
    spawnSync('mkdir', ['-p', projectDir])
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'dev@example.com', '--workspace', 'Acme', '--json'],
      { encoding: 'utf8', env: env() },
    )
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    assert.match(token, /^coffer_pat_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/)
    assert.equal(j.workspace.slug, 'acme')
    assert.equal(statSync(join(dataDir, 'root.key')).mode & 0o777, 0o600)

    server = spawn(process.execPath, [BIN, 'server', '--data-dir', dataDir, '--port', '0'], {
      env: { ...env(), COFFER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    url = await waitListening(server)
  })

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM')
      await new Promise((r) => server.once('exit', r))
    }
    rmSync(work, { recursive: true, force: true })
  })

  test('--help and --version answer without a server', () => {
    const r = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' })
    assert.equal(r.status, 0)
    for (const c of ['init', 'server', 'login', 'secrets', 'run', 'export', 'import', 'audit', 'token', 'setup'])
      assert.match(r.stdout, new RegExp(`\\b${c}\\b`))
    assert.equal(spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' }).status, 0)
  })

  test('whoami, projects, envs and setup', () => {
    assert.equal(ok(['whoami']).stdout.trim(), 'dev@example.com')
    assert.equal(JSON.parse(ok(['whoami', '--json']).stdout).role, 'owner')
    assert.equal(ok(['projects', 'create', 'Web Shop']).stdout.trim(), 'web-shop')
    const list = JSON.parse(ok(['projects', 'list', '--json']).stdout) as Array<{ slug: string }>
    assert.deepEqual(
      list.map((p) => p.slug),
      ['web-shop'],
    )
    const envs = JSON.parse(ok(['envs', 'list', '--project', 'web-shop', '--json']).stdout) as Array<{ slug: string }>
    assert.deepEqual(
      envs.map((e) => e.slug),
      ['development', 'staging', 'production'],
    )
    ok(['envs', 'create', 'QA', '--project', 'web-shop'])
    ok(['setup', '--project', 'web-shop', '--env', 'development'])
    const linked = JSON.parse(readFileSync(join(projectDir, '.coffer.json'), 'utf8'))
    assert.deepEqual(linked, { workspace: 'acme', project: 'web-shop', environment: 'development' })
    assert.ok(!JSON.stringify(linked).includes('coffer_pat_'), '.coffer.json holds no token')
  })

  test('secrets set/get/list/history/rollback/delete/restore', () => {
    ok(['secrets', 'set', `API_KEY=${canary}`, 'DB_URL=postgres://u@h/db'])
    ok(['secrets', 'set', 'PIPED=-'], { input: 'line1\nline2' })
    assert.equal(ok(['secrets', 'get', 'API_KEY']).stdout, canary)
    assert.equal(ok(['secrets', 'get', 'PIPED']).stdout, 'line1\nline2')
    const plain = ok(['secrets', 'list'])
    assert.match(plain.stdout, /API_KEY/)
    assert.ok(!plain.stdout.includes(canary), 'list without --reveal shows no value')
    assert.ok(ok(['secrets', 'list', '--reveal']).stdout.includes(canary))
    ok(['secrets', 'set', 'API_KEY=second'])
    const h = JSON.parse(ok(['secrets', 'history', 'API_KEY', '--json']).stdout) as { versions: Array<{ version: number }> }
    assert.deepEqual(
      h.versions.map((v) => v.version),
      [2, 1],
    )
    ok(['secrets', 'rollback', 'API_KEY', '--to', '1'])
    assert.equal(ok(['secrets', 'get', 'API_KEY']).stdout, canary)
    const conflict = coffer(['secrets', 'set', 'API_KEY=x', '--if-version', '1'])
    assert.notEqual(conflict.status, 0)
    assert.match(conflict.stderr, /ERR_VERSION_CONFLICT/)
    assert.equal(conflict.stderr.trim().split('\n').length, 1, 'one-line error')
    ok(['secrets', 'delete', 'DB_URL'])
    const gone = coffer(['secrets', 'get', 'DB_URL'])
    assert.notEqual(gone.status, 0)
    assert.match(gone.stderr, /ERR_NOT_FOUND/)
    ok(['secrets', 'restore', 'DB_URL'])
    assert.equal(ok(['secrets', 'get', 'DB_URL']).stdout, 'postgres://u@h/db')
    const bad = coffer(['secrets', 'set', '1BAD=x'])
    assert.notEqual(bad.status, 0)
  })

  test('run injects secrets, returns the exit code, and respects --preserve-env', () => {
    const r = ok(['run', '--', 'sh', '-c', 'printf %s "$API_KEY"'])
    assert.equal(r.stdout, canary)
    assert.equal(coffer(['run', '--', 'sh', '-c', 'exit 7']).status, 7)
    const over = ok(['run', '--', 'sh', '-c', 'printf %s "$API_KEY"'], { env: { API_KEY: 'inherited' } })
    assert.equal(over.stdout, canary, 'secrets win by default')
    const kept = ok(['run', '--preserve-env', '--', 'sh', '-c', 'printf %s "$API_KEY"'], { env: { API_KEY: 'inherited' } })
    assert.equal(kept.stdout, 'inherited')
    const missing = coffer(['run', '--', 'definitely-not-a-command-xyz'])
    assert.equal(missing.status, 127)
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell expands ${API_KEY:-none}, not JavaScript
    const withFlags = ok(['run', '--project', 'web-shop', '--env', 'qa', '--', 'sh', '-c', 'printf %s "${API_KEY:-none}"'], { cwd: work })
    assert.equal(withFlags.stdout, 'none')
    const withEquals = ok(['run', '--project=web-shop', '--env=development', 'sh', '-c', 'printf %s "$API_KEY"'], { cwd: work })
    assert.ok(withEquals.stdout === canary, '--opt=value, and the command without --')
  })

  test('run keeps a code cache beside its bundle, and runs the same with a broken one', () => {
    const dist = join(ROOT, 'dist')
    const build = runBundleBuild()
    assert.ok(build, 'dist/run.cjs names its build in its first line')
    const cache = join(dist, `run.cjs.${build}.cache`)
    const printKey = ['run', '--', 'sh', '-c', 'printf %s "$API_KEY"']
    // Never the user's own cache folder here (the next test covers it).
    const noUserCache = { XDG_CACHE_HOME: join(work, 'no-user-cache') }
    ok(['run', '--', 'true'], { env: noUserCache })
    assert.ok(statSync(cache).size > 10_000, 'a code cache after a run')
    // A cache V8 rejects: the run is as before, and the cache is made again.
    const garbage = randomBytes(statSync(cache).size)
    writeFileSync(cache, garbage)
    assert.ok(ok(printKey, { env: noUserCache }).stdout === canary, 'the secret reached the command')
    assert.ok(!readFileSync(cache).equals(garbage), 'the rejected cache was written again')
  })

  test("run keeps its code cache in the user's own folder where the bundle's is read-only", () => {
    // A copy of the package whose cache beside the bundle cannot be written (a folder in its place).
    const pkg = join(work, 'pkg')
    const bin = copyRunPackage(pkg)
    const build = runBundleBuild(join(pkg, 'dist'))
    mkdirSync(join(pkg, 'dist', `run.cjs.${build}.cache`))
    const xdg = join(work, 'xdg-cache')
    mkdirSync(join(xdg, 'coffer'), { recursive: true, mode: 0o700 })
    const stale = join(xdg, 'coffer', `run.cjs.${'0'.repeat(16)}.cache`)
    writeFileSync(stale, 'an earlier build')
    const run = (extra: Record<string, string>) =>
      spawnSync(process.execPath, [bin, 'run', '--', 'sh', '-c', 'printf %s "$API_KEY"'], {
        cwd: projectDir,
        env: env(extra),
        input: '',
        encoding: 'utf8',
        timeout: 30_000,
      })
    const r = run({ XDG_CACHE_HOME: xdg })
    assert.equal(r.status, 0, r.stderr)
    assert.ok(r.stdout === canary, 'the secret reached the command')
    assert.deepEqual(
      readdirSync(join(pkg, 'dist')).sort(),
      ['cli.js', 'run.cjs', `run.cjs.${build}.cache`],
      'nothing left beside the bundle',
    )
    const mine = join(xdg, 'coffer', `run.cjs.${build}.cache`)
    assert.ok(statSync(mine).size > 10_000, 'saved in $XDG_CACHE_HOME/coffer')
    assert.equal(statSync(mine).mode & 0o777, 0o600)
    assert.equal(statSync(join(xdg, 'coffer')).mode & 0o777, 0o700)
    assert.equal(existsSync(stale), false, 'the earlier build’s cache removed')
    // Nowhere to write at all: the run is the same.
    const none = run({ XDG_CACHE_HOME: '', HOME: '/nonexistent' })
    assert.equal(none.status, 0, none.stderr)
    assert.ok(none.stdout === canary, 'the secret reached the command')
  })

  test('run hands help, unknown options and a missing command to the full CLI (commander)', () => {
    const help = ok(['run', '--help'])
    assert.match(help.stdout, /Usage: coffer run \[options\] \[command\.\.\.\]/)
    assert.match(help.stdout, /--preserve-env/)
    const unknown = coffer(['run', '--bogus', '--', 'true'])
    assert.equal(unknown.status, 2, 'a usage error exits 2')
    assert.equal(unknown.stderr, "coffer: unknown option '--bogus' (ERR_USAGE)\n")
    const noValue = coffer(['run', '--project'])
    assert.equal(noValue.status, 2)
    assert.equal(noValue.stderr, "coffer: option '--project <project>' argument missing (ERR_USAGE)\n")
    const nothing = coffer(['run', '--'])
    assert.equal(nothing.status, 1)
    assert.equal(nothing.stderr, 'coffer: Give the command to run after --, e.g. coffer run -- node server.js (ERR_CLI)\n')
  })

  test('run reports a refusal and an unreachable server on one line, with their codes', () => {
    const refused = coffer(['run', '--project', 'no-such-project', '--env', 'development', '--', 'true'])
    assert.equal(refused.status, 1)
    assert.match(refused.stderr, /^coffer: .*\(ERR_NOT_FOUND\)\n$/)
    const down = coffer(['run', '--url', 'http://127.0.0.1:1', '--workspace', 'acme', '--', 'true'])
    assert.equal(down.status, 1)
    assert.equal(down.stderr, 'coffer: Cannot reach the Coffer server at http://127.0.0.1:1: ECONNREFUSED (ERR_CONNECTION)\n')
  })

  test('export and import round-trip every format', () => {
    for (const format of ['dotenv', 'json', 'yaml'] as const) {
      const out = ok(['export', '--format', format]).stdout
      const file = join(work, `export.${format === 'dotenv' ? 'env' : format}`)
      writeFileSync(file, out)
      ok(['import', file, '--project', 'web-shop', '--env', 'staging'])
      const back = JSON.parse(ok(['secrets', 'list', '--reveal', '--json', '--project', 'web-shop', '--env', 'staging']).stdout) as Array<{
        key: string
        value: string
      }>
      const src = JSON.parse(ok(['secrets', 'list', '--reveal', '--json']).stdout) as Array<{ key: string; value: string }>
      assert.deepEqual(
        back.map((s) => [s.key, s.value]),
        src.map((s) => [s.key, s.value]),
        `${format} round-trip`,
      )
      rmSync(file)
    }
    const shell = ok(['export', '--format', 'shell']).stdout
    const r = spawnSync('sh', ['-c', `${shell}\nprintf %s "$PIPED"`], { encoding: 'utf8' })
    assert.equal(r.stdout, 'line1\nline2')
    const broken = join(work, 'broken.env')
    writeFileSync(broken, 'GOOD=1\nthis line is wrong\n')
    const bad = coffer(['import', broken])
    assert.notEqual(bad.status, 0)
    assert.match(bad.stderr, /line 2/)
  })

  test('token create, list, revoke', () => {
    const created = JSON.parse(ok(['token', 'create', 'ci', '--json']).stdout) as { token: string; info: { id: string } }
    assert.equal(JSON.parse(ok(['whoami', '--json'], { env: { COFFER_TOKEN: created.token } }).stdout).user.email, 'dev@example.com')
    const list = ok(['token', 'list']).stdout
    assert.ok(!list.includes(created.token), 'listing never shows a token')
    ok(['token', 'revoke', created.info.id])
    const after = coffer(['whoami'], { env: { COFFER_TOKEN: created.token } })
    assert.notEqual(after.status, 0)
    assert.match(after.stderr, /ERR_UNAUTHENTICATED/)
  })

  test('login without an OS credential store writes nothing and points to COFFER_TOKEN', () => {
    const home = mkdtempSync(join(tmpdir(), 'coffer-home-'))
    const r = coffer(['login', '--url', url, '--token', token], {
      env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), COFFER_TOKEN: '' },
    })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /COFFER_TOKEN/)
    assert.deepEqual(readdirSync(home), [], 'nothing written to the home directory')
    rmSync(home, { recursive: true, force: true })
    const none = coffer(['whoami'], { env: { COFFER_TOKEN: '' } })
    assert.notEqual(none.status, 0)
    assert.match(none.stderr, /Not logged in/)
  })

  test('audit verify passes, then fails naming the tampered entry', async () => {
    assert.match(ok(['audit', 'verify']).stderr, /Audit chain OK/)
    // An attacker with the database file edits one entry after dropping the guard trigger.
    const db = new BetterSqlite3(join(dataDir, 'coffer.db'))
    db.exec('DROP TRIGGER audit_entries_no_update')
    const row = db.prepare("SELECT seq FROM audit_entries WHERE action = 'secret.reveal' ORDER BY seq LIMIT 1").get() as { seq: number }
    db.prepare("UPDATE audit_entries SET action = 'secret.update' WHERE seq = ?").run(row.seq)
    db.close()
    const r = coffer(['audit', 'verify'])
    assert.equal(r.status, 2)
    assert.match(r.stderr, new RegExp(`BROKEN at entry ${row.seq}\\b`))
  })

  test('the data directory never holds a secret value in clear', async () => {
    server.kill('SIGTERM')
    await new Promise((r) => server.once('exit', r))
    const needles = [canary, Buffer.from(canary).toString('hex'), Buffer.from(canary).toString('base64')]
    for (const f of readdirSync(dataDir)) {
      const bytes = readFileSync(join(dataDir, f))
      for (const n of needles) assert.equal(bytes.includes(Buffer.from(n)), false, `${f} contains the canary`)
    }
    assert.ok(existsSync(join(dataDir, 'coffer.db')))
  })
})
