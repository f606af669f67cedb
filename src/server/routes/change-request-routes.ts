import { z } from 'zod'
import { breakGlassDecision, grantUseEvent } from '../../access/break-glass.js'
import {
  type ChangeRequestView,
  changeRequestScope,
  decideChangeRequest,
  getChangeRequest,
  listChangeRequests,
} from '../../access/change-requests.js'
import { authorize, requireUser, type Principal } from '../../access/policy.js'
import { approversFor } from '../../access/break-glass-requests.js'
import { resolveTarget } from '../../access/target.js'
import {
  changeDecisionBody,
  changeRequestListResponse,
  changeRequestParams,
  changeRequestResponse,
  protectionBody,
  protectionResponse,
} from '../../api/change-requests.js'
import { Sensitive, type AuditEvent } from '../../audit/audit-log.js'
import { ChangeRequestNoApproversError, NotFoundError } from '../../errors.js'
import type { Executor } from '../../storage/database.js'
import { findScope, setEnvironmentProtection } from '../../vault/project-service.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { environmentParams, flag, workspaceParams } from '../schemas.js'

// Protected environments and their change requests (src/access/change-requests.ts).

const C = '/v1/workspaces/:workspace/change-requests'

function target(r: ChangeRequestView) {
  return { type: 'change_request', id: r.id }
}

function scopeDetails(r: ChangeRequestView) {
  return { project: r.project.id, environment: r.environment.id, kind: r.kind, requester: r.requester.id }
}

/** Whether `principal` sees every request of the workspace (Owners, Admins, Auditors), not only their own. */
function seesAll(principal: Principal): boolean {
  return principal.type === 'user' && (principal.role === 'owner' || principal.role === 'admin' || principal.role === 'auditor')
}

/** The request, if the principal may see it: a Member sees only their own; any other answers 404 like a missing one. */
async function visible(db: Executor, principal: Principal, workspaceId: string, id: string) {
  const s = await changeRequestScope(db, workspaceId, id)
  const me = principal.type === 'user' ? principal.userId : principal.id
  if (!seesAll(principal) && s.requesterId !== me) throw new NotFoundError('change request')
  return s
}

const protect = defineRoute({
  method: 'PUT',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment/protection',
  tag: 'change-requests',
  summary:
    'Protect an environment: each write becomes a change request that `approvals` other Owners/Admins approve (0 lifts the protection)',
  action: 'environment.protect',
  mode: 'write',
  params: environmentParams,
  body: protectionBody,
  response: protectionResponse,
  async handler({ db, principal, workspace, params, body }) {
    const scope = await findScope(db, workspace.id, params.project, params.environment)
    if (body.approvals > 0) {
      // Someone must be able to approve: N Owners/Admins besides whoever proposes (at least one of them is not this one).
      const others = await approversFor(db, workspace.id, principal.type === 'user' ? principal.userId : '')
      const admins = others.length + (principal.type === 'user' ? 1 : 0)
      if (admins - 1 < body.approvals) throw new ChangeRequestNoApproversError(body.approvals, Math.max(admins - 1, 0))
    }
    await setEnvironmentProtection(db, workspace.id, scope.environmentId, body.approvals)
    return {
      body: { environment: { id: scope.environmentId, projectId: scope.projectId, changeApprovals: body.approvals } },
      audit: {
        action: body.approvals > 0 ? 'environment.protect' : 'environment.unprotect',
        target: { type: 'environment', id: scope.environmentId },
        details: { project: scope.projectId, approvals: body.approvals },
      },
    }
  },
})

const list = defineRoute({
  method: 'GET',
  url: C,
  summary: 'List change requests, newest first (a Member sees only their own); keys and versions, never values',
  tag: 'change-requests',
  action: 'change.read',
  mode: 'read',
  params: workspaceParams,
  query: z.strictObject({ status: z.enum(['pending', 'applied', 'rejected', 'stale', 'expired']).optional() }),
  response: changeRequestListResponse,
  async handler({ app, db, principal, workspace, query }) {
    const mine = seesAll(principal) ? {} : { requesterId: principal.type === 'user' ? principal.userId : principal.id }
    return {
      body: {
        changeRequests: await listChangeRequests(
          db,
          workspace.id,
          { ...mine, ...(query.status ? { status: query.status } : {}) },
          app.clock(),
        ),
      },
    }
  },
})

const get = defineRoute({
  method: 'GET',
  url: `${C}/:request`,
  summary: 'Show one change request; with reveal=true, its proposed values too — only to a reader who may reveal the environment (audited)',
  tag: 'change-requests',
  action: 'change.read',
  mode: 'read',
  params: changeRequestParams,
  query: z.strictObject({ reveal: flag.optional() }),
  response: changeRequestResponse,
  async handler({ app, db, principal, workspace, params, query }) {
    const s = await visible(db, principal, workspace.id, params.request)
    if (!query.reveal) return { body: { changeRequest: await getChangeRequest(db, workspace.id, params.request, app.clock()) } }
    // Revealing is reading the environment's values: decided as `secret.reveal` there (and break-glass when sealed).
    const ref = { project: s.projectId, environment: s.environmentId }
    const t = await resolveTarget(db, principal, workspace.id, ref)
    authorize(principal, 'secret.reveal', t.resource)
    const grant = await breakGlassDecision(db, principal, 'secret.reveal', workspace.id, ref, {}, app.clock(), {
      id: s.environmentId,
      sealed: t.environment?.sealed ?? false,
    })
    const r = await getChangeRequest(db, workspace.id, params.request, app.clock(), { dataKeys: app.dataKeys })
    const audit: AuditEvent[] = [
      {
        action: 'change.reveal',
        target: target(r),
        details: { ...scopeDetails(r), keys: r.changes.map((c) => c.key), revealed: r.revealed },
      },
    ]
    if (grant) audit.push(grantUseEvent(grant, 'secret.reveal', 'GET', `${C}/:request`))
    return { body: { changeRequest: r }, audit }
  },
})

function decideRoute(decision: 'approve' | 'reject') {
  return defineRoute({
    method: 'POST',
    url: `${C}/:request/${decision}`,
    tag: 'change-requests',
    summary:
      decision === 'approve'
        ? 'Approve a change request (another Owner/Admin, once); the last approval needed applies it atomically — or, when a key it changes moved since, writes nothing and ends it stale'
        : 'Reject a change request; one rejection ends it',
    action: 'change.decide',
    mode: 'write',
    params: changeRequestParams,
    body: changeDecisionBody,
    response: changeRequestResponse,
    async handler({ app, db, principal, workspace, params, body }) {
      const user = requireUser(principal)
      const d = await decideChangeRequest(db, app, {
        workspaceId: workspace.id,
        requestId: params.request,
        userId: user.userId,
        decision,
        comment: body.comment,
        now: app.clock(),
      })
      const r = d.request
      const audit: AuditEvent[] = [
        {
          action: `change.${decision}`,
          target: target(r),
          details: { ...scopeDetails(r), approvals: r.approvals, approvalsRequired: r.approvalsRequired, comment: body.comment ?? null },
        },
      ]
      if (d.stale)
        audit.push({ action: 'change.stale', target: target(r), details: { ...scopeDetails(r), moved: d.stale.map((s) => ({ ...s })) } })
      if (d.applied) {
        const action = { set: 'secret.update', delete: 'secret.delete', rollback: 'secret.rollback' } as const
        for (const a of d.applied) {
          const c = a.change
          audit.push({
            action: a.op === 'set' && c.previousVersion === 0 ? 'secret.create' : action[a.op],
            target: { type: 'secret', id: c.secret.id },
            details: {
              key: c.secret.key,
              fromVersion: c.previousVersion,
              toVersion: c.secret.version,
              before: c.before === null ? null : new Sensitive(c.before),
              after: c.after === null ? null : new Sensitive(c.after),
              changeRequest: r.id,
            },
          })
        }
        audit.push({
          action: 'change.apply',
          target: target(r),
          details: { ...scopeDetails(r), keys: r.changes.map((c) => c.key), approvals: r.approvals },
        })
      }
      return { body: { changeRequest: r }, audit }
    },
  })
}

/** Protection of environments and change requests: listing, showing, approving, rejecting. */
export const changeRequestRoutes: AnyRoute[] = [protect, list, get, decideRoute('approve'), decideRoute('reject')]
