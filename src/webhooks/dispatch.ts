import { createHash, randomUUID } from 'node:crypto'
import type { Engine, Executor } from '../storage/database.js'
import { EVENT_ACTIONS, type EntryForEvent, eventOf, payloadOf, type Place, type WebhookEvent } from './events.js'

// From the integrated audit log to webhook messages. Per workspace, a cursor names the last
// entry looked at; one transaction reads the entries after it (up to the chain's head, only
// actions that make an event), queues one message per subscribed endpoint, and moves the
// cursor. Every event is thus queued exactly once per endpoint — a crash before COMMIT
// leaves the cursor where it was — and only once it is in the tamper-evident chain.
// Concurrent nodes meet on the cursor's row lock (PostgreSQL; SQLite has one writer).

const BATCH = 500

/**
 * Message ids: the `webhook-id` header, the same on every retry of a message. A message that
 * several nodes may queue for the same reason (an integrity break each one finds) gets an id
 * derived from that reason, and is queued once.
 */
function messageId(dedupe?: string): string {
  if (dedupe !== undefined) return `msg_${createHash('sha256').update(dedupe).digest('hex').slice(0, 32)}`
  return `msg_${randomUUID().replaceAll('-', '')}`
}

interface Subscriber {
  readonly id: string
  readonly events: ReadonlySet<string>
  readonly fromSeq: number
}

async function subscribers(db: Executor, workspaceId: string): Promise<Subscriber[]> {
  const rows = await db
    .selectFrom('webhook_endpoints')
    .select(['id', 'events', 'from_seq'])
    .where('workspace_id', '=', workspaceId)
    .where('disabled_at', 'is', null)
    .execute()
  return rows.map((r) => ({ id: r.id, events: new Set(JSON.parse(r.events) as string[]), fromSeq: Number(r.from_seq) }))
}

async function workspaceOf(db: Executor, workspaceId: string): Promise<{ id: string; slug: string }> {
  const w = await db.selectFrom('workspaces').select(['id', 'slug']).where('id', '=', workspaceId).executeTakeFirstOrThrow()
  return w
}

/** The project and environment slugs of the secrets and environments the entries name. */
async function placesOf(db: Executor, workspaceId: string, entries: readonly EntryForEvent[]): Promise<Map<string, Place>> {
  const places = new Map<string, Place>()
  const secretIds = [...new Set(entries.filter((e) => e.targetType === 'secret').map((e) => e.targetId))]
  const envIds = [...new Set(entries.filter((e) => e.targetType === 'environment').map((e) => e.targetId))]
  if (secretIds.length) {
    const rows = await db
      .selectFrom('secrets')
      .innerJoin('projects', 'projects.id', 'secrets.project_id')
      .innerJoin('environments', 'environments.id', 'secrets.environment_id')
      .select(['secrets.id as id', 'projects.slug as project', 'environments.slug as environment'])
      .where('secrets.workspace_id', '=', workspaceId)
      .where('secrets.id', 'in', secretIds)
      .execute()
    for (const r of rows) places.set(`secret:${r.id}`, { project: r.project, environment: r.environment })
  }
  if (envIds.length) {
    const rows = await db
      .selectFrom('environments')
      .innerJoin('projects', 'projects.id', 'environments.project_id')
      .select(['environments.id as id', 'projects.slug as project', 'environments.slug as environment'])
      .where('projects.workspace_id', '=', workspaceId)
      .where('environments.id', 'in', envIds)
      .execute()
    for (const r of rows) places.set(`environment:${r.id}`, { project: r.project, environment: r.environment })
  }
  return places
}

/** Queues one message per endpoint; the rows' shared fields. */
async function queue(
  db: Executor,
  workspaceId: string,
  endpoints: readonly string[],
  event: WebhookEvent,
  payload: string,
  auditSeq: number | null,
  now: string,
  dedupe?: string,
): Promise<string[]> {
  if (endpoints.length === 0) return []
  const rows = endpoints.map((endpointId) => ({
    id: messageId(dedupe === undefined ? undefined : `${workspaceId}/${endpointId}/${dedupe}`),
    workspace_id: workspaceId,
    endpoint_id: endpointId,
    event,
    payload,
    audit_seq: auditSeq,
    status: 'pending' as const,
    attempts: 0,
    next_attempt_at: now,
    last_status: null,
    last_error: null,
    last_latency_ms: null,
    last_attempt_at: null,
    delivered_at: null,
    lease_holder: null,
    lease_until: null,
    created_at: now,
  }))
  await db
    .insertInto('webhook_deliveries')
    .values(rows)
    .onConflict((oc) => oc.column('id').doNothing())
    .execute()
  return rows.map((r) => r.id)
}

/**
 * Turns the workspace's newly integrated audit entries into queued messages, in `tx` (a write
 * transaction in the workspace's scope); returns how many messages were queued and whether
 * more entries wait (the batch was full).
 */
export async function dispatchWorkspace(
  tx: Executor,
  engine: Engine,
  workspaceId: string,
  now: Date,
): Promise<{ queued: number; more: boolean }> {
  const cursorQuery = tx.selectFrom('webhook_cursors').select('seq').where('workspace_id', '=', workspaceId)
  const cursor = await (engine === 'postgres' ? cursorQuery.forUpdate() : cursorQuery).executeTakeFirst()
  if (!cursor) return { queued: 0, more: false }
  const head = await tx.selectFrom('audit_heads').select('seq').where('workspace_id', '=', workspaceId).executeTakeFirst()
  const headSeq = Number(head?.seq ?? 0)
  const from = Number(cursor.seq)
  if (headSeq <= from) return { queued: 0, more: false }
  const rows = await tx
    .selectFrom('audit_entries')
    .select(['seq', 'id', 'time', 'action', 'actor_type', 'actor_id', 'target_type', 'target_id', 'details'])
    .where('workspace_id', '=', workspaceId)
    .where('seq', '>', from)
    .where('seq', '<=', headSeq)
    .where('action', 'in', EVENT_ACTIONS)
    .orderBy('seq')
    .limit(BATCH)
    .execute()
  const more = rows.length === BATCH
  const to = more ? Number(rows[rows.length - 1]!.seq) : headSeq
  let queued = 0
  const subs = rows.length ? await subscribers(tx, workspaceId) : []
  if (subs.length) {
    const entries: EntryForEvent[] = rows.map((r) => ({
      seq: Number(r.seq),
      id: r.id,
      time: r.time,
      action: r.action,
      actorType: r.actor_type,
      actorId: r.actor_id,
      targetType: r.target_type,
      targetId: r.target_id,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }))
    const places = await placesOf(tx, workspaceId, entries)
    const workspace = await workspaceOf(tx, workspaceId)
    const at = now.toISOString()
    for (const e of entries) {
      const made = eventOf(e, places.get(`${e.targetType}:${e.targetId}`))
      if (!made) continue
      const to = subs.filter((s) => s.events.has(made.event) && e.seq > s.fromSeq).map((s) => s.id)
      queued += (await queue(tx, workspaceId, to, made.event, payloadOf(made.event, e.time, workspace, made.data), e.seq, at)).length
    }
  }
  await tx.updateTable('webhook_cursors').set({ seq: to }).where('workspace_id', '=', workspaceId).execute()
  return { queued, more }
}

/**
 * Queues an event that is not an audit entry (the log's integrity broken, a test message) for
 * the workspace's enabled endpoints subscribed to it — or for `only` (a test message).
 */
export async function queueEvent(
  tx: Executor,
  workspaceId: string,
  event: WebhookEvent,
  data: Record<string, unknown>,
  now: Date,
  options: { only?: string; dedupe?: string } = {},
): Promise<string[]> {
  const { only, dedupe } = options
  const subs = (await subscribers(tx, workspaceId)).filter((s) => (only ? s.id === only : s.events.has(event)))
  if (subs.length === 0) return []
  const workspace = await workspaceOf(tx, workspaceId)
  const at = now.toISOString()
  return queue(
    tx,
    workspaceId,
    subs.map((s) => s.id),
    event,
    payloadOf(event, at, workspace, data),
    null,
    at,
    dedupe,
  )
}

/**
 * Workspaces with a cursor (that have or had an endpoint) whose chain has grown past it: only
 * these need a dispatching (write) transaction on a tick.
 */
export async function dispatchingWorkspaces(db: Executor): Promise<string[]> {
  const rows = await db
    .selectFrom('webhook_cursors')
    .innerJoin('audit_heads', 'audit_heads.workspace_id', 'webhook_cursors.workspace_id')
    .select('webhook_cursors.workspace_id as workspace_id')
    .whereRef('audit_heads.seq', '>', 'webhook_cursors.seq')
    .execute()
  return rows.map((r) => r.workspace_id)
}
