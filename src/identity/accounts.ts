import { randomUUID } from 'node:crypto'
import { AccountExistsError, InvalidCredentialsError, LastOwnerError, PasswordNotSetError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import { issueLink, linkUrl, type LinkPurpose } from './email-links.js'
import type { MailMessage } from './mailer.js'
import { burnPasswordCheck, verifyPassword } from './passwords.js'
import { listSessions, revokeAllSessions, type SessionInfo, type SessionTimeouts } from './sessions.js'

// People's accounts: sign-up, password sign-in, links, export and deletion. Nothing here
// knows about HTTP; password hashing (slow) happens before a transaction, and what a route
// does inside one stays fast.

/** A person as the sign-in code sees them. */
export interface Account {
  id: string
  email: string
  name: string
  passwordHash: string | null
  emailVerifiedAt: string | null
  createdVia: 'invite' | 'password' | 'oidc'
}

/** Normal form of an email address: trimmed, lower case. */
export function normalEmail(email: string): string {
  return email.trim().toLowerCase()
}

/** The account with `email`, if any. */
export async function findAccountByEmail(db: Executor, email: string): Promise<Account | undefined> {
  const r = await db
    .selectFrom('users')
    .select(['id', 'email', 'name', 'password_hash', 'email_verified_at', 'created_via'])
    .where('email', '=', normalEmail(email))
    .executeTakeFirst()
  return (
    r && {
      id: r.id,
      email: r.email,
      name: r.name,
      passwordHash: r.password_hash,
      emailVerifiedAt: r.email_verified_at,
      createdVia: r.created_via,
    }
  )
}

/** The account with `id`, if any. */
export async function findAccount(db: Executor, id: string): Promise<Account | undefined> {
  const r = await db
    .selectFrom('users')
    .select(['id', 'email', 'name', 'password_hash', 'email_verified_at', 'created_via'])
    .where('id', '=', id)
    .executeTakeFirst()
  return (
    r && {
      id: r.id,
      email: r.email,
      name: r.name,
      passwordHash: r.password_hash,
      emailVerifiedAt: r.email_verified_at,
      createdVia: r.created_via,
    }
  )
}

/** The ids of every workspace `userId` belongs to, sorted (the order audit chains are locked in). */
export async function workspacesOf(db: Executor, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('memberships').select('workspace_id').where('user_id', '=', userId).execute()
  return rows.map((r) => r.workspace_id).sort()
}

/** Why a password sign-in failed, for the audit log and the logs (never for the client). */
export type SignInFailure = 'unknown-account' | 'no-password' | 'wrong-password' | 'unverified'

/**
 * Checks an email and password (slow: one Argon2id verification whatever happens, so an
 * unknown email takes as long as a wrong password). Returns the account or the reason.
 * `unverified` (the password is right, the email not verified) may be told to the caller:
 * only someone who knows the password learns it.
 */
export async function checkPassword(
  db: Executor,
  email: string,
  password: string,
): Promise<{ ok: true; account: Account } | { ok: false; reason: SignInFailure; account?: Account }> {
  const account = await findAccountByEmail(db, email)
  if (!account) {
    await burnPasswordCheck(password)
    return { ok: false, reason: 'unknown-account' }
  }
  if (!account.passwordHash) {
    await burnPasswordCheck(password)
    return { ok: false, reason: 'no-password', account }
  }
  if (!(await verifyPassword(account.passwordHash, password))) return { ok: false, reason: 'wrong-password', account }
  if (!account.emailVerifiedAt) return { ok: false, reason: 'unverified', account }
  return { ok: true, account }
}

/** The mail a link is sent in. */
export function linkMail(to: string, purpose: LinkPurpose, url: string): MailMessage {
  if (purpose === 'verify') {
    return {
      to,
      subject: 'Verify your email address for Coffer',
      text: `Open this link within 24 hours to verify your email address and finish setting up your Coffer account:\n\n${url}\n\nIf you did not sign up for Coffer, ignore this mail.\n`,
    }
  }
  return {
    to,
    subject: 'Set a new Coffer password',
    text: `Open this link within 1 hour to set a new password for your Coffer account. It works once.\n\n${url}\n\nIf you did not ask for this, ignore this mail: your password stays as it is.\n`,
  }
}

/**
 * Signs up with a password hashed beforehand. A new email gets an unverified account and a
 * verification mail; an email already registered gets a mail saying so (never a second
 * account, and the same answer to the caller), so sign-up reveals nothing.
 */
export async function signUp(
  db: Executor,
  input: { email: string; name?: string; passwordHash: string },
  publicUrl: string,
  now: Date,
): Promise<{ created: boolean; userId: string; mail: MailMessage }> {
  const email = normalEmail(input.email)
  const existing = await findAccountByEmail(db, email)
  if (existing) {
    return {
      created: false,
      userId: existing.id,
      mail: {
        to: email,
        subject: 'You already have a Coffer account',
        text: `Someone, maybe you, tried to create a Coffer account with this address, which already has one.\n\nSign in at ${publicUrl}/sign-in, or set a new password at ${publicUrl}/forgot-password.\n\nIf this was not you, ignore this mail.\n`,
      },
    }
  }
  const id = randomUUID()
  await db
    .insertInto('users')
    .values({
      id,
      email,
      name: input.name?.trim() || email.split('@')[0]!,
      created_at: now.toISOString(),
      password_hash: input.passwordHash,
      email_verified_at: null,
      created_via: 'password',
    })
    .execute()
  const { token } = await issueLink(db, id, 'verify', now)
  return { created: true, userId: id, mail: linkMail(email, 'verify', linkUrl(publicUrl, 'verify', token)) }
}

/**
 * Creates the account of a person signing up through an invitation link: the invitation was
 * issued for this address, so the address counts as verified. It is marked `invite` (its
 * address was vouched for by whoever issued the invitation, not proven by a mail this server
 * sent), which keeps one-click acceptance of other invitations closed to it. An existing
 * account is never changed (AccountExistsError).
 */
export async function createInvitedAccount(
  db: Executor,
  input: { email: string; name?: string; passwordHash: string },
  now: Date,
): Promise<{ userId: string; email: string }> {
  const email = normalEmail(input.email)
  if (await findAccountByEmail(db, email)) throw new AccountExistsError()
  const id = randomUUID()
  await db
    .insertInto('users')
    .values({
      id,
      email,
      name: input.name?.trim() || email.split('@')[0]!,
      created_at: now.toISOString(),
      password_hash: input.passwordHash,
      email_verified_at: now.toISOString(),
      created_via: 'invite',
    })
    .execute()
  return { userId: id, email }
}

/**
 * A reset link for `email`, when it names an account that may have a password (not one
 * created through OIDC). Undefined otherwise; the caller answers the same either way.
 */
export async function requestPasswordReset(
  db: Executor,
  email: string,
  publicUrl: string,
  now: Date,
): Promise<{ userId: string; mail: MailMessage } | undefined> {
  const account = await findAccountByEmail(db, email)
  if (!account || account.createdVia === 'oidc') return undefined
  const { token } = await issueLink(db, account.id, 'reset', now)
  return { userId: account.id, mail: linkMail(account.email, 'reset', linkUrl(publicUrl, 'reset', token)) }
}

/**
 * Sets a new password (already hashed) after a reset link: the mailbox is proven, so the
 * email counts as verified; every session ends.
 */
export async function setPasswordFromReset(
  db: Executor,
  userId: string,
  passwordHash: string,
  now: Date,
): Promise<{ sessionsEnded: number }> {
  const account = await findAccount(db, userId)
  if (!account || account.createdVia === 'oidc') throw new PasswordNotSetError()
  await db
    .updateTable('users')
    .set({ password_hash: passwordHash, email_verified_at: account.emailVerifiedAt ?? now.toISOString() })
    .where('id', '=', userId)
    .execute()
  return { sessionsEnded: await revokeAllSessions(db, userId, undefined, now) }
}

/** Marks the email of `userId` verified. */
export async function markEmailVerified(db: Executor, userId: string, now: Date): Promise<void> {
  await db
    .updateTable('users')
    .set({ email_verified_at: now.toISOString() })
    .where('id', '=', userId)
    .where('email_verified_at', 'is', null)
    .execute()
}

/** Checks the current password before a change (slow). */
export async function checkCurrentPassword(db: Executor, userId: string, password: string): Promise<void> {
  const account = await findAccount(db, userId)
  if (!account?.passwordHash) {
    await burnPasswordCheck(password)
    throw new PasswordNotSetError()
  }
  if (!(await verifyPassword(account.passwordHash, password))) throw new InvalidCredentialsError('The current password is wrong.')
}

/**
 * Replaces the password (already hashed, current one already checked) and ends every other
 * session of the person.
 */
export async function changePassword(
  db: Executor,
  userId: string,
  passwordHash: string,
  keepSessionId: string | undefined,
  now: Date,
): Promise<{ sessionsEnded: number }> {
  await db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute()
  return { sessionsEnded: await revokeAllSessions(db, userId, keepSessionId, now) }
}

/** Everything Coffer holds about a person, except secret values (see exportAccount). */
export interface AccountExport {
  exportedAt: string
  profile: {
    id: string
    email: string
    name: string
    createdAt: string
    createdVia: string
    emailVerifiedAt: string | null
    hasPassword: boolean
  }
  memberships: Array<{ workspaceId: string; workspaceSlug: string; workspaceName: string; role: string; since: string }>
  tokens: Array<{
    id: string
    workspaceId: string
    name: string
    display: string
    createdAt: string
    expiresAt: string | null
    revokedAt: string | null
    lastUsedAt: string | null
  }>
  sessions: SessionInfo[]
  identities: Array<{ issuer: string; subject: string; email: string; linkedAt: string; lastUsedAt: string }>
  auditEntries: Array<{
    workspaceId: string
    /** Null while the entry waits in the queue to be integrated into its workspace's chain. */
    seq: number | null
    time: string
    action: string
    target: { type: string; id: string }
    ip: string
    userAgent: string
  }>
}

/** Most audit entries an export lists (the newest). */
export const EXPORT_AUDIT_LIMIT = 10_000

/**
 * The account export: profile, memberships, token metadata (never tokens), live sessions,
 * linked identities and the audit entries the person made (newest EXPORT_AUDIT_LIMIT). No
 * password hash, no secret values.
 */
export async function exportAccount(db: Executor, userId: string, timeouts: SessionTimeouts, now: Date): Promise<AccountExport> {
  const u = await db
    .selectFrom('users')
    .select(['id', 'email', 'name', 'created_at', 'created_via', 'email_verified_at', 'password_hash'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  const memberships = await db
    .selectFrom('memberships')
    .innerJoin('workspaces', 'workspaces.id', 'memberships.workspace_id')
    .select(['workspaces.id', 'workspaces.slug', 'workspaces.name', 'memberships.role', 'memberships.created_at'])
    .where('memberships.user_id', '=', userId)
    .orderBy('memberships.created_at')
    .execute()
  const tokens = await db
    .selectFrom('tokens')
    .select(['id', 'workspace_id', 'name', 'display', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'])
    .where('user_id', '=', userId)
    .orderBy('created_at')
    .execute()
  const identities = await db
    .selectFrom('user_identities')
    .select(['issuer', 'subject', 'email', 'created_at', 'last_used_at'])
    .where('user_id', '=', userId)
    .execute()
  const audit = await db
    .selectFrom('audit_entries')
    .select(['workspace_id', 'seq', 'time', 'action', 'target_type', 'target_id', 'actor_ip', 'actor_ua'])
    .where('actor_id', '=', userId)
    .where('actor_type', '=', 'user')
    .orderBy('time', 'desc')
    .limit(EXPORT_AUDIT_LIMIT)
    .execute()
  // Entries still queued for their chain (integrated within the merge delay) are theirs too: no seq yet.
  const queued = await db
    .selectFrom('audit_queue')
    .select(['workspace_id', 'time', 'action', 'target_type', 'target_id', 'actor_ip', 'actor_ua'])
    .where('actor_id', '=', userId)
    .where('actor_type', '=', 'user')
    .orderBy('time', 'desc')
    .limit(EXPORT_AUDIT_LIMIT)
    .execute()
  return {
    exportedAt: now.toISOString(),
    profile: {
      id: u.id,
      email: u.email,
      name: u.name,
      createdAt: u.created_at,
      createdVia: u.created_via,
      emailVerifiedAt: u.email_verified_at,
      hasPassword: u.password_hash !== null,
    },
    memberships: memberships.map((m) => ({
      workspaceId: m.id,
      workspaceSlug: m.slug,
      workspaceName: m.name,
      role: m.role,
      since: m.created_at,
    })),
    tokens: tokens.map((t) => ({
      id: t.id,
      workspaceId: t.workspace_id,
      name: t.name,
      display: t.display,
      createdAt: t.created_at,
      expiresAt: t.expires_at,
      revokedAt: t.revoked_at,
      lastUsedAt: t.last_used_at,
    })),
    sessions: await listSessions(db, userId, timeouts, now),
    identities: identities.map((i) => ({
      issuer: i.issuer,
      subject: i.subject,
      email: i.email,
      linkedAt: i.created_at,
      lastUsedAt: i.last_used_at,
    })),
    auditEntries: [...queued.map((a) => ({ ...a, seq: null })), ...audit].map((a) => ({
      workspaceId: a.workspace_id,
      seq: a.seq === null ? null : Number(a.seq),
      time: a.time,
      action: a.action,
      target: { type: a.target_type, id: a.target_id },
      ip: a.actor_ip,
      userAgent: a.actor_ua,
    })),
  }
}

/**
 * Deletes a person: sessions, links, identities, CLI login codes, project roles and grants,
 * tokens, memberships and the user row. Audit entries stay (the log is append-only) and keep
 * naming the user id. Refuses with LastOwnerError when the person is the only Owner of any
 * workspace. Runs in SYSTEM_SCOPE (it spans the person's workspaces).
 */
export async function deleteAccount(db: Executor, userId: string): Promise<{ workspaces: string[] }> {
  const owned = await db
    .selectFrom('memberships')
    .select('workspace_id')
    .where('user_id', '=', userId)
    .where('role', '=', 'owner')
    .execute()
  for (const { workspace_id } of owned) {
    const owners = await db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('workspace_id', '=', workspace_id)
      .where('role', '=', 'owner')
      .executeTakeFirstOrThrow()
    if (Number(owners.n) <= 1) throw new LastOwnerError()
  }
  const workspaces = await workspacesOf(db, userId)
  // Every row that references the person (invitations and break-glass decisions name them as
  // text, like the audit log, and stay).
  for (const table of [
    'sessions',
    'email_links',
    'user_identities',
    'cli_login_codes',
    'cli_device_codes',
    'environment_grants',
    'personal_overrides',
    'project_members',
    'tokens',
    'memberships',
  ] as const) {
    await db.deleteFrom(table).where('user_id', '=', userId).execute()
  }
  await db.deleteFrom('users').where('id', '=', userId).execute()
  return { workspaces }
}
