import { randomBytes, randomUUID } from 'node:crypto'
import { type Binding, open, seal } from '../crypto/envelope.js'
import { NotFoundError, ValidationError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from '../vault/data-keys.js'
import { isWebhookEvent, type WebhookEvent } from './events.js'

// A workspace's webhook endpoints. The signing secret (Standard Webhooks: `whsec_` and 32
// random bytes in base64) is returned once, when made or rotated, and kept only sealed under
// the workspace's integration key, bound to its workspace, endpoint and version. A rotation
// keeps the previous secret for an overlap during which messages carry both signatures.

export const MAX_ENDPOINTS_PER_WORKSPACE = 50
const SECRET_PREFIX = 'whsec_'

/** An endpoint as the API shows it (never the secret). */
export interface WebhookEndpoint {
  readonly id: string
  readonly url: string
  readonly events: WebhookEvent[]
  readonly description: string
  readonly secretVersion: number
  /** Until when the previous secret still signs (ISO time), after a rotation. */
  readonly previousSecretUntil: string | null
  readonly enabled: boolean
  readonly disabledAt: string | null
  readonly disabledReason: string | null
  readonly failingSince: string | null
  readonly createdAt: string
  readonly createdBy: string
}

type Row = {
  id: string
  url: string
  events: string
  description: string
  secret_version: number
  previous_until: string | null
  disabled_at: string | null
  disabled_reason: string | null
  failing_since: string | null
  created_at: string
  created_by: string
}

const COLUMNS = [
  'id',
  'url',
  'events',
  'description',
  'secret_version',
  'previous_until',
  'disabled_at',
  'disabled_reason',
  'failing_since',
  'created_at',
  'created_by',
] as const

function endpointOf(r: Row): WebhookEndpoint {
  return {
    id: r.id,
    url: r.url,
    events: (JSON.parse(r.events) as string[]).filter(isWebhookEvent),
    description: r.description,
    secretVersion: Number(r.secret_version),
    previousSecretUntil: r.previous_until,
    enabled: r.disabled_at === null,
    disabledAt: r.disabled_at,
    disabledReason: r.disabled_reason,
    failingSince: r.failing_since,
    createdAt: r.created_at,
    createdBy: r.created_by,
  }
}

function binding(workspaceId: string, endpointId: string, version: number): Binding {
  return { workspaceId, projectId: '', environmentId: '', recordId: endpointId, recordVersion: version, field: 'webhook.signing_secret' }
}

function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64')
}

/** The events of a request, checked and without repeats. */
export function checkedEvents(events: readonly string[]): WebhookEvent[] {
  const bad = events.filter((e) => !isWebhookEvent(e))
  if (bad.length)
    throw new ValidationError(`Unknown webhook event: ${bad.slice(0, 3).join(', ')}`, [{ path: 'body.events', message: 'unknown event' }])
  return [...new Set(events)] as WebhookEvent[]
}

/** Makes an endpoint; returns it with its signing secret (shown once). */
export async function createEndpoint(
  db: Executor,
  keys: DataKeys,
  input: { workspaceId: string; url: string; events: readonly string[]; description: string; createdBy: string; now: Date },
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const events = checkedEvents(input.events)
  if (events.length === 0) throw new ValidationError('Choose at least one event.', [{ path: 'body.events', message: 'empty' }])
  const count = await db
    .selectFrom('webhook_endpoints')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('workspace_id', '=', input.workspaceId)
    .executeTakeFirstOrThrow()
  if (Number(count.n) >= MAX_ENDPOINTS_PER_WORKSPACE)
    throw new ValidationError(`A workspace has at most ${MAX_ENDPOINTS_PER_WORKSPACE} webhook endpoints.`)
  const id = randomUUID()
  const secret = newSecret()
  const key = await keys.integrationKey(db, input.workspaceId)
  const head = await db.selectFrom('audit_heads').select('seq').where('workspace_id', '=', input.workspaceId).executeTakeFirst()
  const fromSeq = Number(head?.seq ?? 0)
  const row: Row = {
    id,
    url: input.url,
    events: JSON.stringify(events),
    description: input.description,
    secret_version: 1,
    previous_until: null,
    disabled_at: null,
    disabled_reason: null,
    failing_since: null,
    created_at: input.now.toISOString(),
    created_by: input.createdBy,
  }
  await db
    .insertInto('webhook_endpoints')
    .values({
      ...row,
      workspace_id: input.workspaceId,
      from_seq: fromSeq,
      secret_ct: seal(key, Buffer.from(secret), binding(input.workspaceId, id, 1)),
    })
    .execute()
  // The first endpoint of a workspace starts its cursor at the log's current end: history is
  // not replayed (and a later endpoint gets only events after its own from_seq).
  await db
    .insertInto('webhook_cursors')
    .values({ workspace_id: input.workspaceId, seq: fromSeq })
    .onConflict((oc) => oc.column('workspace_id').doNothing())
    .execute()
  return { endpoint: endpointOf(row), secret }
}

export async function listEndpoints(db: Executor, workspaceId: string): Promise<WebhookEndpoint[]> {
  const rows = await db
    .selectFrom('webhook_endpoints')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .orderBy('created_at')
    .execute()
  return rows.map(endpointOf)
}

/** The endpoint, or ERR_NOT_FOUND (another workspace's id included). */
export async function findEndpoint(db: Executor, workspaceId: string, id: string): Promise<WebhookEndpoint> {
  const q = db.selectFrom('webhook_endpoints').select(COLUMNS).where('workspace_id', '=', workspaceId).where('id', '=', id)
  const row = await q.executeTakeFirst()
  if (!row) throw new NotFoundError('webhook endpoint')
  return endpointOf(row)
}

/** Deletes the endpoint and its delivery log. */
export async function deleteEndpoint(db: Executor, workspaceId: string, id: string): Promise<WebhookEndpoint> {
  const e = await findEndpoint(db, workspaceId, id)
  await db.deleteFrom('webhook_deliveries').where('workspace_id', '=', workspaceId).where('endpoint_id', '=', id).execute()
  await db.deleteFrom('webhook_endpoints').where('workspace_id', '=', workspaceId).where('id', '=', id).execute()
  return e
}

/**
 * A new signing secret (returned once); the current one keeps signing, beside it, for
 * `overlapMs` (0 ends it at once).
 */
export async function rotateSecret(
  db: Executor,
  keys: DataKeys,
  workspaceId: string,
  id: string,
  overlapMs: number,
  now: Date,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const current = await db
    .selectFrom('webhook_endpoints')
    .select(['secret_version', 'secret_ct'])
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!current) throw new NotFoundError('webhook endpoint')
  const version = Number(current.secret_version) + 1
  const secret = newSecret()
  const key = await keys.integrationKey(db, workspaceId)
  await db
    .updateTable('webhook_endpoints')
    .set({
      secret_version: version,
      secret_ct: seal(key, Buffer.from(secret), binding(workspaceId, id, version)),
      previous_secret_version: overlapMs > 0 ? Number(current.secret_version) : null,
      previous_secret_ct: overlapMs > 0 ? current.secret_ct : null,
      previous_until: overlapMs > 0 ? new Date(now.getTime() + overlapMs).toISOString() : null,
    })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .execute()
  return { endpoint: await findEndpoint(db, workspaceId, id), secret }
}

/** Enables a disabled endpoint again (its failures forgotten). */
export async function enableEndpoint(db: Executor, workspaceId: string, id: string): Promise<WebhookEndpoint> {
  await findEndpoint(db, workspaceId, id)
  await db
    .updateTable('webhook_endpoints')
    .set({ disabled_at: null, disabled_reason: null, failing_since: null })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .execute()
  return findEndpoint(db, workspaceId, id)
}

/** What a delivery needs of its endpoint: where, and the secrets that sign now (current first). */
export interface SigningEndpoint {
  readonly id: string
  readonly url: string
  readonly disabled: boolean
  readonly failingSince: string | null
  readonly secrets: string[]
}

/** The endpoint's URL and signing secrets, opened; undefined when it is gone. */
export async function signingEndpoint(
  db: Executor,
  keys: DataKeys,
  workspaceId: string,
  id: string,
  now: Date,
): Promise<SigningEndpoint | undefined> {
  const r = await db
    .selectFrom('webhook_endpoints')
    .select([
      'id',
      'url',
      'disabled_at',
      'failing_since',
      'secret_version',
      'secret_ct',
      'previous_secret_version',
      'previous_secret_ct',
      'previous_until',
    ])
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!r) return undefined
  const key = await keys.integrationKey(db, workspaceId)
  const secrets = [open(key, r.secret_ct, binding(workspaceId, id, Number(r.secret_version))).toString()]
  if (r.previous_secret_ct && r.previous_secret_version !== null && r.previous_until !== null && r.previous_until > now.toISOString())
    secrets.push(open(key, r.previous_secret_ct, binding(workspaceId, id, Number(r.previous_secret_version))).toString())
  return { id: r.id, url: r.url, disabled: r.disabled_at !== null, failingSince: r.failing_since, secrets }
}

/** A message and its delivery state, as the API shows it. */
export interface DeliveryView {
  readonly id: string
  readonly webhookId: string
  readonly event: WebhookEvent
  readonly status: 'pending' | 'delivered' | 'failed'
  readonly attempts: number
  readonly nextAttemptAt: string | null
  readonly lastStatus: number | null
  readonly lastError: string | null
  readonly lastLatencyMs: number | null
  readonly lastAttemptAt: string | null
  readonly deliveredAt: string | null
  readonly createdAt: string
  readonly payload: unknown
}

const DELIVERY_COLUMNS = [
  'id',
  'endpoint_id',
  'event',
  'status',
  'attempts',
  'next_attempt_at',
  'last_status',
  'last_error',
  'last_latency_ms',
  'last_attempt_at',
  'delivered_at',
  'created_at',
  'payload',
] as const

function deliveryOf(r: {
  id: string
  endpoint_id: string
  event: string
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  next_attempt_at: string
  last_status: number | null
  last_error: string | null
  last_latency_ms: number | null
  last_attempt_at: string | null
  delivered_at: string | null
  created_at: string
  payload: string
}): DeliveryView {
  return {
    id: r.id,
    webhookId: r.endpoint_id,
    event: r.event as WebhookEvent,
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
    lastStatus: r.last_status === null ? null : Number(r.last_status),
    lastError: r.last_error,
    lastLatencyMs: r.last_latency_ms === null ? null : Number(r.last_latency_ms),
    lastAttemptAt: r.last_attempt_at,
    deliveredAt: r.delivered_at,
    createdAt: r.created_at,
    payload: JSON.parse(r.payload) as unknown,
  }
}

/** An endpoint's newest messages first. */
export async function listDeliveries(db: Executor, workspaceId: string, endpointId: string, limit: number): Promise<DeliveryView[]> {
  await findEndpoint(db, workspaceId, endpointId)
  const rows = await db
    .selectFrom('webhook_deliveries')
    .select(DELIVERY_COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .where('endpoint_id', '=', endpointId)
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .limit(limit)
    .execute()
  return rows.map(deliveryOf)
}

export async function findDelivery(db: Executor, workspaceId: string, id: string): Promise<DeliveryView> {
  const r = await db
    .selectFrom('webhook_deliveries')
    .select(DELIVERY_COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('webhook delivery')
  return deliveryOf(r)
}

/**
 * Sends a message again by hand, with the same webhook-id (receivers deduplicate on it) and a
 * fresh schedule of attempts. A message still being attempted is left as it is.
 */
export async function redeliver(db: Executor, workspaceId: string, id: string, now: Date): Promise<DeliveryView> {
  const d = await findDelivery(db, workspaceId, id)
  const e = await findEndpoint(db, workspaceId, d.webhookId)
  if (!e.enabled) throw new ValidationError('The endpoint is disabled; enable it first (coffer webhooks enable).')
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', attempts: 0, next_attempt_at: now.toISOString(), delivered_at: null, lease_holder: null, lease_until: null })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .execute()
  return findDelivery(db, workspaceId, id)
}
