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
//
// 3. A read-only transaction's COMMIT travels with the connection's next statement. A read
//    (tenant-scope.ts readInScope) ends with READ_ONLY_COMMIT: it has read what it needed, and
//    the end of a transaction that wrote nothing changes nothing, so nobody waits for it. The
//    client holds it back and sends it in front of whatever the connection sends next — in
//    the same message when that has no parameters (the next read's `BEGIN READ ONLY; scope`),
//    alone before it otherwise — or alone on the next turn of the event loop when the
//    connection stays idle. Nothing ever runs inside the ended read: its tenant scope is
//    transaction-local and ends with it, before the next statement.

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

/** The end of a read-only transaction, which the client may send later (3. above). */
export const READ_ONLY_COMMIT = 'COMMIT /* coffer: read only */'
const COMMIT = 'COMMIT'

/** What `query` answers for a statement it did not need to send. */
const NOTHING_SENT = { command: null, rowCount: null, rows: [], fields: [] }

/** The pg Client class of Coffer's pool (see above). */
export function pgClientClass(pg: typeof PgModule): typeof PgModule.Client {
  class CofferPgClient extends pg.Client {
    /** Statements held back, sent in front of the next one: a read's COMMIT, then a BEGIN. */
    #held: string[] = []
    #flushing = false

    // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; this one only redirects Kysely's (text, values).
    override query(config: any, values?: any, callback?: any): any {
      if (typeof config !== 'string' || typeof callback === 'function') {
        // Anything else (a query object, a cursor, a callback) goes as given, after what is
        // held: pg sends a client's queries in the order they were made, and a held statement
        // that fails fails this query too.
        this.#sendHeld()
        return super.query(config, values, callback)
      }
      const params = Array.isArray(values) && values.length > 0
      if (!params && config === READ_ONLY_COMMIT && this.#held.length === 0) {
        this.#held.push(COMMIT)
        this.#flushSoon()
        return Promise.resolve(NOTHING_SENT)
      }
      if (!params && config === BEGIN && !this.#held.includes(BEGIN)) {
        this.#held.push(BEGIN)
        return Promise.resolve(NOTHING_SENT)
      }
      if (this.#held.length > 0) {
        // A transaction that ran nothing ends with nothing sent (a held read's COMMIT stays held).
        if (!params && ENDS.has(config) && this.#held.at(-1) === BEGIN) {
          this.#held.pop()
          return Promise.resolve(NOTHING_SENT)
        }
        const held = this.#held
        this.#held = []
        if (!params) return super.query(`${held.join('; ')}; ${config}`).then((r: unknown) => withoutFirst(r, held.length))
        return super.query(held.join('; ')).then(() => this.#send(config, values))
      }
      return this.#send(config, values)
    }

    #sendHeld(): void {
      if (this.#held.length === 0) return
      const held = this.#held
      this.#held = []
      super.query(held.join('; ')).catch(() => {})
    }

    /** A held COMMIT of a connection that nothing used since goes alone on the next turn. */
    #flushSoon(): void {
      if (this.#flushing) return
      this.#flushing = true
      setImmediate(() => {
        this.#flushing = false
        if (this.#held[0] !== COMMIT) return
        this.#held.shift()
        super.query(COMMIT).catch(() => {})
      })
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

/** The results of `held…; text` without the `count` held statements' own: one result as itself, several as a list. */
function withoutFirst(result: unknown, count: number): unknown {
  if (!Array.isArray(result)) return result
  const rest = result.slice(count)
  return rest.length === 1 ? rest[0] : rest
}
