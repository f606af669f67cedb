import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Executor } from '../storage/database.js'

// Browser sessions. The browser holds an opaque id (32 random bytes, base64url) in the
// coffer_session cookie; the database holds only its SHA-256, so a copy of the database
// opens no session. A session ends when revoked, after `idleMs` without a request, or
// `absoluteMs` after it began, whichever comes first.

/** The session cookie's name. */
export const SESSION_COOKIE = 'coffer_session'

const ID_RE = /^[A-Za-z0-9_-]{43}$/

/** Idle and absolute lifetimes of a session, in milliseconds. */
export interface SessionTimeouts {
  idleMs: number
  absoluteMs: number
}

/** A session as listings show it (never the cookie's id). */
export interface SessionInfo {
  id: string
  method: 'password' | 'oidc' | 'link'
  createdAt: string
  lastSeenAt: string
  expiresAt: string
  ip: string
  userAgent: string
}

/** A live session and its person. */
export interface ResolvedSession {
  session: SessionInfo
  user: { id: string; email: string }
  /** The person's authentication epoch, read by the same statement (see principal-cache.ts). */
  userEpoch: number
}

type Row = { id: string; method: string; created_at: string; last_seen_at: string; expires_at: string; ip: string; user_agent: string }

function toInfo(r: Row): SessionInfo {
  return {
    id: r.id,
    method: r.method as SessionInfo['method'],
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
    ip: r.ip,
    userAgent: r.user_agent,
  }
}

/** The stored form of a session id. */
export function hashSessionId(raw: string): Buffer {
  return createHash('sha256').update(raw, 'utf8').digest()
}

/**
 * Starts a session for `userId` and returns the opaque id for the cookie (shown once) with
 * the session's listing.
 */
export async function createSession(
  db: Executor,
  input: { userId: string; method: SessionInfo['method']; ip: string; userAgent: string },
  timeouts: SessionTimeouts,
  now: Date,
): Promise<{ cookieValue: string; info: SessionInfo }> {
  const cookieValue = randomBytes(32).toString('base64url')
  const row = {
    id: randomUUID(),
    id_hash: hashSessionId(cookieValue),
    user_id: input.userId,
    method: input.method,
    created_at: now.toISOString(),
    last_seen_at: now.toISOString(),
    expires_at: new Date(now.getTime() + timeouts.absoluteMs).toISOString(),
    ip: input.ip.slice(0, 64),
    user_agent: input.userAgent.slice(0, 512),
    revoked_at: null,
  }
  await db.insertInto('sessions').values(row).execute()
  return { cookieValue, info: toInfo(row) }
}

/**
 * The live session behind a cookie value, or undefined for a malformed, unknown, revoked,
 * idle or expired one (all alike). Reads only; see `touchSession`.
 */
export async function resolveSession(
  db: Executor,
  cookieValue: string,
  timeouts: SessionTimeouts,
  now: Date,
): Promise<ResolvedSession | undefined> {
  if (!ID_RE.test(cookieValue)) return undefined
  const row = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .leftJoin('auth_epochs as ue', 'ue.scope', 'sessions.user_id')
    .select([
      'ue.epoch as userEpoch',
      'sessions.id',
      'sessions.method',
      'sessions.created_at',
      'sessions.last_seen_at',
      'sessions.expires_at',
      'sessions.ip',
      'sessions.user_agent',
      'sessions.revoked_at',
      'users.id as userId',
      'users.email',
    ])
    .where('sessions.id_hash', '=', hashSessionId(cookieValue))
    .executeTakeFirst()
  if (!row || row.revoked_at) return undefined
  const t = now.getTime()
  if (Date.parse(row.expires_at) <= t || Date.parse(row.last_seen_at) + timeouts.idleMs <= t) return undefined
  return { session: toInfo(row), user: { id: row.userId, email: row.email }, userEpoch: Number(row.userEpoch ?? 0) }
}

/** Whether activity on `session` is due to be recorded: at most about once per `idleMs / 8` (and per minute). */
export function touchDue(session: SessionInfo, timeouts: SessionTimeouts, now: Date): boolean {
  const every = Math.min(60_000, Math.floor(timeouts.idleMs / 8))
  return now.getTime() - Date.parse(session.lastSeenAt) >= every
}

/**
 * Records activity on a session when it is due (touchDue), so that reads do not each cost a
 * write. Returns whether a write was made.
 */
export async function touchSession(db: Executor, session: SessionInfo, timeouts: SessionTimeouts, now: Date): Promise<boolean> {
  if (!touchDue(session, timeouts, now)) return false
  await db
    .updateTable('sessions')
    .set({ last_seen_at: now.toISOString() })
    .where('id', '=', session.id)
    .where('revoked_at', 'is', null)
    .execute()
  return true
}

/** A person's live sessions, newest first. */
export async function listSessions(db: Executor, userId: string, timeouts: SessionTimeouts, now: Date): Promise<SessionInfo[]> {
  const rows = await db
    .selectFrom('sessions')
    .select(['id', 'method', 'created_at', 'last_seen_at', 'expires_at', 'ip', 'user_agent'])
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now.toISOString())
    .where('last_seen_at', '>', new Date(now.getTime() - timeouts.idleMs).toISOString())
    .orderBy('created_at', 'desc')
    .execute()
  return rows.map(toInfo)
}

/** Ends one of `userId`'s sessions; false when it is not theirs or already ended. */
export async function revokeSession(db: Executor, userId: string, sessionId: string, now: Date): Promise<boolean> {
  const r = await db
    .updateTable('sessions')
    .set({ revoked_at: now.toISOString() })
    .where('id', '=', sessionId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return Number(r.numUpdatedRows) > 0
}

/** Ends every session of `userId` except `keep` (if given); returns how many ended. */
export async function revokeAllSessions(db: Executor, userId: string, keep: string | undefined, now: Date): Promise<number> {
  let q = db.updateTable('sessions').set({ revoked_at: now.toISOString() }).where('user_id', '=', userId).where('revoked_at', 'is', null)
  if (keep) q = q.where('id', '!=', keep)
  const r = await q.executeTakeFirst()
  return Number(r.numUpdatedRows)
}

/**
 * The CSRF token of a session: an HMAC of a fixed label under the session's own id, so it is
 * bound to the session, needs no storage, and cannot be computed without the cookie.
 */
export function csrfTokenFor(cookieValue: string): string {
  return createHmac('sha256', cookieValue).update('coffer/csrf/v1').digest('base64url')
}

/** Constant-time check of a CSRF token against the session's. */
export function checkCsrfToken(cookieValue: string, token: string | undefined): boolean {
  if (typeof token !== 'string' || token.length !== 43) return false
  return timingSafeEqual(Buffer.from(csrfTokenFor(cookieValue)), Buffer.from(token))
}
