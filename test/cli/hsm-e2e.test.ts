// A vault whose root key lives in an HSM: SoftHSM2 through PKCS#11, driven as a user would —
// `coffer keys init-hsm`, `coffer init`, `coffer server`, secrets in and out — and start-up
// refusing a wrong PIN without printing it. Needs the Debian package softhsm2 (never skips).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')
const PIN = `pin-${randomBytes(4).toString('hex')}`

describe('a vault with its root key in SoftHSM2', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-hsm-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let hsmEnv: Record<string, string> = {}

  const run = (args: string[], extra: Record<string, string> = {}) =>
    spawnSync(process.execPath, [BIN, ...args], {
      cwd: work,
      env: { ...process.env, ...hsmEnv, ...extra },
      encoding: 'utf8',
      timeout: 30_000,
    })

  before(() => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
    assert.equal(spawnSync('sh', ['-c', 'command -v softhsm2-util']).status, 0, 'softhsm2-util is missing: apt-get install -y softhsm2')
    const tokens = join(work, 'tokens')
    mkdirSync(tokens)
    writeFileSync(join(work, 'softhsm2.conf'), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`)
    hsmEnv = {
      SOFTHSM2_CONF: join(work, 'softhsm2.conf'),
      COFFER_KEY_PROVIDER: 'pkcs11',
      COFFER_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      COFFER_PKCS11_TOKEN_LABEL: 'coffer-test',
      COFFER_PKCS11_PIN: PIN,
      COFFER_LOG_LEVEL: 'warn',
    }
    const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'coffer-test', '--pin', PIN, '--so-pin', '5678'], {
      env: { ...process.env, ...hsmEnv },
      encoding: 'utf8',
    })
    assert.equal(init.status, 0, init.stderr)
  })

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM')
      await new Promise((r) => server!.once('exit', r))
    }
    rmSync(work, { recursive: true, force: true })
  })

  test('init-hsm, init, server, secrets — and no root key file anywhere', async () => {
    const k = run(['keys', 'init-hsm'])
    assert.equal(k.status, 0, k.stderr)
    assert.match(k.stderr, /cannot be exported/)
    assert.notEqual(run(['keys', 'init-hsm']).status, 0, 'a second root key with the same label is refused')

    const init = run(['init', '--data-dir', dataDir, '--email', 'hsm@example.com', '--json'])
    assert.equal(init.status, 0, init.stderr)
    const token = (JSON.parse(init.stdout) as { token: string }).token
    assert.equal(existsSync(join(dataDir, 'root.key')), false, 'no root key file: the key stays in the token')

    server = spawn(process.execPath, [BIN, 'server', '--data-dir', dataDir, '--port', '0'], {
      env: { ...process.env, ...hsmEnv },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const url = await new Promise<string>((resolve, reject) => {
      let buf = ''
      server!.stderr!.on('data', (d: Buffer) => {
        buf += d.toString()
        const m = /listening on (http:\/\/[^\s]+)/.exec(buf)
        if (m) resolve(m[1]!)
      })
      server!.on('exit', (code) => reject(new Error(`server exited ${code}: ${buf}`)))
    })
    const as = { COFFER_URL: url, COFFER_TOKEN: token, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent' }
    assert.equal(run(['projects', 'create', 'Vault'], as).status, 0)
    const value = `hsm-${randomBytes(8).toString('hex')}`
    assert.equal(run(['secrets', 'set', `K=${value}`, '--project', 'vault', '--env', 'production'], as).status, 0)
    const got = run(['secrets', 'get', 'K', '--project', 'vault', '--env', 'production'], as)
    assert.equal(got.status, 0, got.stderr)
    assert.ok(got.stdout === value, 'the value comes back through the HSM-wrapped data key')
    server.kill('SIGTERM')
    await new Promise((r) => server!.once('exit', r))
  })

  test('a wrong PIN stops start-up, names the setting, and never prints the PIN', () => {
    const wrong = `wrong-${randomBytes(4).toString('hex')}`
    const r = run(['server', '--data-dir', dataDir, '--port', '0'], { COFFER_PKCS11_PIN: wrong })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /COFFER_PKCS11_PIN/)
    assert.match(r.stderr, /ERR_CONFIG|COFFER_PKCS11_PIN:/)
    assert.ok(!r.stderr.includes(wrong) && !r.stdout.includes(wrong), 'the PIN is not printed')
    assert.ok(!r.stderr.includes(PIN), 'nor the right one')
  })

  test('another token label stops start-up naming COFFER_PKCS11_TOKEN_LABEL', () => {
    const r = run(['server', '--data-dir', dataDir, '--port', '0'], { COFFER_PKCS11_TOKEN_LABEL: 'no-such-token' })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /COFFER_PKCS11_TOKEN_LABEL/)
  })
})
