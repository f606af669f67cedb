import type PgModule from 'pg'

// The class of the PostgreSQL pool's clients: Kysely's queries with fewer round trips and
// less work for the server, without changing what any of them does.
//
// 1. Named statements. Kysely hands pg a text and its parameters; pg sends them as an
//    unnamed statement, so the server parses, analyses and plans the same text again on
//    every call — for an indexed point read, about as much work as running it. This client
//    sends each distinct text with parameters as a named statement: parsed and planned once
//    per connection, then only bound and executed (as pgx and asyncpg do by default).
//    Never named:
//    - a text without parameters (pg sends it with the simple protocol: it may hold several
//      statements, as `SELECT set_config(…); SELECT pg_advisory_xact_lock(…)` does);
//    - a text that selects or returns `*`: a statement prepared before a migration added a
//      column would fail with "cached plan must not change result type" on that connection
//      until it closes, while a statement naming its columns is simply planned again;
//    - any text once MAX_NAMED distinct ones have been named in the process (a bound on
//      memory on both sides; texts are built from code, not from input, so the set is small).
//    Prepared statements belong to the session, not to a transaction: a rollback keeps them,
//    and a connection that is closed or replaced takes its own with it (pg tracks them per
//    connection).
//
// 2. BEGIN travels with the transaction's first statement. Kysely begins a transaction with
//    a `begin` of its own round trip. This client holds it back and sends it in front of the
//    next statement when that one has no parameters (one simple-protocol message: the tenant
//    scope and the write lock every batch starts with, see tenant-scope.ts); before a
//    statement with parameters it sends it alone, as before. A transaction that ran nothing
//    sends nothing at all. A BEGIN that fails (a dead connection) fails that next statement,
//    which is where the transaction would have failed anyway.

const MAX_NAMED = 1000
const STAR = /(?:^|[\s,.])\*/

/** Statement names by text, shared by every connection of the process: the same text has the same name everywhere. */
const names = new Map<string, string>()

function nameOf(text: string): string | undefined {
  let name = names.get(text)
  if (name !== undefined) return name
  if (names.size >= MAX_NAMED || STAR.test(text)) return undefined
  name = `coffer_${names.size.toString(36)}`
  names.set(text, name)
  return name
}

// The texts Kysely's PostgreSQL driver ends and begins transactions with.
const BEGIN = 'begin'
const ENDS = new Set(['commit', 'rollback'])

/** What `query` answers for a statement it did not need to send. */
const NOTHING_SENT = { command: null, rowCount: null, rows: [], fields: [] }

/** The pg Client class of Coffer's pool (see above). */
export function pgClientClass(pg: typeof PgModule): typeof PgModule.Client {
  class CofferPgClient extends pg.Client {
    #beginHeld = false

    // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; this one only redirects Kysely's (text, values).
    override query(config: any, values?: any, callback?: any): any {
      if (typeof config !== 'string' || typeof callback === 'function') {
        // Anything else (a query object, a cursor, a callback) goes as given, after a held
        // BEGIN: pg sends a client's queries in the order they were made, and a BEGIN that
        // fails fails this query too.
        if (this.#beginHeld) {
          this.#beginHeld = false
          super.query(BEGIN).catch(() => {})
        }
        return super.query(config, values, callback)
      }
      const params = Array.isArray(values) && values.length > 0
      if (!params && config === BEGIN && !this.#beginHeld) {
        this.#beginHeld = true
        return Promise.resolve(NOTHING_SENT)
      }
      if (this.#beginHeld) {
        this.#beginHeld = false
        if (!params && ENDS.has(config)) return Promise.resolve(NOTHING_SENT)
        if (!params) return super.query(`${BEGIN}; ${config}`).then(withoutBegin)
        return super.query(BEGIN).then(() => this.#send(config, values))
      }
      return this.#send(config, values)
    }

    #send(text: string, values: unknown): Promise<unknown> {
      if (Array.isArray(values) && values.length > 0) {
        const name = nameOf(text)
        if (name !== undefined) return super.query({ name, text, values })
      }
      return super.query(text, values as unknown[])
    }
  }
  return CofferPgClient as typeof PgModule.Client
}

/** The results of `begin; …` without BEGIN's own: one result as itself, several as a list. */
function withoutBegin(result: unknown): unknown {
  if (!Array.isArray(result)) return result
  const rest = result.slice(1)
  return rest.length === 1 ? rest[0] : rest
}
