import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely'
import type { Engine, Executor, Store } from './database.js'
import type { Database } from './schema.js'
import { READ_ONLY_COMMIT as READ_ONLY_COMMIT_TEXT } from './pg-client.js'
import { withTransactionRetry } from './transaction-retry.js'

// The second wall of tenant isolation. On PostgreSQL every table that holds a workspace_id
// (and `workspaces` itself) has row-level security, FORCEd so that it binds the table owner
// too: a row is visible, and may be written, only when its workspace is the one named by the
// transaction-local setting `coffer.workspace_id`. With no setting, nothing is visible. The
// request pipeline sets the workspace of the request; code that spans workspaces (sign-in
// look-ups, bootstrap, jobs, migrations) asks for SYSTEM_SCOPE by name, so it is explicit
// and greppable. SQLite has no row-level security; there these functions only run `fn`.
//
// @NOTE the wall is against a query that forgot its `workspace_id = ?` (a bug), not against
// SQL injection: a connection can set its own scope. The first wall stays the code's own
// filters, which the tenant tests check route by route.

/** The scope that sees every workspace: sign-in look-ups, bootstrap, jobs, migrations. */
export const SYSTEM_SCOPE = '*'

/** The setting the row-level security policies read. */
export const SCOPE_SETTING = 'coffer.workspace_id'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Refuses anything but a workspace id or SYSTEM_SCOPE, before it reaches SQL. */
function checkScope(scope: string): void {
  if (scope !== SYSTEM_SCOPE && !UUID_RE.test(scope)) throw new Error('a tenant scope is a workspace id or SYSTEM_SCOPE')
}

/**
 * The statement that sets the scope of the open transaction, as text: the scope is a checked
 * UUID or '*', never user text, so it goes without parameters — and with no parameters it
 * travels in one message with BEGIN (pg-client.ts) or with other statements.
 */
export function scopeStatement(scope: string): string {
  checkScope(scope)
  return `SELECT set_config('${SCOPE_SETTING}', '${scope}', true)`
}

/** Sets the row-level security scope (a workspace id, or SYSTEM_SCOPE) of the open PostgreSQL transaction `tx`. */
export async function setScope(tx: Transaction<Database>, engine: Engine, scope: string): Promise<void> {
  if (engine !== 'postgres') return
  await tx.executeQuery(CompiledQuery.raw(scopeStatement(scope)))
}

/**
 * Runs `fn` with reads scoped to `scope`. On PostgreSQL: inside a read-only transaction on
 * `store.readDb` whose scope is set (or inside `within`, an open transaction, whose scope is
 * set for the rest of it). On SQLite: directly on `store.readDb` (or `within`). A read-only
 * transaction of its own that loses its connection or a conflict runs again (a read commits
 * nothing, so that is always safe; see transaction-retry.ts for the limits); `fn` must
 * therefore do nothing but read.
 */
export async function readInScope<T>(
  store: Pick<Store, 'engine' | 'readDb' | 'onRetry'>,
  scope: string,
  fn: (db: Executor) => Promise<T>,
  within?: Transaction<Database>,
): Promise<T> {
  if (within) {
    await setScope(within, store.engine, scope)
    return fn(within)
  }
  if (store.engine !== 'postgres') return fn(store.readDb)
  // @NOTE BEGIN and the scope in one round trip (a simple-protocol query may hold several
  // statements): reads are most of the traffic, and each round trip costs both processes a wake-up.
  const begin = CompiledQuery.raw(`BEGIN READ ONLY; ${scopeStatement(scope)}`)
  return withTransactionRetry(
    () =>
      (store.readDb as Kysely<Database>).connection().execute(async (conn) => {
        await conn.executeQuery(begin)
        let result: T
        try {
          result = await fn(conn)
        } catch (err) {
          await conn.executeQuery(ROLLBACK).catch(() => undefined)
          throw err
        }
        // Held back by the pool's client and sent with the connection's next statement (pg-client.ts).
        await conn.executeQuery(READ_ONLY_COMMIT)
        return result
      }),
    store.onRetry,
  )
}

const READ_ONLY_COMMIT = CompiledQuery.raw(READ_ONLY_COMMIT_TEXT)
const ROLLBACK = CompiledQuery.raw('ROLLBACK')

/**
 * Runs `fn` in a read-write transaction on `db` with its scope set (PostgreSQL) — for jobs and
 * tools outside the committer. Like the committer's, a transaction that lost a conflict, or
 * its connection before COMMIT, runs again: `fn` must have no effect outside the transaction.
 */
export async function writeInScope<T>(
  store: Pick<Store, 'engine' | 'onRetry'>,
  db: Kysely<Database>,
  scope: string,
  fn: (tx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return withTransactionRetry(
    (done) =>
      db.transaction().execute(async (tx) => {
        await setScope(tx, store.engine, scope)
        const r = await fn(tx)
        done()
        return r
      }),
    store.onRetry,
  )
}

/**
 * Whether row-level security binds the application's connection: false on PostgreSQL when
 * DATABASE_URL's role is a superuser or has BYPASSRLS (both skip every policy); true otherwise.
 * Null on SQLite, which has none.
 */
export async function rowSecurityEnforced(store: Pick<Store, 'engine' | 'db'>): Promise<boolean | null> {
  if (store.engine !== 'postgres') return null
  const { rows } = await sql<{
    su: boolean
    bypass: boolean
  }>`SELECT rolsuper AS su, rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user`.execute(store.db)
  return !(rows[0]?.su || rows[0]?.bypass)
}
