import { AuditUnavailableError } from '../errors.js'
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

/** Queues the entries of `requests`, all of one workspace, durably (resolves after their COMMIT). */
export type ReadAuditWrite = (workspaceId: string, requests: readonly AuditedRequest[]) => Promise<void>

interface Waiting extends AuditedRequest {
  resolve(): void
  reject(err: unknown): void
}

export class ReadAuditBatcher {
  readonly #write: ReadAuditWrite
  readonly #waiting = new Map<string, Waiting[]>()
  #scheduled = false
  /** Writes made and requests they carried (for tests and benchmarks). */
  readonly stats = { writes: 0, requests: 0 }

  constructor(write: ReadAuditWrite) {
    this.#write = write
  }

  /** Queues a read's entries in its workspace's chain; resolves once they are durable, rejects if they could not be written. */
  append(workspaceId: string, actor: AuditActor, requestId: string, events: readonly AuditEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.#waiting.get(workspaceId)
      if (!list) {
        list = []
        this.#waiting.set(workspaceId, list)
      }
      list.push({ actor, requestId, events, resolve, reject })
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

  #unit(workspaceId: string, list: readonly Waiting[]): Promise<void> {
    this.stats.writes++
    this.stats.requests += list.length
    return this.#write(workspaceId, list)
  }
}
