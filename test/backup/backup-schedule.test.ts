// Scheduled backups keep the newest COFFER_BACKUP_KEEP and drop those older than the purge
// window; one node takes each scheduled backup; a schema migration of a database holding data
// is preceded by a backup of it as it was.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { listBackups, restoreBackup, verifyBackup } from '../../src/backup/backup-service.js'
import { createContext } from '../../src/context.js'
import { LocalFileKeyProvider } from '../../src/crypto/local-file-key-provider.js'
import { backupJob } from '../../src/jobs/backup-job.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import type { Logger } from '../../src/ops/logger.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { openStore } from '../../src/storage/database.js'
import { LATEST_SCHEMA_VERSION, migrate } from '../../src/storage/migrator.js'
import { MIGRATIONS } from '../../src/storage/migrations.js'
import { describeEachEngine } from '../helpers/engines.js'
import { startHarness, type EngineName, type Harness } from '../helpers/harness.js'

const quiet = { info() {}, error() {}, warn() {}, debug() {} } as unknown as Logger

describeEachEngine((engine: EngineName) => {
  let h: Harness
  let dir: string
  let now = Date.parse('2031-03-01T00:00:00Z')
  const clock = () => new Date(now)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coffer-sched-'))
    h = await startHarness(engine, { COFFER_BACKUP_DIR: dir, COFFER_BACKUP_INTERVAL: '3600', COFFER_BACKUP_KEEP: '2' }, { clock })
  })
  after(async () => {
    await h?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('a backup when due, the newest N kept, those older than the purge window deleted', async () => {
    const job = backupJob(h.ctx, quiet)
    assert.equal(job.intervalMs, 60_000, 'looks every minute, backs up every hour')
    await job.run()
    assert.equal(listBackups(dir).length, 1)
    assert.ok(h.ctx.metrics.backupLastSuccess.get()! >= Math.floor(now / 1000))
    await job.run()
    assert.equal(listBackups(dir).length, 1, 'not due again within the interval')
    for (let i = 0; i < 3; i++) {
      now += 3600_000
      await job.run()
    }
    const kept = listBackups(dir)
    assert.equal(kept.length, 2, 'COFFER_BACKUP_KEEP')
    assert.equal(kept[0]!.manifest!.createdAt, new Date(now).toISOString())
    assert.equal(kept[0]!.manifest!.trigger, 'scheduled')
    await verifyBackup(kept[0]!.file, { publicKey: h.ctx.auditTree.verifierKey })
    // 31 days later, the next run leaves only backups within the purge window: its own.
    now += 31 * 86_400_000
    await job.run()
    assert.deepEqual(
      listBackups(dir).map((b) => b.manifest!.createdAt),
      [new Date(now).toISOString()],
    )
    const entries = await h.ctx.audit.list(h.db, h.a.id, 0, 10_000)
    assert.ok(
      entries.some((e) => e.action === 'backup.create'),
      'each backup is in every workspace’s audit log',
    )
  })

  test('a failing backup counts in coffer_backup_failures_total{trigger="scheduled"}', async () => {
    const blocked = join(dir, 'not-a-dir')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(blocked, 'x')
    const ctx = { ...h.ctx, config: { ...h.ctx.config, backup: { ...h.ctx.config.backup, dir: join(blocked, 'sub') } } }
    now += 86_400_000
    await assert.rejects(backupJob(ctx, quiet).run())
    assert.equal(h.ctx.metrics.backupFailures.get({ trigger: 'scheduled' }), 1)
  })

  if (engine === 'postgres')
    test('of several nodes on one database, one takes each scheduled backup', async () => {
      const env = readEnv(h.settings)
      const nodes = await Promise.all([1, 2, 3].map(() => createContext(buildConfig(env), buildSecrets(env), { clock })))
      try {
        now += 86_400_000
        const before = listBackups(dir).length
        await Promise.all(nodes.map((n) => backupJob(n, quiet).run()))
        assert.equal(listBackups(dir).length - before, 1)
      } finally {
        for (const n of nodes) await n.close()
      }
    })
})

describe('a backup before a schema migration (SQLite)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-premig-'))
  const dir = join(work, 'backups')
  const env = readEnv({ COFFER_DATA_DIR: join(work, 'data'), COFFER_BACKUP_DIR: dir, COFFER_LOG_LEVEL: 'silent' })
  after(() => rmSync(work, { recursive: true, force: true }))

  test('an empty database migrates without one; a database at an older schema gets one first, and it restores', async () => {
    const config = buildConfig(env)
    const fresh = await createContext(config, buildSecrets(env))
    await fresh.close()
    assert.equal(listBackups(dir).length, 0, 'nothing to back up in an empty database')

    // A vault left at the schema before the newest step.
    const older = join(work, 'older')
    const envOld = readEnv({ COFFER_DATA_DIR: older, COFFER_BACKUP_DIR: dir, COFFER_LOG_LEVEL: 'silent' })
    const cfgOld = buildConfig(envOld)
    const store = openStore(cfgOld.database)
    await migrate(store, MIGRATIONS.slice(0, -1))
    await store.close()
    const ctx = await createContext(cfgOld, buildSecrets(envOld))
    const key = ctx.auditTree.verifierKey
    assert.ok(ctx.metrics.backupLastSuccess.get())
    await ctx.close()
    const [b] = listBackups(dir)
    assert.ok(b?.manifest)
    assert.equal(b.manifest.trigger, 'pre-migration')
    assert.equal(b.manifest.schemaVersion, LATEST_SCHEMA_VERSION - 1)
    await verifyBackup(b.file, { publicKey: key })
    const again = await createContext(cfgOld, buildSecrets(envOld))
    await again.close()
    assert.equal(listBackups(dir).length, 1, 'no migration, no backup')

    // Restoring it gives the older schema's data, migrated again to the newest.
    const { readFileSync } = await import('node:fs')
    const provider = new LocalFileKeyProvider(readFileSync(join(older, 'root.key')))
    await restoreBackup(b.file, { database: cfgOld.database, provider, clock: () => new Date() })
    const reopened = await createContext(cfgOld, buildSecrets(envOld))
    await reopened.close()
  })
})
