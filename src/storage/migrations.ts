import type { Transaction } from 'kysely'
import type { Engine } from './database.js'
import type { Database } from './schema.js'
import { rowToRecord } from '../audit/audit-log.js'
import { entryBytes } from '../audit/entry.js'
import { CompactRange, leafHash } from '../audit/merkle.js'
import { insertNodes, packPeaks } from '../audit/tree-store.js'
import { appendOnlyTriggers, runStatements as run } from './migrations/ddl.js'
import { LATER } from './migrations/index.js'

/** One forward-only schema step. Applied in its own transaction; never edited once released. */
export interface Migration {
  readonly version: number
  readonly name: string
  up(tx: Transaction<Database>, engine: Engine): Promise<void>
}

const BUILT_IN: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    async up(tx, engine) {
      const blob = engine === 'sqlite' ? 'BLOB' : 'BYTEA'
      const big = engine === 'sqlite' ? 'INTEGER' : 'BIGINT'
      await run(tx, [
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
  },
  {
    version: 2,
    name: 'audit-merkle-tree',
    async up(tx, engine) {
      const blob = engine === 'sqlite' ? 'BLOB' : 'BYTEA'
      const big = engine === 'sqlite' ? 'INTEGER' : 'BIGINT'
      const empty = engine === 'sqlite' ? "x''" : "'\\x'::bytea"
      await run(tx, [
        `ALTER TABLE audit_heads ADD COLUMN peaks ${blob} NOT NULL DEFAULT ${empty}`,
        `CREATE TABLE audit_nodes (
          workspace_id TEXT NOT NULL, level INTEGER NOT NULL, idx ${big} NOT NULL, hash ${blob} NOT NULL,
          PRIMARY KEY (workspace_id, level, idx))`,
        ...appendOnlyTriggers(engine, 'audit_nodes'),
        `CREATE TABLE audit_checkpoints (
          workspace_id TEXT NOT NULL, tree_size ${big} NOT NULL, root_hash ${blob} NOT NULL, note TEXT NOT NULL,
          created_at TEXT NOT NULL, PRIMARY KEY (workspace_id, tree_size))`,
        ...appendOnlyTriggers(engine, 'audit_checkpoints'),
      ])
      // Build the tree of every existing log from its entries.
      const heads = await tx.selectFrom('audit_heads').select(['workspace_id']).execute()
      for (const { workspace_id } of heads) {
        const range = new CompactRange()
        let after = 0
        for (;;) {
          const rows = await tx
            .selectFrom('audit_entries')
            .selectAll()
            .where('workspace_id', '=', workspace_id)
            .where('seq', '>', after)
            .orderBy('seq')
            .limit(5000)
            .execute()
          for (const row of rows) await insertNodes(tx, workspace_id, range.append(leafHash(entryBytes(rowToRecord(row)))))
          if (rows.length < 5000) break
          after = Number(rows[rows.length - 1]!.seq)
        }
        await tx
          .updateTable('audit_heads')
          .set({ peaks: packPeaks(range) })
          .where('workspace_id', '=', workspace_id)
          .execute()
      }
    },
  },
]

/**
 * Every migration this version of Coffer knows, in version order. Later steps live one per
 * file in ./migrations/ and are listed here.
 */
export const MIGRATIONS: readonly Migration[] = [...BUILT_IN, ...LATER].sort((a, b) => a.version - b.version)

/** The newest schema version this code knows. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version
