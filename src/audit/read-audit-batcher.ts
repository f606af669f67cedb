import { rowLockedPartition } from '../storage/commit-partition.js'
import { conflictReason } from '../storage/transaction-retry.js'
import { isConnectionError } from '../storage/connection-errors.js'
import type { GroupCommitter } from '../storage/group-commit.js'
import type { AuditActor, AuditEvent, AuditLog } from './audit-log.js'

// The audit entries of reads (a reveal, an environment fetch) must be durable before the
// answer, yet each is one row of the queue. Requests that finish their read in the same turn
// of the event loop hand their entries here, and one unit of the group committer queues them
// all: one statement instead of a savepoint, an INSERT and a release per request (on
// PostgreSQL three round trips each). Nothing about durability changes: a request's promise
// resolves only once the COMMIT that carries its entries has returned.

interface Waiting {
  readonly actor: AuditActor
  readonly requestId: string
  readonly events: readonly AuditEvent[]
  resolve(): void
  reject(err: unknown): void
}

export class ReadAuditBatcher {
  readonly #committer: Pick<GroupCommitter, 'run'>
  readonly #audit: Pick<AuditLog, 'appendMany'>
  readonly #waiting = new Map<string, Waiting[]>()
  #scheduled = false

  constructor(committer: Pick<GroupCommitter, 'run'>, audit: Pick<AuditLog, 'appendMany'>) {
    this.#committer = committer
    this.#audit = audit
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
      void this.#write(workspaceId, list)
    }
  }

  async #write(workspaceId: string, list: Waiting[]): Promise<void> {
    try {
      await this.#unit(workspaceId, list)
      for (const w of list) w.resolve()
    } catch (err) {
      // The database is down or busy: every request of the unit gets that answer. Any other
      // failure may be one request's own (its details, its key): each request then runs alone,
      // so that only it fails.
      if (list.length === 1 || conflictReason(err) || isConnectionError(err)) {
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
    return this.#committer.run((tx) => this.#audit.appendMany(tx, workspaceId, list), rowLockedPartition(workspaceId))
  }
}
