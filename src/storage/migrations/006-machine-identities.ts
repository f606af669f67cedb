import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'
import { ensureRowSecurity } from './row-security.js'

/**
 * Workspace integrations: static service tokens (`coffer_svc_`), machine identities (a client
 * id and a `coffer_mcs_` client secret) and their short-lived access tokens (`coffer_sat_`).
 * Scopes are JSON lists of { projectId, environments: [ids] | '*', access }. Every token and
 * secret is stored as its SHA-256 hash only.
 */
export const machineIdentities: Migration = {
  version: 6,
  name: 'machine-identities',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `CREATE TABLE service_tokens (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), name TEXT NOT NULL,
        token_hash ${blob} NOT NULL UNIQUE, display TEXT NOT NULL, scopes TEXT NOT NULL, created_by TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT, last_used_at TEXT)`,
      `CREATE INDEX service_tokens_workspace ON service_tokens (workspace_id, created_at)`,
      `CREATE TABLE machine_identities (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), name TEXT NOT NULL,
        secret_hash ${blob} NOT NULL UNIQUE, secret_display TEXT NOT NULL, scopes TEXT NOT NULL, allowed_cidrs TEXT NOT NULL,
        token_ttl_seconds INTEGER NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT)`,
      `CREATE INDEX machine_identities_workspace ON machine_identities (workspace_id, created_at)`,
      `CREATE TABLE machine_tokens (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), machine_id TEXT NOT NULL REFERENCES machine_identities(id),
        token_hash ${blob} NOT NULL UNIQUE, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, ip TEXT NOT NULL, last_used_at TEXT)`,
      `CREATE INDEX machine_tokens_machine ON machine_tokens (machine_id, expires_at)`,
    ])
    await ensureRowSecurity(tx, engine)
  },
}
