import type { Transaction } from 'kysely'
import type { Engine } from './database.js'
import { STEPS } from './migrations/index.js'
import type { Database } from './schema.js'

/** One forward-only schema step. Applied in its own transaction; never edited once released. */
export interface Migration {
  readonly version: number
  readonly name: string
  up(tx: Transaction<Database>, engine: Engine): Promise<void>
}

/**
 * Every migration this version of Coffer knows, in version order: one per file in
 * ./migrations/, listed in ./migrations/index.ts.
 */
export const MIGRATIONS: readonly Migration[] = [...STEPS].sort((a, b) => a.version - b.version)

/** The newest schema version this code knows. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version
