import { sql } from 'kysely'
import type { AuditLog } from '../audit/audit-log.js'
import type { AuditTree } from '../audit/audit-tree.js'
import { ConfirmationMismatchError, NotFoundError } from '../errors.js'
import type { Engine, Executor } from '../storage/database.js'
import type { DataKeys } from './data-keys.js'
import type { Workspace } from './workspace-service.js'

// Deleting a workspace is crypto-shredding: in one transaction every data key of the
// workspace and its audit fingerprint key are overwritten (an empty blob), the workspace is
// marked deleted (every request for it then fails before any key is used) and its tokens are
// revoked. Without the wrapped keys no copy of the database taken from then on can open its
// values, whatever root key it is given. The deletion is the last entry of the workspace's
// audit chain; a receipt with the final tree head and its signed checkpoint is kept forever,
// outside the workspace's rows. The purge job removes those rows once `purge_after` passed.

/** The permanent proof that a workspace was deleted, and what its audit log held. */
export interface DeletionReceipt {
  workspaceId: string
  slug: string
  name: string
  deletedBy: string
  deletedAt: string
  purgeAfter: string
  /** The final audit tree: its size (the deletion entry is the last leaf) and root hash (base64). */
  auditTreeSize: number
  auditRootHash: string
  /** The signed checkpoint (C2SP signed note) of that final tree head. */
  checkpointNote: string
  purgedAt: string | null
}

/**
 * Destroys the workspace's keys and marks it deleted, in `tx`. `confirm` must be the
 * workspace's slug typed again; anything else changes nothing.
 */
export async function shredWorkspace(
  tx: Executor,
  deps: { dataKeys: DataKeys },
  input: { workspace: Workspace; confirm: string; now: Date },
): Promise<{ dataKeysShredded: number; tokensRevoked: number }> {
  if (input.confirm !== input.workspace.slug) {
    throw new ConfirmationMismatchError('To delete the workspace, send its slug again as "confirm"; it did not match. Nothing was deleted.')
  }
  const at = input.now.toISOString()
  const marked = await tx
    .updateTable('workspaces')
    .set({ deleted_at: at, fingerprint_key: Buffer.alloc(0) })
    .where('id', '=', input.workspace.id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (Number(marked.numUpdatedRows) !== 1) throw new NotFoundError('workspace')
  const keys = await tx
    .updateTable('data_keys')
    .set({ wrapped: Buffer.alloc(0), state: 'shredded' })
    .where('workspace_id', '=', input.workspace.id)
    .executeTakeFirst()
  const tokens = await tx
    .updateTable('tokens')
    .set({ revoked_at: at })
    .where('workspace_id', '=', input.workspace.id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  // @NOTE this node forgets the workspace's cached plaintext keys; other nodes never use
  // theirs again, since the workspace no longer resolves, and their TTL ends them.
  deps.dataKeys.forgetWorkspace(input.workspace.id)
  return { dataKeysShredded: Number(keys.numUpdatedRows), tokensRevoked: Number(tokens.numUpdatedRows) }
}

/**
 * Signs the final tree head of the workspace's audit log (after its deletion entry) and
 * stores the receipt, in the same transaction as the deletion. Every entry queued until then,
 * the deletion's own included, is integrated first (in this transaction), so the receipt's
 * tree ends with the deletion entry.
 */
export async function recordDeletionReceipt(
  tx: Executor,
  deps: { audit: Pick<AuditLog, 'integrateAll'>; auditTree: AuditTree },
  input: { workspace: Workspace; deletedBy: string; now: Date; purgeAfterDays: number },
): Promise<DeletionReceipt> {
  await deps.audit.integrateAll(tx, input.workspace.id)
  const checkpoint = await deps.auditTree.issue(tx, input.workspace.id)
  const receipt: DeletionReceipt = {
    workspaceId: input.workspace.id,
    slug: input.workspace.slug,
    name: input.workspace.name,
    deletedBy: input.deletedBy,
    deletedAt: input.now.toISOString(),
    purgeAfter: new Date(input.now.getTime() + input.purgeAfterDays * 86_400_000).toISOString(),
    auditTreeSize: checkpoint.treeSize,
    auditRootHash: checkpoint.rootHash,
    checkpointNote: checkpoint.note,
    purgedAt: null,
  }
  await tx
    .insertInto('workspace_deletions')
    .values({
      workspace_id: receipt.workspaceId,
      slug: receipt.slug,
      name: receipt.name,
      deleted_by: receipt.deletedBy,
      deleted_at: receipt.deletedAt,
      purge_after: receipt.purgeAfter,
      audit_tree_size: receipt.auditTreeSize,
      audit_root_hash: Buffer.from(receipt.auditRootHash, 'base64'),
      checkpoint_note: receipt.checkpointNote,
      purged_at: null,
    })
    .execute()
  return receipt
}

/** The receipt of a deleted workspace (by id), or null. */
export async function deletionReceipt(db: Executor, workspaceId: string): Promise<DeletionReceipt | null> {
  const r = await db.selectFrom('workspace_deletions').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirst()
  if (!r) return null
  return {
    workspaceId: r.workspace_id,
    slug: r.slug,
    name: r.name,
    deletedBy: r.deleted_by,
    deletedAt: r.deleted_at,
    purgeAfter: r.purge_after,
    auditTreeSize: Number(r.audit_tree_size),
    auditRootHash: Buffer.from(r.audit_root_hash).toString('base64'),
    checkpointNote: r.checkpoint_note,
    purgedAt: r.purged_at,
  }
}

/**
 * After the deletion committed: on SQLite, checkpoints the write-ahead log and truncates it,
 * so the pages that held the wrapped keys (zeroed by secure_delete) are the only copy left
 * in the database files. Best effort: a reader holding an old snapshot can delay it.
 */
export async function scrubAfterShred(db: Executor, engine: Engine): Promise<void> {
  if (engine === 'sqlite') await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db)
}

/** Rows of every table that holds a workspace's data, deleted children first. */
async function workspaceTables(db: Executor, engine: Engine): Promise<string[]> {
  const tables: string[] = []
  const edges: Array<{ child: string; parent: string }> = []
  if (engine === 'sqlite') {
    const rows = await sql<{ name: string }>`SELECT m.name AS name FROM sqlite_master m JOIN pragma_table_info(m.name) c
      WHERE m.type = 'table' AND c.name = 'workspace_id'`.execute(db)
    tables.push(...rows.rows.map((r) => r.name))
    const fks = await sql<{ child: string; parent: string }>`SELECT m.name AS child, f."table" AS parent FROM sqlite_master m
      JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'`.execute(db)
    edges.push(...fks.rows)
  } else {
    const rows = await sql<{ name: string }>`SELECT c.table_name AS name FROM information_schema.columns c
      JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.column_name = 'workspace_id' AND c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`.execute(db)
    tables.push(...rows.rows.map((r) => r.name))
    const fks = await sql<{ child: string; parent: string }>`SELECT cl.relname AS child, pl.relname AS parent FROM pg_constraint k
      JOIN pg_class cl ON cl.oid = k.conrelid JOIN pg_class pl ON pl.oid = k.confrelid
      JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE k.contype = 'f' AND n.nspname = current_schema()`.execute(db)
    edges.push(...fks.rows)
  }
  // The receipt is the one table with a workspace_id that must outlive the purge.
  const set = new Set(tables.filter((t) => t !== 'workspace_deletions' && t !== 'workspaces'))
  // Children before parents; @NOTE secret versions before data keys even where that guard is
  // a trigger rather than a foreign key (SQLite), and the audit head last of the audit tables.
  // Environment snapshots before the secrets, whose deletion would otherwise drop them by trigger, uncounted.
  const first = [
    'environment_snapshots',
    'breakglass_decisions',
    'breakglass_requests',
    'change_request_decisions',
    'change_requests',
    'key_jobs',
    'secret_versions',
    'secrets',
    'data_keys',
  ]
  const order: string[] = []
  const visiting = new Set<string>()
  const visit = (t: string) => {
    if (order.includes(t) || visiting.has(t)) return
    visiting.add(t)
    for (const e of edges) if (e.parent === t && set.has(e.child) && e.child !== t) visit(e.child)
    visiting.delete(t)
    order.push(t)
  }
  for (const t of [...first.filter((t) => set.has(t)), ...[...set].sort()]) visit(t)
  return [...order, 'workspaces']
}

/** Workspaces whose grace period is over and whose rows are not yet purged. */
export async function purgeableWorkspaces(db: Executor, now: Date, limit = 10): Promise<string[]> {
  const rows = await db
    .selectFrom('workspace_deletions')
    .select('workspace_id')
    .where('purged_at', 'is', null)
    .where('purge_after', '<=', now.toISOString())
    .orderBy('purge_after')
    .limit(limit)
    .execute()
  return rows.map((r) => r.workspace_id)
}

/** SQLite tables without a rowid, and their primary keys (migration 9). */
const WITHOUT_ROWID: Record<string, readonly string[]> = { audit_nodes: ['workspace_id', 'level', 'idx'] }

async function hasRows(tx: Executor, table: string, workspaceId: string): Promise<boolean> {
  const column = sql.ref(table === 'workspaces' ? 'id' : 'workspace_id')
  const r = await sql`SELECT 1 AS one FROM ${sql.table(table)} WHERE ${column} = ${workspaceId} LIMIT 1`.execute(tx)
  return r.rows.length > 0
}

/**
 * Deletes up to `batch` rows of one table of a deleted workspace in `tx`; returns how many.
 * Idempotent: several nodes purging at once each delete what is left.
 */
async function purgeBatch(tx: Executor, engine: Engine, table: string, workspaceId: string, batch: number): Promise<number> {
  const t = sql.table(table)
  const column = sql.ref(table === 'workspaces' ? 'id' : 'workspace_id')
  // A row's address: its rowid (ctid), or on a SQLite WITHOUT ROWID table its primary key.
  const columns = engine === 'sqlite' ? (WITHOUT_ROWID[table]?.join(', ') ?? 'rowid') : 'ctid'
  const r =
    await sql`DELETE FROM ${t} WHERE (${sql.raw(columns)}) IN (SELECT ${sql.raw(columns)} FROM ${t} WHERE ${column} = ${workspaceId} LIMIT ${batch})`.execute(
      tx,
    )
  return Number(r.numAffectedRows ?? 0)
}

/**
 * Removes every row of deleted workspaces whose `purge_after` has passed, in transactions of
 * at most `batch` rows, then stamps their receipts `purged_at`. The receipts stay. Returns the
 * rows deleted per workspace.
 */
export async function purgeDeletedWorkspaces(
  engine: Engine,
  opts: { now: Date; batch?: number; runInTx: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T> },
): Promise<Array<{ workspaceId: string; rows: number }>> {
  const batch = opts.batch ?? 1000
  const out: Array<{ workspaceId: string; rows: number }> = []
  // @NOTE every read and write here runs in the caller's transactions (the committer's,
  // scoped to all workspaces), so row-level security, where enabled, sees the rows.
  for (const ws of await opts.runInTx((tx) => purgeableWorkspaces(tx, opts.now))) {
    let rows = 0
    for (const table of await opts.runInTx((tx) => workspaceTables(tx, engine))) {
      for (;;) {
        const n = await opts.runInTx((tx) => purgeBatch(tx, engine, table, ws, batch))
        rows += n
        // @NOTE a short batch can mean another node deleted rows under us, not that none are
        // left: look before moving on to the parent tables.
        if (n < batch && !(await opts.runInTx((tx) => hasRows(tx, table, ws)))) break
      }
    }
    await opts.runInTx((tx) =>
      tx
        .updateTable('workspace_deletions')
        .set({ purged_at: opts.now.toISOString() })
        .where('workspace_id', '=', ws)
        .where('purged_at', 'is', null)
        .execute(),
    )
    out.push({ workspaceId: ws, rows })
  }
  return out
}
