import { z } from 'zod'
import { ref } from './fields.js'

const person = z.object({ id: z.string(), email: z.string() })

/** One proposed change to a key, against the version the key had when it was proposed (0: absent). */
export const changeView = z.object({
  key: z.string(),
  op: z.enum(['set', 'delete', 'rollback']),
  baseVersion: z.number(),
  toVersion: z.number().optional().describe('rollback: the version whose value is copied'),
  value: z.string().optional().describe('only when revealed by a reader who may reveal the environment (audited)'),
  comment: z.string().nullable().optional(),
})

/** A write to a protected environment, waiting for (or past) its approvals. */
export const changeRequestView = z.object({
  id: z.string(),
  status: z.enum(['pending', 'applied', 'rejected', 'stale', 'expired']),
  kind: z.enum(['set', 'bulk', 'delete', 'rollback', 'apply', 'promote']),
  requester: z.object({ id: z.string(), email: z.string().nullable() }),
  project: z.object({ id: z.string(), slug: z.string() }),
  environment: z.object({ id: z.string(), slug: z.string() }),
  source: z.object({ projectId: z.string(), environmentId: z.string() }).nullable(),
  changes: z.array(changeView),
  revealed: z.boolean(),
  approvalsRequired: z.number(),
  approvals: z.number(),
  decisions: z.array(z.object({ user: person, decision: z.enum(['approve', 'reject']), comment: z.string().nullable(), at: z.string() })),
  createdAt: z.string(),
  expiresAt: z.string(),
  endedAt: z.string().nullable(),
  endedBy: z.string().nullable(),
  outcome: z.string().nullable().describe('stale: which keys moved since the request was made'),
})
export type ChangeRequest = z.infer<typeof changeRequestView>

/** One change request (proposing, showing or deciding one answers it; a write to a protected environment answers it with 202). */
export const changeRequestResponse = z.object({ changeRequest: changeRequestView })
export type ChangeRequestAnswer = z.infer<typeof changeRequestResponse>

/** GET /v1/workspaces/:workspace/change-requests */
export const changeRequestListResponse = z.object({ changeRequests: z.array(changeRequestView) })
export type ChangeRequestList = z.infer<typeof changeRequestListResponse>

/** POST …/change-requests/:request/approve and …/reject */
export const changeDecisionBody = z.strictObject({ comment: z.string().trim().max(500).optional() })
export type ChangeDecisionInput = z.input<typeof changeDecisionBody>

/** PUT …/environments/:environment/protection */
export const protectionBody = z.strictObject({
  approvals: z
    .number()
    .int()
    .min(0)
    .max(10)
    .describe('approvals each change request needs from other Owners/Admins; 0 lifts the protection'),
})
export type ProtectionInput = z.input<typeof protectionBody>

export const protectionResponse = z.object({
  environment: z.object({ id: z.string(), projectId: z.string(), changeApprovals: z.number() }),
})
export type ProtectionAnswer = z.infer<typeof protectionResponse>

export const changeRequestParams = z.strictObject({ workspace: ref, request: z.uuid() })
