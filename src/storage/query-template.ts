import { CompiledQuery, type QueryResult, SqliteAdapter } from 'kysely'
import type { Executor } from './database.js'
import { onSqliteConnection } from './statement-cache.js'

const MARK = '\u0000coffer-param:'
// Appended to the SQL of `rows` on SQLite: its statement is switched to raw (array) rows, so it
// must not be the cached statement `run` uses for the same query.
const RAW_ROWS = ' /* coffer: raw rows */'

/** Names a placeholder in a query template's builder. */
// biome-ignore lint/suspicious/noExplicitAny: a placeholder stands in for a value of whatever type its column has
export type Placeholder<K extends string> = (name: K) => any

/** Builds a query with named placeholders in place of values. */
export type TemplateBuilder<K extends string> = (db: Executor, p: Placeholder<K>) => { compile(): CompiledQuery }

/**
 * A query compiled once and rerun with new values: Kysely builds and compiles the query the
 * first time (in the executor's own dialect), and later runs reuse its SQL text, skipping
 * the builder — on the audit hot path that was a fifth of the CPU per request. The values'
 * order is read off the compiled parameters, so it is right whatever order Kysely emits.
 */
export class QueryTemplate<K extends string> {
  readonly #build: TemplateBuilder<K>
  // Per dialect (SQLite `?`, PostgreSQL `$1`): one process may hold both engines.
  readonly #compiled = new Map<object, { sql: string; order: K[] }>()

  constructor(build: TemplateBuilder<K>) {
    this.#build = build
  }

  #compile(db: Executor): { sql: string; order: K[] } {
    const dialect = db.getExecutor().adapter.constructor
    let compiled = this.#compiled.get(dialect)
    if (!compiled) {
      const q = this.#build(db, (name) => MARK + name).compile()
      const order = q.parameters.map((v) => {
        if (typeof v !== 'string' || !v.startsWith(MARK)) throw new Error('a query template may hold only named parameters')
        return v.slice(MARK.length) as K
      })
      compiled = { sql: q.sql, order }
      this.#compiled.set(dialect, compiled)
    }
    return compiled
  }

  run<R = unknown>(db: Executor, values: Record<K, unknown>): Promise<QueryResult<R>> {
    const { sql, order } = this.#compile(db)
    return db.executeQuery<R>(
      CompiledQuery.raw(
        sql,
        order.map((name) => values[name]),
      ),
    )
  }

  /**
   * Runs the query and answers each row as an array of its columns in select order. On SQLite
   * the prepared statement runs straight on the connection in raw mode (no Kysely result
   * objects, no row object per row: for queries that return many rows, such as a whole
   * environment); elsewhere the rows Kysely returns, as arrays.
   */
  async rows(db: Executor, values: Record<K, unknown>): Promise<unknown[][]> {
    const { sql, order } = this.#compile(db)
    const params = order.map((name) => values[name])
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      return onSqliteConnection(db, (c) =>
        c
          .prepare(sql + RAW_ROWS)
          .raw(true)
          .all(params),
      ) as Promise<unknown[][]>
    }
    const r = await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(sql, params))
    return r.rows.map((row) => Object.values(row))
  }
}
