import type { FastifyReply, FastifyRequest } from 'fastify'
import { PageTable, type PageRouteDef } from '../page-route.js'
import type { AppContext } from '../../context.js'
import { findAccount } from '../../identity/accounts.js'
import { csrfTokenFor, listSessions } from '../../identity/sessions.js'
import { readInScope, SYSTEM_SCOPE } from '../../storage/tenant-scope.js'
import { currentSession } from '../session-auth.js'
import { HOME_PATH, safeReturnTo } from '../routes/auth-routes.js'
import { csrfField, html, messages, PAGE_CSP, PAGE_CSS, PAGE_CSS_PATH, renderPage, type Html } from './layout.js'
import { listPersonWorkspaces } from '../../identity/person-workspaces.js'

// The sign-in pages. Forms post to the /v1 routes of the account pipeline (which answer a
// form with a redirect back here); these handlers only read and render.

type Query = Record<string, unknown>

/** Sends a rendered page with the pages' CSP. */
export function sendPage(reply: FastifyReply, title: string, body: Html, status = 200): FastifyReply {
  // @NOTE strict-origin, not no-referrer: with no-referrer browsers send `Origin: null` on the
  // page's own form posts, which the CSRF check refuses where Sec-Fetch-Site is not sent. Not
  // same-origin either: pages carry one-time tokens in their query (/invite?token=…,
  // /reset-password?token=…, a returnTo holding one), and under strict-origin no request — not
  // even to this server or a proxy in front of it — carries more than the origin as referrer.
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', PAGE_CSP)
    .header('referrer-policy', 'strict-origin')
    .send(renderPage(title, body))
}

function tokenOf(q: Query): string {
  return typeof q.token === 'string' ? q.token.slice(0, 128) : ''
}

/** Registers the pages and their stylesheet. */
export function authPages(ctx: AppContext): PageRouteDef[] {
  const pages = new PageTable()
  const auth = ctx.config.auth

  pages.get(PAGE_CSS_PATH, {}, async (_req, reply) => reply.type('text/css; charset=utf-8').send(PAGE_CSS))

  pages.get('/sign-in', {}, async (req, reply) => {
    const q = req.query as Query
    const returnTo = safeReturnTo(q.returnTo)
    const sso = auth.oidc
      ? html`<p class="or">${auth.password ? 'Or:' : ''}</p><a class="button secondary" href="/v1/auth/oidc/start?returnTo=${encodeURIComponent(returnTo)}">Sign in with SSO</a>`
      : html``
    const back = returnTo === HOME_PATH ? html`` : html`<input type="hidden" name="returnTo" value="${returnTo}">`
    const signUp = returnTo === HOME_PATH ? '/sign-up' : `/sign-up?returnTo=${encodeURIComponent(returnTo)}`
    const form = auth.password
      ? html`<form method="post" action="/v1/auth/password/sign-in">${back}
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>
<p><a href="/forgot-password">Forgot your password?</a> · <a href="${signUp}">Create an account</a></p>`
      : html``
    return sendPage(reply, 'Sign in', html`${messages(q)}${form}${sso}`)
  })

  pages.get('/sign-up', {}, async (req, reply) => {
    if (!auth.password) return reply.code(303).header('location', '/sign-in?error=ERR_AUTH_METHOD_DISABLED').send()
    const q = req.query as Query
    const returnTo = safeReturnTo(q.returnTo)
    const back = returnTo === HOME_PATH ? html`` : html`<input type="hidden" name="returnTo" value="${returnTo}">`
    const signIn = returnTo === HOME_PATH ? '/sign-in' : `/sign-in?returnTo=${encodeURIComponent(returnTo)}`
    return sendPage(
      reply,
      'Create an account',
      html`${messages(q)}<form method="post" action="/v1/auth/password/sign-up">${back}
<label for="name">Name</label><input id="name" name="name" type="text" autocomplete="name">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email" required>
<label for="password">Password <small>(at least 12 characters)</small></label><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Create account</button></form><p><a href="${signIn}">Back to sign in</a></p>`,
    )
  })

  pages.get('/verify-email', {}, async (req, reply) => {
    const q = req.query as Query
    const token = tokenOf(q)
    // @NOTE a button, not the GET itself: mail scanners that open links must not use them up.
    const form = token
      ? html`<p>Confirm that this email address is yours.</p><form method="post" action="/v1/auth/email/verify"><input type="hidden" name="token" value="${token}"><button type="submit">Verify my email</button></form>`
      : html`<p><a href="/sign-in">Back to sign in</a></p>`
    return sendPage(reply, 'Verify your email', html`${messages(q)}${form}`)
  })

  pages.get('/forgot-password', {}, async (req, reply) => {
    if (!auth.password) return reply.code(303).header('location', '/sign-in?error=ERR_AUTH_METHOD_DISABLED').send()
    return sendPage(
      reply,
      'Forgot your password?',
      html`${messages(req.query as Query)}<p>We mail you a link to set a new password. It works once, within one hour.</p>
<form method="post" action="/v1/auth/password/forgot"><label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email" required>
<button type="submit">Send the link</button></form><p><a href="/sign-in">Back to sign in</a></p>`,
    )
  })

  pages.get('/reset-password', {}, async (req, reply) => {
    if (!auth.password) return reply.code(303).header('location', '/sign-in?error=ERR_AUTH_METHOD_DISABLED').send()
    const q = req.query as Query
    const token = tokenOf(q)
    const form = token
      ? html`<form method="post" action="/v1/auth/password/reset"><input type="hidden" name="token" value="${token}">
<label for="password">New password <small>(at least 12 characters)</small></label><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Set password</button></form><p><small>Setting it signs you out everywhere.</small></p>`
      : html`<p><a href="/forgot-password">Ask for a new link</a></p>`
    return sendPage(reply, 'Set a new password', html`${messages(q)}${form}`)
  })

  pages.get('/account', {}, async (req, reply) => {
    const s = await currentSession(ctx, req)
    if (!s) return reply.code(303).header('location', '/sign-in?returnTo=%2Faccount').send()
    const now = ctx.clock()
    const { account, workspaces, sessions } = await readInScope(ctx.store, SYSTEM_SCOPE, async (db) => ({
      account: await findAccount(db, s.user.id),
      workspaces: await listPersonWorkspaces(db, s.user.id, 'slug'),
      sessions: await listSessions(db, s.user.id, auth.session, now),
    }))
    if (!account) return reply.code(303).header('location', '/sign-in').send()
    const csrf = csrfField(csrfTokenFor(s.cookieValue))
    const wsRows = workspaces.map((w) => html`<tr><td>${w.name} <small>${w.slug}</small></td><td>${w.role}</td></tr>`)
    const sessionRows = sessions.map(
      (x) =>
        html`<tr><td>${x.id === s.session.id ? 'This browser' : x.userAgent.slice(0, 60) || 'unknown'}<br><small>${x.ip} · ${x.method} · since ${x.createdAt.slice(0, 16).replace('T', ' ')} UTC</small></td><td>${
          x.id === s.session.id
            ? html``
            : html`<form class="inline" method="post" action="/v1/account/sessions/${x.id}/revoke">${csrf}<button class="secondary" type="submit">End</button></form>`
        }</td></tr>`,
    )
    const password =
      auth.password && account.createdVia !== 'oidc'
        ? html`<h2>${account.passwordHash ? 'Change password' : 'Set a password'}</h2>${
            account.passwordHash
              ? html`<form method="post" action="/v1/account/password">${csrf}<label for="current">Current password</label><input id="current" name="currentPassword" type="password" autocomplete="current-password" required>
<label for="new">New password <small>(at least 12 characters; your other sessions end)</small></label><input id="new" name="newPassword" type="password" autocomplete="new-password" minlength="12" required><button type="submit">Change password</button></form>`
              : html`<p>Your account has no password yet: <a href="/forgot-password">get a link to set one</a>.</p>`
          }`
        : html``
    return sendPage(
      reply,
      'Your account',
      html`${messages(req.query as Query)}
<p><strong>${account.email}</strong>${account.name && account.name !== account.email ? html` · ${account.name}` : html``}</p>
<div><a class="button" href="/">Open the dashboard</a> <form class="inline" method="post" action="/v1/account/sign-out">${csrf}<button class="secondary" type="submit">Sign out</button></form></div>
<h2>Workspaces</h2>${workspaces.length ? html`<table>${wsRows}</table>` : html`<p><small>None yet: ask an Owner or Admin to invite you.</small></p>`}
<h2>Sessions</h2><table>${sessionRows}</table>
<form method="post" action="/v1/account/sign-out-everywhere">${csrf}<button class="secondary" type="submit">Sign out everywhere</button></form>
${password}
<h2>Your data</h2><p><a href="/v1/account/export">Download everything tied to your account (JSON)</a></p>
<h2>Delete account</h2><form method="post" action="/v1/account/delete">${csrf}<label for="confirm">Type your email address to confirm</label><input id="confirm" name="confirmEmail" type="email" required><button class="danger" type="submit">Delete my account</button></form>`,
    )
  })
  return pages.routes
}

/** For other pages (CLI login, consent): the signed-in person of a page request and their CSRF token, or undefined. */
export async function pageSession(
  ctx: AppContext,
  req: FastifyRequest,
): Promise<{ userId: string; email: string; sessionId: string; csrfToken: string } | undefined> {
  const s = await currentSession(ctx, req)
  return s && { userId: s.user.id, email: s.user.email, sessionId: s.session.id, csrfToken: csrfTokenFor(s.cookieValue) }
}
