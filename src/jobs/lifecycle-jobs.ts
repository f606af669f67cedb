import type { Logger } from '../ops/logger.js'
import { claimExpiryRecord, unrecordedExpiries } from '../access/break-glass-requests.js'
import { claimChangeExpiry, unrecordedChangeExpiries } from '../access/change-requests.js'
import type { AppContext } from '../context.js'
import { purgeDeletedWorkspaces } from '../vault/workspace-deletion.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import type { Job } from './jobs.js'

/** How often each node looks for expired grants to record, and for workspaces to purge. */
export const BREAK_GLASS_EXPIRY_INTERVAL_MS = 30_000
export const PURGE_INTERVAL_MS = 15 * 60_000

/**
 * Writes one 'breakglass.expired' audit entry per grant that ran out. A grant stops working
 * at its end on every request without this job; the job only records that it ended. Safe on
 * several nodes: the entry is written by the one transaction that flips `expiry_recorded`.
 */
export function breakGlassExpiryJob(ctx: AppContext, intervalMs = BREAK_GLASS_EXPIRY_INTERVAL_MS): Job {
  return {
    name: 'breakglass-expiry',
    intervalMs,
    async run() {
      const due = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => unrecordedExpiries(db, ctx.clock()))
      for (const g of due) {
        await ctx.committer.run(async (tx) => {
          if (!(await claimExpiryRecord(tx, g.id))) return
          await ctx.audit.append(
            tx,
            g.workspaceId,
            { type: 'system', id: 'breakglass-expiry', ip: '', userAgent: 'coffer' },
            `job:${g.id}`,
            {
              action: 'breakglass.expired',
              target: { type: 'breakglass_grant', id: g.id },
              details: { requester: g.requesterId, expiresAt: g.expiresAt },
            },
          )
        }, g.workspaceId)
      }
    },
  }
}

/**
 * Writes one 'change.expired' audit entry per change request that ran out unapproved, and
 * erases its sealed proposal in the same transaction. A request stops being decidable at its
 * end on every request without this job; the job records it and drops the ciphertext. Safe on
 * several nodes: only the transaction that erases the proposal writes the entry.
 */
export function changeRequestExpiryJob(ctx: AppContext, intervalMs = BREAK_GLASS_EXPIRY_INTERVAL_MS): Job {
  return {
    name: 'change-request-expiry',
    intervalMs,
    async run() {
      const now = ctx.clock()
      const due = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => unrecordedChangeExpiries(db, now))
      for (const r of due) {
        await ctx.committer.run(async (tx) => {
          if (!(await claimChangeExpiry(tx, r.id, now))) return
          await ctx.audit.append(
            tx,
            r.workspaceId,
            { type: 'system', id: 'change-request-expiry', ip: '', userAgent: 'coffer' },
            `job:${r.id}`,
            {
              action: 'change.expired',
              target: { type: 'change_request', id: r.id },
              details: { requester: r.requesterId, environment: r.environmentId, expiresAt: r.expiresAt },
            },
          )
        }, r.workspaceId)
      }
    },
  }
}

/**
 * Removes every row of each deleted workspace whose `purge_after` has passed (its data was
 * unreadable since the deletion), in batches; the deletion receipts stay.
 */
export function purgeJob(ctx: AppContext, log: Logger, intervalMs = PURGE_INTERVAL_MS): Job {
  return {
    name: 'workspace-purge',
    intervalMs,
    async run() {
      const done = await purgeDeletedWorkspaces(ctx.store.engine, { now: ctx.clock(), runInTx: (fn) => ctx.committer.run(fn) })
      for (const d of done) log.info({ workspace: d.workspaceId, rows: d.rows }, 'deleted workspace purged')
    },
  }
}
