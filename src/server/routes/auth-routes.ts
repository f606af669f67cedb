import { z } from 'zod'
import { InvalidCredentialsError, EmailNotVerifiedError, CofferError, OidcFailedError } from '../../errors.js'
import { checkPassword, markEmailVerified, requestPasswordReset, setPasswordFromReset, signUp } from '../../identity/accounts.js'
import { consumeLink } from '../../identity/email-links.js'
import type { MailMessage } from '../../identity/mailer.js'
import {
  OIDC_CALLBACK_PATH,
  OIDC_STATE_COOKIE,
  FLOW_LIFETIME_MS,
  saveFlow,
  signInWithOidc,
  takeFlow,
  type OidcClaims,
} from '../../identity/oidc.js'
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from '../../identity/passwords.js'
import { createSession, csrfTokenFor } from '../../identity/sessions.js'
import type { AppContext } from '../../context.js'
import { defineAuthRoute, type AnyAuthRoute, type AuthHandlerResult } from '../auth-route.js'

// Public authentication endpoints: no credential. Answers never say whether an email is
// registered: sign-up and "forgot password" answer alike for every email, and sign-in fails
// with one code for an unknown email, a wrong password and an account without a password.

const email = z
  .string()
  .trim()
  .min(3)
  .max(254)
  .regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address')
const password = z.string().min(PASSWORD_MIN, `at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX)
const linkToken = z.string().min(1).max(128)
const accepted = z.object({ status: z.literal('accepted') })
const userView = z.object({ id: z.string(), email: z.string() })
const signedIn = z.object({ user: userView, csrfToken: z.string(), expiresAt: z.string() })

/** Where a person lands after signing in when nothing else was asked for: the dashboard. */
export const HOME_PATH = '/'

/** Where a page may send the browser after signing in: a local path only (no open redirect); otherwise the dashboard. */
export function safeReturnTo(v: unknown): string {
  return typeof v === 'string' && /^\/(?![/\\])[\x21-\x7e]{0,512}$/.test(v) ? v : HOME_PATH
}

/** `path` with `returnTo` added to its query when the form carried a safe one (so the next page can carry it on). */
function withReturnTo(path: string, returnTo: unknown): string {
  const to = safeReturnTo(returnTo)
  return to === HOME_PATH ? path : `${path}${path.includes('?') ? '&' : '?'}returnTo=${encodeURIComponent(to)}`
}

function sendLater(app: AppContext, mail: MailMessage | undefined) {
  if (!mail || !app.mailer.enabled) return undefined
  return async () => app.mailer.send(mail)
}

const methods = defineAuthRoute({
  scope: 'public',
  method: 'GET',
  url: '/v1/auth/methods',
  summary: 'Which sign-in methods this server offers',
  tag: 'auth',
  action: 'public',
  mode: 'read',
  response: z.object({ password: z.boolean(), signUp: z.boolean(), oidc: z.boolean(), mail: z.boolean() }),
  async handler({ app }) {
    const a = app.config.auth
    return { body: { password: a.password, signUp: a.password, oidc: a.oidc !== null, mail: app.mailer.enabled }, audit: null }
  },
})

const signUpRoute = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/auth/password/sign-up',
  summary: 'Sign up with email and password (a verification mail follows)',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  status: 202,
  requires: 'password',
  authRateLimit: true,
  body: z.strictObject({ email, password, name: z.string().trim().min(1).max(128).optional(), returnTo: z.string().max(600).optional() }),
  response: accepted,
  // The page after sign-up still knows where to go back to once the address is verified.
  form: {
    success: (_a, b) => withReturnTo('/sign-in?notice=check-mail', b.returnTo),
    failure: (b) => withReturnTo('/sign-up', b.returnTo),
  },
  async prepare({ body }) {
    return hashPassword(body.password)
  },
  async handler({ app, db, body, prepared, now }) {
    const r = await signUp(
      db,
      { email: body.email, ...(body.name ? { name: body.name } : {}), passwordHash: prepared },
      app.config.auth.publicUrl,
      now,
    )
    // A new account belongs to no workspace yet, so no log records it; an existing one is not changed.
    return { body: { status: 'accepted' as const }, audit: null, afterCommit: sendLater(app, r.mail) }
  },
})

const signIn = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/auth/password/sign-in',
  summary: 'Sign in with email and password (sets the session cookie)',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  requires: 'password',
  authRateLimit: { count: 'failures' },
  body: z.strictObject({ email, password: z.string().min(1).max(PASSWORD_MAX), returnTo: z.string().max(600).optional() }),
  response: signedIn,
  // @NOTE only a local path (safeReturnTo): a returnTo naming another site ends on /account.
  form: { success: (_a, b) => safeReturnTo(b.returnTo), failure: (b) => withReturnTo('/sign-in', b.returnTo) },
  async prepare({ db, body }) {
    return checkPassword(db, body.email, body.password)
  },
  async handler({ app, db, prepared, client, now }): Promise<AuthHandlerResult<z.infer<typeof signedIn>>> {
    if (!prepared.ok) {
      const fail = prepared.reason === 'unverified' ? new EmailNotVerifiedError() : new InvalidCredentialsError()
      if (!prepared.account)
        return { body: null as never, audit: null, fail, unattributed: { event: 'auth.sign-in', reason: prepared.reason } }
      return {
        body: null as never,
        fail,
        anonymous: true,
        auditUser: prepared.account.id,
        audit: {
          action: 'auth.sign-in-failed',
          target: { type: 'user', id: prepared.account.id },
          details: { method: 'password', reason: prepared.reason },
        },
      }
    }
    const { account } = prepared
    const { cookieValue, info } = await createSession(
      db,
      { userId: account.id, method: 'password', ...client },
      app.config.auth.session,
      now,
    )
    return {
      body: { user: { id: account.id, email: account.email }, csrfToken: csrfTokenFor(cookieValue), expiresAt: info.expiresAt },
      session: { set: cookieValue },
      auditUser: account.id,
      audit: { action: 'auth.sign-in', target: { type: 'session', id: info.id }, details: { method: 'password' } },
    }
  },
})

const forgot = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/auth/password/forgot',
  summary: 'Ask for a password-reset mail (same answer for every email)',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  status: 202,
  requires: 'password',
  authRateLimit: true,
  body: z.strictObject({ email }),
  response: accepted,
  form: { success: '/forgot-password?notice=check-mail', failure: '/forgot-password' },
  async handler({ app, db, body, now }) {
    // @NOTE with mail off no link is made: nobody could receive it (an Owner/Admin issues one instead).
    const r = app.mailer.enabled ? await requestPasswordReset(db, body.email, app.config.auth.publicUrl, now) : undefined
    if (!r) return { body: { status: 'accepted' as const }, audit: null }
    return {
      body: { status: 'accepted' as const },
      anonymous: true,
      auditUser: r.userId,
      afterCommit: sendLater(app, r.mail),
      audit: { action: 'auth.password-reset-requested', target: { type: 'user', id: r.userId }, details: { delivery: 'mail' } },
    }
  },
})

const reset = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/auth/password/reset',
  summary: 'Set a new password with a reset link (ends every session)',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  requires: 'password',
  authRateLimit: { account: () => undefined },
  body: z.strictObject({ token: linkToken, password }),
  response: z.object({ status: z.literal('password-set') }),
  form: {
    success: '/sign-in?notice=password-reset',
    failure: (b) => (typeof b.token === 'string' ? `/reset-password?token=${encodeURIComponent(b.token)}` : '/reset-password'),
  },
  async prepare({ body }) {
    return hashPassword(body.password)
  },
  async handler({ db, body, prepared, now }) {
    const userId = await consumeLink(db, body.token, 'reset', now)
    const { sessionsEnded } = await setPasswordFromReset(db, userId, prepared, now)
    return {
      body: { status: 'password-set' as const },
      auditUser: userId,
      audit: { action: 'auth.password-reset', target: { type: 'user', id: userId }, details: { sessionsEnded } },
    }
  },
})

const verify = defineAuthRoute({
  scope: 'public',
  method: 'POST',
  url: '/v1/auth/email/verify',
  summary: 'Verify an email address with its link',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  authRateLimit: { account: () => undefined },
  body: z.strictObject({ token: linkToken }),
  response: z.object({ status: z.literal('verified') }),
  form: { success: '/sign-in?notice=email-verified', failure: '/verify-email' },
  async handler({ db, body, now }) {
    const userId = await consumeLink(db, body.token, 'verify', now)
    await markEmailVerified(db, userId, now)
    return {
      body: { status: 'verified' as const },
      auditUser: userId,
      audit: { action: 'auth.email-verified', target: { type: 'user', id: userId } },
    }
  },
})

const oidcStart = defineAuthRoute({
  scope: 'public',
  method: 'GET',
  url: '/v1/auth/oidc/start',
  summary: 'Sign in with SSO: redirects to the identity provider',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  requires: 'oidc',
  authRateLimit: { account: () => undefined },
  query: z.strictObject({ returnTo: z.string().max(600).optional() }),
  response: z.null(),
  form: { success: HOME_PATH, failure: '/sign-in' },
  async prepare({ app }) {
    return app.oidc!.start()
  },
  async handler({ db, query, prepared, now }) {
    await saveFlow(db, prepared, safeReturnTo(query.returnTo), now)
    return {
      body: null,
      audit: null,
      redirect: prepared.url,
      cookies: [{ name: OIDC_STATE_COOKIE, value: prepared.state, path: OIDC_CALLBACK_PATH, maxAge: FLOW_LIFETIME_MS / 1000 }],
    }
  },
})

type CallbackOutcome = { ok: true; claims: OidcClaims; returnTo: string } | { ok: false; error: CofferError; reason: string }

const oidcCallback = defineAuthRoute({
  scope: 'public',
  method: 'GET',
  url: OIDC_CALLBACK_PATH,
  summary: 'Where the identity provider sends the browser back (sets the session cookie)',
  tag: 'auth',
  action: 'public',
  mode: 'write',
  requires: 'oidc',
  authRateLimit: { account: () => undefined },
  // The provider adds parameters of its own (iss, session_state, …): they go on to the check.
  query: z.looseObject({
    state: z.string().max(512).optional(),
    code: z.string().max(4096).optional(),
    error: z.string().max(256).optional(),
  }),
  response: z.null(),
  form: { success: HOME_PATH, failure: '/sign-in' },
  async prepare({ app, query, request, now }): Promise<CallbackOutcome> {
    try {
      // @NOTE the flow row is deleted here, outside the request's transaction: the code
      // exchange below is a network call, and a callback must be usable once even if it fails.
      const flow = await takeFlow(app.store.db, query.state, request.cookies[OIDC_STATE_COOKIE], now)
      const claims = await app.oidc!.finish(new URL(request.url, app.config.auth.publicUrl), flow)
      return { ok: true, claims, returnTo: flow.returnTo }
    } catch (err) {
      if (!(err instanceof CofferError)) throw err
      return {
        ok: false,
        error: err,
        reason: err.code === 'ERR_OIDC_STATE' ? 'state' : err instanceof OidcFailedError ? 'provider' : 'email',
      }
    }
  },
  async handler({ app, db, prepared, client, now }) {
    const clear = [{ name: OIDC_STATE_COOKIE, value: null, path: OIDC_CALLBACK_PATH }]
    // Failures before a person is known belong to no workspace: logged and counted.
    if (!prepared.ok)
      return {
        body: null,
        audit: null,
        fail: prepared.error,
        cookies: clear,
        unattributed: { event: 'auth.oidc-callback', reason: prepared.reason },
      }
    let who: Awaited<ReturnType<typeof signInWithOidc>>
    try {
      who = await signInWithOidc(db, prepared.claims, app.config.auth.oidc!.allowedDomains, now)
    } catch (err) {
      if (!(err instanceof CofferError)) throw err
      return { body: null, audit: null, fail: err, cookies: clear, unattributed: { event: 'auth.oidc-callback', reason: 'email' } }
    }
    const { cookieValue, info } = await createSession(db, { userId: who.userId, method: 'oidc', ...client }, app.config.auth.session, now)
    return {
      body: null,
      session: { set: cookieValue },
      cookies: clear,
      redirect: prepared.returnTo,
      auditUser: who.userId,
      audit: {
        action: 'auth.sign-in',
        target: { type: 'session', id: info.id },
        details: { method: 'oidc', issuer: prepared.claims.issuer, linked: who.linked, created: who.created },
      },
    }
  },
})

/** Every public authentication route. */
export const authRoutes: AnyAuthRoute[] = [methods, signUpRoute, signIn, forgot, reset, verify, oidcStart, oidcCallback]
