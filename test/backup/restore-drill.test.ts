// The restore drill, on SQLite and PostgreSQL: a backup, then more writes and a data-key
// rotation, then a restore — and the vault holds exactly the backup's contents, every value
// decrypts, and every audit log verifies and records the restore. A corrupted or foreign
// backup is refused and changes nothing; the root key is never inside a backup.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { openRestoreRecord } from '../../src/audit/restore-record.js'
import { checkPart, openBackupFile } from '../../src/backup/backup-file.js'
import { createBackup, listBackups, pruneBackups, restoreBackup, verifyBackup } from '../../src/backup/backup-service.js'
import { createContext, type AppContext } from '../../src/context.js'
import { LocalFileKeyProvider } from '../../src/crypto/local-file-key-provider.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { createTestDatabase } from '../helpers/pg.js'

describeEachEngine((engine: EngineName) => {
  let h: Harness
  let work: string
  let rootKey: Buffer
  // After the restore: a fresh context and app on the same settings, as a restarted server.
  let ctx2: AppContext | undefined
  let app2: FastifyInstance | undefined
  const E = (slug: string) => `/v1/workspaces/${slug}/projects/drill/environments/production`

  const source = (c: AppContext) => ({
    database: c.config.database,
    store: c.store,
    auditTree: c.auditTree,
    clock: c.clock,
    audit: c.audit,
  })
  const provider = () => new LocalFileKeyProvider(rootKey)

  /** Every secret of both workspaces with every version's value, as the API reveals them. */
  async function contents(app: FastifyInstance): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {}
    for (const w of [h.a, h.b]) {
      const a = api(app, w.token)
      const list = await a.get(`${E(w.slug)}/secrets`)
      assert.equal(list.status, 200)
      for (const s of list.body.secrets as Array<{ key: string }>) {
        const v = await a.get(`${E(w.slug)}/secrets/${s.key}/versions?reveal=true`)
        assert.equal(v.status, 200, 'every version decrypts')
        out[`${w.slug}/${s.key}`] = (v.body.versions as Array<{ version: number; value: string | null }>).map((x) => [x.version, x.value])
      }
    }
    return out
  }

  before(async () => {
    h = await startHarness(engine, { COFFER_KEY_ROTATION_CHECK_INTERVAL: '0' })
    work = mkdtempSync(join(tmpdir(), 'coffer-drill-'))
    rootKey = readFileSync(join(h.dataDir, 'root.key'))
    for (const w of [h.a, h.b]) {
      const a = api(h.app, w.token)
      assert.equal((await a.post(`/v1/workspaces/${w.slug}/projects`, { name: 'Drill' })).status, 201)
      for (let i = 0; i < 5; i++)
        assert.equal((await a.put(`${E(w.slug)}/secrets/K${i}`, { value: `v1-${i}-${randomBytes(4).toString('hex')}` })).status, 200)
      assert.equal((await a.put(`${E(w.slug)}/secrets/K0`, { value: 'second', comment: 'c' })).status, 200)
    }
  })
  after(async () => {
    await app2?.close()
    await ctx2?.close()
    await h?.close()
    rmSync(work, { recursive: true, force: true })
  })

  test('backup → more writes and a key rotation → restore: the backup’s contents, all decrypting, audit verifies', async () => {
    const atBackup = await contents(h.app)
    const { path: file, manifest } = await createBackup(source(h.ctx), { dir: work, trigger: 'manual' })
    assert.equal(manifest.engine, engine)
    assert.equal(manifest.audit.length, 2)
    assert.deepEqual(
      listBackups(work).map((b) => b.file),
      [file],
    )
    await verifyBackup(file, { provider: provider() })
    await verifyBackup(file, { publicKey: h.ctx.auditTree.verifierKey })

    // The root key is not in the backup, in any encoding.
    const bytes = readFileSync(file)
    for (const enc of [
      rootKey,
      Buffer.from(rootKey.toString('base64')),
      Buffer.from(rootKey.toString('hex')),
      Buffer.from(rootKey.toString('base64url')),
    ])
      assert.equal(bytes.indexOf(enc), -1, 'no root key inside the backup')

    // Later: more writes, a new secret, a data-key rotation with its reseal.
    const a = api(h.app, h.a.token)
    assert.equal((await a.put(`${E(h.a.slug)}/secrets/K1`, { value: 'after-backup' })).status, 200)
    assert.equal((await a.put(`${E(h.a.slug)}/secrets/NEW`, { value: 'new-after-backup' })).status, 200)
    const rot = await a.post(`${E(h.a.slug)}/keys/rotate`, {})
    assert.equal(rot.status, 202)
    for (let i = 0; i < 100; i++) {
      const st = (await a.get(`${E(h.a.slug)}/keys`)).body
      if (st.versions.length === 1 && st.versions[0].version === 2) break
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.notDeepEqual(await contents(h.app), atBackup)
    await h.settle()
    const headsBefore = await Promise.all([h.a.id, h.b.id].map((ws) => h.ctx.auditTree.head(h.db, ws)))

    await h.app.close()
    await h.ctx.close()
    const r = await restoreBackup(file, { database: h.ctx.config.database, provider: provider(), clock: h.ctx.clock })
    assert.equal(r.workspaces, 2)
    assert.ok(r.discardedEntries > 0)

    const env = readEnv(h.settings)
    ctx2 = await createContext(buildConfig(env), buildSecrets(env))
    app2 = await buildApp(ctx2)
    await app2.ready()
    assert.deepEqual(await contents(app2), atBackup, 'contents equal the backup’s and every value decrypts')
    const keys = (await api(app2, h.a.token).get(`${E(h.a.slug)}/keys`)).body
    assert.deepEqual(
      keys.versions.map((v: { version: number }) => v.version),
      [1],
      'the data key as it was at the backup',
    )
    for (const [i, w] of [h.a, h.b].entries()) {
      const v = await api(app2, w.token).get(`/v1/workspaces/${w.slug}/audit/verify`)
      assert.equal(v.body.ok, true, 'the audit log verifies')
      const at = manifest.audit.find((x) => x.workspaceId === w.id)!
      const next: { action: string; seq: number } = (
        await api(app2, w.token).get(`/v1/workspaces/${w.slug}/audit/entries?after=${at.seq}&limit=1`)
      ).body.entries[0]
      assert.equal(next.action, 'backup.restore', 'the log continues from the backup with the restore')
      assert.equal(next.seq, at.seq + 1)
      // The signed restore record names the point restored to and the head discarded.
      const recs = (await api(app2, w.token).get(`/v1/workspaces/${w.slug}/audit/restores`)).body.restores as Array<{ note: string }>
      assert.equal(recs.length, 1)
      const s = openRestoreRecord(recs[0]!.note, ctx2.auditTree.verifierKey, w.id)
      assert.ok(s)
      assert.equal(s.backupId, manifest.id)
      assert.deepEqual(s.restoredTo, { treeSize: at.treeSize, rootHash: at.rootHash })
      assert.deepEqual(s.replaced, { treeSize: headsBefore[i]!.treeSize, rootHash: headsBefore[i]!.rootHash })
    }
  })

  test('a corrupted, truncated or foreign backup is refused with its code and changes nothing', async () => {
    assert.ok(ctx2 && app2)
    const good = listBackups(work)[0]!.file
    const bytes = readFileSync(good)
    const flipped = Buffer.from(bytes)
    flipped[Math.floor(bytes.length / 2)]! ^= 0x01
    const bad = join(work, 'flipped.cbk')
    writeFileSync(bad, flipped)
    const cut = join(work, 'cut.cbk')
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100))
    const other = await startHarness(engine)
    let foreign: string
    try {
      foreign = (await createBackup(source(other.ctx), { dir: join(work, 'other'), trigger: 'manual' })).path
    } finally {
      await other.close()
    }
    const before = await contents(app2)
    await app2.close()
    await ctx2.close()
    app2 = undefined
    ctx2 = undefined
    const target = { database: h.ctx.config.database, provider: provider(), clock: h.ctx.clock }
    await assert.rejects(restoreBackup(bad, target), { code: 'ERR_BACKUP_INVALID' })
    await assert.rejects(restoreBackup(cut, target), { code: 'ERR_BACKUP_INVALID' })
    await assert.rejects(restoreBackup(foreign, target), { code: 'ERR_BACKUP_FOREIGN' })
    await assert.rejects(verifyBackup(foreign, { publicKey: h.ctx.auditTree.verifierKey }), { code: 'ERR_BACKUP_FOREIGN' })
    await assert.rejects(verifyBackup(bad, { publicKey: h.ctx.auditTree.verifierKey }), { code: 'ERR_BACKUP_INVALID' })
    // A file swapped after its manifest was verified: the restore copies its data checked against
    // the verified manifest, so another backup's data is refused.
    const verified = openBackupFile(good).manifest
    assert.throws(() => checkPart({ ...openBackupFile(foreign), manifest: verified }, verified.parts[0]!.name), {
      code: 'ERR_BACKUP_INVALID',
    })
    const env = readEnv(h.settings)
    ctx2 = await createContext(buildConfig(env), buildSecrets(env))
    app2 = await buildApp(ctx2)
    await app2.ready()
    assert.deepEqual(await contents(app2), before, 'nothing changed')
    for (const w of [h.a, h.b]) assert.equal((await api(app2, w.token).get(`/v1/workspaces/${w.slug}/audit/verify`)).body.ok, true)
  })

  test('a root key given in COFFER_ROOT_KEY is not inside the backup either, and no key file is made', async () => {
    const key = randomBytes(32)
    const other = await startHarness(engine, { COFFER_ROOT_KEY: key.toString('base64') })
    try {
      const { path } = await createBackup(source(other.ctx), { dir: join(work, 'env-key'), trigger: 'manual' })
      const bytes = readFileSync(path)
      for (const enc of [key, Buffer.from(key.toString('base64')), Buffer.from(key.toString('hex'))]) assert.equal(bytes.indexOf(enc), -1)
      assert.equal(existsSync(join(other.dataDir, 'root.key')), false)
      await verifyBackup(path, { provider: new LocalFileKeyProvider(key) })
      await assert.rejects(verifyBackup(path, { provider: provider() }), { code: 'ERR_BACKUP_FOREIGN' }, 'another root key')
    } finally {
      await other.close()
    }
  })

  if (engine === 'postgres')
    test('a backup restores into an empty PostgreSQL database (the schema is created at its version)', async () => {
      assert.ok(ctx2 && app2)
      const want = await contents(app2)
      const file = (await createBackup(source(ctx2), { dir: join(work, 'to-empty'), trigger: 'manual' })).path
      const fresh = await createTestDatabase({ appRole: true })
      let ctx3: AppContext | undefined
      let app3: FastifyInstance | undefined
      try {
        await restoreBackup(file, {
          database: { engine: 'postgres', url: fresh.appUrl!, migrationUrl: fresh.url },
          provider: provider(),
          clock: h.ctx.clock,
        })
        const env = readEnv({ ...h.settings, DATABASE_URL: fresh.appUrl!, COFFER_MIGRATION_DATABASE_URL: fresh.url })
        ctx3 = await createContext(buildConfig(env), buildSecrets(env))
        app3 = await buildApp(ctx3)
        await app3.ready()
        const got = await contents(app3)
        assert.deepEqual(got, want)
        for (const w of [h.a, h.b]) assert.equal((await api(app3, w.token).get(`/v1/workspaces/${w.slug}/audit/verify`)).body.ok, true)
      } finally {
        await app3?.close()
        await ctx3?.close()
        await fresh.drop()
      }
    })

  test('pruning keeps the newest N and drops backups older than the purge window', async () => {
    assert.ok(ctx2)
    const dir = join(work, 'prune')
    const made: string[] = []
    let t = Date.parse('2030-01-01T00:00:00Z')
    for (let i = 0; i < 4; i++) {
      const at = new Date(t)
      made.push((await createBackup({ ...source(ctx2), clock: () => at }, { dir, trigger: 'scheduled' })).path)
      t += 86_400_000
    }
    // Newest 3 kept; then at 2030-02-02 the ones older than 30 days go too.
    assert.deepEqual(pruneBackups(dir, 3, 30, new Date(t)), [made[0]])
    assert.deepEqual(pruneBackups(dir, 3, 30, new Date(Date.parse('2030-02-02T12:00:00Z'))).sort(), [made[1], made[2]].sort())
    assert.deepEqual(
      listBackups(dir).map((b) => b.file),
      [made[3]],
    )
  })
})
