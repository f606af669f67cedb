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

/** An entry queued and not yet integrated into the chain: no seq or hashes yet. */
export const pendingAuditEntryView = auditEntryView.omit({ seq: true, prevHash: true, hash: true })
export type PendingAuditEntry = z.infer<typeof pendingAuditEntryView>

/**
 * The entries queued for the chain and not yet integrated (the sequencer integrates them within
 * the merge delay): how many, the oldest's time, and — on the last page of a listing — up to 100
 * of them in queue order. They are durable but not yet covered by the chain or any checkpoint.
 */
export const pendingAuditView = z.object({
  count: z.number(),
  oldest: z.string().nullable(),
  entries: z.array(pendingAuditEntryView).optional(),
})
export type PendingAudit = z.infer<typeof pendingAuditView>

/**
 * GET /v1/workspaces/:workspace/audit/entries: a page in chain order; `next` is the `after` of the next page (with
 * `order=desc`, its `before`), null at the end.
 */
export const auditEntriesResponse = z.object({
  entries: z.array(auditEntryView),
  next: z.number().nullable(),
  pending: pendingAuditView.optional().describe('entries not yet integrated into the chain (on the last page)'),
})
export type AuditEntries = z.infer<typeof auditEntriesResponse>

/** An audit action to filter on: one action (`secret.reveal`) or every action under a prefix (`secret.*`). */
const actionFilter = z
  .string()
  .max(64)
  .regex(/^[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?$/, 'an action such as secret.reveal, or a prefix such as secret.*')

/**
 * Narrowing filters of the audit log (GET …/audit/entries and …/audit/activity). Each only
 * narrows the workspace's own log; all given must match. Times are ISO 8601 (UTC); `since`
 * is inclusive and `until` exclusive.
 */
export const auditFilterQuery = z.strictObject({
  actor: z.string().min(1).max(200).optional().describe("the actor's id (a user, token or machine id)"),
  action: actionFilter.optional(),
  targetType: z.string().min(1).max(64).optional(),
  target: z.string().min(1).max(200).optional().describe("the target's id"),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
})
export type AuditFilter = z.input<typeof auditFilterQuery>

/**
 * GET /v1/workspaces/:workspace/audit/entries: `after` and `limit` page in chain order as
 * before; `order=desc` pages newest first, `before` (exclusive) then being where the next page
 * starts. The filters narrow either.
 */
export const auditEntriesQuery = auditFilterQuery.extend({
  after: z.coerce.number().int().min(0).default(0),
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
  order: z.enum(['asc', 'desc']).default('asc'),
})
/** The query as a client sends it (every field optional). */
export type AuditEntriesQuery = Partial<z.output<typeof auditEntriesQuery>>

/** GET /v1/workspaces/:workspace/audit/activity: entries per UTC day, every day of the range (at most 366). */
export const auditActivityQuery = auditFilterQuery.extend({
  days: z.coerce.number().int().min(1).max(366).default(30).describe('how many days up to `until` (default: up to and including today)'),
})
export type AuditActivityQuery = Partial<z.output<typeof auditActivityQuery>>

export const auditActivityResponse = z.object({
  since: z.string(),
  until: z.string(),
  days: z.array(z.object({ day: z.string().describe('YYYY-MM-DD (UTC)'), count: z.number() })),
})
export type AuditActivity = z.infer<typeof auditActivityResponse>

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
