import type { FastifyBaseLogger } from 'fastify'
import type { AppContext } from '../context.js'
import type { Metrics } from './metrics.js'

/** A periodic job: runs every `intervalMs` (never two runs at once), first after one interval. */
export interface Job {
  readonly name: string
  readonly intervalMs: number
  run(): Promise<void>
}

/** Starts jobs on timers that do not keep the process alive; returns a stop function. */
export function startJobs(jobs: Job[], log: FastifyBaseLogger): () => Promise<void> {
  const timers: NodeJS.Timeout[] = []
  const running = new Set<Promise<void>>()
  for (const job of jobs) {
    if (job.intervalMs <= 0) continue
    let busy = false
    const t = setInterval(() => {
      if (busy) return
      busy = true
      const p = job.run().catch((err: unknown) => log.error({ job: job.name, err: { message: (err as Error).message } }, 'job failed')).finally(() => {
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
  return (await ctx.store.readDb.selectFrom('workspaces').select('id').execute()).map((r) => r.id)
}

/** Signs a checkpoint of every workspace log that grew since its newest one. */
export function checkpointJob(ctx: AppContext, metrics: Metrics, intervalMs: number): Job {
  return {
    name: 'audit-checkpoint',
    intervalMs,
    async run() {
      for (const ws of await workspaces(ctx)) {
        const before = await ctx.auditTree.latest(ctx.store.db, ws)
        const after = await ctx.auditTree.issue(ctx.store.db, ws)
        if (after.treeSize !== before?.treeSize) metrics.checkpointsIssued.inc()
      }
    },
  }
}

/**
 * Recomputes every workspace's chain and the Merkle root of its newest checkpoint. Any break
 * sets coffer_audit_integrity_ok to 0 and logs an error naming the entry.
 */
export function auditVerifyJob(ctx: AppContext, metrics: Metrics, log: FastifyBaseLogger, intervalMs: number): Job {
  return {
    name: 'audit-verify',
    intervalMs,
    async run() {
      let allOk = true
      for (const ws of await workspaces(ctx)) {
        const cp = await ctx.auditTree.latest(ctx.store.readDb, ws)
        const r = await ctx.audit.verify(ctx.store.readDb, ws, cp ? { treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash, 'base64') } : undefined)
        metrics.auditIntegrityWorkspaceOk.set(r.ok ? 1 : 0, { workspace: ws })
        if (!r.ok) {
          allOk = false
          log.error({ workspace: ws, seq: r.firstBad?.seq, entry: r.firstBad?.id, reason: r.firstBad?.reason }, 'AUDIT LOG INTEGRITY BROKEN')
        }
      }
      metrics.auditIntegrityOk.set(allOk ? 1 : 0)
      metrics.auditLastVerify.set(Math.floor(Date.now() / 1000))
    },
  }
}
