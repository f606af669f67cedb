import { sql } from 'kysely'
import type pg from 'pg'
import { type Engine, loadPg } from './database.js'
import type { Executor } from './schema.js'

/** Advisory lock ids of PostgreSQL, one per start-up step that nodes starting together must take in turn. */
export const ADVISORY_LOCKS = {
  /** Creating the first workspace on an empty database. */
  bootstrap: 0x636f6662, // 'cofb'
  /** Held shared by every running server (session-level); `coffer backup restore` takes it exclusively. */
  serving: 0x636f6673, // 'cofs'
  /** Claiming a scheduled backup, so that one node takes it. */
  backupSchedule: 0x636f6b62, // 'cokb'
} as const

/**
 * Takes a transaction-scoped advisory lock on PostgreSQL: another node's transaction taking
 * the same lock waits until this one ends. On SQLite there is one writer at a time anyway.
 */
export async function takeAdvisoryLock(tx: Executor, engine: Engine, id: number): Promise<void> {
  if (engine === 'postgres') await sql`SELECT pg_advisory_xact_lock(${id})`.execute(tx)
}

/** The class of the per-workspace write locks (the first key of the two-key advisory lock). */
const WORKSPACE_WRITES = 0x636f7777 // 'coww'

/**
 * PostgreSQL: serialises the write transactions of one workspace across nodes (a
 * transaction-scoped advisory lock on the workspace id's hash; two workspaces that share a
 * hash only wait for each other). Taken first by every write batch of a workspace except the
 * ones that lock their own rows (see the committer's partitions in createContext). SQLite has
 * one writer anyway.
 */
export async function takeWorkspaceWriteLock(tx: Executor, engine: Engine, workspaceId: string): Promise<void> {
  if (engine === 'postgres') await sql`SELECT pg_advisory_xact_lock(${WORKSPACE_WRITES}, hashtext(${workspaceId}))`.execute(tx)
}

/** The class of the per-environment write locks. */
const ENVIRONMENT_WRITES = 0x636f7765 // 'cowe'

/** PostgreSQL: serialises the secret writes of one environment across nodes, like takeWorkspaceWriteLock for a workspace. */
export async function takeEnvironmentWriteLock(tx: Executor, engine: Engine, environmentId: string): Promise<void> {
  if (engine === 'postgres') await sql`SELECT pg_advisory_xact_lock(${ENVIRONMENT_WRITES}, hashtext(${environmentId}))`.execute(tx)
}

/** A session-level lock held on its own connection until released. */
export interface HeldLock {
  release(): Promise<void>
}

function lockClient(url: string): pg.Client {
  const c = new (loadPg().Client)({ connectionString: url })
  // A dropped connection is handled by its owner (see holdServingLock); unheard, it would crash the process.
  c.on('error', () => {})
  return c
}

/**
 * PostgreSQL: marks this process as a server using the database for as long as it runs, by
 * holding the serving lock shared on a connection of its own (every node holds it at once).
 * Waits while a restore holds it exclusively. A dropped connection is re-opened and the lock
 * taken again.
 */
export async function holdServingLock(url: string): Promise<HeldLock> {
  let client: pg.Client | undefined
  let released = false
  const take = async (): Promise<void> => {
    const c = lockClient(url)
    await c.connect()
    await c.query('SELECT pg_advisory_lock_shared($1)', [ADVISORY_LOCKS.serving])
    c.once('end', () => {
      if (!released) retry()
    })
    client = c
  }
  const retry = () => {
    setTimeout(() => {
      if (!released) take().catch(retry)
    }, 2000).unref()
  }
  await take()
  return {
    async release() {
      released = true
      await client?.end().catch(() => {})
    },
  }
}

/**
 * PostgreSQL: takes the serving lock exclusively (for a restore) if no server holds it; null
 * when one does. Servers that start meanwhile wait until it is released.
 */
export async function takeServingLockExclusively(url: string): Promise<HeldLock | null> {
  const c = lockClient(url)
  await c.connect()
  const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [ADVISORY_LOCKS.serving])
  if (!rows[0]?.ok) {
    await c.end().catch(() => {})
    return null
  }
  return { release: () => c.end().catch(() => {}) }
}
