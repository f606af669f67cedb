import type { FastifyRequest } from 'fastify'
import type { z } from 'zod'
import { actorId, type Principal } from '../access/policy.js'
import type { AuditActor, AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import {
  AuditUnavailableError,
  CofferError,
  DatabaseBusyError,
  DatabaseUnavailableError,
  ForbiddenError,
  UnauthenticatedError,
  ValidationError,
} from '../errors.js'
import { type CredentialUse, recordUse, useIsStale } from '../identity/credential-use.js'
import { type FromCache, stampIsCurrent } from '../identity/principal-cache.js'
import { hashToken } from '../identity/token-format.js'
import type { Workspace } from '../vault/workspace-service.js'
import { authenticate } from '../identity/identity-service.js'
import { csrfTokenFor } from '../identity/sessions.js'
import { isConnectionError } from '../storage/connection-errors.js'
import { conflictReason } from '../storage/transaction-retry.js'
import { isSqliteBusy } from '../storage/write-lock-wait.js'
import type { Executor } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { checkCsrf, currentSession, sessionCookieOf } from './session-auth.js'

// The stages of the one request pipeline (pipeline.ts), and the helpers every kind of route
// shares. Each kind of route (workspace API, account and sign-in, page) runs these stages in
// this order; a kind that has nothing to do in a stage says why in its plan.

/** The stages of every request, in order. */
export const STAGES = ['authenticate', 'tenant', 'rate-caps', 'policy', 'validate', 'handle', 'audit'] as const
export type StageName = (typeof STAGES)[number]

/** How a kind of route runs each stage: one line per stage, every stage named (the type refuses a missing one). */
export type StagePlan = Readonly<Record<StageName, string>>

/** Validates `value` with `schema`; a mismatch throws ValidationError naming the fields under `where`. */
export function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}))
  if (r.success) return r.data
  const issues = r.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }))
  throw new ValidationError(`Invalid ${where}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`.slice(0, 500), issues)
}

/** The Bearer token of the Authorization header; a missing or malformed header throws UnauthenticatedError. */
export function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization
  if (!h) throw new UnauthenticatedError()
  const m = /^Bearer ([^\s]+)$/i.exec(h.trim())
  if (!m) throw new UnauthenticatedError('Send the token as: Authorization: Bearer <token>.')
  return m[1]!
}

/** The client's address (the socket's, or through the proxies COFFER_TRUST_PROXY trusts) and user agent. */
export function clientOf(req: FastifyRequest): { ip: string; userAgent: string } {
  const ua = req.headers['user-agent']
  return { ip: req.ip, userAgent: typeof ua === 'string' ? ua : '' }
}

/** The audit actor of a request made by `p`. */
export function actorOf(req: FastifyRequest, p: Principal): AuditActor {
  return { type: p.type, id: actorId(p), ...clientOf(req) }
}

/** A handler's audit decision as a list. */
export function eventsOf(audit: AuditEvent | AuditEvent[] | null | undefined): AuditEvent[] {
  if (!audit) return []
  return Array.isArray(audit) ? audit : [audit]
}

/**
 * Authenticates a Bearer token (any kind: a person's, a service token, a machine access
 * token) in the system scope, and records its last use — at most once a minute, without
 * making the request wait for that write. With `cache`, an acceptance this node holds is used
 * instead of the look-up (`cached` is then set, and the request must call confirmCached in its
 * read before relying on it); a look-up's acceptance is kept for the next request.
 */
export async function bearerAuth(ctx: AppContext, req: FastifyRequest, options: { cache?: boolean } = {}) {
  const token = bearer(req)
  const now = ctx.clock()
  const key = options.cache && ctx.principals.enabled ? `t:${hashToken(token).toString('base64')}` : undefined
  const hit = key ? ctx.principals.get(key, now, req.ip) : undefined
  let r: { principal: Principal; workspace: Workspace; use: CredentialUse; cached?: FromCache }
  let entry = hit
  if (key && hit?.use) {
    r = { principal: hit.principal, workspace: hit.workspace, use: hit.use, cached: { key, entry: hit } }
  } else {
    const a = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => authenticate(db, token, now, req.ip))
    if (key) {
      entry = ctx.principals.set(
        key,
        {
          principal: a.principal,
          workspace: a.workspace,
          use: a.use,
          stamp: a.stamp,
          ...(a.allowedCidrs ? { allowedCidrs: a.allowedCidrs } : {}),
        },
        now,
        a.expiresAt,
      )
    }
    r = a
  }
  const use = r.use
  if (useIsStale(use, now)) {
    // This node's entry now counts the use as recorded (another node may already have done so).
    if (entry) entry.use = { ...use, lastUsedAt: now.toISOString() }
    void ctx.committer
      .run((tx) => recordUse(tx, use, now), `use:${use.id}`)
      .catch((err: unknown) => req.log.warn({ err: { message: (err as Error).message } }, "could not record a credential's last use"))
  }
  return r
}

/** Thrown inside a request's read when the cached acceptance it came with is out of date; the request starts over. */
export class StaleAuthentication extends Error {
  constructor() {
    super('a cached authentication is out of date')
  }
}

/**
 * Confirms, inside the request's read (`db`), that the epochs a cached acceptance was read
 * under are unchanged; otherwise drops the entry and throws StaleAuthentication. Nothing to do
 * for an authentication read from the database by this request.
 */
export async function confirmCached(ctx: AppContext, db: Executor, cached: FromCache | undefined): Promise<void> {
  if (!cached || (await stampIsCurrent(db, cached.entry.stamp))) return
  ctx.principals.invalidate(cached.key)
  throw new StaleAuthentication()
}

/** The signed-in person of a route that acts on a person rather than a workspace. */
export interface Person {
  readonly userId: string
  readonly email: string
  /** The session's id (not the cookie's value), when the request came with the session cookie. */
  readonly sessionId?: string
  /** The personal token's id, when the request came with a Bearer token. */
  readonly tokenId?: string
  /** The session's CSRF token (session requests only), for pages and API clients to send back. */
  readonly csrfToken?: string
}

/**
 * The person behind a request: a person's Bearer token (an integration's is refused: it
 * cannot act as a person), or — with no Authorization header — the session cookie and its
 * CSRF check (`formToken`: the token an HTML form posted). No workspace membership is needed.
 */
export async function authenticatePerson(ctx: AppContext, req: FastifyRequest, formToken?: unknown): Promise<Person> {
  if (req.headers.authorization !== undefined || !sessionCookieOf(req)) {
    const { principal } = await bearerAuth(ctx, req)
    if (principal.type !== 'user') throw new ForbiddenError('An integration token cannot act as a person.')
    return { userId: principal.userId, email: principal.email, tokenId: principal.tokenId }
  }
  const s = await currentSession(ctx, req)
  if (!s) throw new UnauthenticatedError('Your session has ended; sign in again.')
  checkCsrf(ctx, req, s.cookieValue, formToken)
  return { userId: s.user.id, email: s.user.email, sessionId: s.session.id, csrfToken: csrfTokenFor(s.cookieValue) }
}

/** The policy's view of a person outside any workspace (only `person` rules can allow it). */
export function personPrincipal(p: Person): Principal {
  return { type: 'user', userId: p.userId, email: p.email, tokenId: p.sessionId ?? p.tokenId ?? '', workspaceId: '', role: 'member' }
}

/**
 * The error a failed audit write answers with: the database cannot be reached (503
 * ERR_DATABASE_UNAVAILABLE), or the log could not be written (503 ERR_AUDIT_UNAVAILABLE).
 * Either way the request was not carried out.
 */
export function auditFailure(err: unknown): CofferError {
  if (err instanceof CofferError && !(err.cause && databaseFailure(err.cause))) return err
  return databaseFailure(err) ?? new AuditUnavailableError({ cause: err })
}

/**
 * The answer for a failure of the database itself, if `err` is one: it could not be reached
 * (503 ERR_DATABASE_UNAVAILABLE), or the transaction lost conflicts after every retry or (SQLite)
 * waited out the busy timeout for a lock another connection held (503 ERR_DATABASE_BUSY).
 * Undefined for any other failure.
 */
export function databaseFailure(err: unknown): CofferError | undefined {
  if (conflictReason(err) || isSqliteBusy(err)) return new DatabaseBusyError({ cause: err })
  if (isConnectionError(err)) return new DatabaseUnavailableError({ cause: err })
  return undefined
}

/**
 * Queues `events` for the log of every workspace in `workspaces`, in `tx` (the sequencer
 * integrates them into each chain). Fails closed: a failure is ERR_AUDIT_UNAVAILABLE and the
 * transaction does not commit.
 */
export async function appendEvents(
  ctx: AppContext,
  tx: Executor,
  workspaces: readonly string[],
  actor: AuditActor,
  requestId: string,
  events: readonly AuditEvent[],
): Promise<void> {
  for (const ws of workspaces) {
    for (const e of events) {
      try {
        await ctx.audit.append(tx, ws, actor, requestId, e)
      } catch (err) {
        throw auditFailure(err)
      }
    }
  }
}
