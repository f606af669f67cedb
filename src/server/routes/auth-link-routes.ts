import { z } from 'zod'
import type { AuditEvent } from '../../audit/audit-log.js'
import { requireUser } from '../../access/policy.js'
import { linkMail } from '../../identity/accounts.js'
import { checkLinkIssuer, findMemberByEmail, issueMemberLink } from '../../identity/member-links.js'
import { readInScope, SYSTEM_SCOPE } from '../../storage/tenant-scope.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'
import { countOtherMemberships } from '../../identity/person-workspaces.js'

const issueLinkRoute = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/auth-links',
  summary:
    'Issue a verification or password-reset link for a member: mailed when mail is on; with mail off returned (shown once), only for another member who belongs to no other workspace',
  tag: 'auth',
  action: 'auth.links.issue',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: z.strictObject({ email: z.string().trim().min(3).max(254), purpose: z.enum(['verify', 'reset']) }),
  response: z.object({ delivery: z.enum(['mail', 'response']), url: z.string().optional(), expiresAt: z.string() }),
  async handler({ app, db, principal, workspace, body }) {
    const issuer = requireUser(principal)
    const target = await findMemberByEmail(db, workspace.id, body.email)
    // Other memberships are in other workspaces: counted across all of them (system scope).
    const others = await readInScope(app.store, SYSTEM_SCOPE, (r) => countOtherMemberships(r, target.userId, workspace.id))
    const delivery = app.mailer.enabled ? ('mail' as const) : ('response' as const)
    checkLinkIssuer(issuer, target, body.purpose, others, delivery)
    const { url, expiresAt } = await issueMemberLink(db, target, body.purpose, app.config.auth.publicUrl, app.clock())
    const audit: AuditEvent = {
      action: 'auth.link-issued',
      target: { type: 'user', id: target.userId },
      details: { purpose: body.purpose, delivery },
    }
    if (delivery === 'response') return { body: { delivery: 'response' as const, url, expiresAt }, audit }
    const mail = linkMail(target.email, body.purpose, url)
    return { body: { delivery: 'mail' as const, expiresAt }, audit, afterCommit: () => app.mailer.send(mail) }
  },
})

/** Routes an Owner/Admin uses to get members into their accounts. */
export const authLinkRoutes: AnyRoute[] = [issueLinkRoute]
