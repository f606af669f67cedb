import type { Migration } from './migration.js'
import { appendOnlyTriggers, runStatements } from './ddl.js'
import { AUDIT_ENTRY_COLUMNS_V1, type AuditTxV1, CompactRangeV1, entryBytesV1, insertNodesV1, leafHashV1 } from './frozen/audit-v1.js'

/**
 * The RFC 9162 Merkle tree beside each workspace's hash chain: its stored perfect subtrees
 * (audit_nodes), its right edge (audit_heads.peaks) and signed checkpoints, all append-only.
 * The tree of every log that already exists is built from its entries, with the frozen copy
 * of the v1 audit code (./frozen/audit-v1.ts), so this step never changes with src/audit.
 */
export const auditMerkleTree: Migration = {
  version: 2,
  name: 'audit-merkle-tree',
  async up(migrationTx, engine) {
    const blob = engine === 'sqlite' ? 'BLOB' : 'BYTEA'
    const big = engine === 'sqlite' ? 'INTEGER' : 'BIGINT'
    const empty = engine === 'sqlite' ? "x''" : "'\\x'::bytea"
    await runStatements(migrationTx, [
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
    const tx: AuditTxV1 = migrationTx
    const heads = await tx.selectFrom('audit_heads').select(['workspace_id']).execute()
    for (const { workspace_id } of heads) {
      const range = new CompactRangeV1()
      let after = 0
      for (;;) {
        const rows = await tx
          .selectFrom('audit_entries')
          .select(AUDIT_ENTRY_COLUMNS_V1)
          .where('workspace_id', '=', workspace_id)
          .where('seq', '>', after)
          .orderBy('seq')
          .limit(5000)
          .execute()
        for (const row of rows) await insertNodesV1(tx, workspace_id, range.append(leafHashV1(entryBytesV1(row))))
        if (rows.length < 5000) break
        after = Number(rows[rows.length - 1]!.seq)
      }
      await tx.updateTable('audit_heads').set({ peaks: range.packPeaks() }).where('workspace_id', '=', workspace_id).execute()
    }
  },
}
