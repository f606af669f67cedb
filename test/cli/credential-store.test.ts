/**
 * Credential store tests against a REAL Secret Service (gnome-keyring).
 *
 * Run normally, this file re-executes itself inside a private D-Bus session
 * (`dbus-run-session`) with an unlocked gnome-keyring and a throwaway HOME,
 * then checks that the inner run passed. It always re-executes unless it is
 * already the inner run (COFFER_KEYRING_TEST_SESSION=1), even when the caller
 * has a session bus of its own, so a developer's real keyring is never touched.
 * Missing tools make the suite FAIL, never skip.
 *
 * Needs (Debian/Ubuntu): apt-get install -y gnome-keyring dbus
 *
 * All tokens below are fake and are never printed: comparisons use assert.ok
 * with messages that do not include them.
 */
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  CredentialStoreError,
  KEYRING_ACCOUNT,
  KEYRING_SERVICE,
  KeyringCredentialStore,
  credentialsFromEnv,
  openCredentialStore,
  type Credentials,
} from '../../src/cli/credential-store.js'

const SESSION_MARKER = 'COFFER_KEYRING_TEST_SESSION'
const thisFile = fileURLToPath(import.meta.url)
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const moduleUrl = new URL('../../src/cli/credential-store.ts', import.meta.url).href
const isInnerRun = process.env[SESSION_MARKER] === '1'

function sameCredentials(a: Credentials | null, b: Credentials): boolean {
  return a !== null && a.url === b.url && a.token === b.token && Object.keys(a).length === 2
}

/** Environment for a child that must not see the caller's desktop session or test-runner state. */
function isolatedEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of [
    'DBUS_SESSION_BUS_ADDRESS',
    'DISPLAY',
    'WAYLAND_DISPLAY',
    'GNOME_KEYRING_CONTROL',
    'SSH_AUTH_SOCK',
    'XDG_RUNTIME_DIR',
    'NODE_TEST_CONTEXT', // otherwise the inner `node --test` reports in the parent's binary protocol
    SESSION_MARKER,
  ]) {
    delete env[name]
  }
  const runtime = join(home, 'run')
  mkdirSync(runtime, { recursive: true, mode: 0o700 })
  return {
    ...env,
    HOME: home,
    XDG_DATA_HOME: join(home, 'data'),
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_CACHE_HOME: join(home, 'cache'),
    XDG_RUNTIME_DIR: runtime,
    ...extra,
  }
}

/**
 * Run a small ESM script under tsx that imports the credential-store module
 * as `m` and prints a single JSON line; returns the parsed line.
 */
function runSnippet(body: string, env: NodeJS.ProcessEnv, timeoutMs = 30_000): { result: unknown; ms: number; status: number | null } {
  const script = `import * as m from ${JSON.stringify(moduleUrl)};\n${body}`
  const start = Date.now()
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
  })
  const ms = Date.now() - start
  const line = res.stdout.trim().split('\n').pop() ?? ''
  let result: unknown
  try {
    result = JSON.parse(line)
  } catch {
    result = { unparsable: true, status: res.status, signal: res.signal, stderrTail: res.stderr.slice(-500) }
  }
  return { result, ms, status: res.status }
}

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

if (!isInnerRun) {
  // ---------------------------------------------------------------- outer run
  describe('credentialsFromEnv', () => {
    test('null when COFFER_TOKEN is unset or empty', () => {
      assert.equal(credentialsFromEnv({}), null)
      assert.equal(credentialsFromEnv({ COFFER_TOKEN: '', COFFER_URL: 'https://vault.example' }), null)
    })

    test('token and url from the environment', () => {
      const c = credentialsFromEnv({ COFFER_TOKEN: 'fake-env-token', COFFER_URL: 'https://vault.example:8443/' })
      assert.ok(sameCredentials(c, { url: 'https://vault.example:8443/', token: 'fake-env-token' }), 'credentials mismatch')
    })

    test('the fallback URL is used only when COFFER_URL is absent', () => {
      const c = credentialsFromEnv({ COFFER_TOKEN: 'fake-env-token' }, 'http://localhost:8200')
      assert.ok(sameCredentials(c, { url: 'http://localhost:8200', token: 'fake-env-token' }), 'credentials mismatch')
      const d = credentialsFromEnv({ COFFER_TOKEN: 'fake-env-token', COFFER_URL: 'https://a.example' }, 'http://b.example')
      assert.ok(d?.url === 'https://a.example', 'COFFER_URL should win over the fallback')
    })

    test('missing or invalid URL throws without the token', () => {
      for (const env of [
        { COFFER_TOKEN: 'fake-env-token' },
        { COFFER_TOKEN: 'fake-env-token', COFFER_URL: 'not a url' },
        { COFFER_TOKEN: 'fake-env-token', COFFER_URL: 'ftp://vault.example' },
      ]) {
        assert.throws(
          () => credentialsFromEnv(env),
          (err) => {
            assert.ok(err instanceof CredentialStoreError)
            assert.equal(err.code, 'ERR_CREDENTIAL_STORE')
            assert.ok(!String(err.stack).includes('fake-env-token'), 'error leaks the token')
            return true
          },
        )
      }
    })

    test('defaults to process.env', () => {
      const saved = { t: process.env.COFFER_TOKEN, u: process.env.COFFER_URL }
      try {
        delete process.env.COFFER_TOKEN
        assert.equal(credentialsFromEnv(), null)
        process.env.COFFER_TOKEN = 'fake-process-token'
        process.env.COFFER_URL = 'https://vault.example'
        assert.ok(credentialsFromEnv()?.token === 'fake-process-token', 'token mismatch')
      } finally {
        if (saved.t === undefined) delete process.env.COFFER_TOKEN
        else process.env.COFFER_TOKEN = saved.t
        if (saved.u === undefined) delete process.env.COFFER_URL
        else process.env.COFFER_URL = saved.u
      }
    })
  })

  describe('real Secret Service (re-executed under dbus-run-session)', () => {
    const home = mkdtempSync(join(tmpdir(), 'coffer-keyring-'))
    after(() => rmSync(home, { recursive: true, force: true }))

    test('dbus-run-session and gnome-keyring-daemon are installed', () => {
      const missing = ['dbus-run-session', 'gnome-keyring-daemon'].filter((c) => !hasCommand(c))
      assert.deepEqual(missing, [], 'install them with: apt-get install -y gnome-keyring dbus')
    })

    test('the inner suite passes inside a private, unlocked keyring session', { timeout: 180_000 }, () => {
      assert.ok(hasCommand('dbus-run-session') && hasCommand('gnome-keyring-daemon'), 'gnome-keyring / dbus not installed')
      const res = spawnSync(
        'dbus-run-session',
        [
          '--',
          'sh',
          '-c',
          'printf %s testpass | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 90; ' +
            'exec "$0" --import tsx --test --test-reporter=tap "$1"',
          process.execPath,
          thisFile,
        ],
        {
          cwd: repoRoot,
          env: isolatedEnv(join(home, 'unlocked'), { [SESSION_MARKER]: '1' }),
          encoding: 'utf8',
          timeout: 170_000,
        },
      )
      const out = res.stdout ?? ''
      const count = (name: string) => {
        const m = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(out)
        return m ? Number(m[1]) : NaN
      }
      const diagnostics = `status ${res.status}, signal ${res.signal}\n--- stdout tail ---\n${out.slice(-3000)}\n--- stderr tail ---\n${(res.stderr ?? '').slice(-1500)}`
      assert.notEqual(res.status, 90, `gnome-keyring-daemon failed to start\n${diagnostics}`)
      assert.equal(res.status, 0, `inner run failed\n${diagnostics}`)
      assert.equal(count('fail'), 0, `inner failures\n${diagnostics}`)
      assert.equal(count('cancelled'), 0, `inner cancellations\n${diagnostics}`)
      assert.equal(count('skipped'), 0, `inner skips\n${diagnostics}`)
      assert.ok(count('pass') >= 15, `too few inner tests passed (${count('pass')})\n${diagnostics}`)
    })

    test('a session whose keyring cannot be unlocked: store is found but save fails without leaking', { timeout: 60_000 }, () => {
      // No --unlock and no display: gnome-keyring is D-Bus-activated with no
      // login keyring and cannot prompt, so writes are refused.
      assert.ok(hasCommand('dbus-run-session') && hasCommand('gnome-keyring-daemon'), 'gnome-keyring / dbus not installed')
      const script = `
        const store = await m.openCredentialStore();
        let saveError = null;
        if (store) {
          try { await store.save({ url: 'https://vault.example', token: 'fake-locked-token' }); }
          catch (err) { saveError = { name: err.name, code: err.code, leaks: String(err.stack).includes('fake-locked-token') }; }
        }
        console.log(JSON.stringify({ found: store !== null, saveError }));
        process.exit(0);
      `
      const res = spawnSync(
        'dbus-run-session',
        [
          '--',
          process.execPath,
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `import * as m from ${JSON.stringify(moduleUrl)};\n${script}`,
        ],
        { cwd: repoRoot, env: isolatedEnv(join(home, 'locked')), encoding: 'utf8', timeout: 50_000 },
      )
      const line = (res.stdout ?? '').trim().split('\n').pop() ?? ''
      assert.equal(res.status, 0, `child failed: ${(res.stderr ?? '').slice(-800)}`)
      const result = JSON.parse(line) as { found: boolean; saveError: { name: string; code: string; leaks: boolean } | null }
      assert.equal(result.found, true)
      assert.ok(result.saveError !== null, 'save unexpectedly succeeded on a keyring that cannot be unlocked')
      assert.equal(result.saveError.code, 'ERR_CREDENTIAL_STORE')
      assert.equal(result.saveError.leaks, false, 'error leaks the token')
    })
  })
} else {
  // ---------------------------------------------------------------- inner run
  describe('inside the private keyring session', () => {
    const fakeA: Credentials = { url: 'https://vault-a.example', token: 'fake-token-a' }
    const fakeB: Credentials = { url: 'http://127.0.0.1:8200/base', token: `fake-token-b "quoted" \\ ✓ ${'x'.repeat(2000)}` }

    test('the session really is a fresh, isolated one', () => {
      assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, 'no session bus')
      assert.ok(process.env.HOME?.startsWith(tmpdir()), 'HOME is not the throwaway directory')
    })

    test('openCredentialStore finds Secret Service', async () => {
      const store = await openCredentialStore()
      assert.ok(store !== null, 'expected a store')
      assert.equal(store.kind, 'secret-service')
    })

    test('load is null before anything is saved; remove reports false', async () => {
      const store = new KeyringCredentialStore()
      assert.equal(await store.load(), null)
      assert.equal(await store.remove(), false)
    })

    test('save → load round trip, seen by a fresh instance', async () => {
      const store = (await openCredentialStore())!
      await store.save(fakeA)
      assert.ok(sameCredentials(await store.load(), fakeA), 'round trip mismatch')
      assert.ok(sameCredentials(await new KeyringCredentialStore().load(), fakeA), 'fresh instance mismatch')
    })

    test('the item is stored under service "coffer", account "default", as JSON', async () => {
      const { Entry } = await import('@napi-rs/keyring')
      const raw = new Entry(KEYRING_SERVICE, KEYRING_ACCOUNT, { linux: { store: 'secret-service' } }).getPassword()
      assert.ok(raw !== null, 'no item under coffer/default')
      const parsed = JSON.parse(raw) as Credentials
      assert.ok(sameCredentials(parsed, fakeA), 'stored JSON mismatch')
    })

    test('overwrite replaces the credentials', async () => {
      const store = new KeyringCredentialStore()
      await store.save(fakeB)
      assert.ok(sameCredentials(await store.load(), fakeB), 'overwrite mismatch')
      await store.save(fakeA)
      assert.ok(sameCredentials(await store.load(), fakeA), 'second overwrite mismatch')
    })

    test('remove → load null; second remove is false', async () => {
      const store = new KeyringCredentialStore()
      assert.equal(await store.remove(), true)
      assert.equal(await store.load(), null)
      assert.equal(await store.remove(), false)
    })

    test('the probe never writes an entry', async () => {
      await openCredentialStore()
      const { findCredentials } = await import('@napi-rs/keyring')
      assert.deepEqual(
        findCredentials(KEYRING_SERVICE).map((c) => c.account),
        [],
      )
    })

    test('a separate service/account does not collide with the login entry', async () => {
      const other = new KeyringCredentialStore({ service: 'coffer-test', account: 'other' })
      await other.save(fakeB)
      assert.equal(await new KeyringCredentialStore().load(), null)
      assert.ok(sameCredentials(await other.load(), fakeB), 'other entry mismatch')
      assert.equal(await other.remove(), true)
    })

    test('malformed stored data is rejected without echoing it', async () => {
      const { Entry } = await import('@napi-rs/keyring')
      const entry = new Entry(KEYRING_SERVICE, KEYRING_ACCOUNT, { linux: { store: 'secret-service' } })
      for (const raw of ['fake-not-json-garbage', '{"url":"https://x.example"}', '{"url":1,"token":"fake-garbage-tok"}', 'null']) {
        entry.setPassword(raw)
        await assert.rejects(new KeyringCredentialStore().load(), (err) => {
          assert.ok(err instanceof CredentialStoreError)
          assert.equal(err.code, 'ERR_CREDENTIAL_STORE')
          assert.ok(
            !String(err.stack).includes('fake-not-json-garbage') && !String(err.stack).includes('fake-garbage-tok'),
            'error leaks stored data',
          )
          return true
        })
      }
      entry.deletePassword()
    })

    test('save rejects invalid credentials without the token and without writing', async () => {
      const store = new KeyringCredentialStore()
      for (const c of [
        { url: 'https://vault.example', token: '' },
        { url: 'not a url', token: 'fake-invalid-token' },
        { url: 'file:///etc/passwd', token: 'fake-invalid-token' },
      ]) {
        await assert.rejects(store.save(c), (err) => {
          assert.ok(err instanceof CredentialStoreError)
          assert.ok(!String(err.stack).includes('fake-invalid-token'), 'error leaks the token')
          return true
        })
      }
      assert.equal(await store.load(), null)
    })

    test('no session bus: a nonexistent socket → null, quickly', () => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(tmpdir(), 'coffer-no-such-bus', 'socket')}`,
      }
      delete env.NODE_TEST_CONTEXT
      const { result, ms } = runSnippet(
        'const s = await m.openCredentialStore(); console.log(JSON.stringify({ isNull: s === null }));',
        env,
      )
      assert.deepEqual(result, { isNull: true })
      assert.ok(ms < 20_000, `probe took ${ms} ms`)
    })

    test('no session bus at all (variable unset, no display) → null', () => {
      const env = { ...process.env }
      delete env.DBUS_SESSION_BUS_ADDRESS
      delete env.DISPLAY
      delete env.NODE_TEST_CONTEXT
      const { result } = runSnippet('const s = await m.openCredentialStore(); console.log(JSON.stringify({ isNull: s === null }));', env)
      assert.deepEqual(result, { isNull: true })
    })

    test('a bus that never answers → null within the timeout (probe cannot hang)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'coffer-hung-bus-'))
      const socketPath = join(dir, 'bus')
      const sockets = new Set<import('node:net').Socket>()
      const server = createServer((s) => sockets.add(s)) // accepts, never replies
      await new Promise<void>((resolve) => server.listen(socketPath, resolve))
      try {
        const env: NodeJS.ProcessEnv = { ...process.env, DBUS_SESSION_BUS_ADDRESS: `unix:path=${socketPath}` }
        delete env.NODE_TEST_CONTEXT
        // The child must run asynchronously: spawnSync would block this
        // process's event loop, and with it the hung bus server.
        const script = `import * as m from ${JSON.stringify(moduleUrl)};
          const t = Date.now(); const s = await m.openCredentialStore({ timeoutMs: 1500 });
          console.log(JSON.stringify({ isNull: s === null, ms: Date.now() - t }));`
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          cwd: repoRoot,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let stdout = ''
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
        const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
        clearTimeout(killer)
        assert.equal(status, 0, 'probe process did not exit on its own')
        const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { isNull: boolean; ms: number }
        assert.equal(result.isNull, true)
        assert.ok(result.ms < 10_000, `probe took ${result.ms} ms despite a 1500 ms timeout`)
      } finally {
        for (const s of sockets) s.destroy()
        server.close()
        rmSync(dir, { recursive: true, force: true })
      }
    })

    test('cleanup leaves no coffer entries behind', async () => {
      await new KeyringCredentialStore().remove()
      const { findCredentials } = await import('@napi-rs/keyring')
      assert.deepEqual(findCredentials(KEYRING_SERVICE), [])
    })
  })
}
