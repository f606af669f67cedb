import type { Engine } from './migration.js'
import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity, types } from './ddl.js'

/** The audit tables whose rows are append-only (see ddl.ts appendOnlyTriggers). */
const AUDIT_TABLES = ['audit_entries', 'audit_nodes', 'audit_checkpoints'] as const

/**
 * Replaces the append-only triggers of an audit table: UPDATE and TRUNCATE stay refused
 * always; DELETE is refused unless the row's workspace has a deletion receipt whose
 * `purge_after` has passed by the database's clock. A live workspace's audit rows can never
 * be deleted, and a deleted one's only by the purge once its grace period is over.
 */
function purgeableTriggers(engine: Engine, table: string): string[] {
  if (engine === 'sqlite') {
    // ISO-8601 UTC with milliseconds, the same shape as JavaScript's toISOString(), so the
    // strings compare in time order.
    const purgeable = `EXISTS (SELECT 1 FROM workspace_deletions d WHERE d.workspace_id = OLD.workspace_id
      AND d.purge_after <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`
    return [
      `DROP TRIGGER ${table}_no_delete`,
      `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table} WHEN NOT ${purgeable}
        BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
    ]
  }
  return [
    `CREATE OR REPLACE FUNCTION ${table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM workspace_deletions d WHERE d.workspace_id = OLD.workspace_id
            AND d.purge_after <= to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) THEN
          RETURN OLD;
        END IF;
        RAISE EXCEPTION '${table} is append-only';
      END $$`,
  ]
}

/**
 * Workspace deletion (crypto-shredding with a permanent receipt and a later purge) and
 * break-glass access (sealed environments, requests, approvals and time-bound grants).
 */
export const workspaceDeletionAndBreakGlass: Migration = {
  version: 7,
  name: 'workspace-deletion-and-break-glass',
  async up(tx, engine) {
    const { blob, big } = types(engine)
    await runStatements(tx, [
      `ALTER TABLE workspaces ADD COLUMN deleted_at TEXT`,
      `ALTER TABLE environments ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0`,
      // @NOTE no foreign key to workspaces: the receipt outlives the workspace's rows.
      `CREATE TABLE workspace_deletions (
        workspace_id TEXT PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL, deleted_by TEXT NOT NULL,
        deleted_at TEXT NOT NULL, purge_after TEXT NOT NULL, audit_tree_size ${big} NOT NULL,
        audit_root_hash ${blob} NOT NULL, checkpoint_note TEXT NOT NULL, purged_at TEXT)`,
      `CREATE INDEX workspace_deletions_purge ON workspace_deletions (purged_at, purge_after)`,
      `CREATE TABLE breakglass_requests (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), requester_id TEXT NOT NULL,
        project_id TEXT NOT NULL REFERENCES projects(id), environment_id TEXT NOT NULL REFERENCES environments(id),
        access TEXT NOT NULL, reason TEXT NOT NULL, duration_minutes INTEGER NOT NULL, approvals_required INTEGER NOT NULL,
        state TEXT NOT NULL, created_at TEXT NOT NULL, activated_at TEXT, expires_at TEXT,
        ended_at TEXT, ended_by TEXT, expiry_recorded INTEGER NOT NULL DEFAULT 0)`,
      `CREATE INDEX breakglass_requests_ws ON breakglass_requests (workspace_id, state, created_at)`,
      `CREATE INDEX breakglass_requests_grant ON breakglass_requests (workspace_id, environment_id, requester_id, state)`,
      `CREATE TABLE breakglass_decisions (
        request_id TEXT NOT NULL REFERENCES breakglass_requests(id), workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        user_id TEXT NOT NULL, decision TEXT NOT NULL, comment TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (request_id, user_id))`,
      ...tenantRowSecurity(engine, 'workspace_deletions'),
      ...tenantRowSecurity(engine, 'breakglass_requests'),
      ...tenantRowSecurity(engine, 'breakglass_decisions'),
      ...AUDIT_TABLES.flatMap((t) => purgeableTriggers(engine, t)),
    ])
  },
}
