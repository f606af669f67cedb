import type { AppContext } from '../context.js'
import type { Logger } from '../ops/logger.js'
import { isConnectionError } from '../storage/connection-errors.js'
import { pingDatabase } from '../storage/database.js'
import type { Job } from './jobs.js'

/** How often a node checks that its database answers. */
export const DATABASE_PROBE_INTERVAL_MS = 5_000

/**
 * Checks every few seconds that the database answers, and keeps `coffer_database_available`
 * true to it. A change is logged once — when the database goes away (with what failed) and
 * when it is back (with how long it was away) — not once per failed request.
 */
export function databaseProbeJob(ctx: AppContext, log: Logger, intervalMs = DATABASE_PROBE_INTERVAL_MS): Job {
  let awaySince: number | undefined
  return {
    name: 'database-probe',
    intervalMs,
    async run() {
      try {
        await pingDatabase(ctx.store)
      } catch (err) {
        if (!isConnectionError(err)) throw err
        ctx.metrics.databaseAvailable.set(0)
        if (awaySince === undefined) {
          awaySince = ctx.clock().getTime()
          log.warn(
            { err: { code: (err as { code?: string }).code } },
            'the database cannot be reached: requests answer 503 ERR_DATABASE_UNAVAILABLE until it is back',
          )
        }
        return
      }
      ctx.metrics.databaseAvailable.set(1)
      if (awaySince !== undefined) {
        log.info({ awayMs: ctx.clock().getTime() - awaySince }, 'the database answers again')
        awaySince = undefined
      }
    },
  }
}
