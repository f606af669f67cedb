import { z } from 'zod'

/** An audit entry as the API shows it, with its hashes in hex, for independent verification. */
export const auditEntryView = z.object({
  workspaceId: z.string(),
  seq: z.number(),
  id: z.string(),
  time: z.string(),
  actor: z.object({ type: z.string(), id: z.string(), ip: z.string(), userAgent: z.string() }),
  requestId: z.string(),
  action: z.string(),
  target: z.object({ type: z.string(), id: z.string() }),
  details: z.string().describe('canonical JSON'),
  prevHash: z.string().describe('hex'),
  hash: z.string().describe('hex'),
})
export type AuditEntry = z.infer<typeof auditEntryView>

/** A signed checkpoint of a workspace's audit tree. */
export const auditCheckpointView = z.object({
  treeSize: z.number(),
  rootHash: z.string().describe('base64'),
  note: z.string().describe('C2SP signed-note checkpoint'),
  createdAt: z.string(),
})
export type AuditCheckpoint = z.infer<typeof auditCheckpointView>

/** GET /v1/workspaces/:workspace/audit/entries: a page in chain order; `next` is the `after` of the next page, null at the end. */
export const auditEntriesResponse = z.object({ entries: z.array(auditEntryView), next: z.number().nullable() })
export type AuditEntries = z.infer<typeof auditEntriesResponse>

/** GET /v1/workspaces/:workspace/audit/checkpoint: the newest checkpoint (null before the first) and the key that signs them. */
export const latestCheckpointResponse = z.object({ checkpoint: auditCheckpointView.nullable(), publicKey: z.string() })
export type LatestCheckpoint = z.infer<typeof latestCheckpointResponse>

/** POST /v1/workspaces/:workspace/audit/checkpoints */
export const issuedCheckpointResponse = z.object({ checkpoint: auditCheckpointView, publicKey: z.string() })
export type IssuedCheckpoint = z.infer<typeof issuedCheckpointResponse>

/** GET /v1/workspaces/:workspace/audit/proofs/inclusion: an RFC 9162 inclusion proof. */
export const inclusionProofResponse = z.object({
  entry: auditEntryView,
  leafIndex: z.number(),
  treeSize: z.number(),
  leafHash: z.string(),
  proof: z.array(z.string()),
  rootHash: z.string(),
})
export type InclusionProof = z.infer<typeof inclusionProofResponse>

/** GET /v1/workspaces/:workspace/audit/proofs/consistency: an RFC 9162 consistency proof. */
export const consistencyProofResponse = z.object({
  from: z.number(),
  to: z.number(),
  proof: z.array(z.string()),
  fromRoot: z.string(),
  toRoot: z.string(),
})
export type ConsistencyProof = z.infer<typeof consistencyProofResponse>

/** GET /v1/audit/public-key (no token needed): the key that signs audit checkpoints. */
export const auditPublicKeyResponse = z.object({ publicKey: z.string(), algorithm: z.literal('Ed25519'), format: z.string() })
export type AuditPublicKey = z.infer<typeof auditPublicKeyResponse>

/** A tree head: size and RFC 9162 root (base64). */
const treeHeadView = z.object({ treeSize: z.number(), rootHash: z.string().describe('base64') })

/** A signed restore record: the workspace's log was put back to `restoredTo` from a backup. */
export const restoreRecordView = z.object({
  workspaceId: z.string(),
  backupId: z.string(),
  backupCreatedAt: z.string(),
  restoredAt: z.string(),
  restoredTo: treeHeadView,
  replaced: treeHeadView.nullable(),
  replacedCheckpoints: z.array(treeHeadView),
  note: z.string().describe('C2SP signed note by the checkpoint key; only its signed text counts'),
})
export type RestoreRecordView = z.infer<typeof restoreRecordView>

/** GET /v1/workspaces/:workspace/audit/restores: every restore of the workspace's log, oldest first. */
export const auditRestoresResponse = z.object({ restores: z.array(restoreRecordView) })
export type AuditRestores = z.infer<typeof auditRestoresResponse>
