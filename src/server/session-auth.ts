import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Role, UserPrincipal } from '../access/policy.js'
import type { AppContext } from '../context.js'
import { CsrfError, NotFoundError, UnauthenticatedError } from '../errors.js'
import { type FromCache, stampOf } from '../identity/principal-cache.js'
import {
  checkCsrfToken,
  hashSessionId,
  resolveSession,
  SESSION_COOKIE,
  type SessionInfo,
  touchDue,
  touchSession,
  type ResolvedSession,
} from '../identity/sessions.js'
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
  await touch(ctx, resolved.session, now)
  return { ...resolved, cookieValue }
}

/**
 * Records activity on `session` when it is due (sessions.ts touchDue), and moves the
 * session's `lastSeenAt` on. A touch is a small write of its own (sessions hold no workspace:
 * system scope), not part of the request's audited change; when none is due no transaction runs.
 */
async function touch(ctx: AppContext, session: SessionInfo, now: Date): Promise<SessionInfo> {
  const timeouts = ctx.config.auth.session
  if (!touchDue(session, timeouts, now)) return session
  await ctx.committer.run((tx) => touchSession(tx, session, timeouts, now))
  return { ...session, lastSeenAt: now.toISOString() }
}

/** The workspace `ref` (id or slug) if `userId` is a member of it, with the role and the workspace's epoch. */
async function membership(
  ctx: AppContext,
  userId: string,
  ref: string | undefined,
): Promise<{ workspace: Workspace; role: Role; epoch: number } | undefined> {
  // Memberships span workspaces: read in SYSTEM_SCOPE (row-level security on PostgreSQL).
  return readInScope(ctx.store, SYSTEM_SCOPE, async (db) => {
    const r = await findPersonWorkspace(db, userId, ref)
    return r && { workspace: { id: r.id, slug: r.slug, name: r.name, createdAt: r.createdAt }, role: r.role, epoch: r.epoch }
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
  options: { cache?: boolean } = {},
): Promise<T | { principal: UserPrincipal; workspace: Workspace; cached?: FromCache }> {
  if (req.headers.authorization !== undefined || !sessionCookieOf(req)) return viaBearer()
  const ref = (req.params as Record<string, string | undefined>).workspace
  const cookie = sessionCookieOf(req)!
  const now = ctx.clock()
  // The session and the workspace it is used in, by the SHA-256 of the cookie's id (never the id).
  const key = options.cache && ctx.principals.enabled ? `s:${hashSessionId(cookie).toString('base64')}:${ref ?? ''}` : undefined
  const hit = key ? ctx.principals.get(key, now, req.ip) : undefined
  if (key && hit?.session) {
    checkCsrf(ctx, req, cookie)
    hit.session = await touch(ctx, hit.session, now)
    return { principal: hit.principal as UserPrincipal, workspace: hit.workspace, cached: { key, entry: hit } }
  }
  const s = await currentSession(ctx, req)
  if (!s) throw new UnauthenticatedError('Your session has ended; sign in again.')
  checkCsrf(ctx, req, s.cookieValue)
  const m = await membership(ctx, s.user.id, ref)
  if (!m) throw new NotFoundError('workspace')
  const principal: UserPrincipal = {
    type: 'user',
    userId: s.user.id,
    email: s.user.email,
    tokenId: s.session.id,
    workspaceId: m.workspace.id,
    role: m.role,
  }
  if (key) {
    ctx.principals.set(
      key,
      {
        principal,
        workspace: m.workspace,
        session: s.session,
        idleMs: ctx.config.auth.session.idleMs,
        stamp: stampOf([m.workspace.id, s.user.id], [m.epoch, s.userEpoch]),
      },
      now,
      s.session.expiresAt,
    )
  }
  return { principal, workspace: m.workspace }
}
