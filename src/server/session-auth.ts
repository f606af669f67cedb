import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Role, UserPrincipal } from '../access/policy.js'
import type { AppContext } from '../context.js'
import { CsrfError, NotFoundError, UnauthenticatedError } from '../errors.js'
import { checkCsrfToken, resolveSession, SESSION_COOKIE, touchSession, type ResolvedSession } from '../identity/sessions.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import type { Workspace } from '../vault/workspace-service.js'
import { findPersonWorkspace } from '../identity/person-workspaces.js'

// Browser sessions in the request pipeline: the coffer_session cookie, CSRF protection for
// cookie-authenticated requests that change state, and the cookie's attributes.
//
// CSRF: a state-changing request authenticated by the cookie must (1) not come from another
// site — Sec-Fetch-Site, when sent, is same-origin (or none), and Origin, when sent, is this
// server's (COFFER_PUBLIC_URL's origin or the request's own scheme and Host) — and (2) carry
// the session's synchronizer token in the x-csrf-token header (API calls) or the _csrf form
// field (pages). Bearer-token requests carry no ambient credential and are not checked.

/** The form field that carries the CSRF token in server-rendered forms. */
export const CSRF_FIELD = '_csrf'
/** The header that carries the CSRF token in API calls. */
export const CSRF_HEADER = 'x-csrf-token'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The session cookie's value, if the request carries one. */
export function sessionCookieOf(req: FastifyRequest): string | undefined {
  const v = (req.cookies as Record<string, string | undefined> | undefined)?.[SESSION_COOKIE]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** Whether the cookie should be Secure: Coffer is reached over https (COFFER_PUBLIC_URL) or this request came over TLS. */
export function secureCookies(ctx: AppContext, req: FastifyRequest): boolean {
  return ctx.config.auth.publicUrl.startsWith('https:') || req.protocol === 'https'
}

/** Sets the session cookie: HttpOnly, SameSite=Lax, Path=/, Secure by the rule above, for the absolute lifetime. */
export function setSessionCookie(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, value: string): void {
  void reply.setCookie(SESSION_COOKIE, value, {
    httpOnly: true,
    sameSite: 'lax',
    path: '/',
    secure: secureCookies(ctx, req),
    maxAge: Math.floor(ctx.config.auth.session.absoluteMs / 1000),
  })
}

/** Removes the session cookie from the browser. */
export function clearSessionCookie(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): void {
  void reply.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', path: '/', secure: secureCookies(ctx, req) })
}

/**
 * Whether a request may come from where it says: not from another site. Browsers send
 * Origin on every cross-site POST; a request without Origin or Sec-Fetch-Site is not a
 * browser's cross-site request. `Origin: null` passes only with Sec-Fetch-Site: same-origin.
 */
export function sameOrigin(ctx: AppContext, req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
  const origin = req.headers.origin
  if (origin === undefined) return true
  // @NOTE a page whose referrer policy is no-referrer makes the browser send `Origin: null`
  // even for its own forms; then the fetch metadata (which a page cannot forge) decides.
  if (origin === 'null') return site === 'same-origin'
  const own = new Set([ctx.config.auth.publicUrl])
  if (req.headers.host) own.add(`${req.protocol}://${req.headers.host}`)
  return own.has(origin)
}

/**
 * The CSRF check of a cookie-authenticated request: nothing for GET/HEAD/OPTIONS; otherwise
 * the origin rule and the session's token (header, or `formToken` from a form body).
 */
export function checkCsrf(ctx: AppContext, req: FastifyRequest, cookieValue: string, formToken?: unknown): void {
  if (SAFE_METHODS.has(req.method)) return
  if (!sameOrigin(ctx, req)) throw new CsrfError()
  const header = req.headers[CSRF_HEADER]
  const token = typeof header === 'string' ? header : typeof formToken === 'string' ? formToken : undefined
  if (!checkCsrfToken(cookieValue, token)) throw new CsrfError()
}

/** The session behind the request's cookie (and records the activity), or undefined. */
export async function currentSession(
  ctx: AppContext,
  req: FastifyRequest,
): Promise<(ResolvedSession & { cookieValue: string }) | undefined> {
  const cookieValue = sessionCookieOf(req)
  if (!cookieValue) return undefined
  const timeouts = ctx.config.auth.session
  const now = ctx.clock()
  const resolved = await resolveSession(ctx.store.readDb, cookieValue, timeouts, now)
  if (!resolved) return undefined
  // @NOTE a touch is a small write of its own (sessions hold no workspace: system scope),
  // not part of the request's audited change.
  await ctx.committer.run((tx) => touchSession(tx, resolved.session, timeouts, now))
  return { ...resolved, cookieValue }
}

/** The workspace `ref` (id or slug) if `userId` is a member of it, with the role. */
async function membership(
  ctx: AppContext,
  userId: string,
  ref: string | undefined,
): Promise<{ workspace: Workspace; role: Role } | undefined> {
  // Memberships span workspaces: read in SYSTEM_SCOPE (row-level security on PostgreSQL).
  return readInScope(ctx.store, SYSTEM_SCOPE, async (db) => {
    const r = await findPersonWorkspace(db, userId, ref)
    return r && { workspace: { id: r.id, slug: r.slug, name: r.name, createdAt: r.createdAt }, role: r.role }
  })
}

/**
 * Authenticates a workspace route's request: a Bearer token as before (`viaBearer`), or —
 * with no Authorization header — the session cookie. For a session the workspace is the
 * URL's `:workspace` (or, on a route without one, the person's first workspace) and the
 * person must be a member: otherwise 404, exactly as for another tenant. CSRF is checked
 * right after authentication, before anything about the workspace is looked at.
 */
export async function authenticateRequest<T extends { workspace: Workspace }>(
  ctx: AppContext,
  req: FastifyRequest,
  viaBearer: () => Promise<T>,
): Promise<T | { principal: UserPrincipal; workspace: Workspace }> {
  if (req.headers.authorization !== undefined || !sessionCookieOf(req)) return viaBearer()
  const s = await currentSession(ctx, req)
  if (!s) throw new UnauthenticatedError('Your session has ended; sign in again.')
  checkCsrf(ctx, req, s.cookieValue)
  const m = await membership(ctx, s.user.id, (req.params as Record<string, string | undefined>).workspace)
  if (!m) throw new NotFoundError('workspace')
  return {
    principal: { type: 'user', userId: s.user.id, email: s.user.email, tokenId: s.session.id, workspaceId: m.workspace.id, role: m.role },
    workspace: m.workspace,
  }
}
