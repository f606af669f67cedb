import type { Logger } from '../ops/logger.js'
import { issueCheckedCheckpoint } from '../audit/issue-checkpoint.js'
import { AuditTamperedError } from '../errors.js'
import { scrub } from '../scrub.js'
import type { AppContext } from '../context.js'
import type { AuditActor } from '../audit/audit-log.js'
import { readInScope, SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import { keysDueForRotation, rotateDataKey } from '../vault/key-rotation.js'
import type { Metrics } from '../ops/metrics.js'
import { queueEvent } from '../webhooks/dispatch.js'

/** A periodic job: runs every `intervalMs` (never two runs at once), first after one interval. */
export interface Job {
  readonly name: string
  readonly intervalMs: number
  run(): Promise<void>
}

/**
 * Starts jobs on timers that do not keep the process alive; returns a stop function. A failed
 * run is logged and passed to `report` (error reports), then tried again next time.
 */
export function startJobs(jobs: Job[], log: Logger, report: (err: unknown, job: string) => void = () => {}): () => Promise<void> {
  const timers: NodeJS.Timeout[] = []
  const running = new Set<Promise<void>>()
  for (const job of jobs) {
    if (job.intervalMs <= 0) continue
    let busy = false
    const t = setInterval(() => {
      if (busy) return
      busy = true
      const p = job
        .run()
        .catch((err: unknown) => {
          log.error({ job: job.name, err: { message: scrub((err as Error).message ?? String(err)) } }, 'job failed')
          report(err, job.name)
        })
        .finally(() => {
          busy = false
          running.delete(p)
        })
      running.add(p)
    }, job.intervalMs)
    t.unref()
    timers.push(t)
  }
  return async () => {
    for (const t of timers) clearInterval(t)
    await Promise.allSettled([...running])
  }
}

async function workspaces(ctx: AppContext): Promise<string[]> {
  // Deleted workspaces are closed (their final tree head is signed in the deletion receipt)
  // and their rows go away in the purge.
  const rows = await readInScope(ctx.store, SYSTEM_SCOPE, (db) =>
    db.selectFrom('workspaces').select('id').where('deleted_at', 'is', null).execute(),
  )
  return rows.map((r) => r.id)
}

/** Signs a checkpoint of every workspace log that grew since its newest one. */
export function checkpointJob(ctx: AppContext, metrics: Metrics, intervalMs: number, log?: Logger): Job {
  return {
    name: 'audit-checkpoint',
    intervalMs,
    async run() {
      for (const ws of await workspaces(ctx)) {
        try {
          const { before, after } = await writeInScope(ctx.store, ctx.store.db, ws, async (tx) => ({
            before: await ctx.auditTree.latest(tx, ws),
            after: await issueCheckedCheckpoint(ctx, tx, ws),
          }))
          if (after.treeSize !== before?.treeSize) metrics.checkpointsIssued.inc()
        } catch (err) {
          // A tampered log gets no checkpoint; the other workspaces still do.
          if (!(err instanceof AuditTamperedError)) throw err
          log?.error({ workspace: ws, err: { code: err.code, message: err.message } }, 'audit log tampered with: no checkpoint signed')
        }
      }
    },
  }
}

/**
 * Recomputes every workspace's chain and the Merkle root of its newest checkpoint. Any break
 * sets coffer_audit_integrity_ok to 0 and logs an error naming the entry.
 */
export function auditVerifyJob(ctx: AppContext, metrics: Metrics, log: Logger, intervalMs: number): Job {
  return {
    name: 'audit-verify',
    intervalMs,
    async run() {
      let allOk = true
      for (const ws of await workspaces(ctx)) {
        const r = await readInScope(ctx.store, ws, async (db) => {
          const cp = await ctx.auditTree.latest(db, ws)
          return ctx.audit.verify(db, ws, cp ? { treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash, 'base64') } : undefined)
        })
        metrics.auditIntegrityWorkspaceOk.set(r.ok ? 1 : 0, { workspace: ws })
        if (!r.ok) {
          allOk = false
          // Subscribed endpoints hear of it once per break (the message id comes from the first bad entry).
          const bad = { seq: r.firstBad?.seq ?? null, entry: r.firstBad?.id ?? null, reason: r.firstBad?.reason ?? null }
          await writeInScope(ctx.store, ctx.store.db, ws, (tx) =>
            queueEvent(tx, ws, 'audit.integrity_broken', bad, ctx.clock(), { dedupe: `integrity/${bad.seq}/${bad.entry}/${bad.reason}` }),
          )
          ctx.webhooks.kick()
          log.error(
            { workspace: ws, seq: r.firstBad?.seq, entry: r.firstBad?.id, reason: r.firstBad?.reason, problem: r.firstBad?.problem },
            'AUDIT LOG INTEGRITY BROKEN',
          )
        }
      }
      metrics.auditIntegrityOk.set(allOk ? 1 : 0)
      metrics.auditLastVerify.set(Math.floor(ctx.clock().getTime() / 1000))
    },
  }
}

const KEY_SCHEDULER: AuditActor = { type: 'system', id: 'key-rotation', ip: '', userAgent: '' }

/**
 * Rotates every data key due by age (COFFER_DEK_ROTATION_DAYS) or usage
 * (COFFER_DEK_MAX_ENCRYPTIONS), each in its own audited transaction, then lets the resealer
 * work. Several nodes may run it at once: a rotation applies only if the version it saw is
 * still the primary.
 */
export function keyRotationJob(ctx: AppContext, metrics: Metrics, log: Logger): Job {
  return {
    name: 'key-rotation',
    intervalMs: ctx.config.keys.checkIntervalMs,
    async run() {
      const due = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => keysDueForRotation(db, ctx.config.keys, ctx.clock()))
      for (const d of due) {
        const rotated = await ctx.committer.run(async (tx) => {
          const r = await rotateDataKey(tx, ctx.dataKeys, d, d.reason, ctx.clock(), d.version)
          if (r) await ctx.audit.append(tx, d.workspaceId, KEY_SCHEDULER, `rotate-${r.job.id}`, r.audit)
          return r
        }, d.workspaceId)
        if (rotated) {
          metrics.keysRotated.inc(1, { reason: d.reason })
          log.info(
            { workspace: d.workspaceId, environment: d.environmentId, version: rotated.key.version, reason: d.reason },
            'data key rotated',
          )
        }
      }
      ctx.resealer.kick()
    },
  }
}
