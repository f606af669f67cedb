import { sql } from 'kysely'
import type { Engine, MigrationTx } from './migration.js'

/** Column types that differ between the engines. */
export function types(engine: Engine): { blob: string; big: string } {
  return engine === 'sqlite' ? { blob: 'BLOB', big: 'INTEGER' } : { blob: 'BYTEA', big: 'BIGINT' }
}

/** Runs raw DDL statements in order. */
export async function runStatements(tx: MigrationTx, statements: string[]): Promise<void> {
  for (const s of statements) await sql.raw(s).execute(tx)
}

/** Triggers that refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) on `table`. */
export function appendOnlyTriggers(engine: Engine, table: string): string[] {
  if (engine === 'sqlite') {
    return [
      `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
      `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
    ]
  }
  return [
    `CREATE FUNCTION ${table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${table} is append-only'; END $$`,
    `CREATE TRIGGER ${table}_no_update BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_append_only()`,
    `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${table}_append_only()`,
  ]
}

/**
 * PostgreSQL row-level security for a tenant table (see src/storage/tenant-scope.ts): enabled
 * and FORCEd (so the table owner is bound too), one policy for reads and writes that admits
 * a row only when `column` is the transaction's `coffer.workspace_id`, or that setting is the
 * system scope '*'. Every migration that creates a table with a workspace_id calls this; a
 * test fails when a tenant table lacks it. Nothing on SQLite.
 */
export function tenantRowSecurity(engine: Engine, table: string, column = 'workspace_id'): string[] {
  if (engine !== 'postgres') return []
  const scope = "current_setting('coffer.workspace_id', true)"
  const rule = `(${column} = ${scope} OR ${scope} = '*')`
  return [
    `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
    `CREATE POLICY coffer_tenant ON ${table} USING ${rule} WITH CHECK ${rule}`,
  ]
}
