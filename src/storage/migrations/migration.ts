import type { Transaction } from 'kysely'

// What a migration is. Migrations are history: they depend on nothing that changes later —
// not the live schema's types, not live code — only on this file, ./ddl.ts, ./frozen/ and kysely.

/** The database engines a migration runs on. */
export type Engine = 'sqlite' | 'postgres'

/**
 * The transaction a migration runs in, with no live table types: a step that builds queries
 * types the tables as they were when it was written (see frozen/audit-v1.ts).
 */
// biome-ignore lint/suspicious/noExplicitAny: the live schema's types change later; a migration must not depend on them.
export type MigrationTx = Transaction<any>

/** One forward-only schema step. Applied in its own transaction; never edited once released. */
export interface Migration {
  readonly version: number
  readonly name: string
  up(tx: MigrationTx, engine: Engine): Promise<void>
}
