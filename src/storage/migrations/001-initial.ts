import type { Migration } from './migration.js'
import { appendOnlyTriggers, runStatements } from './ddl.js'

/**
 * The first schema: workspaces, people and their tokens, projects and environments, data
 * keys, secrets and their versions, and the hash-chained audit log (append-only).
 */
export const initial: Migration = {
  version: 1,
  name: 'initial',
  async up(tx, engine) {
    const blob = engine === 'sqlite' ? 'BLOB' : 'BYTEA'
    const big = engine === 'sqlite' ? 'INTEGER' : 'BIGINT'
    await runStatements(tx, [
      `CREATE TABLE meta (key TEXT PRIMARY KEY, value ${blob} NOT NULL)`,
      `CREATE TABLE workspaces (
          id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
          fingerprint_key ${blob} NOT NULL, root_key_id TEXT NOT NULL, created_at TEXT NOT NULL)`,
      `CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at TEXT NOT NULL)`,
      `CREATE TABLE memberships (
          workspace_id TEXT NOT NULL REFERENCES workspaces(id), user_id TEXT NOT NULL REFERENCES users(id),
          role TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (workspace_id, user_id))`,
      `CREATE INDEX memberships_user ON memberships (user_id)`,
      `CREATE TABLE tokens (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), user_id TEXT NOT NULL REFERENCES users(id),
          name TEXT NOT NULL, token_hash ${blob} NOT NULL UNIQUE, display TEXT NOT NULL, created_at TEXT NOT NULL,
          expires_at TEXT, revoked_at TEXT, last_used_at TEXT)`,
      `CREATE INDEX tokens_owner ON tokens (workspace_id, user_id)`,
      `CREATE TABLE projects (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), slug TEXT NOT NULL,
          name TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (workspace_id, slug))`,
      `CREATE TABLE environments (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), project_id TEXT NOT NULL REFERENCES projects(id),
          slug TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (project_id, slug))`,
      `CREATE TABLE data_keys (
          id TEXT NOT NULL, version INTEGER NOT NULL, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          project_id TEXT NOT NULL, environment_id TEXT NOT NULL, wrapped ${blob} NOT NULL, root_key_id TEXT NOT NULL,
          state TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (id, version))`,
      `CREATE INDEX data_keys_scope ON data_keys (workspace_id, project_id, environment_id, state)`,
      `CREATE TABLE secrets (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), project_id TEXT NOT NULL REFERENCES projects(id),
          environment_id TEXT NOT NULL REFERENCES environments(id), key TEXT NOT NULL, current_version INTEGER NOT NULL,
          deleted INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (environment_id, key))`,
      `CREATE TABLE secret_versions (
          secret_id TEXT NOT NULL REFERENCES secrets(id), version INTEGER NOT NULL, workspace_id TEXT NOT NULL,
          project_id TEXT NOT NULL, environment_id TEXT NOT NULL, value_ct ${blob}, comment_ct ${blob},
          tags TEXT NOT NULL, deleted INTEGER NOT NULL, origin TEXT NOT NULL, origin_version INTEGER,
          dek_id TEXT, dek_version INTEGER, created_at TEXT NOT NULL, created_by TEXT NOT NULL,
          PRIMARY KEY (secret_id, version))`,
      `CREATE INDEX secret_versions_dek ON secret_versions (dek_id, dek_version)`,
      `CREATE TABLE audit_heads (workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id), seq ${big} NOT NULL, hash ${blob} NOT NULL)`,
      `CREATE TABLE audit_entries (
          workspace_id TEXT NOT NULL, seq ${big} NOT NULL, id TEXT NOT NULL UNIQUE, time TEXT NOT NULL,
          actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_ip TEXT NOT NULL, actor_ua TEXT NOT NULL,
          request_id TEXT NOT NULL, action TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
          details TEXT NOT NULL, prev_hash ${blob} NOT NULL, hash ${blob} NOT NULL, PRIMARY KEY (workspace_id, seq))`,
      ...appendOnlyTriggers(engine, 'audit_entries'),
    ])
  },
}
