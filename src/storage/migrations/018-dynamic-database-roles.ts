import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity, types } from './ddl.js'

/**
 * Dynamic PostgreSQL credentials (docs/dynamic-credentials.md).
 *
 * - `db_roles`: per environment, a named way to make short-lived login roles on a PostgreSQL
 *   server: the admin connection URL (sealed under the workspace's integration key, bound to
 *   the row), the SQL that grants the new role its rights (`{{name}}` stands for it), and the
 *   default and longest lifetimes. A deleted one (`deleted_at`) stays until the login roles
 *   made from it are dropped, so that the dropper can still reach its server.
 * - `db_leases`: every login role made, until it is dropped: its name, when it expires, and
 *   the lease of the node dropping it. The password is never stored.
 */
export const dynamicDatabaseRoles: Migration = {
  version: 18,
  name: 'dynamic-database-roles',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `CREATE TABLE db_roles (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          project_id TEXT NOT NULL, environment_id TEXT NOT NULL, name TEXT NOT NULL,
          admin_url_ct ${blob} NOT NULL, target TEXT NOT NULL, creation_sql TEXT NOT NULL,
          default_ttl_seconds INTEGER NOT NULL, max_ttl_seconds INTEGER NOT NULL,
          created_at TEXT NOT NULL, created_by TEXT NOT NULL, deleted_at TEXT)`,
      'CREATE INDEX db_roles_name ON db_roles (environment_id, name)',
      `CREATE TABLE db_leases (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          role_id TEXT NOT NULL, username TEXT NOT NULL, expires_at TEXT NOT NULL,
          dropped_at TEXT, drop_error TEXT, dropper TEXT, dropper_until TEXT,
          created_at TEXT NOT NULL, created_by TEXT NOT NULL)`,
      'CREATE INDEX db_leases_due ON db_leases (dropped_at, expires_at)',
      ...tenantRowSecurity(engine, 'db_roles'),
      ...tenantRowSecurity(engine, 'db_leases'),
    ])
  },
}
