import { CompiledQuery, type Kysely, type Transaction } from 'kysely'
import type { Database } from './schema.js'

// The same text on SQLite and PostgreSQL; compiled once, not per unit.
const SAVEPOINT = CompiledQuery.raw('SAVEPOINT unit')
const RELEASE = CompiledQuery.raw('RELEASE SAVEPOINT unit')
const ROLLBACK_TO = CompiledQuery.raw('ROLLBACK TO SAVEPOINT unit')

/** A unit of work: runs inside a transaction shared with other units of the same batch. */
export type Work<T> = (tx: Transaction<Database>) => Promise<T>

interface Pending {
  work: Work<unknown>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
}

/**
 * Group commit. Units submitted while a commit is in flight are gathered and run, one after
 * the other, inside one transaction; each unit runs in its own savepoint, so a unit that
 * throws undoes only its own writes and rejects only its own promise. A unit's promise
 * resolves only after the shared COMMIT has returned, i.e. once its writes are durable; if
 * the commit fails, every unit of the batch rejects.
 *
 * A unit must not submit another unit (it would wait for a batch that waits for it).
 */
export class GroupCommitter {
  readonly #db: Kysely<Database>
  readonly #maxBatch: number
  readonly #partitions = new Map<string, { queue: Pending[]; running: boolean }>()
  #closed = false
  readonly #onRollback: Array<(tx: Transaction<Database>) => void> = []
  #onBegin: ((tx: Transaction<Database>, partition: string) => Promise<void>) | undefined
  /** Batches committed and units carried, for metrics and benchmarks. */
  readonly stats = { batches: 0, units: 0 }

  constructor(db: Kysely<Database>, options: { maxBatch?: number } = {}) {
    this.#db = db
    this.#maxBatch = options.maxBatch ?? 256
  }

  /**
   * Runs `work` in the next batch of its partition and resolves with its result once the
   * batch is durable. A batch holds units of one partition only (the pipeline uses the
   * workspace): on PostgreSQL a batch then locks one workspace's audit chain, so batches of
   * several nodes cannot wait on each other's chains in opposite orders.
   */
  run<T>(work: Work<T>, partition = ''): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the committer is closed'))
    let p = this.#partitions.get(partition)
    if (!p) {
      p = { queue: [], running: false }
      this.#partitions.set(partition, p)
    }
    const part = p
    return new Promise<T>((resolve, reject) => {
      part.queue.push({ work, resolve: resolve as (v: unknown) => void, reject })
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
        await this.#commit(batch, partition)
      }
    } finally {
      part.running = false
      if (part.queue.length === 0) this.#partitions.delete(partition)
    }
  }

  async #commit(batch: Pending[], partition: string): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = []
    try {
      await this.#db.transaction().execute(async (tx) => {
        if (this.#onBegin) await this.#onBegin(tx, partition)
        for (const p of batch) {
          if (batch.length === 1) {
            // A lone unit needs no savepoint: its failure aborts the transaction it owns.
            outcomes.push({ ok: true, value: await p.work(tx) })
            continue
          }
          await tx.executeQuery(SAVEPOINT)
          try {
            const value = await p.work(tx)
            await tx.executeQuery(RELEASE)
            outcomes.push({ ok: true, value })
          } catch (err) {
            await tx.executeQuery(ROLLBACK_TO)
            await tx.executeQuery(RELEASE)
            for (const listener of this.#onRollback) listener(tx)
            outcomes.push({ ok: false, err })
          }
        }
      })
    } catch (err) {
      // A lone unit's own failure arrives here; otherwise the commit itself failed.
      for (let i = 0; i < batch.length; i++) {
        const o = outcomes[i]
        batch[i]!.reject(o && !o.ok ? o.err : err)
      }
      return
    }
    this.stats.batches++
    this.stats.units += batch.length
    batch.forEach((p, i) => {
      const o = outcomes[i]!
      if (o.ok) p.resolve(o.value)
      else p.reject(o.err)
    })
  }
}
