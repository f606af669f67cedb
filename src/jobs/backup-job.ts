import type { AppContext } from '../context.js'
import { createBackup, pruneBackups } from '../backup/backup-service.js'
import type { Logger } from '../ops/logger.js'
import { ADVISORY_LOCKS, takeAdvisoryLock } from '../storage/advisory-lock.js'
import { SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import type { Job } from './jobs.js'

/** The meta row holding when the last scheduled backup was claimed (epoch ms, as text). */
const SCHEDULE_META = 'backup_schedule'

/**
 * Takes a backup into COFFER_BACKUP_DIR every COFFER_BACKUP_INTERVAL, keeps the newest
 * COFFER_BACKUP_KEEP, and deletes backups older than the purge window (so a deleted
 * workspace's data leaves the backups within it). Every node runs the job; the one whose
 * transaction claims the slot (a meta row, under an advisory lock on PostgreSQL) takes the
 * backup, the others see it claimed. Off without COFFER_BACKUP_DIR.
 */
export function backupJob(ctx: AppContext, log: Logger): Job {
  const { dir, intervalMs, keep } = ctx.config.backup
  return {
    name: 'backup',
    // Looks often, backs up when due: "daily" means a day after the last, whichever node took it.
    intervalMs: dir && intervalMs > 0 ? Math.min(intervalMs, 60_000) : 0,
    async run() {
      if (!dir) return
      const now = ctx.clock()
      const claimed = await writeInScope(ctx.store, ctx.store.db, SYSTEM_SCOPE, async (tx) => {
        await takeAdvisoryLock(tx, ctx.store.engine, ADVISORY_LOCKS.backupSchedule)
        const row = await tx.selectFrom('meta').select('value').where('key', '=', SCHEDULE_META).executeTakeFirst()
        const last = row ? Number(Buffer.from(row.value).toString('utf8')) : Number.NEGATIVE_INFINITY
        if (now.getTime() - last < intervalMs) return false
        const value = Buffer.from(String(now.getTime()), 'utf8')
        await tx
          .insertInto('meta')
          .values({ key: SCHEDULE_META, value })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
          .execute()
        return true
      })
      if (!claimed) return
      try {
        const r = await createBackup(
          { database: ctx.config.database, store: ctx.store, auditTree: ctx.auditTree, clock: ctx.clock, audit: ctx.audit },
          { dir, trigger: 'scheduled' },
        )
        ctx.metrics.backupLastSuccess.set(Math.floor(ctx.clock().getTime() / 1000))
        log.info({ file: r.path, backup: r.manifest.id }, 'scheduled backup written')
      } catch (err) {
        ctx.metrics.backupFailures.inc(1, { trigger: 'scheduled' })
        throw err
      } finally {
        for (const f of pruneBackups(dir, keep, ctx.config.purgeAfterDays, now)) log.info({ file: f }, 'old backup deleted')
      }
    },
  }
}
