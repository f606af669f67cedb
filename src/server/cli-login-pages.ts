import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { PageTable, type PageRouteDef } from './page-route.js'
import type { AppContext } from '../context.js'
import { CofferError } from '../errors.js'
import { checkChallenge, checkLoopbackRedirect, cleanClientName, findPendingDevice, normalizeUserCode } from '../identity/cli-login.js'
import { csrfTokenFor } from '../identity/sessions.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { CSRF_FIELD, currentSession } from './session-auth.js'
import { listPersonWorkspaces } from '../identity/person-workspaces.js'

// The small server-rendered pages of the CLI login: the approval page of the loopback flow,
// the device-code page, and the page that says how it ended. Every value is HTML-escaped; no
// script runs (CSP default-src 'none'); forms carry the session's CSRF token and post to the
// account routes in cli-login-routes.ts. A later web UI takes these over.

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`)
}

const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}' +
  'h1{font-size:1.4rem}code,.code{font:1.2rem ui-monospace,monospace;letter-spacing:.1em}' +
  'button{font:inherit;padding:.5rem 1.2rem;margin-right:.6rem}.err{color:#a40000}select,input{font:inherit}'

const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`

/** The Content-Security-Policy of a page; `formTargets` are the origins its forms may reach (after redirects). */
function csp(formTargets: string[]): string {
  return [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
}

function page(reply: FastifyReply, status: number, title: string, body: string, formTargets: string[] = []): FastifyReply {
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(title)} · Coffer</title><style>${STYLE}</style></head>` +
    `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`
  // same-origin, not no-referrer: under no-referrer browsers post forms with Origin: null,
  // which the CSRF origin check refuses.
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', csp(formTargets))
    .header('referrer-policy', 'same-origin')
    .send(html)
}

/** What an error code means to the person looking at the page. */
const EXPLAIN: Record<string, string> = {
  ERR_INVALID_GRANT: 'That code is not valid any more (wrong, expired or already used). Run coffer login again.',
  ERR_CSRF: 'The form expired. Go back, reload the page and try again.',
  ERR_VALIDATION: 'The login request from the CLI is malformed. Run coffer login again.',
  ERR_RATE_LIMITED: 'Too many attempts. Wait a while and try again.',
  ERR_UNAUTHENTICATED: 'Your session ended. Sign in and try again.',
}

function explain(code: string | undefined): string {
  if (!code) return ''
  // @NOTE only a code's shape is echoed: the query string is anyone's to write.
  return EXPLAIN[code] ?? (/^ERR_[A-Z_]{1,40}$/.test(code) ? `The request failed (${code}).` : 'The request failed.')
}

async function workspacesOfPerson(
  ctx: AppContext,
  userId: string,
): Promise<Array<{ id: string; slug: string; name: string; role: string }>> {
  const list = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => listPersonWorkspaces(db, userId, 'joined'))
  return list.map((w) => ({ id: w.id, slug: w.slug, name: w.name, role: w.role }))
}

function workspaceChoice(list: Array<{ slug: string; name: string; role: string }>): string {
  if (list.length === 1)
    return `<p>Workspace: <b>${escapeHtml(list[0]!.name)}</b> (${escapeHtml(list[0]!.role)})</p><input type="hidden" name="workspace" value="${escapeHtml(list[0]!.slug)}">`
  return `<p><label>Workspace: <select name="workspace">${list.map((w) => `<option value="${escapeHtml(w.slug)}">${escapeHtml(w.name)} (${escapeHtml(w.role)})</option>`).join('')}</select></label></p>`
}

/** Sends the person to sign in first, and back here afterwards. */
function toSignIn(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply
    .code(302)
    .header('location', `/sign-in?returnTo=${encodeURIComponent(req.url)}`)
    .send()
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '')

/** Registers GET /cli/login, GET /cli/device and GET /cli/done. */
export function cliLoginPages(ctx: AppContext): PageRouteDef[] {
  const pages = new PageTable()
  pages.get('/cli/login', {}, async (req, reply) => {
    const q = req.query as Record<string, unknown>
    let redirectUri: string
    let challenge: string
    const state = str(q.state)
    try {
      redirectUri = checkLoopbackRedirect(str(q.redirect_uri))
      challenge = checkChallenge(str(q.code_challenge), str(q.code_challenge_method))
      if (!/^[A-Za-z0-9_-]{16,128}$/.test(state)) throw new Error('state')
    } catch {
      // @NOTE never redirect anywhere from a malformed request: the redirect URI is not trusted yet.
      return page(reply, 400, 'Invalid login request', `<p class="err">${escapeHtml(explain('ERR_VALIDATION'))}</p>`)
    }
    const s = await currentSession(ctx, req)
    if (!s) return toSignIn(req, reply)
    const client = cleanClientName(str(q.client))
    const workspaces = await workspacesOfPerson(ctx, s.user.id)
    if (workspaces.length === 0)
      return page(
        reply,
        403,
        'No workspace',
        '<p>You are not a member of any workspace yet, so there is nothing the CLI could sign in to.</p>',
      )
    const hidden = {
      code_challenge: challenge,
      code_challenge_method: 'S256',
      redirect_uri: redirectUri,
      state,
      client,
      [CSRF_FIELD]: csrfTokenFor(s.cookieValue),
    }
    const fields = Object.entries(hidden)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join('')
    const loopback = new URL(redirectUri).origin
    return page(
      reply,
      200,
      'Sign in the Coffer CLI?',
      `
      <p>The Coffer command-line tool on <b>${escapeHtml(client)}</b> asks to act as <b>${escapeHtml(s.user.email)}</b>.
      It will get a token that works like you do in the workspace you choose, for 90 days or until you run <code>coffer logout</code>.</p>
      <p>Approve only if you just ran <code>coffer login</code> yourself.</p>
      <form method="post" action="/v1/cli/login/approve">${fields}${workspaceChoice(workspaces)}
        <button type="submit" name="decision" value="approve">Approve</button>
        <button type="submit" name="decision" value="deny">Deny</button>
      </form>`,
      [loopback],
    )
  })

  // Looking up a user code is a guessing oracle: limited like a sign-in.
  pages.get('/cli/device', { authRateLimit: true }, async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const s = await currentSession(ctx, req)
    if (!s) return toSignIn(req, reply)
    const typed = str(q.code)
    const error = explain(str(q.error) || undefined)
    const enter = (msg: string) =>
      page(
        reply,
        200,
        'Sign in a Coffer CLI on another machine',
        `
      ${msg ? `<p class="err">${escapeHtml(msg)}</p>` : ''}
      <p>Enter the code that <code>coffer login --device</code> shows.</p>
      <form method="get" action="/cli/device"><p><input name="code" autocomplete="off" autocapitalize="characters" spellcheck="false" placeholder="XXXX-XXXX" value="${escapeHtml(typed.slice(0, 20))}"></p>
      <button type="submit">Continue</button></form>`,
      )
    if (!typed) return enter(error)
    const code = normalizeUserCode(typed)
    const pending = code ? await readInScope(ctx.store, SYSTEM_SCOPE, (db) => findPendingDevice(db, code, ctx.clock())) : undefined
    if (!code || !pending) return enter('That code is not valid: it may be mistyped, expired or already used.')
    const workspaces = await workspacesOfPerson(ctx, s.user.id)
    if (workspaces.length === 0) return page(reply, 403, 'No workspace', '<p>You are not a member of any workspace yet.</p>')
    const hidden = { userCode: code, [CSRF_FIELD]: csrfTokenFor(s.cookieValue) }
    const fields = Object.entries(hidden)
      .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
      .join('')
    return page(
      reply,
      200,
      'Sign in the Coffer CLI?',
      `
      <p>The Coffer command-line tool on <b>${escapeHtml(pending.clientName)}</b> (code <span class="code">${escapeHtml(`${code.slice(0, 4)}-${code.slice(4)}`)}</span>)
      asks to act as <b>${escapeHtml(s.user.email)}</b>, for 90 days or until <code>coffer logout</code>.</p>
      <p>Approve only if the code matches the one in your terminal.</p>
      <form method="post" action="/v1/cli/device/approve">${fields}${workspaceChoice(workspaces)}
        <button type="submit" name="decision" value="approve">Approve</button>
        <button type="submit" name="decision" value="deny">Deny</button>
      </form>`,
    )
  })

  pages.get('/cli/done', {}, async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const result = str(q.result)
    if (result === 'approved')
      return page(reply, 200, 'CLI signed in', '<p>The CLI is signed in. You can close this window and go back to the terminal.</p>')
    if (result === 'denied') return page(reply, 200, 'Login denied', '<p>The CLI was not signed in. You can close this window.</p>')
    return page(reply, 400, 'The CLI was not signed in', `<p class="err">${escapeHtml(explain(str(q.error) || 'ERR_INVALID_GRANT'))}</p>`)
  })
  return pages.routes
}

/** The page a failed approval lands on. */
export function doneWithError(err: unknown): string {
  return `/cli/done?error=${encodeURIComponent(err instanceof CofferError ? err.code : 'ERR_INTERNAL')}`
}
