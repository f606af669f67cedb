import { AuditLog, type AuditActor } from '../audit/audit-log.js'
import { AuditTree } from '../audit/audit-tree.js'
import type { RestoreRecord, TreeHead } from '../audit/restore-record.js'
import type { KeyProvider } from '../crypto/key-provider.js'
import { BackupForeignError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { Engine } from '../storage/database.js'
import type { Executor } from '../storage/schema.js'
import { DataKeys } from '../vault/data-keys.js'
import type { BackupManifest } from './backup-file.js'

// Where restore records live: one meta row holding every record of the vault's life, oldest
// first, carried from the database a restore replaces into the one it restores (the restored
// copy may be older than some records). Each record is a signed note, so carrying them is
// safe: a record cannot be forged or altered without the checkpoint key.

/** The meta key of the restore records (JSON: RestoreRecord[]). */
export const RESTORE_RECORDS_META = 'audit_restore_records'

const MAX_CHECKPOINTS = 5000

const RESTORER: AuditActor = { type: 'system', id: 'backup-restore', ip: '', userAgent: 'coffer' }

/** Every restore record the database holds (none before the first restore). */
export async function loadRestoreRecords(db: Executor): Promise<RestoreRecord[]> {
  const row = await db.selectFrom('meta').select('value').where('key', '=', RESTORE_RECORDS_META).executeTakeFirst()
  if (!row) return []
  return JSON.parse(Buffer.from(row.value).toString('utf8')) as RestoreRecord[]
}

/** The restore records of one workspace, oldest first. */
export async function restoreRecordsOf(db: Executor, workspaceId: string): Promise<RestoreRecord[]> {
  return (await loadRestoreRecords(db)).filter((r) => r.workspaceId === workspaceId)
}

async function saveRestoreRecords(db: Executor, records: RestoreRecord[]): Promise<void> {
  const value = Buffer.from(JSON.stringify(records), 'utf8')
  await db
    .insertInto('meta')
    .values({ key: RESTORE_RECORDS_META, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute()
}

/**
 * In the restore's transaction, on the restored rows: checks that the root key opens them
 * and that their checkpoint key is the backup's, then for each live workspace signs a restore
 * record (restored to: the backup's tree head; replaced: the head the restore discarded) and
 * appends a `backup.restore` entry to its log. Keeps `carried` records (from the database
 * replaced) with those the restored rows already held.
 */
export async function recordRestore(
  tx: Executor,
  engine: Engine,
  provider: KeyProvider,
  clock: Clock,
  manifest: BackupManifest,
  replaced: Map<string, { head: TreeHead; checkpoints: TreeHead[] }>,
  carried: RestoreRecord[],
): Promise<RestoreRecord[]> {
  const dataKeys = new DataKeys(provider, { maxEntries: 1000, ttlMs: 60_000 }, clock)
  await dataKeys.checkRootKey(tx)
  const tree = new AuditTree(provider, clock)
  await tree.init(tx)
  if (tree.verifierKey !== manifest.signer.publicKey)
    throw new BackupForeignError("its data holds another checkpoint key than its manifest's")
  const audit = new AuditLog(engine, (db, ws) => dataKeys.fingerprintKey(db, ws), clock)
  const restoredAt = clock().toISOString()
  const live = await tx.selectFrom('workspaces').select('id').where('deleted_at', 'is', null).orderBy('id').execute()
  const made: RestoreRecord[] = []
  for (const { id } of live) {
    const head = await tree.head(tx, id)
    if (!head) continue
    const before = replaced.get(id) ?? null
    made.push(
      tree.signRestore({
        workspaceId: id,
        backupId: manifest.id,
        backupCreatedAt: manifest.createdAt,
        restoredAt,
        restoredTo: { treeSize: head.treeSize, rootHash: head.rootHash },
        replaced: before?.head ?? null,
        // The newest few thousand at most, so the signed note stays far below its size limit.
        replacedCheckpoints: (before?.checkpoints ?? []).filter((c) => c.treeSize > head.treeSize).slice(-MAX_CHECKPOINTS),
      }),
    )
    await audit.append(tx, id, RESTORER, `restore:${manifest.id}`, {
      action: 'backup.restore',
      target: { type: 'backup', id: manifest.id },
      details: {
        backupCreatedAt: manifest.createdAt,
        restoredTreeSize: head.treeSize,
        restoredRootHash: head.rootHash,
        replacedTreeSize: before?.head.treeSize ?? null,
        replacedRootHash: before?.head.rootHash ?? null,
      },
    })
  }
  const all = new Map<string, RestoreRecord>()
  for (const r of [...carried, ...(await loadRestoreRecords(tx)), ...made]) all.set(r.note, r)
  const records = [...all.values()].sort((a, b) => a.restoredAt.localeCompare(b.restoredAt))
  await saveRestoreRecords(tx, records)
  return made
}
