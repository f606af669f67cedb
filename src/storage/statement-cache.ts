import type BetterSqlite3 from 'better-sqlite3'
import type { SqliteDatabase, SqliteStatement } from 'kysely'

/**
 * A better-sqlite3 database whose `prepare` reuses statements by SQL text, so each distinct
 * query is compiled by SQLite once instead of on every call. Bounded (LRU).
 *
 * @NOTE safe because Kysely's SQLite driver runs one query at a time on its single
 * connection; a statement is never iterated by two callers at once.
 */
export function cachingDatabase(db: BetterSqlite3.Database, maxStatements = 500): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>()
  return {
    prepare(sql: string): SqliteStatement {
      let stmt = cache.get(sql)
      if (stmt) {
        cache.delete(sql)
      } else {
        stmt = db.prepare(sql) as unknown as SqliteStatement
        if (cache.size >= maxStatements) cache.delete(cache.keys().next().value as string)
      }
      cache.set(sql, stmt)
      return stmt
    },
    close(): void {
      cache.clear()
      db.close()
    },
  }
}
