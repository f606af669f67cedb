import { z } from 'zod'
import { ref } from './fields.js'
import { MAX_REASON_LENGTH } from './limits.js'
import { BREAK_GLASS_ACCESS } from './roles.js'

const person = z.object({ id: z.string(), email: z.string() })

/** A break-glass request and, once approved, its grant. */
export const breakGlassRequestView = z.object({
  id: z.string(),
  status: z.enum(['pending', 'active', 'expired', 'denied', 'revoked']),
  requester: person,
  project: z.object({ id: z.string(), slug: z.string() }),
  environment: z.object({ id: z.string(), slug: z.string() }),
  access: z.enum(BREAK_GLASS_ACCESS),
  reason: z.string(),
  durationMinutes: z.number(),
  approvalsRequired: z.number(),
  approvals: z.number(),
  decisions: z.array(z.object({ user: person, decision: z.enum(['approve', 'deny']), comment: z.string().nullable(), at: z.string() })),
  createdAt: z.string(),
  activatedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  endedBy: z.string().nullable(),
})
export type BreakGlassRequest = z.infer<typeof breakGlassRequestView>

/** GET /v1/workspaces/:workspace/break-glass */
export const breakGlassListResponse = z.object({ requests: z.array(breakGlassRequestView) })
export type BreakGlassList = z.infer<typeof breakGlassListResponse>

/** POST /v1/workspaces/:workspace/break-glass */
export const breakGlassRequestBody = z.strictObject({
  project: ref,
  environment: ref,
  access: z.enum(BREAK_GLASS_ACCESS),
  reason: z.string().trim().min(1).max(MAX_REASON_LENGTH),
  durationMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60),
})
export type BreakGlassRequestInput = z.input<typeof breakGlassRequestBody>

/** POST …/break-glass/:request/approve and …/deny */
export const breakGlassDecisionBody = z.strictObject({ comment: z.string().trim().max(500).optional() })
export type BreakGlassDecisionInput = z.input<typeof breakGlassDecisionBody>

/** One request (asking, showing, deciding or revoking one answers it). */
export const breakGlassRequestResponse = z.object({ request: breakGlassRequestView })
export type BreakGlassRequestAnswer = z.infer<typeof breakGlassRequestResponse>

/** PUT …/environments/:environment/seal */
export const sealBody = z.strictObject({ sealed: z.boolean() })
export type SealInput = z.input<typeof sealBody>

export const sealResponse = z.object({ environment: z.object({ id: z.string(), projectId: z.string(), sealed: z.boolean() }) })
export type SealAnswer = z.infer<typeof sealResponse>
