// Root-key rotation and moving between providers, as an operator does it with the built
// CLI: `coffer keys rotate-root` on a local key file, then `coffer keys migrate --from local`
// into SoftHSM2 (PKCS#11), then `coffer keys rotate-root --new-key-label` inside the token.
// After each step the vault starts only with the new key, every secret and version reads
// back, no secret row changed, and each workspace's audit log records the change and
// verifies. An interrupted migration blocks every server until it is run again.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import { LocalFileKeyProvider } from '../../src/crypto/local-file-key-provider.js'
import type { KeyProvider } from '../../src/crypto/key-provider.js'
import { AuditLog } from '../../src/audit/audit-log.js'
import { migrateRootKey } from '../../src/vault/root-key-migration.js'
import { openStore } from '../../src/storage/database.js'
import { GroupCommitter } from '../../src/storage/group-commit.js'
import { BIN, childEnv, ensureBuilt, request, startServer, stopChild } from '../helpers/child-server.js'
import { systemClock } from '../../src/ops/clock.js'

const PIN = `pin-${randomBytes(4).toString('hex')}`

describe('root-key rotation and provider migration (CLI, SQLite, SoftHSM2)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-rootkey-'))
  const dataDir = join(work, 'data')
  const base = childEnv({ COFFER_LOG_LEVEL: 'warn' })
  let hsm: Record<string, string> = {}
  let token = ''
  let ws = ''
  const values = new Map<string, string[]>()

  const cli = (args: string[], env: NodeJS.ProcessEnv = base) =>
    spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 60_000 })

  /** Starts a server with `env`, checks every value and the audit log, stops it. */
  async function checkVault(env: NodeJS.ProcessEnv, expectAudit: number): Promise<void> {
    const s = await startServer(['--data-dir', dataDir], env)
    try {
      const E = `/v1/workspaces/${ws}/projects/app/environments/production`
      for (const [key, vs] of values) {
        const hist = (await request(s.url, token, 'GET', `${E}/secrets/${key}/versions?reveal=true`)).body.versions as Array<{
          value: string
        }>
        assert.ok(hist.length === vs.length && hist.every((h, i) => h.value === vs[vs.length - 1 - i]), `${key}: every version reads back`)
      }
      const entries = (await request(s.url, token, 'GET', `/v1/workspaces/${ws}/audit/entries?limit=1000`)).body.entries as Array<{
        action: string
      }>
      assert.equal(entries.filter((e) => e.action === 'keys.root_rewrapped').length, expectAudit)
      assert.equal((await request(s.url, token, 'GET', `/v1/workspaces/${ws}/audit/verify`)).body.ok, true)
    } finally {
      await stopChild(s.child)
    }
  }

  function secretRows(): string {
    const db = new BetterSqlite3(join(dataDir, 'coffer.db'), { readonly: true })
    try {
      return JSON.stringify(
        db.prepare('SELECT secret_id, version, hex(value_ct) AS v, dek_version FROM secret_versions ORDER BY secret_id, version').all(),
      )
    } finally {
      db.close()
    }
  }

  before(async () => {
    ensureBuilt()
    assert.equal(spawnSync('sh', ['-c', 'command -v softhsm2-util']).status, 0, 'softhsm2-util is missing: apt-get install -y softhsm2')
    const tokens = join(work, 'tokens')
    mkdirSync(tokens)
    writeFileSync(join(work, 'softhsm2.conf'), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`)
    hsm = {
      SOFTHSM2_CONF: join(work, 'softhsm2.conf'),
      COFFER_KEY_PROVIDER: 'pkcs11',
      COFFER_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
      COFFER_PKCS11_TOKEN_LABEL: 'coffer-rk',
      COFFER_PKCS11_KEY_LABEL: 'root-1',
      COFFER_PKCS11_PIN: PIN,
    }
    const t = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'coffer-rk', '--pin', PIN, '--so-pin', '5678'], {
      env: { ...process.env, ...hsm },
      encoding: 'utf8',
    })
    assert.equal(t.status, 0, t.stderr)

    const init = cli(['init', '--data-dir', dataDir, '--email', 'ops@example.com', '--workspace', 'Keys', '--json'])
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    ws = j.workspace.slug
    const s = await startServer(['--data-dir', dataDir], base)
    try {
      assert.equal((await request(s.url, token, 'POST', `/v1/workspaces/${ws}/projects`, { name: 'App' })).status, 201)
      const E = `/v1/workspaces/${ws}/projects/app/environments/production`
      for (let i = 0; i < 12; i++) {
        for (let v = 0; v < 2; v++) {
          const value = `rk-${i}-${v}-${randomBytes(6).toString('hex')}`
          assert.equal((await request(s.url, token, 'PUT', `${E}/secrets/K${i}`, { value })).status, 200)
          values.set(`K${i}`, [...(values.get(`K${i}`) ?? []), value])
        }
      }
      // A rotated data key too, so several key versions exist.
      assert.equal(
        (await request(s.url, token, 'POST', `/v1/workspaces/${ws}/projects/app/environments/development/keys/rotate`, {})).status,
        202,
      )
    } finally {
      await stopChild(s.child)
    }
  })

  after(() => rmSync(work, { recursive: true, force: true }))

  test('rotate-root on a local key file: new root.key, old one retired, rows untouched', async () => {
    const oldKey = readFileSync(join(dataDir, 'root.key'))
    const rows = secretRows()
    const r = cli(['keys', 'rotate-root', '--data-dir', dataDir, '--json'])
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { dataKeys: number; workspaces: number; metaValues: number; retiredKeyFile: string }
    const db = new BetterSqlite3(join(dataDir, 'coffer.db'), { readonly: true })
    const dek = (db.prepare('SELECT COUNT(*) AS n FROM data_keys').get() as { n: number }).n
    db.close()
    assert.ok(dek >= 3)
    assert.equal(out.dataKeys, dek, 'every data key of every environment was rewrapped')
    assert.equal(out.workspaces, 1)
    assert.equal(out.metaValues, 2)
    const newKey = readFileSync(join(dataDir, 'root.key'))
    assert.equal(newKey.length, 32)
    assert.ok(!newKey.equals(oldKey))
    assert.ok(readFileSync(out.retiredKeyFile).equals(oldKey))
    assert.equal(statSync(join(dataDir, 'root.key')).mode & 0o777, 0o600)
    assert.equal(secretRows(), rows, 'no secret row changed')
    await checkVault(base, 1)
    // The old key no longer opens the database.
    const bad = cli(['server', '--data-dir', dataDir, '--port', '0'], { ...base, COFFER_ROOT_KEY: oldKey.toString('base64') })
    assert.notEqual(bad.status, 0)
    assert.match(bad.stderr, /ERR_ROOT_KEY_MISMATCH|root key does not match/)
  })

  test('an interrupted migration blocks every server; running it again finishes it', async () => {
    const current = readFileSync(join(dataDir, 'root.key'))
    const from = new LocalFileKeyProvider(current)
    const next = randomBytes(32)
    const to = new LocalFileKeyProvider(next)
    // A target that fails after two wraps, like a crash in the middle.
    let wraps = 0
    const flaky: KeyProvider = {
      kind: to.kind,
      keyId: to.keyId,
      unwrap: (w, a) => to.unwrap(w, a),
      close: async () => {},
      wrap: async (k, a) => {
        if (++wraps > 2) throw new Error('crash')
        return to.wrap(k, a)
      },
    }
    const store = openStore({ engine: 'sqlite', path: join(dataDir, 'coffer.db') })
    const committer = new GroupCommitter(store.db)
    const audit = new AuditLog(store.engine, () => Promise.reject(new Error('unused')), systemClock)
    await assert.rejects(migrateRootKey({ store, committer, audit, clock: systemClock }, from, flaky), /crash/)
    await committer.close()
    await store.close()

    for (const key of [current, next]) {
      const r = cli(['server', '--data-dir', dataDir, '--port', '0'], { ...base, COFFER_ROOT_KEY: key.toString('base64') })
      assert.notEqual(r.status, 0, 'no server starts on a half-migrated database')
      assert.match(r.stderr, /root-key migration .* has not finished/)
    }
    // The operator runs the migration again (here: the new key in an environment variable).
    writeFileSync(join(work, 'old.key'), current, { mode: 0o600 })
    const r = cli(['keys', 'migrate', '--from', 'local', '--from-key-file', join(work, 'old.key'), '--data-dir', dataDir, '--json'], {
      ...base,
      COFFER_ROOT_KEY: next.toString('base64'),
    })
    assert.equal(r.status, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { resumed: boolean }).resumed, true)
    await checkVault({ ...base, COFFER_ROOT_KEY: next.toString('base64') }, 2)
    // From here the key lives in the data directory again, for the next step.
    writeFileSync(join(dataDir, 'root.key'), next, { mode: 0o600 })
  })

  test('migrate local → PKCS#11 (SoftHSM2), then rotate-root inside the token', async () => {
    assert.equal(cli(['keys', 'init-hsm'], { ...base, ...hsm }).status, 0)
    const rows = secretRows()
    const r = cli(['keys', 'migrate', '--from', 'local', '--data-dir', dataDir, '--json'], { ...base, ...hsm })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(secretRows(), rows, 'no secret row changed')
    assert.ok(!JSON.stringify(r).includes(PIN), 'the PIN is never printed')
    // The vault now runs on the HSM; the local key file is not needed.
    rmSync(join(dataDir, 'root.key'))
    await checkVault({ ...base, ...hsm }, 3)
    const keyIds = (): string[] => {
      const db = new BetterSqlite3(join(dataDir, 'coffer.db'), { readonly: true })
      try {
        return (db.prepare('SELECT DISTINCT root_key_id AS k FROM data_keys').all() as Array<{ k: string }>).map((x) => x.k)
      } finally {
        db.close()
      }
    }
    assert.ok(
      keyIds().every((k) => k.startsWith('pkcs11:')),
      `every data key is wrapped by the HSM: ${keyIds()}`,
    )

    const rot = cli(['keys', 'rotate-root', '--new-key-label', 'root-2', '--data-dir', dataDir], { ...base, ...hsm })
    assert.equal(rot.status, 0, rot.stderr)
    assert.match(rot.stderr, /COFFER_PKCS11_KEY_LABEL=root-2/)
    const start = cli(['server', '--data-dir', dataDir, '--port', '0'], { ...base, ...hsm })
    assert.notEqual(start.status, 0, 'the old HSM key no longer opens the database')
    await checkVault({ ...base, ...hsm, COFFER_PKCS11_KEY_LABEL: 'root-2' }, 4)
    assert.equal(secretRows(), rows)
    assert.equal(readdirSync(dataDir).filter((f) => f.startsWith('root.key') && !f.includes('retired')).length, 0)
    assert.ok(existsSync(dataDir))
  })
})
