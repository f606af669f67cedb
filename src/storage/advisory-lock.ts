import { sql } from 'kysely'
import type { Engine } from './database.js'
import type { Executor } from './schema.js'

/** Advisory lock ids of PostgreSQL, one per start-up step that nodes starting together must take in turn. */
export const ADVISORY_LOCKS = {
  /** Creating the first workspace on an empty database. */
  bootstrap: 0x636f6662, // 'cofb'
} as const

/**
 * Takes a transaction-scoped advisory lock on PostgreSQL: another node's transaction taking
 * the same lock waits until this one ends. On SQLite there is one writer at a time anyway.
 */
export async function takeAdvisoryLock(tx: Executor, engine: Engine, id: number): Promise<void> {
  if (engine === 'postgres') await sql`SELECT pg_advisory_xact_lock(${id})`.execute(tx)
}
