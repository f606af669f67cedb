import type { Engine, Migration } from './migration.js'
import { runStatements } from './ddl.js'

/**
 * What a request's target resolution reads (src/access/target.ts): the project and environment
 * a URL names, the caller's project role and environment grant. Every change to them — any
 * INSERT, UPDATE or DELETE of projects, environments, project_members or environment_grants —
 * bumps the epoch of the workspace (auth_epochs, migration 12) in the change's own transaction,
 * so a node may keep resolved targets in memory (src/access/target-cache.ts) and use one only
 * while the workspace's epoch, which every request answered from the principal cache reads in
 * its own transaction, is the one it was resolved under. INSERTs count here: a new project
 * member or grant changes what a lookup answers. On PostgreSQL the bump also notifies
 * `coffer_auth`, as migration 12's do.
 */
const TABLES = ['projects', 'environments', 'project_members', 'environment_grants'] as const

function sqliteTriggers(table: string): string[] {
  const bump = (row: 'OLD' | 'NEW') =>
    `INSERT INTO auth_epochs (scope, epoch) VALUES (${row}.workspace_id, 1) ON CONFLICT (scope) DO UPDATE SET epoch = epoch + 1;`
  return [
    `CREATE TRIGGER ${table}_target_insert AFTER INSERT ON ${table} BEGIN ${bump('NEW')} END`,
    `CREATE TRIGGER ${table}_target_update AFTER UPDATE ON ${table} BEGIN ${bump('OLD')} ${bump('NEW')} END`,
    `CREATE TRIGGER ${table}_target_delete AFTER DELETE ON ${table} BEGIN ${bump('OLD')} END`,
  ]
}

function postgresTriggers(table: string): string[] {
  // coffer_auth_changed (migration 12) bumps OLD's scope and, if different, NEW's.
  return [
    `CREATE TRIGGER ${table}_target_change AFTER INSERT OR UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION coffer_auth_changed('workspace_id')`,
  ]
}

function triggers(engine: Engine): string[] {
  return TABLES.flatMap((t) => (engine === 'postgres' ? postgresTriggers(t) : sqliteTriggers(t)))
}

export const targetEpochs: Migration = {
  version: 22,
  name: 'target-epochs',
  async up(tx, engine) {
    await runStatements(tx, triggers(engine))
  },
}
