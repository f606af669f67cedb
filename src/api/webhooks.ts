import { z } from 'zod'

// Outbound webhooks (docs/webhooks.md). The event names are the contract.

export const WEBHOOK_EVENT_NAMES = [
  'secret.created',
  'secret.updated',
  'secret.deleted',
  'key.rotated',
  'reseal.finished',
  'reseal.failed',
  'audit.integrity_broken',
  'breakglass.requested',
  'breakglass.approved',
  'member.added',
  'member.role_changed',
  'member.removed',
  'webhook.test',
] as const

/** An endpoint as the API shows it: never its signing secret. */
export const webhookView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_NAMES)),
  description: z.string(),
  secretVersion: z.number().int(),
  previousSecretUntil: z.string().nullable(),
  enabled: z.boolean(),
  disabledAt: z.string().nullable(),
  disabledReason: z.string().nullable(),
  failingSince: z.string().nullable(),
  createdAt: z.string(),
  createdBy: z.string(),
})
export type WebhookView = z.infer<typeof webhookView>

/** POST /v1/workspaces/:workspace/webhooks */
export const createWebhookBody = z.strictObject({
  url: z.string().min(1).max(2048),
  events: z.array(z.enum(WEBHOOK_EVENT_NAMES)).min(1).max(WEBHOOK_EVENT_NAMES.length),
  description: z.string().max(500).optional(),
})

/** The endpoint and its signing secret: shown once, when made or rotated. */
export const webhookWithSecretResponse = z.object({ webhook: webhookView, secret: z.string() })
export const webhookResponse = z.object({ webhook: webhookView })
export const webhookListResponse = z.object({ webhooks: z.array(webhookView) })

/** POST …/webhooks/:webhook/rotate-secret: how long the previous secret keeps signing beside the new one. */
export const rotateWebhookSecretBody = z.strictObject({ overlapHours: z.number().min(0).max(168).optional() })

/** One message to one endpoint and its delivery state (the payload names keys and versions, never values). */
export const webhookDeliveryView = z.object({
  id: z.string(),
  webhookId: z.string(),
  event: z.enum(WEBHOOK_EVENT_NAMES),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  nextAttemptAt: z.string().nullable(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  lastLatencyMs: z.number().int().nullable(),
  lastAttemptAt: z.string().nullable(),
  deliveredAt: z.string().nullable(),
  createdAt: z.string(),
  payload: z.unknown(),
})
export type WebhookDeliveryView = z.infer<typeof webhookDeliveryView>
export const webhookDeliveriesResponse = z.object({ deliveries: z.array(webhookDeliveryView) })
export const webhookDeliveryResponse = z.object({ delivery: webhookDeliveryView })
