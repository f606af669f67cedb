import { z } from 'zod'
import { acceptInvitation, createInvitation, invitationWorkspace, listInvitations, revokeInvitation } from '../../access/invitations.js'
import { requireUser } from '../../access/policy.js'
import {
  acceptedInvitationResponse,
  acceptInvitationBody,
  createdInvitationResponse,
  createInvitationBody,
  invitationListResponse,
  invitationResponse,
} from '../../api/invitations.js'
import type { AuditEvent } from '../../audit/audit-log.js'
import { issueToken } from '../../identity/identity-service.js'
import { findProject } from '../../vault/project-service.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

/**
 * Where the invited person accepts: the invite page and the CLI. @NOTE the token is in the
 * query, not the fragment: the page runs no script, so only the server can put it into the
 * accept form. The page is sent with Referrer-Policy strict-origin and Cache-Control
 * no-store, and logged URLs have their `token` redacted (src/ops/redact.ts).
 */
function acceptLinks(publicUrl: string, token: string) {
  return {
    acceptUrl: `${publicUrl}/invite?token=${encodeURIComponent(token)}`,
    acceptCommand: `coffer invite accept ${token} --url ${publicUrl}`,
  }
}

/** The audit events of an accepted invitation (the API route and the invite page's form record the same). */
export function acceptanceEvents(r: Awaited<ReturnType<typeof acceptInvitation>>, userId: string): AuditEvent[] {
  return [
    { action: 'invitation.accept', target: { type: 'invitation', id: r.invitation.id }, details: { email: r.invitation.email } },
    {
      action: 'member.add',
      target: { type: 'user', id: userId },
      details: {
        email: r.invitation.email,
        role: r.role,
        project: r.project?.id ?? null,
        projectRole: r.project?.role ?? null,
        via: 'invitation',
      },
    },
  ]
}

const create = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/invitations',
  tag: 'members',
  summary: 'Invite an email with a workspace role (and optionally a project role); the token is shown once and mailed when mail is set up',
  action: 'invitations.manage',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: createInvitationBody,
  response: createdInvitationResponse,
  async handler({ app, db, principal, workspace, body }) {
    const inviter = requireUser(principal)
    const project = body.project === undefined ? undefined : await findProject(db, workspace.id, body.project)
    const r = await createInvitation(db, {
      workspaceId: workspace.id,
      inviter,
      email: body.email,
      role: body.role,
      now: app.clock(),
      ...(project ? { project } : {}),
      ...(body.projectRole ? { projectRole: body.projectRole } : {}),
      ...(body.expiresInDays ? { days: body.expiresInDays } : {}),
    })
    const links = acceptLinks(app.config.auth.publicUrl, r.token)
    const mailed = app.mailer.enabled
    const audit: AuditEvent = {
      action: 'invitation.create',
      target: { type: 'invitation', id: r.invitation.id },
      details: {
        email: r.invitation.email,
        role: r.invitation.role,
        project: r.invitation.projectId,
        projectRole: r.invitation.projectRole,
        expiresAt: r.invitation.expiresAt,
        superseded: r.superseded,
        mailed,
      },
    }
    return {
      body: { invitation: r.invitation, token: r.token, ...links, mailed },
      audit,
      afterCommit: mailed
        ? () =>
            app.mailer.send({
              to: r.invitation.email,
              subject: `You are invited to ${workspace.name} on Coffer`,
              text:
                `${inviter.email} invited you to the workspace ${workspace.name} on Coffer as ${r.invitation.role}.\n\n` +
                `Accept in the browser, signed in as ${r.invitation.email}:\n${links.acceptUrl}\n\nor with the CLI:\n${links.acceptCommand}\n\n` +
                `The invitation expires ${r.invitation.expiresAt} and works once.\n`,
            })
        : undefined,
    }
  },
})

const list = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/invitations',
  summary: 'List invitations (never their tokens)',
  tag: 'members',
  action: 'invitations.manage',
  mode: 'read',
  params: workspaceParams,
  response: invitationListResponse,
  async handler({ app, db, workspace }) {
    return { body: { invitations: await listInvitations(db, workspace.id, app.clock()) } }
  },
})

const revoke = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/invitations/:invitation',
  summary: 'Revoke a pending invitation',
  tag: 'members',
  action: 'invitations.manage',
  mode: 'write',
  params: z.strictObject({ workspace: workspaceParams.shape.workspace, invitation: z.uuid() }),
  response: invitationResponse,
  async handler({ app, db, workspace, params }) {
    const invitation = await revokeInvitation(db, workspace.id, params.invitation, app.clock())
    return {
      body: { invitation },
      audit: {
        action: 'invitation.revoke',
        target: { type: 'invitation', id: invitation.id },
        details: { email: invitation.email, state: invitation.state },
      },
    }
  },
})

const accept = defineRoute({
  method: 'POST',
  url: '/v1/invitations/accept',
  tag: 'members',
  summary:
    'Accept an invitation as the signed-in person whose email it was sent to (Bearer token or session); with tokenName, also issue a personal token for the new workspace (shown once)',
  action: 'invitation.accept',
  mode: 'write',
  status: 201,
  body: acceptInvitationBody,
  response: acceptedInvitationResponse,
  async tenantFromBody({ app, db, body }) {
    return { workspace: await invitationWorkspace(db, body.token, app.clock()) }
  },
  async handler({ app, db, principal, workspace, body }) {
    const person = requireUser(principal)
    const r = await acceptInvitation(db, workspace.id, body.token, person, app.clock())
    const issued = body.tokenName
      ? await issueToken(db, { workspaceId: workspace.id, userId: person.userId, name: body.tokenName }, app.clock())
      : null
    const audit = acceptanceEvents(r, person.userId)
    if (issued)
      audit.push({
        action: 'token.create',
        target: { type: 'token', id: issued.info.id },
        details: { name: issued.info.name, expiresAt: null },
      })
    return { body: { workspace, role: r.role, project: r.project, token: issued?.token ?? null, tokenInfo: issued?.info ?? null }, audit }
  },
})

export const invitationRoutes: AnyRoute[] = [create, list, revoke, accept]
