import { PageTable, type PageRouteDef } from '../page-route.js'
import { invitationWorkspace, previewInvitation, type InvitationPreview } from '../../access/invitations.js'
import type { AppContext } from '../../context.js'
import { InvitationInvalidError, InvitationWrongAccountError } from '../../errors.js'
import { tokenKind } from '../../identity/token-format.js'
import { csrfTokenFor } from '../../identity/sessions.js'
import { readInScope, SYSTEM_SCOPE } from '../../storage/tenant-scope.js'
import { currentSession } from '../session-auth.js'
import { csrfField, html, messages, type Html } from './layout.js'
import { sendPage } from './auth-pages.js'
import { findPersonWorkspace } from '../../identity/person-workspaces.js'

// The page an invitation's mailed link opens: GET /invite?token=…. Signed out, it explains
// the invitation and sends the person to sign in (or sign up) and back. Signed in as the
// invited address, it names the workspace and role and offers Accept, a form that posts to
// POST /v1/account/invitations/accept (invitation-form-routes.ts) with the session's CSRF
// token. Anyone else learns nothing: a used, expired, revoked or made-up token gets one
// message, another account another, neither naming the workspace. The token only ever sits
// in this page's URL and its hidden field: pages send Referrer-Policy strict-origin and
// Cache-Control no-store, and logged URLs have it redacted.

type Query = Record<string, unknown>

/** What the page says about an unusable invitation: one text for every reason. */
export const INVITATION_INVALID_TEXT =
  'This invitation cannot be used: it is invalid, expired, revoked or already used. Ask the person who invited you for a new one.'
/** What the page says to a signed-in person who is not the invited address. */
export const INVITATION_WRONG_ACCOUNT_TEXT =
  'This invitation cannot be accepted with this account. Sign in with the email address the invitation was sent to.'

/** What a refused Accept comes back with (`/invite?error=CODE`); any other code reads as an unusable invitation. */
const ERROR_TEXT: Record<string, string> = {
  ERR_ALREADY_EXISTS: 'You are already a member of this workspace.',
  ERR_UNAUTHENTICATED: 'Your session has ended. Sign in and open the invitation link again.',
}

const ROLE_TEXT: Record<string, string> = { owner: 'Owner', admin: 'Admin', member: 'Member', auditor: 'Auditor' }

/** The token of the page's query, if it has a Coffer invitation token's shape (anything else is never echoed). */
function tokenOf(q: Query): string | undefined {
  const t = typeof q.token === 'string' ? q.token : ''
  return t.length <= 200 && tokenKind(t) === 'inv' ? t : undefined
}

function alert(text: string): Html {
  return html`<p class="msg error" role="alert">${text}</p>`
}

/** Registers GET /invite and GET /invite/accepted. */
export function invitePages(ctx: AppContext): PageRouteDef[] {
  const pages = new PageTable()

  // Looking a token up is an oracle (valid or not): limited like a sign-in.
  pages.get('/invite', { authRateLimit: true }, async (req, reply) => {
    const q = req.query as Query
    const error = typeof q.error === 'string' ? q.error : undefined
    const token = tokenOf(q)
    const s = await currentSession(ctx, req)
    const signOut = s
      ? html`<form method="post" action="/v1/account/sign-out">${csrfField(csrfTokenFor(s.cookieValue))}<button class="secondary" type="submit">Sign out</button></form>`
      : html``

    // @NOTE one page, byte for byte, for every unusable token, signed in or not.
    const invalid = () =>
      sendPage(reply, 'Invitation', html`${alert(INVITATION_INVALID_TEXT)}<p><a href="/account">Your account</a></p>`, 404)
    const wrongAccount = () =>
      sendPage(
        reply,
        'Invitation',
        html`${alert(INVITATION_WRONG_ACCOUNT_TEXT)}${
          s
            ? html`<p>You are signed in as <strong>${s.user.email}</strong>. Sign out, sign in as the invited address, and open the link again.</p>${signOut}`
            : html``
        }`,
        403,
      )

    // Back from a refused Accept: the code alone says what happened (the token is not carried back).
    if (!token) {
      if (error === 'ERR_INVITATION_WRONG_ACCOUNT') return wrongAccount()
      if (error && ERROR_TEXT[error])
        return sendPage(reply, 'Invitation', html`${alert(ERROR_TEXT[error]!)}<p><a href="/account">Your account</a></p>`, 409)
      return invalid()
    }

    if (!s) {
      try {
        await readInScope(ctx.store, SYSTEM_SCOPE, (db) => invitationWorkspace(db, token, ctx.clock()))
      } catch (err) {
        if (!(err instanceof InvitationInvalidError)) throw err
        return invalid()
      }
      // @NOTE signed out, the page names no workspace: a forwarded link shows nothing.
      const back = encodeURIComponent(`/invite?token=${token}`)
      return sendPage(
        reply,
        'You are invited to Coffer',
        html`<p>Someone invited you to join a workspace on Coffer, a vault for a team's secrets.</p>
<p>Sign in with the email address the invitation was sent to — or create an account with that address — to see the invitation and accept it.</p>
<a class="button" href="/sign-in?returnTo=${back}">Sign in</a> <a class="button secondary" href="/invite/sign-up?token=${encodeURIComponent(token)}">Create an account</a>
<p><small>An account created here, for the invited address, needs no confirmation mail: the invitation vouches for the address, and you land in the workspace.</small></p>`,
      )
    }

    let preview: InvitationPreview
    try {
      preview = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => previewInvitation(db, token, s.user.email, ctx.clock()))
    } catch (err) {
      if (err instanceof InvitationWrongAccountError) return wrongAccount()
      if (err instanceof InvitationInvalidError) return invalid()
      throw err
    }
    const project = preview.project
      ? html`<tr><th>Project</th><td>${preview.project.name} <small>(${preview.project.role})</small></td></tr>`
      : html``
    return sendPage(
      reply,
      'Join a workspace',
      html`<p>You are invited to join a workspace on Coffer.</p>
<table><tr><th>Workspace</th><td><strong>${preview.workspace.name}</strong> <small>${preview.workspace.slug}</small></td></tr>
<tr><th>Role</th><td>${ROLE_TEXT[preview.role] ?? preview.role}</td></tr>${project}
<tr><th>As</th><td>${s.user.email}</td></tr></table>
<form method="post" action="/v1/account/invitations/accept">${csrfField(csrfTokenFor(s.cookieValue))}<input type="hidden" name="token" value="${token}"><button type="submit">Accept the invitation</button></form>`,
    )
  })

  // Creating an account through the invitation (POST /v1/auth/invitation/sign-up). The page
  // names no workspace and no address: whoever holds a forwarded link learns nothing, and
  // must type the invited address, which the server compares.
  pages.get('/invite/sign-up', { authRateLimit: true }, async (req, reply) => {
    if (!ctx.config.auth.password) return reply.code(303).header('location', '/sign-in?error=ERR_AUTH_METHOD_DISABLED').send()
    const q = req.query as Query
    const token = tokenOf(q)
    const invalid = () => sendPage(reply, 'Invitation', html`${alert(INVITATION_INVALID_TEXT)}<p><a href="/sign-in">Sign in</a></p>`, 404)
    if (!token) return invalid()
    if (await currentSession(ctx, req))
      return reply
        .code(303)
        .header('location', `/invite?token=${encodeURIComponent(token)}`)
        .send()
    try {
      await readInScope(ctx.store, SYSTEM_SCOPE, (db) => invitationWorkspace(db, token, ctx.clock()))
    } catch (err) {
      if (!(err instanceof InvitationInvalidError)) throw err
      return invalid()
    }
    const back = encodeURIComponent(`/invite?token=${token}`)
    return sendPage(
      reply,
      'Create your account',
      html`${messages(q)}<p>Create your Coffer account with the email address this invitation was sent to. The invitation confirms that address: you need no confirmation mail and land in the workspace.</p>
<form method="post" action="/v1/auth/invitation/sign-up"><input type="hidden" name="token" value="${token}">
<label for="name">Name</label><input id="name" name="name" type="text" autocomplete="name">
<label for="email">Email <small>(the invited address)</small></label><input id="email" name="email" type="email" autocomplete="email" required>
<label for="password">Password <small>(at least 12 characters)</small></label><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Create account and join</button></form>
<p>Already have an account? <a href="/sign-in?returnTo=${back}">Sign in</a> and accept the invitation.</p>`,
    )
  })

  pages.get('/invite/accepted', {}, async (req, reply) => {
    const q = req.query as Query
    const s = await currentSession(ctx, req)
    if (!s) return reply.code(303).header('location', '/sign-in?returnTo=%2Faccount').send()
    const slug = typeof q.workspace === 'string' ? q.workspace.slice(0, 200) : ''
    // Names the workspace only to a member of it: the query is anyone's to write.
    const m = slug
      ? await readInScope(ctx.store, SYSTEM_SCOPE, async (db) => {
          const w = await findPersonWorkspace(db, s.user.id, slug)
          // By slug only: an id in the query names nothing here.
          return w?.slug === slug ? w : undefined
        })
      : undefined
    if (!m) return reply.code(303).header('location', '/account').send()
    return sendPage(
      reply,
      'Invitation accepted',
      html`<p class="msg notice">You joined the workspace <strong>${m.name}</strong> as ${ROLE_TEXT[m.role] ?? m.role}.</p>
<p>Use it from the command line: <code>coffer login</code>, then choose <strong>${m.slug}</strong>.</p>
<p><a class="button" href="/w/${encodeURIComponent(m.slug)}">Open the workspace</a> <a class="button secondary" href="/account">Your account</a></p>`,
    )
  })
  return pages.routes
}
