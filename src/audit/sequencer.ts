import { randomUUID } from 'node:crypto'
import type { Clock } from '../ops/clock.js'
import type { Metrics } from '../ops/metrics.js'
import type { Executor, Store } from '../storage/database.js'
import { rowLockedPartition } from '../storage/commit-partition.js'
import type { GroupCommitter } from '../storage/group-commit.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import type { AuditLog } from './audit-log.js'
import type { Integrated } from './sequence-batch.js'

// The audit sequencer, after Certificate Transparency logs: requests queue their entries
// durably (audit_queue) without touching the chain head, and the sequencer integrates them
// into each workspace's hash chain and Merkle tree in batches, in queue order, within the
// merge delay. One node at a time sequences a workspace: it holds that workspace's lease
// (audit_heads.sequencer, .sequencer_until), taken or renewed in the very statement that
// locks the head, so a node whose lease ran out cannot integrate. A node that dies holding a
// lease delays its workspace by at most the lease; every node looks for queued entries each
// tick and takes over free leases.

/**
 * What the rest of Coffer uses of a node's sequencer: AuditSequencer in this thread, or the
 * audit thread's (audit-thread-client.ts), which runs one on a connection of its own.
 */
export interface Sequencing {
  /** This node's name in leases. */
  readonly node: string
  start(): void
  stop(): Promise<void>
  pass(): Promise<number>
  catchUp(workspaceId: string, timeoutMs?: number): Promise<boolean>
  onError(listener: (err: unknown, workspaceId: string) => void): void
  onIntegrated(listener: (workspaceId: string) => void): void
}

/** Time between a sequencer's looks at the queue: a quarter of the merge delay, between 10 and 250 ms. */
export function sequencerTickMs(mergeDelayMs: number): number {
  return Math.max(10, Math.min(250, Math.floor(mergeDelayMs / 4)))
}

export interface SequencerDeps {
  store: Pick<Store, 'engine' | 'readDb' | 'onRetry'>
  committer: Pick<GroupCommitter, 'run'>
  audit: Pick<AuditLog, 'integrate' | 'pending'>
  clock: Clock
  /** The longest an entry should wait in the queue (COFFER_AUDIT_MERGE_DELAY). */
  mergeDelayMs: number
  /** How long a hold on a workspace lasts without renewal. */
  leaseMs: number
  /** Entries per transaction (default 2,000: about 80 ms of a SQLite connection while catching up a backlog). */
  batch?: number
  /** This node's name in leases (default: a new UUID). */
  node?: string
  /**
   * Time to the next look after a pass that integrated entries (default: the tick). Shorter
   * under load keeps batches small: on SQLite a batch holds the write lock that every audited
   * request's COMMIT waits for (2,000 entries ≈ 50 ms of waiting; 20 ms of entries ≈ a few).
   */
  busyTickMs?: number
  metrics?: Pick<Metrics, 'auditPendingEntries' | 'auditMergeLag' | 'auditIntegrated' | 'auditSequencerFailures' | 'auditMergeDelay'>
}

interface Queued {
  workspaceId: string
  count: number
  oldest: string
  holder: string | null
  until: number
}

export class AuditSequencer implements Sequencing {
  /** This node's name in leases. */
  readonly node: string
  readonly #d: SequencerDeps
  readonly #batch: number
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = true
  /** Workspaces whose lease this node took, to hand back at stop. */
  readonly #held = new Set<string>()
  #onError: ((err: unknown, workspaceId: string) => void) | undefined
  #onIntegrated: ((workspaceId: string) => void) | undefined

  constructor(deps: SequencerDeps) {
    this.#d = deps
    this.#batch = deps.batch ?? 2000
    this.node = deps.node ?? randomUUID()
  }

  /** Tells `listener` of a pass or batch that failed ('' for a pass); its entries stay queued and are tried again next tick. */
  onError(listener: (err: unknown, workspaceId: string) => void): void {
    this.#onError = listener
  }

  /** Tells `listener` of every batch that integrated entries. */
  onIntegrated(listener: (workspaceId: string) => void): void {
    this.#onIntegrated = listener
  }

  /** Time between looks at the queue (see sequencerTickMs). */
  get tickMs(): number {
    return sequencerTickMs(this.#d.mergeDelayMs)
  }

  /** Starts looking for queued entries every tick. */
  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    const loop = () => {
      if (this.#stopped) return
      let integrated = 0
      this.#running = this.pass()
        .then((n) => {
          integrated = n
        })
        .catch((err: unknown) => this.#onError?.(err, ''))
        .finally(() => {
          this.#running = undefined
          const next = integrated > 0 ? Math.min(this.tickMs, this.#d.busyTickMs ?? this.tickMs) : this.tickMs
          if (!this.#stopped) this.#timer = setTimeout(loop, next)
        })
    }
    this.#timer = setTimeout(loop, this.tickMs)
  }

  /** Stops the loop after its current pass, integrates what is left where it may, and hands its leases back. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
    await this.pass().catch((err: unknown) => this.#onError?.(err, ''))
    for (const ws of this.#held) {
      await this.#d.committer
        .run((tx) => releaseLease(tx, ws, this.node), rowLockedPartition(ws))
        .catch((err: unknown) => this.#onError?.(err, ws))
    }
    this.#held.clear()
  }

  /**
   * One look at the queue: integrates every workspace whose lease is free or this node's.
   * Returns how many entries this node integrated.
   */
  async pass(): Promise<number> {
    const queued = await this.#observe()
    const now = this.#d.clock().getTime()
    let total = 0
    for (const q of queued) {
      if (q.holder && q.holder !== this.node && q.until >= now) continue
      try {
        total += await this.#drain(q.workspaceId)
      } catch (err) {
        this.#d.metrics?.auditSequencerFailures.inc(1, { reason: failureReason(err) })
        this.#onError?.(err, q.workspaceId)
      }
    }
    // What is left once this node has integrated its share.
    if (total > 0) await this.#observe()
    return total
  }

  /** Reads what is queued, per workspace, and sets the pending and lag gauges from it. */
  async #observe(): Promise<Queued[]> {
    const queued = await readInScope(this.#d.store, SYSTEM_SCOPE, (db) => queuedWorkspaces(db))
    const m = this.#d.metrics
    if (m) {
      const now = this.#d.clock().getTime()
      m.auditPendingEntries.set(queued.reduce((a, q) => a + q.count, 0))
      m.auditMergeLag.set(Math.max(0, now - queued.reduce((a, q) => Math.min(a, Date.parse(q.oldest)), now)) / 1000)
    }
    return queued
  }

  /** Integrates the workspace's queue under the lease, batch after batch, until it is empty or another node holds the lease; returns how many. */
  async #drain(workspaceId: string): Promise<number> {
    let total = 0
    for (;;) {
      const r = await this.#batchOf(workspaceId)
      if (!r) return total
      total += r.count
      if (r.count < this.#batch) return total
    }
  }

  /** One batch under the lease; null when another node holds it. */
  async #batchOf(workspaceId: string): Promise<Integrated | null> {
    const r = await this.#d.committer.run(
      (tx) => this.#d.audit.integrate(tx, workspaceId, { limit: this.#batch, lease: { holder: this.node, ms: this.#d.leaseMs } }),
      rowLockedPartition(workspaceId),
    )
    if (!r) {
      this.#held.delete(workspaceId)
      return null
    }
    this.#held.add(workspaceId)
    if (r.count) {
      const now = this.#d.clock().getTime()
      const m = this.#d.metrics
      this.#onIntegrated?.(workspaceId)
      m?.auditIntegrated.inc(r.count)
      if (m) for (const t of r.times) m.auditMergeDelay.observe(Math.max(0, now - Date.parse(t)) / 1000)
    }
    return r
  }

  /**
   * Waits until every entry of the workspace queued before the call is integrated: integrates
   * them here when this node may take the lease, or else waits for the node that holds it —
   * at most `timeoutMs` (default: twice the merge delay). Audit readers call it first, so that
   * what a client just did is in the log it reads. Returns whether the queue was caught up;
   * never throws (a batch that fails — a database outage, a tampered head — leaves its entries
   * queued, is told to the error listener, and the reader sees them listed as pending).
   */
  async catchUp(workspaceId: string, timeoutMs = 2 * this.#d.mergeDelayMs): Promise<boolean> {
    try {
      return await this.#catchUp(workspaceId, timeoutMs)
    } catch (err) {
      this.#d.metrics?.auditSequencerFailures.inc(1, { reason: failureReason(err) })
      this.#onError?.(err, workspaceId)
      return false
    }
  }

  async #catchUp(workspaceId: string, timeoutMs: number): Promise<boolean> {
    const started = this.#d.clock().getTime()
    const deadline = started + timeoutMs
    for (;;) {
      const r = await this.#batchOf(workspaceId)
      if (r && r.count < this.#batch) return true
      if (!r) {
        const p = await readInScope(this.#d.store, workspaceId, (db) => this.#d.audit.pending(db, workspaceId))
        if (p.count === 0 || (p.oldest !== null && Date.parse(p.oldest) > started)) return true
        if (this.#d.clock().getTime() >= deadline) return false
        await new Promise((resolve) => setTimeout(resolve, Math.min(20, this.tickMs)))
      }
    }
  }
}

/** Hands a lease back (a stopping node), so that another node takes the workspace at once. */
async function releaseLease(tx: Executor, workspaceId: string, holder: string): Promise<void> {
  await tx
    .updateTable('audit_heads')
    .set({ sequencer: null, sequencer_until: 0 })
    .where('workspace_id', '=', workspaceId)
    .where('sequencer', '=', holder)
    .execute()
}

/** Every workspace with queued entries: how many, the oldest's time, and who holds its lease. */
async function queuedWorkspaces(db: Executor): Promise<Queued[]> {
  const groups = await db
    .selectFrom('audit_queue')
    .select((eb) => ['workspace_id', eb.fn.countAll<number>().as('n'), eb.fn.min('time').as('oldest')])
    .groupBy('workspace_id')
    .execute()
  if (groups.length === 0) return []
  const heads = await db
    .selectFrom('audit_heads')
    .select(['workspace_id', 'sequencer', 'sequencer_until'])
    .where(
      'workspace_id',
      'in',
      groups.map((g) => g.workspace_id),
    )
    .execute()
  const lease = new Map(heads.map((h) => [h.workspace_id, h]))
  return groups
    .filter((g) => lease.has(g.workspace_id))
    .map((g) => {
      const h = lease.get(g.workspace_id)!
      return {
        workspaceId: g.workspace_id,
        count: Number(g.n),
        oldest: String(g.oldest),
        holder: h.sequencer,
        until: Number(h.sequencer_until),
      }
    })
}

/** A short label for a failed batch, for the failure counter. */
function failureReason(err: unknown): string {
  const name = (err as { code?: unknown })?.code
  return typeof name === 'string' && /^ERR_[A-Z_]+$/.test(name) ? name : 'error'
}
