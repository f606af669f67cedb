import { createHmac } from 'node:crypto'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from '../vault/data-keys.js'

// A workspace's AWS external ID: what a customer's role trust policy requires (the
// `sts:ExternalId` condition) so that no other Coffer customer can make Coffer assume it (the
// confused-deputy problem). It is derived, never stored: HMAC-SHA256 of the workspace's
// integration key (itself derived from the workspace's wrapped fingerprint key) over a label
// and a version. Unguessable without the root key; a rotation bumps the version, and the old
// ID is never sent to STS again.

/** The external ID of a workspace and its version. */
export interface ExternalId {
  readonly externalId: string
  readonly version: number
  /** When it was last rotated; null for the first one. */
  readonly rotatedAt: string | null
}

async function derive(db: Executor, keys: DataKeys, workspaceId: string, version: number): Promise<string> {
  const key = await keys.integrationKey(db, workspaceId)
  const mac = createHmac('sha256', key.key).update(`coffer/aws-external-id/v1/${version}`).digest()
  // 160 bits in hex: within STS's alphabet ([\w+=,.@:/-]) and length (2 to 1224).
  return `coffer-${mac.subarray(0, 20).toString('hex')}`
}

/** The workspace's current external ID (version 1 until the first rotation). */
export async function currentExternalId(db: Executor, keys: DataKeys, workspaceId: string): Promise<ExternalId> {
  const row = await db
    .selectFrom('aws_external_ids')
    .select(['version', 'rotated_at'])
    .where('workspace_id', '=', workspaceId)
    .executeTakeFirst()
  const version = row ? Number(row.version) : 1
  return { externalId: await derive(db, keys, workspaceId, version), version, rotatedAt: row?.rotated_at ?? null }
}

/** Makes a new external ID; the previous one is never used again for an AssumeRole. */
export async function rotateExternalId(
  db: Executor,
  keys: DataKeys,
  workspaceId: string,
  input: { by: string; now: Date },
): Promise<ExternalId & { previousVersion: number }> {
  const before = await db.selectFrom('aws_external_ids').select('version').where('workspace_id', '=', workspaceId).executeTakeFirst()
  const previousVersion = before ? Number(before.version) : 1
  const version = previousVersion + 1
  const at = input.now.toISOString()
  if (before)
    await db
      .updateTable('aws_external_ids')
      .set({ version, rotated_at: at, rotated_by: input.by })
      .where('workspace_id', '=', workspaceId)
      .execute()
  else
    await db.insertInto('aws_external_ids').values({ workspace_id: workspaceId, version, rotated_at: at, rotated_by: input.by }).execute()
  return { externalId: await derive(db, keys, workspaceId, version), version, rotatedAt: at, previousVersion }
}
