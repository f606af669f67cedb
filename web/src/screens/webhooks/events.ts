import type { WebhookView } from '../../api.js'

/** A webhook event's name (docs/webhooks.md); the API's own list, as a type. */
export type WebhookEvent = WebhookView['events'][number]

/**
 * The documented events with what each means, in the order of docs/webhooks.md. The dashboard
 * may not import the API's list at run time; the check below fails to compile if one is missing.
 */
export const WEBHOOK_EVENTS = [
  { name: 'secret.created', what: 'a secret’s first version is written' },
  { name: 'secret.updated', what: 'a new version of an existing secret (write, rollback, restore)' },
  { name: 'secret.deleted', what: 'a secret is deleted (restorable)' },
  { name: 'key.rotated', what: 'an environment’s data key gets a new primary version' },
  { name: 'reseal.finished', what: 'older values were resealed under the primary key' },
  { name: 'reseal.failed', what: 'a reseal stopped on a row it could not read' },
  { name: 'audit.integrity_broken', what: 'the periodic verification found the audit log broken' },
  { name: 'breakglass.requested', what: 'someone asked for access to a sealed environment' },
  { name: 'breakglass.approved', what: 'an Owner or Admin approved a break-glass request' },
  { name: 'member.added', what: 'someone joined the workspace' },
  { name: 'member.role_changed', what: 'a member’s workspace role changed' },
  { name: 'member.removed', what: 'a member was removed or left' },
] as const satisfies ReadonlyArray<{ name: WebhookEvent; what: string }>

// `webhook.test` is sent by "Send test" whatever the endpoint chose, so it is not offered.
type Offered = (typeof WEBHOOK_EVENTS)[number]['name'] | 'webhook.test'
const everyEventOffered: Exclude<WebhookEvent, Offered> extends never ? true : false = true
void everyEventOffered
