import type BetterSqlite3 from 'better-sqlite3'
import { CompiledQuery, type SqliteDatabase, type SqliteStatement } from 'kysely'
import type { Executor } from './schema.js'
import { BEGIN_WITHOUT_WAITING } from './write-lock-wait.js'

/** The connection `onSqliteConnection` hands out: prepared statements from the cache. */
export interface SqliteConnection {
  prepare(sql: string): BetterSqlite3.Statement
}

// Not SQL: `prepare` answers this text with a statement that runs the function it is given.
const ON_CONNECTION = '/* coffer: run on this connection */'

/**
 * A better-sqlite3 database whose `prepare` reuses statements by SQL text, so each distinct
 * query is compiled by SQLite once instead of on every call. Bounded (LRU). A writer's
 * transactions begin with `BEGIN_WITHOUT_WAITING` (write-lock-wait.ts), answered below.
 *
 * @NOTE safe because Kysely's SQLite driver runs one query at a time on its single
 * connection; a statement is never iterated by two callers at once.
 */
export function cachingDatabase(db: BetterSqlite3.Database, options: { maxStatements?: number } = {}): SqliteDatabase {
  const maxStatements = options.maxStatements ?? 500
  const cache = new Map<string, SqliteStatement>()
  const connection: SqliteConnection = { prepare: (sql) => self.prepare(sql) as unknown as BetterSqlite3.Statement }
  const onConnection = {
    reader: true,
    all: (parameters: ReadonlyArray<unknown>) => [{ result: (parameters[0] as (c: SqliteConnection) => unknown)(connection) }],
    run: () => {
      throw new Error('not a statement')
    },
    iterate: () => {
      throw new Error('not a statement')
    },
  } as unknown as SqliteStatement
  let beginNow: SqliteStatement | undefined
  const self = {
    prepare(text: string): SqliteStatement {
      if (text === ON_CONNECTION) return onConnection
      if (text === BEGIN_WITHOUT_WAITING) {
        beginNow ??= beginWithoutWaiting(db)
        return beginNow
      }
      let stmt = cache.get(text)
      if (stmt) {
        cache.delete(text)
      } else {
        stmt = db.prepare(text) as unknown as SqliteStatement
        if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string)
      }
      cache.set(text, stmt)
      return stmt
    },
    close(): void {
      cache.clear()
      db.close()
    },
  }
  return self
}

/**
 * A statement that runs `begin immediate` with the busy timeout off — it takes the write lock
 * or fails at once with SQLITE_BUSY (write-lock-wait.ts waits between turns of the event loop)
 * — and then puts the connection's busy timeout back.
 */
function beginWithoutWaiting(db: BetterSqlite3.Database): SqliteStatement {
  const timeout = Number(db.pragma('busy_timeout', { simple: true }))
  // @NOTE not prepared once: SQLite sets the busy timeout when it compiles the PRAGMA, and a
  // prepared one run again only reports the value.
  const off = () => db.exec('PRAGMA busy_timeout = 0')
  const on = () => db.exec(`PRAGMA busy_timeout = ${timeout}`)
  const begin = db.prepare('begin immediate')
  const notAQuery = () => {
    throw new Error('not a query')
  }
  return {
    reader: false,
    run: () => {
      off()
      try {
        return begin.run()
      } finally {
        on()
      }
    },
    all: notAQuery,
    iterate: notAQuery,
  } as unknown as SqliteStatement
}

/**
 * Runs `fn` synchronously on the SQLite connection behind `db` (a Kysely handle or an open
 * transaction on a `cachingDatabase`), inside that transaction if it is one, and resolves
 * with what `fn` returns. For hot loops that would otherwise pay Kysely's per-query cost
 * (the reseal's row updates). `fn` must not keep the connection, and must not begin or end
 * transactions.
 */
export async function onSqliteConnection<T>(db: Executor, fn: (connection: SqliteConnection) => T): Promise<T> {
  const r = await db.executeQuery<{ result: T }>(CompiledQuery.raw(ON_CONNECTION, [fn]))
  const row = r.rows[0]
  if (!row) throw new Error('not a Coffer SQLite connection')
  return row.result
}
