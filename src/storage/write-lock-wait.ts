import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import { CompiledQuery, type DatabaseConnection, SqliteDialect, type SqliteDialectConfig, SqliteDriver } from 'kysely'

// SQLite has one writer at a time. A connection that finds the write lock taken (by the audit
// thread, another Coffer process, a host command) waits in SQLite's busy handler: better-sqlite3
// is synchronous, so the thread sleeps there — 1, 2, 5, 10, 15 ms and longer, up to the busy
// timeout — and on the main thread every request, health check and timer of the server waits
// with it. A transaction here asks for the lock without waiting, and waits for it between
// turns of the event loop instead: other requests (reads go through another connection) run
// meanwhile. The deadline is the busy timeout's; past it the error is SQLite's, as before.

/**
 * The text `cachingDatabase` answers with a statement that takes the write lock
 * (`begin immediate`) or fails at once with SQLITE_BUSY (statement-cache.ts).
 *
 * @NOTE immediate, not Kysely's deferred `begin`: a deferred transaction that has read, and
 * then writes after another writer committed, fails at once with SQLITE_BUSY — no wait applies
 * to that upgrade. Taking the write lock first is taking locks in order.
 */
export const BEGIN_WITHOUT_WAITING = '/* coffer: begin immediate without waiting */'
const BEGIN = CompiledQuery.raw(BEGIN_WITHOUT_WAITING)

/** Whether `err` is SQLite's "the database is locked". */
export function isSqliteBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

/**
 * The pause before the next try (`attempt` 1, 2, …): the next turn of the event loop first, then
 * 1 ms more each time up to 8 ms — a commit holds the lock for about a millisecond.
 */
export function lockPauseMs(attempt: number): number {
  return attempt <= 1 ? 0 : Math.min(attempt - 1, 8)
}

/** Kysely's SQLite dialect whose transactions wait for the write lock without blocking the thread. */
export class LockWaitingSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig
  readonly #timeoutMs: number

  /** `timeoutMs`: how long a transaction waits for the write lock (the connection's busy timeout). */
  constructor(config: SqliteDialectConfig, timeoutMs: number) {
    super(config)
    if (!(timeoutMs >= 0)) throw new TypeError('timeoutMs must be ≥ 0')
    this.#config = config
    this.#timeoutMs = timeoutMs
  }

  override createDriver(): SqliteDriver {
    return new LockWaitingDriver(this.#config, this.#timeoutMs)
  }
}

class LockWaitingDriver extends SqliteDriver {
  readonly #timeoutMs: number

  constructor(config: SqliteDialectConfig, timeoutMs: number) {
    super(config)
    this.#timeoutMs = timeoutMs
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const deadline = performance.now() + this.#timeoutMs
    for (let attempt = 1; ; attempt++) {
      try {
        await connection.executeQuery(BEGIN)
        return
      } catch (err) {
        if (!isSqliteBusy(err) || performance.now() >= deadline) throw err
      }
      const pause = lockPauseMs(attempt)
      if (pause === 0) await nextTurn()
      else await sleep(Math.min(pause, Math.max(1, deadline - performance.now())))
    }
  }
}
