import { z } from 'zod'
import {
  createBreakGlassRequest,
  decideBreakGlassRequest,
  getBreakGlassRequest,
  listBreakGlassRequests,
  revokeBreakGlassRequest,
  type BreakGlassView,
} from '../../access/break-glass-requests.js'
import { requireUser } from '../../access/policy.js'
import { ref } from '../../api/fields.js'
import {
  breakGlassDecisionBody,
  breakGlassListResponse,
  breakGlassRequestBody,
  breakGlassRequestResponse,
  sealBody,
  sealResponse,
} from '../../api/break-glass.js'
import type { AuditEvent } from '../../audit/audit-log.js'
import type { AppContext } from '../../context.js'
import { findScope, setEnvironmentSealed } from '../../vault/project-service.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { environmentParams, workspaceParams } from '../schemas.js'

const B = '/v1/workspaces/:workspace/break-glass'

const requestParams = z.strictObject({ workspace: ref, request: z.uuid() })

function target(r: BreakGlassView) {
  return { type: 'breakglass_request', id: r.id }
}

function scopeDetails(r: BreakGlassView) {
  return { project: r.project.id, environment: r.environment.id, access: r.access, requester: r.requester.id }
}

/**
 * Tells the approvers about a new request: by mail when SMTP is configured (COFFER_SMTP_URL),
 * else a line in the server log; the request is in `coffer breakglass list` either way.
 */
function notifyApprovers(app: AppContext, ws: { slug: string }, r: BreakGlassView, approvers: Array<{ id: string; email: string }>) {
  return async (log: { info(o: object, m: string): void; warn(o: object, m: string): void }) => {
    const mailer = app.mailer
    const text = [
      `${r.requester.email} asks for break-glass ${r.access} access to ${r.project.slug}/${r.environment.slug} in workspace ${ws.slug}`,
      `for ${r.durationMinutes} minutes. Reason: ${r.reason}`,
      '',
      `Approve: coffer breakglass approve ${r.id} --workspace ${ws.slug}`,
      `Deny:    coffer breakglass deny ${r.id} --workspace ${ws.slug}`,
      `It needs ${r.approvalsRequired} approvals from Owners or Admins other than the requester.`,
    ].join('\n')
    if (!mailer.enabled) {
      log.info(
        { breakGlassRequest: r.id, approvers: approvers.map((a) => a.id) },
        'break-glass request: no mailer configured; approvers see it in `coffer breakglass list`',
      )
      return
    }
    // @NOTE not awaited: a slow mail server must not hold the request; a failure is logged.
    for (const a of approvers) {
      void mailer
        .send({ to: a.email, subject: `[Coffer] Break-glass request for ${r.project.slug}/${r.environment.slug}`, text })
        .catch((err: unknown) =>
          log.warn(
            { breakGlassRequest: r.id, approver: a.id, err: { message: (err as Error).message } },
            'break-glass notification mail failed',
          ),
        )
    }
  }
}

const list = defineRoute({
  method: 'GET',
  url: B,
  summary: 'List break-glass requests and grants (pending ones first to decide)',
  tag: 'break-glass',
  action: 'breakglass.read',
  mode: 'read',
  params: workspaceParams,
  query: z.strictObject({ status: z.enum(['pending', 'active', 'expired', 'denied', 'revoked']).optional() }),
  response: breakGlassListResponse,
  async handler({ app, db, workspace, query }) {
    return {
      body: {
        requests: await listBreakGlassRequests(db, workspace.id, { ...(query.status ? { status: query.status } : {}) }, app.clock()),
      },
    }
  },
})

const request = defineRoute({
  method: 'POST',
  url: B,
  summary: 'Request time-bound break-glass access to a sealed environment (needs approvals)',
  tag: 'break-glass',
  action: 'breakglass.request',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: breakGlassRequestBody,
  response: breakGlassRequestResponse,
  async handler({ app, db, principal, workspace, body }) {
    const user = requireUser(principal)
    const { request: r, approvers } = await createBreakGlassRequest(db, {
      workspaceId: workspace.id,
      requesterId: user.userId,
      project: body.project,
      environment: body.environment,
      access: body.access,
      reason: body.reason,
      durationMinutes: body.durationMinutes,
      maxMinutes: app.config.breakGlass.maxMinutes,
      approvalsRequired: app.config.breakGlass.approvals,
      now: app.clock(),
    })
    return {
      body: { request: r },
      audit: {
        action: 'breakglass.request',
        target: target(r),
        details: { ...scopeDetails(r), reason: r.reason, durationMinutes: r.durationMinutes, approvalsRequired: r.approvalsRequired },
      },
      afterCommit: notifyApprovers(app, workspace, r, approvers),
    }
  },
})

const get = defineRoute({
  method: 'GET',
  url: `${B}/:request`,
  summary: 'Show one break-glass request',
  tag: 'break-glass',
  action: 'breakglass.read',
  mode: 'read',
  params: requestParams,
  response: breakGlassRequestResponse,
  async handler({ app, db, workspace, params }) {
    return { body: { request: await getBreakGlassRequest(db, workspace.id, params.request, app.clock()) } }
  },
})

function decideRoute(decision: 'approve' | 'deny') {
  return defineRoute({
    method: 'POST',
    url: `${B}/:request/${decision}`,
    tag: 'break-glass',
    summary:
      decision === 'approve'
        ? 'Approve a break-glass request (another Owner/Admin, once); the last approval needed activates the grant'
        : 'Deny a break-glass request; one denial ends it',
    action: 'breakglass.decide',
    mode: 'write',
    params: requestParams,
    body: breakGlassDecisionBody,
    response: breakGlassRequestResponse,
    async handler({ app, db, principal, workspace, params, body }) {
      const user = requireUser(principal)
      const { request: r, activated } = await decideBreakGlassRequest(db, {
        workspaceId: workspace.id,
        requestId: params.request,
        userId: user.userId,
        decision,
        comment: body.comment,
        now: app.clock(),
      })
      const audit: AuditEvent[] = [
        {
          action: `breakglass.${decision}`,
          target: target(r),
          details: { ...scopeDetails(r), approvals: r.approvals, approvalsRequired: r.approvalsRequired, comment: body.comment ?? null },
        },
      ]
      if (activated)
        audit.push({
          action: 'breakglass.activate',
          target: { type: 'breakglass_grant', id: r.id },
          details: { ...scopeDetails(r), activatedAt: r.activatedAt, expiresAt: r.expiresAt },
        })
      return { body: { request: r }, audit }
    },
  })
}

const revoke = defineRoute({
  method: 'POST',
  url: `${B}/:request/revoke`,
  summary: 'End a pending request or an active grant now (the requester or an Owner)',
  tag: 'break-glass',
  action: 'breakglass.revoke',
  mode: 'write',
  params: requestParams,
  body: z.strictObject({}).optional(),
  response: breakGlassRequestResponse,
  async handler({ app, db, principal, workspace, params }) {
    const user = requireUser(principal)
    const { request: r, was } = await revokeBreakGlassRequest(db, {
      workspaceId: workspace.id,
      requestId: params.request,
      userId: user.userId,
      role: user.role,
      now: app.clock(),
    })
    return { body: { request: r }, audit: { action: 'breakglass.revoke', target: target(r), details: { ...scopeDetails(r), was } } }
  },
})

const seal = defineRoute({
  method: 'PUT',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment/seal',
  tag: 'break-glass',
  summary: 'Seal or unseal an environment: sealed, people reveal or write its values only through a break-glass grant',
  action: 'environment.seal',
  mode: 'write',
  params: environmentParams,
  body: sealBody,
  response: sealResponse,
  async handler({ db, workspace, params, body }) {
    const scope = await findScope(db, workspace.id, params.project, params.environment)
    await setEnvironmentSealed(db, workspace.id, scope.environmentId, body.sealed)
    return {
      body: { environment: { id: scope.environmentId, projectId: scope.projectId, sealed: body.sealed } },
      audit: {
        action: body.sealed ? 'environment.seal' : 'environment.unseal',
        target: { type: 'environment', id: scope.environmentId },
        details: { project: scope.projectId },
      },
    }
  },
})

/** Break-glass: sealing environments, requests, decisions, grants. */
export const breakGlassRoutes: AnyRoute[] = [seal, list, request, get, decideRoute('approve'), decideRoute('deny'), revoke]
