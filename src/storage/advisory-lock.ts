import { CompiledQuery, sql } from 'kysely'
import type pg from 'pg'
import { isUuid } from '../crypto/encoding.js'
import { type Engine, loadPg } from './database.js'
import type { Executor } from './schema.js'
import { scopeStatement } from './tenant-scope.js'

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
/** The class of the per-environment write locks. */
const ENVIRONMENT_WRITES = 0x636f7765 // 'cowe'

/**
 * The write lock a batch takes first: its workspace's, one environment's (`shared` by batches of
 * one-key secret writes), or none (commit-partition.ts).
 */
export type WriteLock = { workspace: string } | { environment: string; shared?: true } | null

function writeLockStatement(lock: { workspace: string } | { environment: string; shared?: true }): string {
  const [cls, id] = 'workspace' in lock ? [WORKSPACE_WRITES, lock.workspace] : [ENVIRONMENT_WRITES, lock.environment]
  if (!isUuid(id)) throw new Error('a write lock is named by a workspace or environment id')
  const fn = 'shared' in lock && lock.shared ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock'
  return `SELECT ${fn}(${cls}, hashtext('${id}'))`
}

/**
 * Takes one environment's write lock exclusively in `tx` (PostgreSQL): a key rotation does,
 * before it changes the primary key, so that no batch of one-key writes — which holds the lock
 * shared and counts its encryptions only at its end — is between choosing the old key and its
 * COMMIT. New shared requests queue behind it, so a rotation is not starved by steady writes.
 */
export async function takeEnvironmentWriteLock(tx: Executor, engine: Engine, environmentId: string): Promise<void> {
  if (engine !== 'postgres') return
  await tx.executeQuery(CompiledQuery.raw(writeLockStatement({ environment: environmentId })))
}

/**
 * Starts a write batch's transaction on PostgreSQL: sets its tenant scope and takes its write
 * lock, in one message (with the transaction's BEGIN, see pg-client.ts). The write locks are
 * transaction-scoped advisory locks on the id's hash (two ids that share a hash only wait for
 * each other):
 * - the workspace's serialises the write transactions of one workspace across nodes; every
 *   write batch of a workspace takes it first, except the ones that lock their own rows;
 * - an environment's serialises the secret writes of one environment across nodes; batches of
 *   one-key writes hold it shared (they run beside each other, see commit-partition.ts).
 * SQLite has no scope and one writer anyway: there it does nothing.
 */
export async function startWriteBatch(tx: Executor, engine: Engine, scope: string, lock: WriteLock): Promise<void> {
  if (engine !== 'postgres') return
  const statements = lock ? `${scopeStatement(scope)}; ${writeLockStatement(lock)}` : scopeStatement(scope)
  await tx.executeQuery(CompiledQuery.raw(statements))
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
