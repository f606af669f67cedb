import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity, types } from './ddl.js'

/**
 * Protected environments and change requests. An environment with `change_approvals` N > 0
 * is protected: a write to it is stored as a change request — the proposed operations
 * sealed with AES-256-GCM under the environment's data key (`payload_ct`, AAD bound to the
 * request's id), never in clear — and applied once N Owners or Admins other than the
 * requester approved it. `summary` holds keys and versions only, never values. The payload is
 * cleared when the request ends (applied, rejected, stale), so only pending requests hold
 * ciphertext; `dek_id`/`dek_version` say which key version it needs kept.
 */
export const changeRequests: Migration = {
  version: 14,
  name: 'change-requests',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `ALTER TABLE environments ADD COLUMN change_approvals INTEGER NOT NULL DEFAULT 0`,
      `CREATE TABLE change_requests (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), requester_id TEXT NOT NULL,
        project_id TEXT NOT NULL REFERENCES projects(id), environment_id TEXT NOT NULL REFERENCES environments(id),
        kind TEXT NOT NULL, summary TEXT NOT NULL, payload_ct ${blob}, dek_id TEXT, dek_version INTEGER,
        approvals_required INTEGER NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        ended_at TEXT, ended_by TEXT, outcome TEXT)`,
      `CREATE INDEX change_requests_ws ON change_requests (workspace_id, state, created_at)`,
      `CREATE INDEX change_requests_key ON change_requests (dek_id, dek_version)`,
      `CREATE TABLE change_request_decisions (
        request_id TEXT NOT NULL REFERENCES change_requests(id), workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        user_id TEXT NOT NULL, decision TEXT NOT NULL, comment TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (request_id, user_id))`,
      ...tenantRowSecurity(engine, 'change_requests'),
      ...tenantRowSecurity(engine, 'change_request_decisions'),
    ])
  },
}
