// `coffer login` with a real OS credential store: gnome-keyring's Secret Service inside a
// private D-Bus session (dbus-run-session) with a throw-away HOME. Needs the Debian packages
// gnome-keyring and dbus; without them this suite fails (it never skips).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { filesUnder } from '../helpers/files.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')

describe('coffer login with the OS credential store (gnome-keyring)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-login-'))
  const home = join(work, 'home')
  let server: ChildProcess
  let url = ''
  let token = ''

  before(async () => {
    for (const tool of ['dbus-run-session', 'gnome-keyring-daemon']) {
      assert.equal(spawnSync('sh', ['-c', `command -v ${tool}`]).status, 0, `${tool} is missing: apt-get install -y gnome-keyring dbus`)
    }
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
    mkdirSync(join(home, 'run'), { recursive: true, mode: 0o700 })
    const init = spawnSync(process.execPath, [BIN, 'init', '--data-dir', join(work, 'data'), '--email', 'kc@example.com', '--json'], {
      encoding: 'utf8',
    })
    assert.equal(init.status, 0, init.stderr)
    token = (JSON.parse(init.stdout) as { token: string }).token
    server = spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, 'data'), '--port', '0'], {
      env: { ...process.env, COFFER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    url = await new Promise<string>((resolve, reject) => {
      let buf = ''
      server.stderr!.on('data', (d: Buffer) => {
        buf += d.toString()
        const m = /listening on (http:\/\/[^\s]+)/.exec(buf)
        if (m) resolve(m[1]!)
      })
      server.on('exit', (code) => reject(new Error(`server exited ${code}`)))
    })
  })

  after(async () => {
    if (server?.exitCode === null) {
      server.kill('SIGTERM')
      await new Promise((r) => server.once('exit', r))
    }
    rmSync(work, { recursive: true, force: true })
  })

  test('login keeps the token in the keychain, whoami uses it, logout removes it', () => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined || k.startsWith('COFFER_') || k.startsWith('DBUS_') || k.startsWith('XDG_') || k === 'NODE_TEST_CONTEXT') continue
      env[k] = v
    }
    Object.assign(env, {
      HOME: home,
      XDG_RUNTIME_DIR: join(home, 'run'),
      XDG_DATA_HOME: join(home, 'data'),
      XDG_CONFIG_HOME: join(home, 'config'),
      COFFER_TEST_TOKEN: token,
      COFFER_TEST_URL: url,
    })
    const c = `"${process.execPath}" "${BIN}"`
    const script = [
      'echo -n test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1',
      `${c} login --url "$COFFER_TEST_URL" --token "$COFFER_TEST_TOKEN" 2>&1; echo "login=$?"`,
      `${c} whoami 2>/dev/null; echo "whoami=$?"`,
      // `coffer run` (its own bundle, dist/run.cjs) finds the login in the keychain too.
      `${c} projects create Kc >/dev/null 2>&1 && ${c} secrets set --project kc --env development KC_VALUE=from-keychain-login >/dev/null 2>&1`,
      `${c} run --project kc --env development -- sh -c '[ "$KC_VALUE" = from-keychain-login ]' 2>&1; echo "run=$?"`,
      `${c} logout 2>&1; echo "logout=$?"`,
      `${c} whoami 2>&1; echo "whoami_after=$?"`,
    ].join('\n')
    const r = spawnSync('dbus-run-session', ['--', 'sh', '-c', script], { env, encoding: 'utf8', timeout: 60_000 })
    const out = r.stdout
    assert.ok(!out.includes(token), 'the token is never printed')
    assert.match(out, /Logged in to .* as kc@example.com .*OS credential store/)
    assert.match(out, /login=0/)
    assert.match(out, /kc@example.com\nwhoami=0/)
    assert.match(out, /\nrun=0\n/)
    assert.match(out, /logout=0/)
    assert.match(out, /Not logged in/)
    assert.match(out, /whoami_after=1/)
    // The keyring's own files are encrypted: the token is in no file under HOME in clear.
    for (const f of filesUnder(home)) assert.ok(!readFileSync(f).includes(Buffer.from(token)), `${f} holds the token in clear`)
  })
})
