// biome-ignore-all lint/suspicious/noTemplateCurlyInString: some strings are Coffer references (${KEY}), not templates
// `coffer run` as a user drives it — the built CLI against a real listening server — for every
// flag of the developer's day: --watch (restart on change, --watch-signal, reconnection after an
// outage), --mount (0600, exclusive, removed on exit and on SIGINT/SIGTERM/SIGHUP), --fallback
// (used only when the server is unreachable; never on 401; bound to its environment and token;
// unreadable without the token), several --env, the token kept from the child, and a service
// token scoped to one environment that needs no --project/--env.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CofferClient } from '../../src/client/client.js'
import { BIN, ensureBuilt, stopChild, waitListening } from '../helpers/child-server.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const end = performance.now() + timeoutMs
  for (;;) {
    const v = f()
    if (v !== undefined && v !== false) return v
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

describe('coffer run: --watch, --mount, --fallback, several --env, the token (SQLite server)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-run-'))
  const dataDir = join(work, 'data')
  const cwd = join(work, 'app')
  const cache = join(work, 'cache')
  let server: ChildProcess
  let url = ''
  let token = ''
  let ws = ''
  let proxy: TcpProxy
  let proxied = ''
  let owner: CofferClient
  const canary = `canary-${randomBytes(12).toString('hex')}`
  const dev = () => ({ workspace: ws, project: 'web', environment: 'development' })

  const env = (extra: Record<string, string> = {}) => {
    const e: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL') e[k] = v
    e.DBUS_SESSION_BUS_ADDRESS = 'unix:path=/nonexistent'
    return { ...e, COFFER_URL: url, COFFER_TOKEN: token, XDG_CACHE_HOME: cache, NO_COLOR: '1', ...extra }
  }
  // Asynchronous: the TCP proxy that plays the outage runs in this process and must keep forwarding.
  const coffer = (args: string[], extra: Record<string, string> = {}) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { cwd, env: env(extra), stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString()
      })
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
      child.once('close', (status) => {
        clearTimeout(t)
        resolve({ status, stdout, stderr })
      })
    })
  const start = (args: string[], extra: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: env(extra), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    return { child, stderr: () => stderr }
  }

  before(async () => {
    ensureBuilt()
    mkdirSync(cwd, { recursive: true })
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'dev@example.com', '--workspace', 'Acme', '--json'],
      {
        encoding: 'utf8',
        env: env(),
      },
    )
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    ws = j.workspace.slug
    server = spawn(process.execPath, [BIN, 'server', '--data-dir', dataDir, '--port', '0'], {
      env: { ...env(), COFFER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    url = await waitListening(server)
    const u = new URL(url)
    proxy = await startTcpProxy(u.hostname, Number(u.port))
    proxied = `http://127.0.0.1:${proxy.port}`
    owner = new CofferClient({ url, token })
    await owner.createProject(ws, { name: 'Web', slug: 'web' })
    await owner.createProject(ws, { name: 'Api', slug: 'api' })
    await owner.setSecrets(dev(), [
      { key: 'A', value: 'dev-a' },
      { key: 'B', value: 'dev-b' },
      { key: 'CANARY', value: canary },
    ])
    await owner.setSecrets({ ...dev(), environment: 'staging' }, [{ key: 'B', value: 'staging-b' }])
    await owner.setSecrets({ workspace: ws, project: 'api', environment: 'development' }, [{ key: 'C', value: 'api-c' }])
  })
  after(async () => {
    await proxy?.close()
    if (server) await stopChild(server)
    rmSync(work, { recursive: true, force: true })
  })

  describe('the environments and the token', () => {
    test('the child does not inherit COFFER_TOKEN unless --pass-token', async () => {
      const r = await coffer([
        'run',
        '--project',
        'web',
        '--env',
        'development',
        '--',
        'sh',
        '-c',
        'test -z "$COFFER_TOKEN" && echo "token=unset a=$A"',
      ])
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout.trim(), 'token=unset a=dev-a')
      const passed = await coffer(
        ['run', '--pass-token', '--project', 'web', '--env', 'development', '--', 'sh', '-c', 'test "$COFFER_TOKEN" = "$T" && echo same'],
        {
          T: token,
        },
      )
      assert.equal(passed.stdout.trim(), 'same')
    })

    test('several --env, and PROJECT/ENV for another project: later wins', async () => {
      const show = ['--', 'sh', '-c', 'echo "$A $B $C"']
      assert.equal(
        (await coffer(['run', '--project', 'web', '--env', 'development', '--env', 'staging', ...show])).stdout.trim(),
        'dev-a staging-b',
      )
      assert.equal(
        (await coffer(['run', '--project', 'web', '--env', 'staging', '--env', 'development', ...show])).stdout.trim(),
        'dev-a dev-b',
      )
      assert.equal(
        (await coffer(['run', '--project', 'web', '--env', 'development', '--env', 'api/development', ...show])).stdout.trim(),
        'dev-a dev-b api-c',
      )
      const refused = await coffer(['run', '--env', 'development', '--', 'true'])
      assert.equal(refused.status, 1)
      assert.match(refused.stderr, /ERR_NO_PROJECT|No project/)
    })

    test('a service token scoped to exactly one environment needs no --project/--env; a wider one does', async () => {
      const envs = await owner.listEnvironments(ws, 'web')
      const staging = envs.find((e) => e.slug === 'staging')!.id
      const project = (await owner.project(ws, 'web')).project.id
      const one = await owner.createServiceToken(ws, {
        name: 'staging only',
        scopes: [{ project, environments: [staging], access: 'read' }],
      })
      const r = await coffer(['run', '--', 'sh', '-c', 'echo "$B"'], { COFFER_TOKEN: one.token })
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout.trim(), 'staging-b')
      const wide = await owner.createServiceToken(ws, { name: 'all of web', scopes: [{ project, environments: '*', access: 'read' }] })
      const w = await coffer(['run', '--', 'true'], { COFFER_TOKEN: wide.token })
      assert.equal(w.status, 1)
      assert.match(w.stderr, /No project\/environment/)
    })
  })

  describe('--mount', () => {
    test('a new 0600 file with the values, in dotenv or json, removed when the command exits', async () => {
      const file = join(cwd, 'mounted.env')
      const r = await coffer([
        'run',
        '--project',
        'web',
        '--env',
        'development',
        '--mount',
        file,
        '--',
        'sh',
        '-c',
        `stat -c %a "${file}"; cat "${file}"`,
      ])
      assert.equal(r.status, 0, r.stderr)
      const [mode, ...lines] = r.stdout.trim().split('\n')
      assert.equal(mode, '600')
      assert.deepEqual(lines, ['A="dev-a"', 'B="dev-b"', `CANARY="${canary}"`])
      assert.ok(!existsSync(file), 'removed on exit')
      const json = join(cwd, 'mounted.json')
      const j = await coffer(['run', '--project', 'web', '--env', 'development', '--mount', json, '--format', 'json', '--', 'cat', json])
      assert.deepEqual(JSON.parse(j.stdout), { A: 'dev-a', B: 'dev-b', CANARY: canary })
      assert.ok(!existsSync(json))
      // Removed after a failing command too.
      const failing = await coffer(['run', '--project', 'web', '--env', 'development', '--mount', file, '--', 'sh', '-c', 'exit 3'])
      assert.equal(failing.status, 3)
      assert.ok(!existsSync(file))
    })

    test('never overwrites or follows what is already at PATH', async () => {
      const existing = join(cwd, 'existing.env')
      writeFileSync(existing, 'KEEP=1\n')
      const r = await coffer(['run', '--project', 'web', '--env', 'development', '--mount', existing, '--', 'true'])
      assert.equal(r.status, 1)
      assert.match(r.stderr, /ERR_MOUNT_EXISTS|already exists/)
      assert.equal(readFileSync(existing, 'utf8'), 'KEEP=1\n')
      // A symbolic link planted at PATH (pointing at a file the attacker wants written) is not followed.
      const target = join(work, 'attacker-target')
      const link = join(cwd, 'link.env')
      symlinkSync(target, link)
      const s = await coffer(['run', '--project', 'web', '--env', 'development', '--mount', link, '--', 'true'])
      assert.equal(s.status, 1)
      assert.ok(!existsSync(target), 'nothing written through the link')
      assert.ok(!s.stderr.includes(canary))
      const bad = await coffer([
        'run',
        '--project',
        'web',
        '--env',
        'development',
        '--mount',
        join(cwd, 'x'),
        '--format',
        'xml',
        '--',
        'true',
      ])
      assert.equal(bad.status, 1)
      assert.match(bad.stderr, /dotenv or json/)
    })

    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      test(`removed when coffer gets ${signal} (kill)`, async () => {
        const file = join(cwd, `mount-${signal}.env`)
        const r = start(['run', '--project', 'web', '--env', 'development', '--mount', file, '--', 'sleep', '30'])
        await until('the file', () => existsSync(file))
        assert.equal(statSync(file).mode & 0o777, 0o600)
        r.child.kill(signal)
        const { code, signal: died } = await exited(r.child)
        assert.ok(code !== 0, `coffer exits with the signal's status (${code} ${died}): ${r.stderr()}`)
        assert.ok(!existsSync(file), `removed on ${signal}`)
      })
    }
  })

  describe('--fallback', () => {
    const snapshots = () => (existsSync(join(cache, 'coffer', 'run-fallback')) ? readdirSync(join(cache, 'coffer', 'run-fallback')) : [])

    test('written 0600 after a fetch, encrypted, and used only while the server is unreachable, with a warning', async () => {
      const args = ['run', '--project', 'web', '--env', 'development', '--fallback', '--', 'sh', '-c', 'echo "$CANARY"']
      const online = await coffer(args, { COFFER_URL: proxied })
      assert.equal(online.status, 0, online.stderr)
      assert.equal(online.stderr, '', 'no warning while the server answers')
      const [name] = snapshots()
      assert.ok(name, 'a snapshot was written')
      const path = join(cache, 'coffer', 'run-fallback', name)
      assert.equal(statSync(path).mode & 0o777, 0o600)
      const bytes = readFileSync(path, 'utf8')
      assert.ok(!bytes.includes(canary) && !bytes.includes('dev-a') && !bytes.includes('CANARY'), 'no value nor key in the clear')

      proxy.cut()
      try {
        const offline = await coffer(args, { COFFER_URL: proxied })
        assert.equal(offline.status, 0, offline.stderr)
        assert.equal(offline.stdout.trim(), canary)
        assert.match(offline.stderr, /warning: the server is unreachable .*fallback snapshot from \d+ min ago/)
        assert.ok(!offline.stderr.includes(canary))
        // Too old for --fallback-max-age: refused.
        const stale = await coffer([...args.slice(0, 6), '--fallback-max-age', '0', ...args.slice(6)], { COFFER_URL: proxied })
        assert.equal(stale.status, 1)
        assert.match(stale.stderr, /older than --fallback-max-age/)
        // Another environment has no snapshot: nothing is borrowed from development.
        const other = await coffer(['run', '--project', 'web', '--env', 'staging', '--fallback', '--', 'true'], { COFFER_URL: proxied })
        assert.equal(other.status, 1)
        assert.match(other.stderr, /no fallback snapshot/)
        // Without --fallback an outage is an error, as before.
        const plain = await coffer(['run', '--project', 'web', '--env', 'development', '--', 'true'], { COFFER_URL: proxied })
        assert.equal(plain.status, 1)
        assert.match(plain.stderr, /Cannot reach/)
      } finally {
        proxy.restore()
      }
      // --fallback-only never contacts the server.
      const before = proxy.stats.accepted
      const only = await coffer(['run', '--project', 'web', '--env', 'development', '--fallback-only', '--', 'sh', '-c', 'echo "$A"'], {
        COFFER_URL: proxied,
      })
      assert.equal(only.stdout.trim(), 'dev-a')
      assert.match(only.stderr, /warning: --fallback-only/)
      assert.equal(proxy.stats.accepted, before, 'no connection was made')
    })

    test('a 5xx page from a proxy counts as unreachable; a 401, 403 or 404 from it does not', async () => {
      // A reverse proxy in front of the server that can be told to answer every request itself.
      let answer: number | null = null
      const front = createServer((req, res) => {
        if (answer !== null) {
          res.writeHead(answer, { 'content-type': 'text/html' }).end(`<html>${answer}</html>`)
          return
        }
        const up = request(`${url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers)
          r.pipe(res)
        })
        req.pipe(up)
      })
      await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
      const frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`
      try {
        const args = ['run', '--project', 'web', '--env', 'development', '--fallback', '--', 'sh', '-c', 'echo "$A"']
        assert.equal((await coffer(args, { COFFER_URL: frontUrl })).status, 0)
        for (const status of [500, 502, 503, 504]) {
          answer = status
          const r = await coffer(args, { COFFER_URL: frontUrl })
          assert.equal(r.status, 0, `${status}: ${r.stderr}`)
          assert.equal(r.stdout.trim(), 'dev-a')
          assert.match(r.stderr, /warning: the server is unreachable/)
        }
        for (const status of [401, 403, 404]) {
          answer = status
          const r = await coffer(args, { COFFER_URL: frontUrl })
          assert.equal(r.status, 1, `${status} must not fall back`)
          assert.equal(r.stdout, '', `${status}: the command did not run`)
          assert.ok(!r.stderr.includes('snapshot'), r.stderr)
        }
      } finally {
        await new Promise<void>((r) => front.close(() => r()))
      }
    })

    test('never used on 401, nor by another token, nor for another environment named by PATH', async () => {
      const path = join(work, 'snap.bin')
      const t = await owner.createToken(ws, { name: 'soon revoked' })
      const args = (env: string) => ['run', '--project', 'web', '--env', env, `--fallback=${path}`, '--', 'sh', '-c', 'echo "$A"']
      assert.equal((await coffer(args('development'), { COFFER_TOKEN: t.token })).status, 0)
      assert.equal(statSync(path).mode & 0o777, 0o600)
      // Another token cannot open it (the key comes from the token), even when the server is unreachable.
      proxy.cut()
      try {
        const other = await coffer(args('development'), { COFFER_URL: proxied })
        assert.equal(other.status, 1)
        assert.match(other.stderr, /ERR_FALLBACK_UNAVAILABLE|was not made for this/)
        assert.ok(!other.stdout.includes('dev-a'))
        const otherEnv = await coffer(args('staging'), { COFFER_TOKEN: t.token, COFFER_URL: proxied })
        assert.equal(otherEnv.status, 1)
        assert.match(otherEnv.stderr, /was not made for this/)
      } finally {
        proxy.restore()
      }
      // The token is revoked: the server answers 401, and the snapshot is not a way around it.
      await owner.revokeToken(ws, t.info.id)
      const revoked = await coffer(args('development'), { COFFER_TOKEN: t.token })
      assert.equal(revoked.status, 1)
      assert.match(revoked.stderr, /ERR_UNAUTHENTICATED/)
      assert.equal(revoked.stdout, '', 'the command did not run')
      // A damaged snapshot is refused like a foreign one.
      const f = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>
      const ct = Buffer.from(f.ciphertext!, 'base64')
      ct[0]! ^= 1
      writeFileSync(path, JSON.stringify({ ...f, ciphertext: ct.toString('base64') }))
      const damaged = await coffer(
        ['run', '--project', 'web', '--env', 'development', `--fallback=${path}`, '--fallback-only', '--', 'true'],
        { COFFER_TOKEN: t.token },
      )
      assert.equal(damaged.status, 1)
      assert.match(damaged.stderr, /was not made for this/)
    })
  })

  describe('--watch', () => {
    test('a change restarts the command with the new value within a second; the mount file follows', async () => {
      const log = join(work, 'starts.log')
      const file = join(cwd, 'watched.env')
      const r = start([
        'run',
        '--project',
        'web',
        '--env',
        'development',
        '--watch',
        '--mount',
        file,
        '--',
        'sh',
        '-c',
        `echo "$A" >> "${log}"; exec sleep 30`,
      ])
      await until('the first start', () => existsSync(log) && readFileSync(log, 'utf8') === 'dev-a\n')
      const lags: number[] = []
      for (let i = 1; i <= 3; i++) {
        const t0 = performance.now()
        await owner.setSecret(dev(), 'A', { value: `watched-${i}` })
        await until(`restart ${i}`, () => readFileSync(log, 'utf8').includes(`watched-${i}\n`))
        lags.push(performance.now() - t0)
        assert.match(readFileSync(file, 'utf8'), new RegExp(`A="watched-${i}"`))
      }
      assert.ok(Math.max(...lags) < 1_000, `slowest restart ${Math.round(Math.max(...lags))} ms`)
      // A change of another environment restarts nothing.
      await owner.setSecrets({ ...dev(), environment: 'staging' }, [{ key: 'S', value: 'x' }])
      await sleep(600)
      assert.equal(readFileSync(log, 'utf8').split('\n').filter(Boolean).length, 4)
      r.child.kill('SIGTERM')
      await exited(r.child)
      assert.ok(!existsSync(file))
      assert.ok(!r.stderr().includes('watched-'), 'no value on stderr')
      await owner.setSecret(dev(), 'A', { value: 'dev-a' })
    })

    test('a change of a referenced environment restarts the command with the value it resolves to', async () => {
      const log = join(work, 'ref.log')
      const stg = { ...dev(), environment: 'staging' }
      await owner.setSecret(stg, 'UPSTREAM', { value: 'up-1' })
      await owner.setSecret(dev(), 'VIA_REF', { value: 'at:${staging.UPSTREAM}' })
      const r = start([
        'run',
        '--project',
        'web',
        '--env',
        'development',
        '--watch',
        '--',
        'sh',
        '-c',
        `echo "$VIA_REF" >> "${log}"; exec sleep 30`,
      ])
      await until('the first start', () => existsSync(log) && readFileSync(log, 'utf8') === 'at:up-1\n')
      const t0 = performance.now()
      await owner.setSecret(stg, 'UPSTREAM', { value: 'up-2' })
      await until('the restart', () => readFileSync(log, 'utf8').includes('at:up-2\n'))
      assert.ok(performance.now() - t0 < 1_000, `restart took ${Math.round(performance.now() - t0)} ms`)
      // A staging key the value does not use is fetched again but restarts nothing (the values are the same).
      await owner.setSecret(stg, 'UNUSED', { value: 'x' })
      await sleep(600)
      assert.equal(readFileSync(log, 'utf8'), 'at:up-1\nat:up-2\n')
      r.child.kill('SIGTERM')
      await exited(r.child)
      await owner.deleteSecret(dev(), 'VIA_REF')
    })

    test('--watch-debounce folds a burst of writes into one restart with the last values', async () => {
      const log = join(work, 'burst.log')
      const r = start([
        'run',
        '--project',
        'web',
        '--env',
        'development',
        '--watch',
        '--watch-debounce',
        '500',
        '--',
        'sh',
        '-c',
        `echo "$A" >> "${log}"; exec sleep 30`,
      ])
      await until('the first start', () => existsSync(log) && readFileSync(log, 'utf8') === 'dev-a\n')
      await sleep(300)
      for (let i = 1; i <= 3; i++) await owner.setSecret(dev(), 'A', { value: `burst-${i}` })
      await until('the restart', () => readFileSync(log, 'utf8').includes('burst-3\n'))
      await sleep(700)
      assert.equal(readFileSync(log, 'utf8'), 'dev-a\nburst-3\n', 'one restart, with the last value')
      r.child.kill('SIGTERM')
      await exited(r.child)
      await owner.setSecret(dev(), 'A', { value: 'dev-a' })
    })

    test('--watch-signal SIGHUP is what the command gets, and coffer waits for it to exit', async () => {
      const log = join(work, 'hup.log')
      const script = `echo "start $A" >> "${log}"; trap 'sleep 0.2; echo "hup" >> "${log}"; exit 0' HUP; while :; do sleep 0.05; done`
      const r = start(['run', '--project', 'web', '--env', 'development', '--watch', '--watch-signal', 'SIGHUP', '--', 'sh', '-c', script])
      await until('the first start', () => existsSync(log) && readFileSync(log, 'utf8').includes('start dev-a'))
      await owner.setSecret(dev(), 'A', { value: 'hup-1' })
      await until('the restart', () => readFileSync(log, 'utf8').includes('start hup-1'))
      assert.deepEqual(
        readFileSync(log, 'utf8').trim().split('\n'),
        ['start dev-a', 'hup', 'start hup-1'],
        'the old one exited before the new one started',
      )
      r.child.kill('SIGTERM')
      await exited(r.child)
      await owner.setSecret(dev(), 'A', { value: 'dev-a' })
    })

    test('after an outage it reconnects and fetches again: a change made meanwhile is not missed', async () => {
      const log = join(work, 'outage.log')
      const r = start(
        ['run', '--project', 'web', '--env', 'development', '--watch', '--', 'sh', '-c', `echo "$B" >> "${log}"; exec sleep 30`],
        {
          COFFER_URL: proxied,
        },
      )
      await until('the first start', () => existsSync(log) && readFileSync(log, 'utf8') === 'dev-b\n')
      proxy.cut()
      await sleep(300)
      await owner.setSecret(dev(), 'B', { value: 'during-outage' })
      await sleep(300)
      assert.equal(readFileSync(log, 'utf8'), 'dev-b\n', 'nothing while cut off')
      proxy.restore()
      await until('the restart after reconnecting', () => readFileSync(log, 'utf8').includes('during-outage\n'), 15_000)
      r.child.kill('SIGTERM')
      await exited(r.child)
      await owner.setSecret(dev(), 'B', { value: 'dev-b' })
    })

    test('the command exiting by itself ends coffer run with its code; a revoked token stops the watch, not the command', async () => {
      const done = start(['run', '--project', 'web', '--env', 'development', '--watch', '--', 'sh', '-c', 'exit 7'])
      assert.equal((await exited(done.child)).code, 7)

      const t = await owner.createToken(ws, { name: 'watch then revoke' })
      const log = join(work, 'revoked.log')
      const r = start(
        ['run', '--project', 'web', '--env', 'development', '--watch', '--', 'sh', '-c', `echo up >> "${log}"; exec sleep 30`],
        {
          COFFER_TOKEN: t.token,
        },
      )
      await until('the start', () => existsSync(log))
      await sleep(300)
      await owner.revokeToken(ws, t.info.id)
      await until('the warning', () => /--watch stopped .*ERR_UNAUTHENTICATED/.test(r.stderr()))
      assert.equal(r.child.exitCode, null, 'the command keeps running')
      r.child.kill('SIGTERM')
      await exited(r.child)
    })
  })
})
