import { sql, type Transaction } from 'kysely'
import { SchemaTooNewError } from '../errors.js'
import { systemClock } from '../ops/clock.js'
import type { Engine, Store } from './database.js'
import type { Database } from './schema.js'
import { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from './migrations.js'
import { ensureRowSecurity, ROW_SECURITY_SINCE } from './migrations/row-security.js'
import { setScope, SYSTEM_SCOPE } from './tenant-scope.js'

// @NOTE on PostgreSQL several nodes may start at once: each migration transaction takes
// the same advisory lock, then re-reads the version, so every step runs exactly once.
const PG_LOCK_ID = 0x636f6666 // "coff"

async function ensureSchemaTable(store: Store): Promise<void> {
  const ddl = sql.raw(
    'CREATE TABLE IF NOT EXISTS coffer_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  )
  if (store.engine === 'postgres') {
    // @NOTE concurrent CREATE TABLE IF NOT EXISTS on PostgreSQL can fail with a unique
    // violation on pg_type when several nodes start at once; the advisory lock serialises it.
    await store.db.transaction().execute(async (tx) => {
      await sql`SELECT pg_advisory_xact_lock(${PG_LOCK_ID})`.execute(tx)
      await ddl.execute(tx)
    })
    return
  }
  await ddl.execute(store.db)
}

/** The highest applied schema version, 0 for an empty database. */
export async function currentSchemaVersion(store: Store): Promise<number> {
  await ensureSchemaTable(store)
  const row = await store.db
    .selectFrom('coffer_schema')
    .select((eb) => eb.fn.max('version').as('v'))
    .executeTakeFirst()
  return Number(row?.v ?? 0)
}

/** Called by migrate: `beforeChange(version)` runs before the first step that changes a non-empty schema; if it throws, nothing migrates. */
export interface MigrateHooks {
  beforeChange?: (fromVersion: number) => Promise<void>
}

/**
 * Applies every pending migration, each in its own transaction, and returns the versions
 * applied. Refuses (SchemaTooNewError) a database migrated by a newer Coffer.
 */
export async function migrate(store: Store, migrations: readonly Migration[] = MIGRATIONS, hooks: MigrateHooks = {}): Promise<number[]> {
  const known = migrations.length ? migrations[migrations.length - 1]!.version : 0
  const found = await currentSchemaVersion(store)
  if (found > known) throw new SchemaTooNewError(found, known)
  // Every migration not yet recorded, not only those above the highest: a version that landed
  // in the code after a higher one (parallel work merged out of order) is applied too.
  const recorded = new Set((await store.db.selectFrom('coffer_schema').select('version').execute()).map((r) => Number(r.version)))
  const applied: number[] = []
  for (const m of migrations) {
    if (recorded.has(m.version)) continue
    // SQLite: before the transaction, whose connection the backup needs (one process migrates).
    if (store.engine === 'sqlite' && !applied.length && found > 0 && hooks.beforeChange) await hooks.beforeChange(found)
    await store.db.transaction().execute(async (tx) => {
      if (store.engine === 'postgres') await sql`SELECT pg_advisory_xact_lock(${PG_LOCK_ID})`.execute(tx)
      const done = await tx.selectFrom('coffer_schema').select('version').where('version', '=', m.version).executeTakeFirst()
      if (done) return
      // PostgreSQL: once, before the first step that changes a schema holding data, and only on
      // the node that applies it (under the migration lock, after the re-read above).
      if (store.engine === 'postgres' && !applied.length && found > 0 && hooks.beforeChange) await hooks.beforeChange(found)
      // Migrations move data of every workspace: row-level security binds the owner too.
      await setScope(tx, store.engine, SYSTEM_SCOPE)
      await m.up(tx, store.engine)
      // @NOTE the system clock: applied_at is the operator's record of when the schema changed
      // (before any context exists, also from `coffer keys`); it decides nothing.
      await tx.insertInto('coffer_schema').values({ version: m.version, name: m.name, applied_at: systemClock().toISOString() }).execute()
      applied.push(m.version)
    })
  }
  if (store.engine === 'postgres' && applied.length && applied[applied.length - 1]! >= ROW_SECURITY_SINCE) {
    await store.db.transaction().execute(async (tx) => {
      await sql`SELECT pg_advisory_xact_lock(${PG_LOCK_ID})`.execute(tx)
      await ensureRowSecurity(tx, store.engine)
    })
  }
  return applied
}

/**
 * Applies the migrations after version `from` up to `to` inside the open transaction `tx`
 * (a restore builds a schema and fills it in one transaction), then, on PostgreSQL, the
 * row-level security of every tenant table. The caller holds whatever lock it needs.
 */
export async function migrateWithin(tx: Transaction<Database>, engine: Engine, from: number, to: number): Promise<void> {
  if (to > LATEST_SCHEMA_VERSION) throw new SchemaTooNewError(to, LATEST_SCHEMA_VERSION)
  await sql
    .raw('CREATE TABLE IF NOT EXISTS coffer_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)')
    .execute(tx)
  await setScope(tx, engine, SYSTEM_SCOPE)
  for (const m of MIGRATIONS) {
    if (m.version <= from || m.version > to) continue
    await m.up(tx, engine)
    await tx.insertInto('coffer_schema').values({ version: m.version, name: m.name, applied_at: systemClock().toISOString() }).execute()
  }
  if (engine === 'postgres' && to >= ROW_SECURITY_SINCE) await ensureRowSecurity(tx, engine)
}

/**
 * After migrating as the owner (COFFER_MIGRATION_DATABASE_URL) for an application that
 * connects as another role (DATABASE_URL): lets `appRole` read and write the rows of every
 * table of the schema — and nothing more: it owns nothing, so it can neither change the
 * schema nor turn row-level security off.
 */
export async function grantToAppRole(store: Store, appRole: string): Promise<void> {
  if (store.engine !== 'postgres') return
  await store.db.transaction().execute(async (tx) => {
    await sql`SELECT pg_advisory_xact_lock(${PG_LOCK_ID})`.execute(tx)
    const { rows } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(tx)
    const schema = rows[0]!.schema
    await sql`GRANT USAGE ON SCHEMA ${sql.id(schema)} TO ${sql.id(appRole)}`.execute(tx)
    await sql`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${sql.id(schema)} TO ${sql.id(appRole)}`.execute(tx)
    await sql`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${sql.id(schema)} TO ${sql.id(appRole)}`.execute(tx)
  })
}

export { LATEST_SCHEMA_VERSION }
