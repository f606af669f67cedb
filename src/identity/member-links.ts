import { roleAtLeast, type RankedRole, type Role } from './principal.js'
import type { AuditLog } from '../audit/audit-log.js'
import { ForbiddenError, LinkRefusedError, NotFoundError, PasswordNotSetError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import { normalEmail } from './accounts.js'
import { issueLink, linkUrl, type LinkPurpose } from './email-links.js'

/** A member a link may be issued for. */
export interface LinkTarget {
  userId: string
  email: string
  role: Role
  createdVia: 'invite' | 'password' | 'oidc'
}

/** The member of `workspaceId` with `email`; anyone else is NotFound. */
export async function findMemberByEmail(db: Executor, workspaceId: string, email: string): Promise<LinkTarget> {
  const r = await db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select(['users.id', 'users.email', 'users.created_via', 'memberships.role'])
    .where('memberships.workspace_id', '=', workspaceId)
    .where('users.email', '=', normalEmail(email))
    .executeTakeFirst()
  if (!r) throw new NotFoundError('member')
  return { userId: r.id, email: r.email, role: r.role as Role, createdVia: r.created_via }
}

/** How a link reaches its person: mailed to their address, or handed to the issuer in the answer (mail off). */
export type LinkDelivery = 'mail' | 'response'

/**
 * Whether `issuer` may have a sign-in link (verification or password reset) made for
 * `target`. A link handed out is the account, and a token or session of one workspace must
 * not become more than that, so with delivery `response`: never for oneself (a leaked token
 * would reset its person's password and sign in everywhere), and for another member only when
 * their role is not above the issuer's and they belong to no other workspace (an Admin here
 * must not take over an Owner of another workspace). A mailed link reaches only the mailbox:
 * then anyone may ask for their own, and the role rule alone applies to others.
 * `otherWorkspaces` counts the target's other memberships, read across every workspace.
 */
export function checkLinkIssuer(
  issuer: { userId: string; role: Role },
  target: LinkTarget,
  purpose: LinkPurpose,
  otherWorkspaces: number,
  delivery: LinkDelivery,
): void {
  if (purpose === 'reset' && target.createdVia === 'oidc') throw new PasswordNotSetError()
  if (issuer.userId === target.userId) {
    if (delivery === 'mail') return
    throw new LinkRefusedError(
      'A link for your own account is only ever mailed, and mail is off on this server: change your password at /account, or ask another Owner or Admin.',
    )
  }
  // The auditor is outside the ranked order; only an Owner or Admin manages an auditor's account.
  const needed: RankedRole = target.role === 'auditor' ? 'admin' : target.role
  if (!roleAtLeast(issuer.role, needed)) throw new ForbiddenError('Only an Owner can issue links for an Owner.')
  if (delivery === 'response' && otherWorkspaces > 0)
    throw new LinkRefusedError(
      'This member also belongs to other workspaces, so a link cannot be handed out here: it would open those too. They use "Forgot password" (mail).',
    )
}

/** Issues the link and returns its URL (to mail, or to hand over when mail is off). */
export async function issueMemberLink(
  db: Executor,
  target: LinkTarget,
  purpose: LinkPurpose,
  publicUrl: string,
  now: Date,
): Promise<{ url: string; expiresAt: string }> {
  const { token, expiresAt } = await issueLink(db, target.userId, purpose, now)
  return { url: linkUrl(publicUrl, purpose, token), expiresAt }
}

/**
 * The first Owner's way into the browser on a new vault: a one-time "set your password" link
 * (a reset link, valid 1 hour), recorded in the workspace's audit log by the system. `coffer
 * server` prints it once, next to the Owner token.
 */
export async function ownerSetupLink(
  tx: Executor,
  audit: Pick<AuditLog, 'append'>,
  input: { workspaceId: string; userId: string },
  now: Date,
): Promise<{ token: string; expiresAt: string }> {
  const link = await issueLink(tx, input.userId, 'reset', now)
  await audit.append(tx, input.workspaceId, { type: 'system', id: 'bootstrap', ip: '', userAgent: 'coffer' }, 'bootstrap', {
    action: 'auth.link-issued',
    target: { type: 'user', id: input.userId },
    details: { purpose: 'reset', delivery: 'console' },
  })
  return link
}

/**
 * A one-hour password link for the account `email`, issued by the operator on the server host
 * (`coffer reset-link`): the way back in for an Owner whose setup link ran out while mail is
 * off, when no other Owner can issue one. Audited in every workspace of the person (the link
 * opens them all). Null when no such account exists, or it signs in with SSO only.
 */
export async function operatorResetLink(
  tx: Executor,
  audit: Pick<AuditLog, 'append'>,
  email: string,
  now: Date,
): Promise<{ token: string; expiresAt: string; workspaces: number } | null> {
  const user = await tx.selectFrom('users').select(['id', 'created_via']).where('email', '=', normalEmail(email)).executeTakeFirst()
  if (!user || user.created_via === 'oidc') return null
  const memberships = await tx
    .selectFrom('memberships')
    .select('workspace_id')
    .where('user_id', '=', user.id)
    .orderBy('workspace_id')
    .execute()
  const link = await issueLink(tx, user.id, 'reset', now)
  for (const m of memberships)
    await audit.append(tx, m.workspace_id, { type: 'system', id: 'operator', ip: '', userAgent: 'coffer reset-link' }, 'reset-link', {
      action: 'auth.link-issued',
      target: { type: 'user', id: user.id },
      details: { purpose: 'reset', delivery: 'console' },
    })
  return { ...link, workspaces: memberships.length }
}
