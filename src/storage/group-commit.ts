import { CompiledQuery, type Kysely, type Transaction } from 'kysely'
import type { Engine } from './database.js'
import type { Database } from './schema.js'
import { conflictReason, type RetryCounts, retryDelayMs, type RetryObserver, retryReason, takeRetry } from './transaction-retry.js'

// The same text on SQLite and PostgreSQL; compiled once, not per unit.
const SAVEPOINT = CompiledQuery.raw('SAVEPOINT unit')
const RELEASE = CompiledQuery.raw('RELEASE SAVEPOINT unit')
const ROLLBACK_TO = CompiledQuery.raw('ROLLBACK TO SAVEPOINT unit')
// PostgreSQL only: one message may hold several statements (SQLite's driver prepares one).
const RELEASE_AND_NEXT = CompiledQuery.raw('RELEASE SAVEPOINT unit; SAVEPOINT unit')

/** A unit of work: runs inside a transaction shared with other units of the same batch. */
export type Work<T> = (tx: Transaction<Database>) => Promise<T>

interface Pending {
  work: Work<unknown>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  /** The retries this unit has had (a unit runs again after a lost deadlock, say). */
  retries: RetryCounts
  /** Where the unit runs in its batch: units with an order run in its order (see `run`). */
  order: string | undefined
}

const byOrder = (a: Pending, b: Pending): number =>
  a.order === b.order ? 0 : a.order === undefined ? 1 : b.order === undefined ? -1 : a.order < b.order ? -1 : 1

/**
 * Group commit. Units submitted while a commit is in flight are gathered and run, one after
 * the other, inside one transaction; each unit runs in its own savepoint, so a unit that
 * throws undoes only its own writes and rejects only its own promise. A unit's promise
 * resolves only after the shared COMMIT has returned, i.e. once its writes are durable; if
 * the commit fails, every unit of the batch rejects.
 *
 * A unit must not submit another unit (it would wait for a batch that waits for it).
 *
 * A unit may run more than once: when its transaction loses a deadlock or a serialization
 * race, or its connection dies before COMMIT, it is rolled back and runs again in a later
 * batch (within the limits of transaction-retry.ts) before its promise settles. A unit must
 * therefore have no effect outside the transaction; the pipeline's after-commit work runs
 * once the unit's promise has resolved.
 */
export class GroupCommitter {
  readonly #db: Kysely<Database>
  readonly #maxBatch: number
  readonly #partitions = new Map<string, { queue: Pending[]; running: boolean }>()
  #closed = false
  readonly #onRollback: Array<(tx: Transaction<Database>) => void> = []
  #onBegin: ((tx: Transaction<Database>, partition: string) => Promise<void>) | undefined
  #onEnd: ((tx: Transaction<Database>, partition: string) => Promise<void>) | undefined
  /** Batches committed and units carried, for metrics and benchmarks. */
  readonly stats = { batches: 0, units: 0 }
  readonly #onRetry: RetryObserver | undefined
  readonly #multiStatement: boolean

  /** `engine` 'postgres' lets a unit's savepoint be released and the next one's set in one round trip. */
  constructor(db: Kysely<Database>, options: { maxBatch?: number; onRetry?: RetryObserver; engine?: Engine } = {}) {
    this.#db = db
    this.#maxBatch = options.maxBatch ?? 256
    this.#onRetry = options.onRetry
    this.#multiStatement = options.engine === 'postgres'
  }

  /**
   * Runs `work` in the next batch of its partition and resolves with its result once the
   * batch is durable. A batch holds units of one partition only (the pipeline uses the
   * workspace): on PostgreSQL a batch then locks one workspace's audit chain, so batches of
   * several nodes cannot wait on each other's chains in opposite orders.
   *
   * `order`: a batch runs its units sorted by it (those without one last, as they came), so
   * that batches whose units each lock one row (one secret, named by its key) lock their rows
   * in one order, and two of them running at once cannot deadlock.
   */
  run<T>(work: Work<T>, partition = '', order?: string): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the committer is closed'))
    let p = this.#partitions.get(partition)
    if (!p) {
      p = { queue: [], running: false }
      this.#partitions.set(partition, p)
    }
    const part = p
    return new Promise<T>((resolve, reject) => {
      part.queue.push({ work, resolve: resolve as (v: unknown) => void, reject, retries: {}, order })
      if (!part.running) void this.#drain(partition, part)
    })
  }

  /**
   * Calls `listener` whenever a unit is rolled back to its savepoint inside a batch, so that
   * whatever a service remembered of that transaction's writes can be forgotten.
   */
  onUnitRollback(listener: (tx: Transaction<Database>) => void): void {
    this.#onRollback.push(listener)
  }

  /**
   * Calls `hook` first in every batch transaction with the batch's partition ('' for units
   * submitted without one): the context sets the transaction's tenant scope here.
   */
  onBatchStart(hook: (tx: Transaction<Database>, partition: string) => Promise<void>): void {
    this.#onBegin = hook
  }

  /**
   * Calls `hook` last in every batch transaction, after its units and before COMMIT (a batch
   * of one-key secret writes counts its encryptions there).
   */
  onBatchEnd(hook: (tx: Transaction<Database>, partition: string) => Promise<void>): void {
    this.#onEnd = hook
  }

  /** Waits for queued work to finish and refuses new work. */
  async close(): Promise<void> {
    this.#closed = true
    while ([...this.#partitions.values()].some((p) => p.running || p.queue.length)) await new Promise((r) => setTimeout(r, 5))
  }

  async #drain(partition: string, part: { queue: Pending[]; running: boolean }): Promise<void> {
    part.running = true
    try {
      while (part.queue.length) {
        // @NOTE yield once before taking a batch: requests whose reads were in flight get to
        // enqueue their units, so one durable COMMIT carries many of them (better-sqlite3
        // blocks the event loop during COMMIT, so without this every batch holds one unit).
        await new Promise((resolve) => setImmediate(resolve))
        const batch = part.queue.splice(0, this.#maxBatch)
        if (batch.some((p) => p.order !== undefined)) batch.sort(byOrder)
        const again = await this.#commit(batch, partition)
        if (again.length) {
          // Ahead of newer work, after a random pause, so that the transactions that
          // collided do not collide again in lock step.
          const attempt = Math.max(...again.map((p) => Object.values(p.retries).reduce((a, b) => a + (b ?? 0), 0)))
          await new Promise((r) => setTimeout(r, retryDelayMs(attempt)))
          part.queue.unshift(...again)
        }
      }
    } finally {
      part.running = false
      if (part.queue.length === 0) this.#partitions.delete(partition)
    }
  }

  /** Runs one batch; returns the units that must run again (their promises are still pending). */
  async #commit(batch: Pending[], partition: string): Promise<Pending[]> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = []
    let committing = false
    try {
      await this.#db.transaction().execute(async (tx) => {
        if (this.#onBegin) await this.#onBegin(tx, partition)
        // Whether the savepoint of the next unit is already set.
        let set = false
        for (const [i, p] of batch.entries()) {
          if (batch.length === 1) {
            // A lone unit needs no savepoint: its failure aborts the transaction it owns.
            outcomes.push({ ok: true, value: await p.work(tx) })
            continue
          }
          if (!set) await tx.executeQuery(SAVEPOINT)
          set = false
          try {
            const value = await p.work(tx)
            // The last unit's savepoint is released by COMMIT; on PostgreSQL the others' in
            // the message that sets the next one.
            if (i < batch.length - 1) {
              await tx.executeQuery(this.#multiStatement ? RELEASE_AND_NEXT : RELEASE)
              set = this.#multiStatement
            }
            outcomes.push({ ok: true, value })
          } catch (err) {
            await tx.executeQuery(ROLLBACK_TO)
            await tx.executeQuery(RELEASE)
            for (const listener of this.#onRollback) listener(tx)
            outcomes.push({ ok: false, err })
          }
        }
        if (this.#onEnd) await this.#onEnd(tx, partition)
        committing = true
      })
    } catch (err) {
      // A lone unit's own failure arrives here; otherwise the transaction failed as a whole
      // (a lost conflict, a dead connection, a failed COMMIT) and none of it happened.
      const reason = retryReason(err, committing)
      const again: Pending[] = []
      for (let i = 0; i < batch.length; i++) {
        const o = outcomes[i]
        const p = batch[i]!
        // A unit that failed on its own, for a reason of its own, keeps its answer.
        if (o && !o.ok && !conflictReason(o.err)) p.reject(o.err)
        else if (reason && takeRetry(p.retries, reason)) again.push(p)
        else p.reject(err)
      }
      if (again.length && reason) this.#onRetry?.(reason)
      return again
    }
    this.stats.batches++
    this.stats.units += batch.length
    const again: Pending[] = []
    batch.forEach((p, i) => {
      const o = outcomes[i]!
      if (o.ok) {
        p.resolve(o.value)
        return
      }
      // Rolled back to its savepoint after losing a conflict: the locks that beat it may be
      // this batch's own, so it runs again in a transaction of its own.
      const reason = conflictReason(o.err)
      if (reason && takeRetry(p.retries, reason)) {
        this.#onRetry?.(reason)
        again.push(p)
      } else p.reject(o.err)
    })
    return again
  }
}
