import { sql } from 'kysely'
import type { Migration } from './migration.js'
import { runStatements } from './ddl.js'

/**
 * SQLite: audit_nodes becomes a WITHOUT ROWID table, clustered on its primary key
 * (workspace_id, level, idx). A rowid table kept every node twice — the row and the primary
 * key's index — so each audit append wrote two more B-trees than it needed (about a fifth of
 * an append's database time). Proof reads look nodes up by that key and are unchanged.
 * The table is rebuilt, its append-only triggers re-created exactly as they were.
 * PostgreSQL has no rowid: nothing to do there.
 */
export const auditNodesWithoutRowid: Migration = {
  version: 9,
  name: 'audit-nodes-without-rowid',
  async up(tx, engine) {
    if (engine !== 'sqlite') return
    const triggers = await sql<{
      sql: string
    }>`SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_nodes' ORDER BY name`.execute(tx)
    const names = await sql<{
      name: string
    }>`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_nodes' ORDER BY name`.execute(tx)
    await runStatements(tx, [
      `CREATE TABLE audit_nodes_rebuilt (
        workspace_id TEXT NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (workspace_id, level, idx)) WITHOUT ROWID`,
      `INSERT INTO audit_nodes_rebuilt (workspace_id, level, idx, hash) SELECT workspace_id, level, idx, hash FROM audit_nodes`,
      ...names.rows.map((t) => `DROP TRIGGER ${t.name}`),
      `DROP TABLE audit_nodes`,
      `ALTER TABLE audit_nodes_rebuilt RENAME TO audit_nodes`,
      ...triggers.rows.map((t) => t.sql),
    ])
  },
}
