import { WEBHOOK_EVENT_NAMES } from '../api/webhooks.js'
import type { AuditAction } from '../audit/actions.js'

// The events a webhook endpoint can subscribe to, and how each is made from an integrated
// audit entry. A payload carries names, keys and versions — never a value, a fingerprint of
// one, a token or a key — and only the details listed here for its event.

export const WEBHOOK_EVENTS = WEBHOOK_EVENT_NAMES

export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number]

/** Audit actions that become an event, and the entry details the payload may carry (renamed where the API names them otherwise). */
const FROM_AUDIT: Partial<Record<AuditAction, { event: WebhookEvent; details: Readonly<Record<string, string>> }>> = {
  'secret.create': { event: 'secret.created', details: { key: 'key', toVersion: 'version' } },
  'secret.update': { event: 'secret.updated', details: { key: 'key', fromVersion: 'previousVersion', toVersion: 'version' } },
  'secret.restore': { event: 'secret.updated', details: { key: 'key', fromVersion: 'previousVersion', toVersion: 'version' } },
  'secret.rollback': { event: 'secret.updated', details: { key: 'key', fromVersion: 'previousVersion', toVersion: 'version' } },
  'secret.delete': { event: 'secret.deleted', details: { key: 'key', fromVersion: 'previousVersion', toVersion: 'version' } },
  'key.rotated': { event: 'key.rotated', details: { version: 'version', previousVersion: 'previousVersion', reason: 'reason' } },
  'key.resealed': {
    event: 'reseal.finished',
    details: { version: 'version', resealed: 'resealed', destroyedVersions: 'destroyedVersions' },
  },
  'key.reseal_failed': { event: 'reseal.failed', details: { version: 'version' } },
  'breakglass.request': {
    event: 'breakglass.requested',
    details: { reason: 'reason', durationMinutes: 'durationMinutes', approvalsRequired: 'approvalsRequired' },
  },
  'breakglass.approve': { event: 'breakglass.approved', details: {} },
  'member.add': { event: 'member.added', details: { email: 'email', role: 'role' } },
  'member.role_change': { event: 'member.role_changed', details: { email: 'email', from: 'from', to: 'to', role: 'role' } },
  'member.remove': { event: 'member.removed', details: { email: 'email', role: 'role' } },
  'member.leave': { event: 'member.removed', details: { email: 'email', role: 'role' } },
}

/** Audit actions that make an event (for the dispatcher's query). */
export const EVENT_ACTIONS: readonly string[] = Object.keys(FROM_AUDIT)

export function isWebhookEvent(name: string): name is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly string[]).includes(name)
}

/** An integrated audit entry, as the dispatcher reads it. */
export interface EntryForEvent {
  readonly seq: number
  readonly id: string
  readonly time: string
  readonly action: string
  readonly actorType: string
  readonly actorId: string
  readonly targetType: string
  readonly targetId: string
  readonly details: Readonly<Record<string, unknown>>
}

/** Where a secret or environment lives, by slug (resolved by the dispatcher). */
export interface Place {
  readonly project: string
  readonly environment: string
}

/** The event and its `data` for an entry, or undefined when the action makes none. */
export function eventOf(
  entry: EntryForEvent,
  place: Place | undefined,
): { event: WebhookEvent; data: Record<string, unknown> } | undefined {
  const rule = FROM_AUDIT[entry.action as AuditAction]
  if (!rule) return undefined
  const data: Record<string, unknown> = {
    ...(place ? { project: place.project, environment: place.environment } : {}),
    target: { type: entry.targetType, id: entry.targetId },
    actor: { type: entry.actorType, id: entry.actorId },
    audit: { seq: entry.seq, id: entry.id },
  }
  for (const [from, to] of Object.entries(rule.details)) {
    const v = entry.details[from]
    // Only the details listed for the event (never `before`/`after`, whose fingerprints stay in the log), and only plain values.
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') data[to] = v
    else if (Array.isArray(v) && v.every((x) => typeof x === 'number' || typeof x === 'string')) data[to] = v
  }
  return { event: rule.event, data }
}

/** The JSON body of a message (Standard Webhooks' recommended shape). */
export function payloadOf(
  event: WebhookEvent,
  timestamp: string,
  workspace: { id: string; slug: string },
  data: Record<string, unknown>,
): string {
  return JSON.stringify({ type: event, timestamp, workspace: { id: workspace.id, slug: workspace.slug }, data })
}
