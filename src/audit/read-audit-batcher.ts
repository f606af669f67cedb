import { AuditUnavailableError, InternalError } from '../errors.js'
import { isConnectionError } from '../storage/connection-errors.js'
import { conflictReason } from '../storage/transaction-retry.js'
import type { AuditActor, AuditedRequest, AuditEvent } from './audit-log.js'

// The audit entries of reads (a reveal, an environment fetch) must be durable before the
// answer, yet each is one row of the queue. Requests that finish their read in the same turn
// of the event loop hand their entries here, and one write queues them all: on PostgreSQL one
// unit of the group committer with one multi-row INSERT (instead of a savepoint, an INSERT and
// a release per request: three round trips each); on SQLite one message to the audit thread
// (audit-thread-client.ts). Nothing about durability changes: a request's promise resolves
// only once the COMMIT that carries its entries has returned.
//
// A write takes its requests when it runs, not when it is made: the group committer runs a
// unit once the batch before it has committed, and every read that finished meanwhile joins
// the unit still waiting for its turn instead of making one of its own. On PostgreSQL a batch
// of read entries is then one unit — no savepoints — however many turns of the event loop
// its reads came in.

/**
 * Queues the entries of the requests `take()` returns, all of one workspace, durably
 * (resolves after their COMMIT). `take` is called when the write runs — as late as possible,
 * since requests join until then — and returns the same requests if called again (a retry).
 */
export type ReadAuditWrite = (workspaceId: string, take: () => readonly AuditedRequest[]) => Promise<void>

interface Waiting extends AuditedRequest {
  resolve(): void
  reject(err: unknown): void
}

export class ReadAuditBatcher {
  readonly #write: ReadAuditWrite
  /** Requests waiting for the next turn of the event loop, by workspace. */
  readonly #waiting = new Map<string, Waiting[]>()
  /** Requests of a write made but not yet run, by workspace: new ones join it. */
  readonly #open = new Map<string, Waiting[]>()
  #scheduled = false
  /** Writes made and requests they carried (for tests and benchmarks). */
  readonly stats = { writes: 0, requests: 0 }

  constructor(write: ReadAuditWrite) {
    this.#write = write
  }

  /** Queues a read's entries in its workspace's chain; resolves once they are durable, rejects if they could not be written. */
  append(workspaceId: string, actor: AuditActor, requestId: string, events: readonly AuditEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiting = { actor, requestId, events, resolve, reject }
      const open = this.#open.get(workspaceId)
      if (open) {
        open.push(waiting)
        return
      }
      let list = this.#waiting.get(workspaceId)
      if (!list) {
        list = []
        this.#waiting.set(workspaceId, list)
      }
      list.push(waiting)
      if (!this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    for (const [workspaceId, list] of this.#waiting) {
      this.#waiting.delete(workspaceId)
      // @NOTE no write of this workspace is open here: while one is, append joins it instead
      // of waiting for this turn.
      this.#open.set(workspaceId, list)
      void this.#settle(workspaceId, list)
    }
  }

  async #settle(workspaceId: string, list: Waiting[]): Promise<void> {
    try {
      await this.#unit(workspaceId, list)
      for (const w of list) w.resolve()
    } catch (err) {
      // The database is down or busy, or the audit thread died holding the entries (they may
      // have been committed: written again they would be there twice): every request of the
      // write gets that answer. Any other failure may be one request's own (its details, its
      // key): each request then runs alone, so that only it fails.
      if (list.length === 1 || conflictReason(err) || isConnectionError(err) || err instanceof AuditUnavailableError) {
        for (const w of list) w.reject(err)
        return
      }
      await Promise.all(
        list.map((w) =>
          this.#unit(workspaceId, [w]).then(
            () => w.resolve(),
            (e: unknown) => w.reject(e),
          ),
        ),
      )
    }
  }

  /** Writes `list`, which other requests may join until the write takes it. */
  async #unit(workspaceId: string, list: Waiting[]): Promise<void> {
    this.stats.writes++
    let taken = false
    try {
      await this.#write(workspaceId, () => {
        // The write runs: requests from now on make a write of their own.
        this.#seal(workspaceId, list)
        if (!taken) {
          taken = true
          this.stats.requests += list.length
        }
        return list
      })
    } finally {
      // A write that failed before it ran (the committer closed, the database down) took
      // nothing: no request may join it any more.
      this.#seal(workspaceId, list)
    }
    // Only what was taken was written: requests must not be told entries no write took are durable.
    if (!taken) throw new InternalError('a read audit write finished without taking its requests')
  }

  #seal(workspaceId: string, list: Waiting[]): void {
    if (this.#open.get(workspaceId) === list) this.#open.delete(workspaceId)
  }
}
