import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'
import { ensureRowSecurity } from './row-security.js'

/**
 * Project roles, per-environment restrictions and grants, invitations, and — on PostgreSQL —
 * row-level security on every tenant table that exists at this step (see tenant-scope.ts).
 *
 * Upgrading keeps everyone's access: each existing workspace Member becomes a developer of
 * every existing project of the workspace, and existing environments stay unrestricted
 * (only environments created from now on named `production` start restricted).
 */
export const projectRoles: Migration = {
  version: 5,
  name: 'project-roles',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `CREATE TABLE project_members (
        workspace_id TEXT NOT NULL REFERENCES workspaces(id), project_id TEXT NOT NULL REFERENCES projects(id),
        user_id TEXT NOT NULL REFERENCES users(id), role TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (project_id, user_id))`,
      `CREATE INDEX project_members_user ON project_members (workspace_id, user_id)`,
      `ALTER TABLE environments ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0`,
      `CREATE TABLE environment_grants (
        workspace_id TEXT NOT NULL REFERENCES workspaces(id), project_id TEXT NOT NULL REFERENCES projects(id),
        environment_id TEXT NOT NULL REFERENCES environments(id), user_id TEXT NOT NULL REFERENCES users(id),
        access TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (environment_id, user_id))`,
      `CREATE INDEX environment_grants_user ON environment_grants (workspace_id, user_id)`,
      `CREATE TABLE invitations (
        id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), email TEXT NOT NULL, role TEXT NOT NULL,
        project_id TEXT REFERENCES projects(id), project_role TEXT, token_hash ${blob} NOT NULL UNIQUE,
        invited_by TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        accepted_at TEXT, accepted_by TEXT, revoked_at TEXT)`,
      `CREATE INDEX invitations_workspace ON invitations (workspace_id, created_at)`,
      `INSERT INTO project_members (workspace_id, project_id, user_id, role, created_at)
        SELECT m.workspace_id, p.id, m.user_id, 'developer', m.created_at
        FROM memberships m JOIN projects p ON p.workspace_id = m.workspace_id WHERE m.role = 'member'`,
    ])
    await ensureRowSecurity(tx, engine)
  },
}
