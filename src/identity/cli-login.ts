import { createHash, randomBytes, randomInt, randomUUID, timingSafeEqual } from 'node:crypto'
import {
  AccessDeniedError,
  AuthorizationPendingError,
  CodeExpiredError,
  InvalidGrantError,
  SlowDownError,
  ValidationError,
} from '../errors.js'
import type { Executor } from '../storage/database.js'
import { issueToken, type TokenInfo } from './identity-service.js'

// `coffer login` without a token: the person signs in to the browser and approves the CLI.
//
// Loopback flow (RFC 8252 + PKCE S256): the CLI listens on 127.0.0.1:<port>, opens
// /cli/login with its code_challenge, state and redirect URI; the signed-in person approves;
// the server makes a one-time code (60 s, single use, bound to the challenge, the redirect URI
// and the person's choice of workspace) and redirects to the loopback address; the CLI
// exchanges code + code_verifier for a CLI token.
//
// Device flow (RFC 8628 style): the CLI asks for a device code and a short user code, shows
// the user code and /cli/device, and polls; the person types (or follows) the code, approves
// or denies; polling faster than the interval gets slow_down and a longer interval.
//
// Every code is stored only as its SHA-256. Nothing here knows HTTP.

/** How long a loopback code lives. */
export const LOGIN_CODE_TTL_MS = 60_000
/** How long a device authorization waits for approval. */
export const DEVICE_CODE_TTL_MS = 10 * 60_000
/** The first polling interval of a device authorization, seconds. */
export const DEVICE_POLL_INTERVAL_S = 5
/** How long a CLI token lives. */
export const CLI_TOKEN_TTL_MS = 90 * 86_400_000

// 20 consonants: no vowels (no words), no look-alikes of digits; 8 letters ≈ 34.6 bits.
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ'

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest()

/** S256: base64url(SHA-256(verifier)). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}

const VERIFIER_RE = /^[A-Za-z0-9._~-]{43,128}$/
const CHALLENGE_RE = /^[A-Za-z0-9_-]{43}$/

/**
 * A loopback redirect URI the server will send a code to: http://127.0.0.1:<port>/<path>
 * (or [::1]) and nothing else — no host names, no query, no fragment, no credentials.
 */
export function checkLoopbackRedirect(raw: string): string {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new ValidationError('redirect_uri must be http://127.0.0.1:<port>/…')
  }
  const host = u.hostname
  if (u.protocol !== 'http:' || (host !== '127.0.0.1' && host !== '[::1]') || !u.port || u.username || u.password || u.search || u.hash) {
    throw new ValidationError('redirect_uri must be http://127.0.0.1:<port>/… (a loopback address of this machine)')
  }
  return u.toString()
}

/** Checks a PKCE code challenge (S256 only) and returns it. */
export function checkChallenge(challenge: string, method: string): string {
  if (method !== 'S256') throw new ValidationError('code_challenge_method must be S256')
  if (!CHALLENGE_RE.test(challenge)) throw new ValidationError('code_challenge must be base64url of a SHA-256 digest (43 characters)')
  return challenge
}

/** A name for the CLI host as the person will see it: printable, at most 64 characters. */
export function cleanClientName(raw: string | undefined): string {
  const s = (raw ?? '')
    .replace(/[^\x20-\x7e]/g, '')
    .trim()
    .slice(0, 64)
  return s === '' ? 'unnamed host' : s
}

/** Makes the one-time code the approval redirects with. Only its hash is stored. */
export async function createLoginCode(
  db: Executor,
  input: { userId: string; workspaceId: string; challenge: string; redirectUri: string; clientName: string },
  now: Date,
): Promise<string> {
  const code = randomBytes(32).toString('base64url')
  await db
    .insertInto('cli_login_codes')
    .values({
      code_hash: sha256(code),
      user_id: input.userId,
      for_workspace: input.workspaceId,
      code_challenge: input.challenge,
      redirect_uri: input.redirectUri,
      client_name: input.clientName,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + LOGIN_CODE_TTL_MS).toISOString(),
      used_at: null,
    })
    .execute()
  return code
}

/** Who a redeemed code or device authorization is for. */
export interface CliGrant {
  userId: string
  workspaceId: string
  clientName: string
}

/**
 * Redeems a loopback code. The code is spent on the first attempt, right or wrong (so a
 * stolen code cannot be tried with guessed verifiers), and the caller must commit that even
 * when this throws InvalidGrantError.
 */
export async function redeemLoginCode(
  db: Executor,
  input: { code: string; verifier: string; redirectUri: string },
  now: Date,
): Promise<CliGrant> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(input.code)) throw new InvalidGrantError()
  const hash = sha256(input.code)
  const spent = await db
    .updateTable('cli_login_codes')
    .set({ used_at: now.toISOString() })
    .where('code_hash', '=', hash)
    .where('used_at', 'is', null)
    .executeTakeFirst()
  if (Number(spent.numUpdatedRows) !== 1) throw new InvalidGrantError()
  const row = await db.selectFrom('cli_login_codes').selectAll().where('code_hash', '=', hash).executeTakeFirstOrThrow()
  const challengeOk =
    VERIFIER_RE.test(input.verifier) &&
    timingSafeEqual(Buffer.from(pkceChallenge(input.verifier)), Buffer.from(row.code_challenge.padEnd(43).slice(0, 43)))
  if (Date.parse(row.expires_at) <= now.getTime() || !challengeOk || row.redirect_uri !== input.redirectUri) throw new InvalidGrantError()
  return { userId: row.user_id, workspaceId: row.for_workspace, clientName: row.client_name }
}

/** Formats a user code for people: XXXX-XXXX. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`
}

/** The canonical form of a typed user code (case, dashes and spaces ignored), or undefined. */
export function normalizeUserCode(raw: string): string | undefined {
  const s = raw.toUpperCase().replace(/[\s-]/g, '')
  return s.length === 8 && [...s].every((c) => USER_CODE_ALPHABET.includes(c)) ? s : undefined
}

/** Starts a device authorization: a device code for the CLI, a user code for the person. */
export async function startDeviceLogin(
  db: Executor,
  clientName: string,
  now: Date,
): Promise<{ deviceCode: string; userCode: string; expiresIn: number; interval: number }> {
  const deviceCode = randomBytes(32).toString('base64url')
  const userCode = Array.from({ length: 8 }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]).join('')
  await db
    .insertInto('cli_device_codes')
    .values({
      id: randomUUID(),
      device_code_hash: sha256(deviceCode),
      user_code_hash: sha256(userCode),
      client_name: clientName,
      status: 'pending',
      poll_interval: DEVICE_POLL_INTERVAL_S,
      last_poll_at: null,
      user_id: null,
      for_workspace: null,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + DEVICE_CODE_TTL_MS).toISOString(),
      decided_at: null,
    })
    .execute()
  return { deviceCode, userCode: formatUserCode(userCode), expiresIn: DEVICE_CODE_TTL_MS / 1000, interval: DEVICE_POLL_INTERVAL_S }
}

/** A pending, unexpired device authorization by its user code (for the approval page), or undefined. */
export async function findPendingDevice(
  db: Executor,
  userCode: string,
  now: Date,
): Promise<{ id: string; clientName: string; createdAt: string } | undefined> {
  const code = normalizeUserCode(userCode)
  if (!code) return undefined
  const row = await db
    .selectFrom('cli_device_codes')
    .select(['id', 'client_name', 'created_at', 'expires_at', 'status'])
    .where('user_code_hash', '=', sha256(code))
    .executeTakeFirst()
  if (row?.status !== 'pending' || Date.parse(row.expires_at) <= now.getTime()) return undefined
  return { id: row.id, clientName: row.client_name, createdAt: row.created_at }
}

/** Approves or denies a pending device authorization; false when there is none (unknown, expired or decided). */
export async function decideDevice(
  db: Executor,
  input: { userCode: string; userId: string; workspaceId: string; approve: boolean },
  now: Date,
): Promise<{ id: string; clientName: string } | undefined> {
  const found = await findPendingDevice(db, input.userCode, now)
  if (!found) return undefined
  const r = await db
    .updateTable('cli_device_codes')
    .set({
      status: input.approve ? 'approved' : 'denied',
      user_id: input.userId,
      for_workspace: input.workspaceId,
      decided_at: now.toISOString(),
    })
    .where('id', '=', found.id)
    .where('status', '=', 'pending')
    .executeTakeFirst()
  return Number(r.numUpdatedRows) === 1 ? { id: found.id, clientName: found.clientName } : undefined
}

/**
 * One poll of a device authorization. Returns the grant once (approved), else throws:
 * AuthorizationPendingError, SlowDownError (polled sooner than the interval, which then grows
 * by 5 s), AccessDeniedError, CodeExpiredError, or InvalidGrantError (unknown or used).
 * The caller must commit the row's changes even when this throws.
 */
export async function pollDevice(db: Executor, deviceCode: string, now: Date): Promise<CliGrant & { id: string }> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(deviceCode)) throw new InvalidGrantError()
  const row = await db.selectFrom('cli_device_codes').selectAll().where('device_code_hash', '=', sha256(deviceCode)).executeTakeFirst()
  if (!row || row.status === 'used') throw new InvalidGrantError()
  if (Date.parse(row.expires_at) <= now.getTime()) throw new CodeExpiredError()
  if (row.last_poll_at && now.getTime() - Date.parse(row.last_poll_at) < row.poll_interval * 1000) {
    const interval = row.poll_interval + 5
    await db
      .updateTable('cli_device_codes')
      .set({ poll_interval: interval, last_poll_at: now.toISOString() })
      .where('id', '=', row.id)
      .execute()
    throw new SlowDownError(interval)
  }
  await db.updateTable('cli_device_codes').set({ last_poll_at: now.toISOString() }).where('id', '=', row.id).execute()
  if (row.status === 'pending') throw new AuthorizationPendingError()
  if (row.status === 'denied') throw new AccessDeniedError()
  const r = await db
    .updateTable('cli_device_codes')
    .set({ status: 'used' })
    .where('id', '=', row.id)
    .where('status', '=', 'approved')
    .executeTakeFirst()
  if (Number(r.numUpdatedRows) !== 1 || !row.user_id || !row.for_workspace) throw new InvalidGrantError()
  return { id: row.id, userId: row.user_id, workspaceId: row.for_workspace, clientName: row.client_name }
}

/**
 * Issues the CLI token of a redeemed grant: a personal token of kind `cli` (`coffer_cli_…`),
 * named for the host, valid 90 days, stored hashed like every token.
 */
export async function issueCliToken(db: Executor, grant: CliGrant, now: Date): Promise<{ token: string; info: TokenInfo }> {
  return issueToken(
    db,
    {
      kind: 'cli',
      workspaceId: grant.workspaceId,
      userId: grant.userId,
      name: `cli: ${grant.clientName}`,
      expiresAt: new Date(now.getTime() + CLI_TOKEN_TTL_MS).toISOString(),
    },
    now,
  )
}
