import { randomUUID } from 'node:crypto'
import { MAX_REASON_LENGTH } from '../api/limits.js'
import type { BreakGlassAccess } from '../api/roles.js'
import {
  BreakGlassAlreadyDecidedError,
  BreakGlassClosedError,
  BreakGlassNoApproversError,
  BreakGlassSelfApprovalError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
} from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { Selectable } from 'kysely'
import type { BreakGlassRequestTable } from '../storage/schema.js'
import { findScope } from '../vault/project-service.js'
import type { Role } from './policy.js'

// The life of a break-glass request: requested → (N approvals) active → expired, or denied
// (one denial ends it), or revoked (by the requester or an Owner, pending or active). Every
// function takes the pipeline's transaction, so its audit entry commits with it.

/** Roles that may request, approve and deny break-glass access. */
export const BREAK_GLASS_ROLES: readonly Role[] = ['owner', 'admin']

/** Where a request stands; `expired` is an active grant past its end. */
export type BreakGlassStatus = 'pending' | 'active' | 'expired' | 'denied' | 'revoked'

/** A request as listings show it. */
export interface BreakGlassView {
  id: string
  status: BreakGlassStatus
  requester: { id: string; email: string }
  project: { id: string; slug: string }
  environment: { id: string; slug: string }
  access: BreakGlassAccess
  reason: string
  durationMinutes: number
  approvalsRequired: number
  approvals: number
  decisions: Array<{ user: { id: string; email: string }; decision: 'approve' | 'deny'; comment: string | null; at: string }>
  createdAt: string
  activatedAt: string | null
  expiresAt: string | null
  endedAt: string | null
  endedBy: string | null
}

type Row = Selectable<BreakGlassRequestTable>

/** The status of a stored request at `now`. */
export function statusOf(row: Pick<Row, 'state' | 'expires_at'>, now: Date): BreakGlassStatus {
  if (row.state === 'active' && row.expires_at && Date.parse(row.expires_at) <= now.getTime()) return 'expired'
  return row.state
}

async function rowOf(db: Executor, workspaceId: string, id: string): Promise<Row> {
  const row = await db
    .selectFrom('breakglass_requests')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  // @NOTE another workspace's request looks exactly like one that does not exist.
  if (!row) throw new NotFoundError('break-glass request')
  return row
}

async function views(db: Executor, rows: Row[], now: Date): Promise<BreakGlassView[]> {
  if (rows.length === 0) return []
  const ids = rows.map((r) => r.id)
  const decisions = await db
    .selectFrom('breakglass_decisions')
    .innerJoin('users', 'users.id', 'breakglass_decisions.user_id')
    .select([
      'breakglass_decisions.request_id as requestId',
      'users.id as userId',
      'users.email as email',
      'breakglass_decisions.decision as decision',
      'breakglass_decisions.comment as comment',
      'breakglass_decisions.created_at as at',
    ])
    .where('breakglass_decisions.request_id', 'in', ids)
    .orderBy('breakglass_decisions.created_at')
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
    return {
      id: r.id,
      status: statusOf(r, now),
      requester: { id: r.requester_id, email: people.find((p) => p.id === r.requester_id)?.email ?? '' },
      project: { id: r.project_id, slug: scope?.projectSlug ?? '' },
      environment: { id: r.environment_id, slug: scope?.envSlug ?? '' },
      access: r.access,
      reason: r.reason,
      durationMinutes: r.duration_minutes,
      approvalsRequired: r.approvals_required,
      approvals: ds.filter((d) => d.decision === 'approve').length,
      decisions: ds.map((d) => ({ user: { id: d.userId, email: d.email }, decision: d.decision, comment: d.comment, at: d.at })),
      createdAt: r.created_at,
      activatedAt: r.activated_at,
      expiresAt: r.expires_at,
      endedAt: r.ended_at,
      endedBy: r.ended_by,
    }
  })
}

/** One request of the workspace; another workspace's id is NotFound. */
export async function getBreakGlassRequest(db: Executor, workspaceId: string, id: string, now: Date): Promise<BreakGlassView> {
  return (await views(db, [await rowOf(db, workspaceId, id)], now))[0]!
}

/** The workspace's requests, newest first, optionally only those with `status`. */
export async function listBreakGlassRequests(
  db: Executor,
  workspaceId: string,
  opts: { status?: BreakGlassStatus; limit?: number },
  now: Date,
): Promise<BreakGlassView[]> {
  let q = db.selectFrom('breakglass_requests').selectAll().where('workspace_id', '=', workspaceId)
  const iso = now.toISOString()
  if (opts.status === 'active') q = q.where('state', '=', 'active').where('expires_at', '>', iso)
  else if (opts.status === 'expired') q = q.where('state', '=', 'active').where('expires_at', '<=', iso)
  else if (opts.status) q = q.where('state', '=', opts.status)
  const rows = await q
    .orderBy('created_at', 'desc')
    .limit(opts.limit ?? 200)
    .execute()
  return views(db, rows, now)
}

/** Owners and Admins of the workspace other than `userId`: who may approve their request. */
export async function approversFor(db: Executor, workspaceId: string, userId: string): Promise<Array<{ id: string; email: string }>> {
  return db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select(['users.id as id', 'users.email as email'])
    .where('memberships.workspace_id', '=', workspaceId)
    .where('memberships.role', 'in', [...BREAK_GLASS_ROLES])
    .where('users.id', '!=', userId)
    .orderBy('users.email')
    .execute()
}

/**
 * Records a request for `access` to one environment for `durationMinutes` (at most
 * `maxMinutes`), needing `approvalsRequired` approvals. Refused when the workspace has too few
 * other Owners/Admins to ever approve it. Returns it with the people to notify.
 */
export async function createBreakGlassRequest(
  tx: Executor,
  input: {
    workspaceId: string
    requesterId: string
    project: string
    environment: string
    access: BreakGlassAccess
    reason: string
    durationMinutes: number
    maxMinutes: number
    approvalsRequired: number
    now: Date
  },
): Promise<{ request: BreakGlassView; approvers: Array<{ id: string; email: string }> }> {
  const reason = input.reason.trim()
  if (reason.length === 0 || reason.length > MAX_REASON_LENGTH) {
    throw new ValidationError(`A reason of 1 to ${MAX_REASON_LENGTH} characters is required.`, [
      { path: 'reason', message: 'required, at most 1000 characters' },
    ])
  }
  if (!Number.isInteger(input.durationMinutes) || input.durationMinutes < 1 || input.durationMinutes > input.maxMinutes) {
    throw new ValidationError(`The duration must be 1 to ${input.maxMinutes} minutes (COFFER_BREAKGLASS_MAX_MINUTES).`, [
      { path: 'durationMinutes', message: `1 to ${input.maxMinutes}` },
    ])
  }
  const scope = await findScope(tx, input.workspaceId, input.project, input.environment)
  const approvers = await approversFor(tx, input.workspaceId, input.requesterId)
  if (approvers.length < input.approvalsRequired) throw new BreakGlassNoApproversError(input.approvalsRequired, approvers.length)
  const id = randomUUID()
  await tx
    .insertInto('breakglass_requests')
    .values({
      id,
      workspace_id: input.workspaceId,
      requester_id: input.requesterId,
      project_id: scope.projectId,
      environment_id: scope.environmentId,
      access: input.access,
      reason,
      duration_minutes: input.durationMinutes,
      approvals_required: input.approvalsRequired,
      state: 'pending',
      created_at: input.now.toISOString(),
      activated_at: null,
      expires_at: null,
      ended_at: null,
      ended_by: null,
    })
    .execute()
  return { request: await getBreakGlassRequest(tx, input.workspaceId, id, input.now), approvers }
}

/**
 * An Owner's or Admin's approval or denial. Never the requester's; once per person; only
 * while pending. One denial ends the request; the N-th approval activates the grant for its
 * duration from now.
 */
export async function decideBreakGlassRequest(
  tx: Executor,
  input: { workspaceId: string; requestId: string; userId: string; decision: 'approve' | 'deny'; comment?: string | undefined; now: Date },
): Promise<{ request: BreakGlassView; activated: boolean }> {
  const row = await rowOf(tx, input.workspaceId, input.requestId)
  if (row.requester_id === input.userId) throw new BreakGlassSelfApprovalError()
  if (row.state !== 'pending') throw new BreakGlassClosedError(`The request is ${statusOf(row, input.now)}, not pending.`)
  const prior = await tx
    .selectFrom('breakglass_decisions')
    .select('decision')
    .where('request_id', '=', row.id)
    .where('user_id', '=', input.userId)
    .executeTakeFirst()
  if (prior) throw new BreakGlassAlreadyDecidedError()
  const at = input.now.toISOString()
  await tx
    .insertInto('breakglass_decisions')
    .values({
      request_id: row.id,
      workspace_id: input.workspaceId,
      user_id: input.userId,
      decision: input.decision,
      comment: input.comment ?? null,
      created_at: at,
    })
    .execute()
  let activated = false
  if (input.decision === 'deny') {
    await tx
      .updateTable('breakglass_requests')
      .set({ state: 'denied', ended_at: at, ended_by: input.userId })
      .where('id', '=', row.id)
      .execute()
  } else {
    // @NOTE the pipeline holds the workspace's audit-chain lock for the whole write, so two
    // approvals landing at once are counted one after the other.
    // Only approvals of people who are still Owners or Admins of the workspace count.
    const { n } = await tx
      .selectFrom('breakglass_decisions')
      .innerJoin('memberships', (j) =>
        j
          .onRef('memberships.user_id', '=', 'breakglass_decisions.user_id')
          .onRef('memberships.workspace_id', '=', 'breakglass_decisions.workspace_id'),
      )
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('breakglass_decisions.request_id', '=', row.id)
      .where('breakglass_decisions.decision', '=', 'approve')
      .where('memberships.role', 'in', [...BREAK_GLASS_ROLES])
      .executeTakeFirstOrThrow()
    if (Number(n) >= row.approvals_required) {
      const expiresAt = new Date(input.now.getTime() + row.duration_minutes * 60_000).toISOString()
      await tx
        .updateTable('breakglass_requests')
        .set({ state: 'active', activated_at: at, expires_at: expiresAt })
        .where('id', '=', row.id)
        .where('state', '=', 'pending')
        .execute()
      activated = true
    }
  }
  return { request: await getBreakGlassRequest(tx, input.workspaceId, row.id, input.now), activated }
}

/**
 * Ends a pending request or an active grant at once. Only the requester or an Owner may;
 * a request that already ended (denied, revoked, expired) cannot be revoked.
 */
export async function revokeBreakGlassRequest(
  tx: Executor,
  input: { workspaceId: string; requestId: string; userId: string; role: Role; now: Date },
): Promise<{ request: BreakGlassView; was: 'pending' | 'active' }> {
  const row = await rowOf(tx, input.workspaceId, input.requestId)
  if (row.requester_id !== input.userId && input.role !== 'owner')
    throw new ForbiddenError('Only the requester or an Owner can revoke a break-glass request.')
  const status = statusOf(row, input.now)
  if (status !== 'pending' && status !== 'active') throw new BreakGlassClosedError(`The request is ${status}; there is nothing to revoke.`)
  await tx
    .updateTable('breakglass_requests')
    .set({ state: 'revoked', ended_at: input.now.toISOString(), ended_by: input.userId })
    .where('id', '=', row.id)
    .where('state', '=', row.state)
    .execute()
  return { request: await getBreakGlassRequest(tx, input.workspaceId, row.id, input.now), was: status }
}

/** Grants that ran out and whose expiry is not yet in the audit log (live workspaces only). */
export async function unrecordedExpiries(
  db: Executor,
  now: Date,
  limit = 100,
): Promise<Array<{ id: string; workspaceId: string; requesterId: string; expiresAt: string }>> {
  const rows = await db
    .selectFrom('breakglass_requests')
    .innerJoin('workspaces', 'workspaces.id', 'breakglass_requests.workspace_id')
    .select([
      'breakglass_requests.id as id',
      'breakglass_requests.workspace_id as workspaceId',
      'breakglass_requests.requester_id as requesterId',
      'breakglass_requests.expires_at as expiresAt',
    ])
    .where('breakglass_requests.state', '=', 'active')
    .where('breakglass_requests.expiry_recorded', '=', 0)
    .where('breakglass_requests.expires_at', '<=', now.toISOString())
    .where('workspaces.deleted_at', 'is', null)
    .orderBy('breakglass_requests.expires_at')
    .limit(limit)
    .execute()
  return rows.map((r) => ({ ...r, expiresAt: r.expiresAt ?? '' }))
}

/**
 * Marks a grant's expiry as recorded; true only for the one caller that flipped it, so the
 * 'breakglass.expired' entry is written once even with several nodes running the job.
 */
export async function claimExpiryRecord(tx: Executor, id: string): Promise<boolean> {
  const r = await tx
    .updateTable('breakglass_requests')
    .set({ expiry_recorded: 1 })
    .where('id', '=', id)
    .where('state', '=', 'active')
    .where('expiry_recorded', '=', 0)
    .executeTakeFirst()
  return Number(r.numUpdatedRows) === 1
}
