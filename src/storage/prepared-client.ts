import type PgModule from 'pg'

// PostgreSQL's counterpart of the SQLite statement cache (statement-cache.ts). Kysely hands
// the pg driver a query text and its parameters; pg sends them as an unnamed statement, so
// the server parses, analyses and plans the same text again on every call — for an indexed
// point read, about as much work as running it. A client of this class sends each distinct
// text with parameters as a named statement instead: parsed and planned once per connection,
// then only bound and executed (as pgx and asyncpg do by default).
//
// @NOTE what is never named:
// - a text without parameters (pg sends it with the simple protocol: it may hold several
//   statements, as a read's `BEGIN READ ONLY; SELECT set_config(…)` does);
// - a text that selects or returns `*`: a statement prepared before a migration added a
//   column would fail with "cached plan must not change result type" on that connection
//   until it closes, while a statement naming its columns is simply planned again;
// - any text once MAX_NAMED distinct ones have been named in the process (a bound on memory
//   on both sides; texts are built from code, not user input, so the set is small).
// Prepared statements belong to the session, not to a transaction: a rollback keeps them, and
// a connection that is closed or replaced takes its own with it (pg tracks them per connection).

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

/** A pg Client class whose parameterised queries given as (text, values) run as named, prepared statements. */
export function preparingClient(pg: typeof PgModule): typeof PgModule.Client {
  class PreparingClient extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; this one only redirects (text, values).
    override query(config: any, values?: any, callback?: any): any {
      if (typeof config === 'string' && Array.isArray(values) && values.length > 0 && typeof callback !== 'function') {
        const name = nameOf(config)
        if (name !== undefined) return super.query({ name, text: config, values })
      }
      return super.query(config, values, callback)
    }
  }
  return PreparingClient as typeof PgModule.Client
}
