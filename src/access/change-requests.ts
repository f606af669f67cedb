import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import {
  ChangeRequestAlreadyDecidedError,
  ChangeRequestClosedError,
  ChangeRequestNoApproversError,
  ChangeRequestSelfApprovalError,
  NotFoundError,
} from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { ChangeRequestTable } from '../storage/schema.js'
import { openProposal, sealProposal } from '../vault/change-request-seal.js'
import type { DataKeys } from '../vault/data-keys.js'
import type { SecretChange, SecretScope, SecretService } from '../vault/secret-service.js'
import { approversFor, BREAK_GLASS_ROLES } from './break-glass-requests.js'

// Protected environments (migration 14). A write to an environment whose `change_approvals`
// is N > 0 is not applied: the pipeline (src/server/workspace-pipeline.ts) asks the route for
// the operations it would perform and stores them here as a change request — sealed under the
// environment's data key like a secret value, bound (AAD) to the request's id, never in clear,
// never in the audit log — and N Owners or Admins other than the requester approve it, as they
// approve a break-glass request (the same approvers, the same one-decision-per-person rule).
// The N-th approval applies every operation in its own transaction, all or nothing; if a key
// it changes moved since the request was made (its version is not the one recorded), nothing
// is written and the request ends `stale`. One rejection ends it; after CHANGE_REQUEST_TTL_HOURS
// a pending request is `expired`. The sealed operations are erased when a request ends.

/** How long a change request waits for its approvals. */
export const CHANGE_REQUEST_TTL_HOURS = 7 * 24

/** One operation of a change request, on one key, against the version the key had when it was proposed (0: absent). */
export type ChangeOp =
  | { op: 'set'; key: string; baseVersion: number; value: string; comment: string | null; tags: string[] }
  | { op: 'delete'; key: string; baseVersion: number }
  | { op: 'rollback'; key: string; baseVersion: number; toVersion: number }

/** The kind of write that was proposed. */
export type ChangeKind = 'set' | 'bulk' | 'delete' | 'rollback' | 'apply' | 'promote'

/** What a write to a protected environment proposes instead of doing. */
export interface Proposal {
  kind: ChangeKind
  ops: ChangeOp[]
  /** Where a promotion's values come from. */
  source?: { projectId: string; environmentId: string }
}

/** Where a request stands; `expired` is a pending request past its end. */
export type ChangeRequestStatus = 'pending' | 'applied' | 'rejected' | 'stale' | 'expired'

/** One change as listings show it: keys and versions; the value and comment only when revealed. */
export interface ChangeView {
  key: string
  op: ChangeOp['op']
  baseVersion: number
  toVersion?: number
  value?: string
  comment?: string | null
}

/** A change request as the API shows it. */
export interface ChangeRequestView {
  id: string
  status: ChangeRequestStatus
  kind: ChangeKind
  requester: { id: string; email: string | null }
  project: { id: string; slug: string }
  environment: { id: string; slug: string }
  source: { projectId: string; environmentId: string } | null
  changes: ChangeView[]
  revealed: boolean
  approvalsRequired: number
  approvals: number
  decisions: Array<{ user: { id: string; email: string }; decision: 'approve' | 'reject'; comment: string | null; at: string }>
  createdAt: string
  expiresAt: string
  endedAt: string | null
  endedBy: string | null
  outcome: string | null
}

type Row = Selectable<ChangeRequestTable>
interface Summary {
  changes: Array<{ key: string; op: ChangeOp['op']; baseVersion: number; toVersion?: number }>
  source?: { projectId: string; environmentId: string }
}

/** The status of a stored request at `now`. */
export function changeStatusOf(row: Pick<Row, 'state' | 'expires_at'>, now: Date): ChangeRequestStatus {
  if (row.state === 'pending' && Date.parse(row.expires_at) <= now.getTime()) return 'expired'
  return row.state
}

function scopeOf(row: Row): SecretScope {
  return { workspaceId: row.workspace_id, projectId: row.project_id, environmentId: row.environment_id }
}

async function rowOf(db: Executor, workspaceId: string, id: string): Promise<Row> {
  const row = await db
    .selectFrom('change_requests')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  // @NOTE another workspace's request looks exactly like one that does not exist.
  if (!row) throw new NotFoundError('change request')
  return row
}

/** The request's operations, decrypted (null once it ended: they are erased then). */
async function opsOf(db: Executor, dataKeys: DataKeys, row: Row): Promise<ChangeOp[] | null> {
  if (!row.payload_ct) return null
  const plain = await openProposal(db, dataKeys, scopeOf(row), row.id, Buffer.from(row.payload_ct))
  const ops = JSON.parse(plain.toString('utf8')) as ChangeOp[]
  plain.fill(0)
  return ops
}

async function views(db: Executor, rows: Row[], now: Date, revealed?: Map<string, ChangeOp[]>): Promise<ChangeRequestView[]> {
  if (rows.length === 0) return []
  const ids = rows.map((r) => r.id)
  const decisions = await db
    .selectFrom('change_request_decisions')
    .innerJoin('users', 'users.id', 'change_request_decisions.user_id')
    .select([
      'change_request_decisions.request_id as requestId',
      'users.id as userId',
      'users.email as email',
      'change_request_decisions.decision as decision',
      'change_request_decisions.comment as comment',
      'change_request_decisions.created_at as at',
    ])
    .where('change_request_decisions.request_id', 'in', ids)
    .orderBy('change_request_decisions.created_at')
    .execute()
  const people = await db
    .selectFrom('users')
    .select(['id', 'email'])
    .where('id', 'in', [...new Set(rows.map((r) => r.requester_id))])
    .execute()
  const scopes = await db
    .selectFrom('environments')
    .innerJoin('projects', 'projects.id', 'environments.project_id')
    .select(['environments.id as envId', 'environments.slug as envSlug', 'projects.id as projectId', 'projects.slug as projectSlug'])
    .where('environments.id', 'in', [...new Set(rows.map((r) => r.environment_id))])
    .execute()
  return rows.map((r) => {
    const ds = decisions.filter((d) => d.requestId === r.id)
    const scope = scopes.find((s) => s.envId === r.environment_id)
    const summary = JSON.parse(r.summary) as Summary
    const ops = revealed?.get(r.id)
    const changes: ChangeView[] = summary.changes.map((c, i) => {
      const v: ChangeView = { key: c.key, op: c.op, baseVersion: c.baseVersion }
      if (c.toVersion !== undefined) v.toVersion = c.toVersion
      const o = ops?.[i]
      if (o?.op === 'set') {
        v.value = o.value
        v.comment = o.comment
      }
      return v
    })
    return {
      id: r.id,
      status: changeStatusOf(r, now),
      kind: r.kind as ChangeKind,
      requester: { id: r.requester_id, email: people.find((p) => p.id === r.requester_id)?.email ?? null },
      project: { id: r.project_id, slug: scope?.projectSlug ?? '' },
      environment: { id: r.environment_id, slug: scope?.envSlug ?? '' },
      source: summary.source ?? null,
      changes,
      revealed: ops !== undefined,
      approvalsRequired: r.approvals_required,
      approvals: ds.filter((d) => d.decision === 'approve').length,
      decisions: ds.map((d) => ({ user: { id: d.userId, email: d.email }, decision: d.decision, comment: d.comment, at: d.at })),
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      endedAt: r.ended_at,
      endedBy: r.ended_by,
      outcome: r.outcome,
    }
  })
}

/**
 * One request of the workspace; another workspace's id is NotFound. With `reveal`, the
 * proposed values too (the caller has checked the reader may reveal the environment).
 */
export async function getChangeRequest(
  db: Executor,
  workspaceId: string,
  id: string,
  now: Date,
  reveal?: { dataKeys: DataKeys },
): Promise<ChangeRequestView> {
  const row = await rowOf(db, workspaceId, id)
  let revealed: Map<string, ChangeOp[]> | undefined
  if (reveal) {
    const ops = await opsOf(db, reveal.dataKeys, row)
    if (ops) revealed = new Map([[row.id, ops]])
  }
  return (await views(db, [row], now, revealed))[0]!
}

/** Where a request applies: its project and environment ids. */
export async function changeRequestScope(db: Executor, workspaceId: string, id: string): Promise<SecretScope & { requesterId: string }> {
  const row = await rowOf(db, workspaceId, id)
  return { ...scopeOf(row), requesterId: row.requester_id }
}

/** The workspace's requests, newest first; only `status`, only those `requesterId` made, when given. */
export async function listChangeRequests(
  db: Executor,
  workspaceId: string,
  opts: { status?: ChangeRequestStatus; requesterId?: string; limit?: number },
  now: Date,
): Promise<ChangeRequestView[]> {
  let q = db.selectFrom('change_requests').selectAll().where('workspace_id', '=', workspaceId)
  const iso = now.toISOString()
  if (opts.status === 'pending') q = q.where('state', '=', 'pending').where('expires_at', '>', iso)
  else if (opts.status === 'expired') q = q.where('state', '=', 'pending').where('expires_at', '<=', iso)
  else if (opts.status) q = q.where('state', '=', opts.status)
  if (opts.requesterId) q = q.where('requester_id', '=', opts.requesterId)
  const rows = await q
    .orderBy('created_at', 'desc')
    .limit(opts.limit ?? 200)
    .execute()
  return views(db, rows, now)
}

/**
 * Records `proposal` as a change request to `scope`, needing `approvalsRequired` approvals:
 * its operations sealed under the environment's data key. Refused when the workspace has too
 * few Owners/Admins other than the requester to ever approve it. Returns it with the people
 * who may approve it (to notify).
 */
export async function createChangeRequest(
  tx: Executor,
  deps: { dataKeys: DataKeys },
  input: { scope: SecretScope; requesterId: string; proposal: Proposal; approvalsRequired: number; now: Date },
): Promise<{ request: ChangeRequestView; approvers: Array<{ id: string; email: string }> }> {
  const { scope, proposal } = input
  const approvers = await approversFor(tx, scope.workspaceId, input.requesterId)
  if (approvers.length < input.approvalsRequired) throw new ChangeRequestNoApproversError(input.approvalsRequired, approvers.length)
  const id = randomUUID()
  const plain = Buffer.from(JSON.stringify(proposal.ops), 'utf8')
  const sealed = await sealProposal(tx, deps.dataKeys, scope, id, plain)
  plain.fill(0)
  const summary: Summary = {
    changes: proposal.ops.map((o) => ({
      key: o.key,
      op: o.op,
      baseVersion: o.baseVersion,
      ...(o.op === 'rollback' ? { toVersion: o.toVersion } : {}),
    })),
    ...(proposal.source ? { source: proposal.source } : {}),
  }
  await tx
    .insertInto('change_requests')
    .values({
      id,
      workspace_id: scope.workspaceId,
      requester_id: input.requesterId,
      project_id: scope.projectId,
      environment_id: scope.environmentId,
      kind: proposal.kind,
      summary: JSON.stringify(summary),
      payload_ct: sealed.ct,
      dek_id: sealed.dekId,
      dek_version: sealed.dekVersion,
      approvals_required: input.approvalsRequired,
      state: 'pending',
      created_at: input.now.toISOString(),
      expires_at: new Date(input.now.getTime() + CHANGE_REQUEST_TTL_HOURS * 3_600_000).toISOString(),
      ended_at: null,
      ended_by: null,
      outcome: null,
    })
    .execute()
  return { request: await getChangeRequest(tx, scope.workspaceId, id, input.now), approvers }
}

/** What deciding a request did: the secret changes an applying approval wrote, or the keys that made it stale. */
export interface ChangeDecision {
  request: ChangeRequestView
  applied: Array<{ op: ChangeOp['op']; change: SecretChange }> | null
  stale: Array<{ key: string; expected: number; found: number }> | null
}

/**
 * An Owner's or Admin's approval or rejection. Never the requester's; once per person; only
 * while pending and not expired. One rejection ends the request; the N-th approval (counting
 * only people who are still Owners or Admins) applies it in `tx` — every operation or none:
 * if any key's version is not the one recorded, nothing is written and the request ends stale.
 */
export async function decideChangeRequest(
  tx: Executor,
  deps: { dataKeys: DataKeys; secrets: SecretService },
  input: {
    workspaceId: string
    requestId: string
    userId: string
    decision: 'approve' | 'reject'
    comment?: string | undefined
    now: Date
  },
): Promise<ChangeDecision> {
  const row = await rowOf(tx, input.workspaceId, input.requestId)
  if (row.requester_id === input.userId) throw new ChangeRequestSelfApprovalError()
  const status = changeStatusOf(row, input.now)
  if (status !== 'pending') throw new ChangeRequestClosedError(`The change request is ${status}, not pending.`)
  const prior = await tx
    .selectFrom('change_request_decisions')
    .select('decision')
    .where('request_id', '=', row.id)
    .where('user_id', '=', input.userId)
    .executeTakeFirst()
  if (prior) throw new ChangeRequestAlreadyDecidedError()
  const at = input.now.toISOString()
  await tx
    .insertInto('change_request_decisions')
    .values({
      request_id: row.id,
      workspace_id: input.workspaceId,
      user_id: input.userId,
      decision: input.decision,
      comment: input.comment ?? null,
      created_at: at,
    })
    .execute()
  const end = (state: 'applied' | 'rejected' | 'stale', outcome: string | null) =>
    tx
      .updateTable('change_requests')
      .set({ state, ended_at: at, ended_by: input.userId, outcome, payload_ct: null, dek_id: null, dek_version: null })
      .where('id', '=', row.id)
      .where('state', '=', 'pending')
      .execute()
  const answer = async (applied: ChangeDecision['applied'], stale: ChangeDecision['stale']): Promise<ChangeDecision> => ({
    request: await getChangeRequest(tx, input.workspaceId, row.id, input.now),
    applied,
    stale,
  })
  if (input.decision === 'reject') {
    await end('rejected', null)
    return answer(null, null)
  }
  // @NOTE the pipeline holds the workspace's write lock for the whole decision, so two
  // approvals landing at once are counted one after the other.
  const { n } = await tx
    .selectFrom('change_request_decisions')
    .innerJoin('memberships', (j) =>
      j
        .onRef('memberships.user_id', '=', 'change_request_decisions.user_id')
        .onRef('memberships.workspace_id', '=', 'change_request_decisions.workspace_id'),
    )
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('change_request_decisions.request_id', '=', row.id)
    .where('change_request_decisions.decision', '=', 'approve')
    .where('memberships.role', 'in', [...BREAK_GLASS_ROLES])
    .executeTakeFirstOrThrow()
  if (Number(n) < row.approvals_required) return answer(null, null)

  const ops = (await opsOf(tx, deps.dataKeys, row)) ?? []
  const scope = scopeOf(row)
  const current = await deps.secrets.versionsOf(
    tx,
    scope,
    ops.map((o) => o.key),
  )
  const stale = ops
    .map((o) => ({ key: o.key, expected: o.baseVersion, found: current.get(o.key) ?? 0 }))
    .filter((s) => s.expected !== s.found)
  if (stale.length) {
    await end('stale', stale.map((s) => `${s.key} is at version ${s.found}, not ${s.expected}`).join('; '))
    return answer(null, stale)
  }
  const applied: NonNullable<ChangeDecision['applied']> = []
  const actor = row.requester_id
  for (const o of ops) {
    if (o.op === 'set') {
      applied.push({ op: o.op, change: await deps.secrets.setExact(tx, scope, actor, o.key, o, o.baseVersion) })
    } else if (o.op === 'delete') {
      applied.push({ op: o.op, change: await deps.secrets.delete(tx, scope, actor, o.key, o.baseVersion) })
    } else {
      applied.push({ op: o.op, change: await deps.secrets.rollback(tx, scope, actor, o.key, o.toVersion, o.baseVersion) })
    }
  }
  await end('applied', null)
  return answer(applied, null)
}

/** Pending requests past their end whose expiry is not yet recorded (their proposal still sealed in the row), live workspaces only. */
export async function unrecordedChangeExpiries(
  db: Executor,
  now: Date,
  limit = 100,
): Promise<Array<{ id: string; workspaceId: string; requesterId: string; environmentId: string; expiresAt: string }>> {
  return db
    .selectFrom('change_requests')
    .innerJoin('workspaces', 'workspaces.id', 'change_requests.workspace_id')
    .select([
      'change_requests.id as id',
      'change_requests.workspace_id as workspaceId',
      'change_requests.requester_id as requesterId',
      'change_requests.environment_id as environmentId',
      'change_requests.expires_at as expiresAt',
    ])
    .where('change_requests.state', '=', 'pending')
    .where('change_requests.payload_ct', 'is not', null)
    .where('change_requests.expires_at', '<=', now.toISOString())
    .where('workspaces.deleted_at', 'is', null)
    .orderBy('change_requests.expires_at')
    .limit(limit)
    .execute()
}

/**
 * Erases an expired request's sealed proposal; true only for the one caller that did, so the
 * 'change.expired' entry is written once even with several nodes running the job.
 */
export async function claimChangeExpiry(tx: Executor, id: string, now: Date): Promise<boolean> {
  const r = await tx
    .updateTable('change_requests')
    .set({ payload_ct: null, dek_id: null, dek_version: null })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .where('payload_ct', 'is not', null)
    .where('expires_at', '<=', now.toISOString())
    .executeTakeFirst()
  return Number(r.numUpdatedRows) === 1
}
