import { keyRefOf, open, seal, type Binding } from '../crypto/envelope.js'
import type { DataKeyScope } from '../crypto/key-provider.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from './data-keys.js'

// The sealed proposal of a change request (migration 14): the operations of a write to a
// protected environment, encrypted under that environment's data key like a secret value and
// bound (AAD) to the request's id, so a payload copied to another request, field or scope
// fails to open. Kept here, beside the data keys, because a key rotation's resealer must
// re-encrypt pending proposals before it may retire the old key version.

const FIELD = 'change_request'

function binding(scope: DataKeyScope, requestId: string): Binding {
  return { ...scope, recordId: requestId, recordVersion: 1, field: FIELD }
}

/** Seals `plain` for request `requestId` under the scope's primary key; answers the ciphertext and the key version used. */
export async function sealProposal(
  tx: Executor,
  dataKeys: DataKeys,
  scope: DataKeyScope,
  requestId: string,
  plain: Buffer,
): Promise<{ ct: Buffer; dekId: string; dekVersion: number }> {
  const dek = await dataKeys.forWrite(tx, scope, 1)
  return { ct: seal(dek, plain, binding(scope, requestId)), dekId: dek.id, dekVersion: dek.version }
}

/** Opens a proposal sealed by sealProposal (with the exact key version its header names). */
export async function openProposal(db: Executor, dataKeys: DataKeys, scope: DataKeyScope, requestId: string, ct: Buffer): Promise<Buffer> {
  const dek = await dataKeys.byRef(db, keyRefOf(ct), scope)
  return open(dek, ct, binding(scope, requestId))
}

/**
 * Re-encrypts, under the scope's primary key, every pending proposal of the scope sealed under
 * a version of `dekId` older than `below`, so that the rotation can retire that version.
 * Answers how many it resealed.
 */
export async function resealProposals(
  tx: Executor,
  dataKeys: DataKeys,
  scope: DataKeyScope,
  dekId: string,
  below: number,
): Promise<number> {
  const rows = await tx
    .selectFrom('change_requests')
    .select(['id', 'payload_ct'])
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('dek_id', '=', dekId)
    .where('dek_version', '<', below)
    .where('payload_ct', 'is not', null)
    .execute()
  for (const r of rows) {
    const plain = await openProposal(tx, dataKeys, scope, r.id, Buffer.from(r.payload_ct!))
    const s = await sealProposal(tx, dataKeys, scope, r.id, plain)
    plain.fill(0)
    await tx
      .updateTable('change_requests')
      .set({ payload_ct: s.ct, dek_id: s.dekId, dek_version: s.dekVersion })
      .where('id', '=', r.id)
      .execute()
  }
  return rows.length
}
