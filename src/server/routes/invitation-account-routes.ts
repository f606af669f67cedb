import { z } from 'zod'
import {
  acceptInvitation,
  invitationWorkspace,
  listMyInvitations,
  myInvitationWorkspace,
  previewInvitation,
} from '../../access/invitations.js'
import { myInvitationAcceptedResponse, myInvitationListResponse } from '../../api/invitations.js'
import { ROLES } from '../../api/roles.js'
import { workspaceView } from '../../api/workspaces.js'
import { InvitationInvalidError, InvitationLinkRequiredError } from '../../errors.js'
import { createInvitedAccount, findAccount } from '../../identity/accounts.js'
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from '../../identity/passwords.js'
import { createSession, csrfTokenFor } from '../../identity/sessions.js'
import { tokenKind } from '../../identity/token-format.js'
import { defineAuthRoute, type AnyAuthRoute } from '../auth-route.js'
import { acceptanceEvents } from './invitation-routes.js'

// Onboarding that works with mail off (docs/access.md, "Invitations"):
// - Signing up through an invitation link: the invitation was issued for one address, so an
//   account made with it for that address — and only that one — counts as verified; it joins
//   the workspace and is signed in. It never touches an existing account.
// - The signed-in person's pending invitations, listed for their own verified address (never
//   a token), and accepted in one click — except by an account whose address was itself
//   confirmed only by an invitation link (created `invite`): whoever issued that link may have
//   kept it, so the address alone must not open other workspaces' invitations.

/** The invitation sign-up page (src/server/pages/invite-pages.ts), carrying the token back after a refusal. */
export function invitationSignUpPage(token: unknown): string {
  return typeof token === 'string' && token.length <= 200 && tokenKind(token) === 'inv'
    ? `/invite/sign-up?token=${encodeURIComponent(token)}`
    : '/invite/sign-up'
}

const email = z
  .string()
  .trim()
  .min(3)
  .max(254)
  .regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address')

const signUp = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/auth/invitation/sign-up',
  summary:
    'Create an account through an invitation link, for the invited address only: no further verification; joins the workspace and signs in (sets the session cookie)',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  status: 201,
  requires: 'password',
  authRateLimit: true,
  body: z.strictObject({
    token: z.string().min(1).max(200),
    email,
    password: z.string().min(PASSWORD_MIN, `at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX),
    name: z.string().trim().min(1).max(128).optional(),
  }),
  response: z.object({
    user: z.object({ id: z.string(), email: z.string() }),
    workspace: workspaceView,
    role: z.enum(ROLES),
    csrfToken: z.string(),
    expiresAt: z.string(),
  }),
  // The new member lands in the workspace, in the dashboard.
  form: { success: (a) => `/w/${encodeURIComponent(a.workspace.slug)}`, failure: (b) => invitationSignUpPage(b.token) },
  async prepare({ db, body, now }) {
    // An unusable token fails here, before the slow hash.
    const workspace = await invitationWorkspace(db, body.token, now)
    return { workspace, passwordHash: await hashPassword(body.password) }
  },
  auditWorkspace: (p) => p.workspace.id,
  async handler({ app, db, body, prepared, client, now }) {
    // Again inside the transaction: still usable, and issued for exactly this address.
    await previewInvitation(db, body.token, body.email, now)
    const account = await createInvitedAccount(
      db,
      { email: body.email, passwordHash: prepared.passwordHash, ...(body.name ? { name: body.name } : {}) },
      now,
    )
    const r = await acceptInvitation(db, prepared.workspace.id, body.token, { userId: account.userId, email: account.email }, now)
    const { cookieValue, info } = await createSession(
      db,
      { userId: account.userId, method: 'password', ...client },
      app.config.auth.session,
      now,
    )
    return {
      body: {
        user: { id: account.userId, email: account.email },
        workspace: prepared.workspace,
        role: r.role,
        csrfToken: csrfTokenFor(cookieValue),
        expiresAt: info.expiresAt,
      },
      session: { set: cookieValue },
      auditUser: account.userId,
      audit: [
        ...acceptanceEvents(r, account.userId),
        { action: 'auth.sign-in', target: { type: 'session', id: info.id }, details: { method: 'password', via: 'invitation-sign-up' } },
      ],
    }
  },
})

const mine = defineAuthRoute({
  scope: 'account',
  method: 'GET',
  url: '/v1/account/invitations',
  summary:
    'The pending invitations addressed to your own verified email (never their tokens), and whether you may accept them here in one click',
  tag: 'account',
  action: 'account.read',
  mode: 'read',
  response: myInvitationListResponse,
  async handler({ db, person, now }) {
    const a = await findAccount(db, person!.userId)
    if (!a?.emailVerifiedAt) return { body: { invitations: [], oneClick: false }, audit: null }
    return { body: { invitations: await listMyInvitations(db, a.email, now), oneClick: a.createdVia !== 'invite' }, audit: null }
  },
})

const acceptMine = defineAuthRoute({
  scope: 'account',
  method: 'POST',
  url: '/v1/account/invitations/:invitation/accept',
  summary: 'Accept, in one click, a pending invitation addressed to your own verified email (browser session only)',
  tag: 'account',
  action: 'invitation.accept',
  mode: 'write',
  status: 201,
  params: z.strictObject({ invitation: z.uuid() }),
  response: myInvitationAcceptedResponse,
  async prepare({ db, person, params, now }) {
    const a = await findAccount(db, person!.userId)
    if (!a?.emailVerifiedAt) throw new InvitationInvalidError()
    // Someone else's invitation looks exactly like a made-up id.
    const workspace = await myInvitationWorkspace(db, params.invitation, a.email, now)
    if (a.createdVia === 'invite') throw new InvitationLinkRequiredError()
    return { workspace, email: a.email }
  },
  auditWorkspace: (p) => p.workspace.id,
  async handler({ db, person, params, prepared, now }) {
    const p = person!
    const r = await acceptInvitation(db, prepared.workspace.id, { id: params.invitation }, { userId: p.userId, email: prepared.email }, now)
    return { body: { workspace: prepared.workspace, role: r.role, project: r.project }, audit: acceptanceEvents(r, p.userId) }
  },
})

/** Sign-up through an invitation, and the signed-in person's own pending invitations. */
export const invitationAccountRoutes: AnyAuthRoute[] = [signUp, mine, acceptMine]
