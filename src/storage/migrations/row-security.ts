import { sql } from 'kysely'
import type { Engine, MigrationTx } from './migration.js'
import { runStatements, tenantRowSecurity } from './ddl.js'

// @NOTE here among the migrations because migrations 5 and 6 call ensureRowSecurity: what it
// does to a schema is part of what those steps do, so it changes only as a migration would.

/** The schema version from which tenant tables carry row-level security (005-project-roles). */
export const ROW_SECURITY_SINCE = 5

/**
 * The tables of the current PostgreSQL schema that hold a `workspace_id` column, and the
 * column each is scoped by (`workspaces` is scoped by its own `id`).
 */
export async function tenantTables(tx: MigrationTx): Promise<Array<{ table: string; column: string }>> {
  const { rows } = await sql<{ name: string }>`
    SELECT c.table_name AS name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND c.column_name = 'workspace_id' AND t.table_type = 'BASE TABLE'
    ORDER BY c.table_name`.execute(tx)
  return [{ table: 'workspaces', column: 'id' }, ...rows.map((r) => ({ table: r.name, column: 'workspace_id' }))]
}

/**
 * Gives every tenant table that lacks it the row-level security of tenantRowSecurity:
 * migration 5 applies it to the tables of that time, and the migrator runs this after every
 * later migration, so a table a later step adds is covered without that step remembering.
 * Returns the tables it changed. Nothing on SQLite.
 */
export async function ensureRowSecurity(tx: MigrationTx, engine: Engine): Promise<string[]> {
  if (engine !== 'postgres') return []
  const { rows: done } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relrowsecurity AND c.relforcerowsecurity
      AND EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname AND p.policyname = 'coffer_tenant')`.execute(
    tx,
  )
  const have = new Set(done.map((r) => r.name))
  const changed: string[] = []
  for (const { table, column } of await tenantTables(tx)) {
    if (have.has(table)) continue
    await runStatements(tx, [`DROP POLICY IF EXISTS coffer_tenant ON ${table}`, ...tenantRowSecurity(engine, table, column)])
    changed.push(table)
  }
  return changed
}
