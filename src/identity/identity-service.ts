import { randomUUID } from 'node:crypto'
import type { Principal, Role } from './principal.js'
import { NotFoundError, UnauthenticatedError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import { QueryTemplate } from '../storage/query-template.js'
import type { Workspace } from '../vault/workspace-service.js'
import type { CredentialUse } from './credential-use.js'
import { type Stamp, stampOf } from './principal-cache.js'
import { machineTokenPrincipal } from './machine-identities.js'
import { serviceTokenPrincipal } from './service-tokens.js'
import { displayToken, generateToken, hashToken, tokenKind } from './token-format.js'

/** A token as listings show it: never the token itself. */
export interface TokenInfo {
  id: string
  name: string
  display: string
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}

function toInfo(r: {
  id: string
  name: string
  display: string
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}): TokenInfo {
  return {
    id: r.id,
    name: r.name,
    display: r.display,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  }
}

/** Finds a user by email or creates one. Emails compare case-insensitively. */
export async function ensureUser(
  db: Executor,
  email: string,
  now: Date,
  name?: string,
): Promise<{ id: string; email: string; created: boolean }> {
  const normal = email.trim().toLowerCase()
  const found = await db.selectFrom('users').select(['id', 'email']).where('email', '=', normal).executeTakeFirst()
  if (found) return { ...found, created: false }
  const id = randomUUID()
  await db
    .insertInto('users')
    .values({ id, email: normal, name: name ?? normal.split('@')[0]!, created_at: now.toISOString() })
    .execute()
  return { id, email: normal, created: true }
}

/** Makes `userId` a member of `workspaceId` with `role`. */
export async function addMember(db: Executor, workspaceId: string, userId: string, role: Role, now: Date): Promise<void> {
  await db.insertInto('memberships').values({ workspace_id: workspaceId, user_id: userId, role, created_at: now.toISOString() }).execute()
}

/**
 * Issues a personal access token bound to one workspace membership. The token is returned
 * once; only its hash is stored.
 */
export async function issueToken(
  db: Executor,
  input: { workspaceId: string; userId: string; name: string; expiresAt?: string | null; kind?: 'pat' | 'cli' },
  now: Date,
): Promise<{ token: string; info: TokenInfo }> {
  const token = generateToken(input.kind ?? 'pat')
  const row = {
    id: randomUUID(),
    workspace_id: input.workspaceId,
    user_id: input.userId,
    name: input.name,
    token_hash: hashToken(token),
    display: displayToken(token),
    created_at: now.toISOString(),
    expires_at: input.expiresAt ?? null,
    revoked_at: null,
    last_used_at: null,
  }
  await db.insertInto('tokens').values(row).execute()
  return { token, info: toInfo(row) }
}

/** The caller's own tokens in the workspace, newest first. */
export async function listTokens(db: Executor, workspaceId: string, userId: string): Promise<TokenInfo[]> {
  const rows = await db
    .selectFrom('tokens')
    .select(['id', 'name', 'display', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'])
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', userId)
    .orderBy('created_at', 'desc')
    .execute()
  return rows.map(toInfo)
}

/** Revokes one of the caller's tokens; another person's token answers NotFound. */
export async function revokeToken(db: Executor, workspaceId: string, userId: string, tokenId: string, now: Date): Promise<TokenInfo> {
  const row = await db
    .selectFrom('tokens')
    .select(['id', 'name', 'display', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'])
    .where('id', '=', tokenId)
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', userId)
    .executeTakeFirst()
  if (!row) throw new NotFoundError('token')
  if (row.revoked_at) return toInfo(row)
  const revokedAt = now.toISOString()
  await db.updateTable('tokens').set({ revoked_at: revokedAt }).where('id', '=', tokenId).execute()
  return toInfo({ ...row, revoked_at: revokedAt })
}

/**
 * Resolves a Bearer token to its principal and the one workspace the token belongs to. A
 * person's personal token (`coffer_pat_`) gives a person; a service token (`coffer_svc_`) or
 * a machine access token (`coffer_sat_`, from `ip` inside the identity's allow-list) gives an
 * integration. Each is one query that also checks revocation and expiry, so a revoked or
 * expired credential fails at once on every node. Invitations, client secrets, malformed,
 * unknown, revoked and expired tokens all give the same UnauthenticatedError.
 */
interface PersonalTokenRow {
  tokenId: string
  workspaceId: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
  userId: string
  email: string
  role: string
  workspaceSlug: string
  workspaceName: string
  workspaceCreatedAt: string
  workspaceEpoch: number | string | null
  userEpoch: number | string | null
}

/** The personal-token lookup of every request, compiled once (see QueryTemplate). */
const PERSONAL_TOKEN = new QueryTemplate<'hash'>((db, p) =>
  db
    .selectFrom('tokens')
    .innerJoin('users', 'users.id', 'tokens.user_id')
    .innerJoin('memberships', (j) =>
      j.onRef('memberships.user_id', '=', 'tokens.user_id').onRef('memberships.workspace_id', '=', 'tokens.workspace_id'),
    )
    .innerJoin('workspaces', 'workspaces.id', 'tokens.workspace_id')
    // The epochs this acceptance is read under, in the same statement (see principal-cache.ts).
    .leftJoin('auth_epochs as we', 'we.scope', 'tokens.workspace_id')
    .leftJoin('auth_epochs as ue', 'ue.scope', 'tokens.user_id')
    .select([
      'tokens.id as tokenId',
      'tokens.workspace_id as workspaceId',
      'tokens.expires_at as expiresAt',
      'tokens.revoked_at as revokedAt',
      'tokens.last_used_at as lastUsedAt',
      'users.id as userId',
      'users.email as email',
      'memberships.role as role',
      'workspaces.slug as workspaceSlug',
      'workspaces.name as workspaceName',
      'workspaces.created_at as workspaceCreatedAt',
      'we.epoch as workspaceEpoch',
      'ue.epoch as userEpoch',
    ])
    .where('tokens.token_hash', '=', p('hash'))
    // A deleted workspace (keys shredded, rows awaiting purge) answers as if it never existed.
    .where('workspaces.deleted_at', 'is', null),
)

/** What a Bearer token authenticates as, with what a cache needs to keep it (see principal-cache.ts). */
export interface Authenticated {
  principal: Principal
  workspace: Workspace
  use: CredentialUse
  /** The epochs the acceptance was read under. */
  stamp: Stamp
  /** When the credential itself ends (null: never). */
  expiresAt: string | null
  /** Machine access tokens: the identity's allow-list, to check on each use. */
  allowedCidrs?: string[]
}

export async function authenticate(db: Executor, token: string, now: Date, ip = ''): Promise<Authenticated> {
  const kind = tokenKind(token)
  if (kind === 'svc') {
    const r = await serviceTokenPrincipal(db, token, now)
    if (!r) throw new UnauthenticatedError()
    return {
      principal: r.principal,
      workspace: r.workspace,
      use: { table: 'service_tokens', id: r.principal.id, lastUsedAt: r.lastUsedAt },
      stamp: r.stamp,
      expiresAt: r.expiresAt,
    }
  }
  if (kind === 'sat') {
    const r = await machineTokenPrincipal(db, token, now, ip)
    if (!r) throw new UnauthenticatedError()
    return {
      principal: r.principal,
      workspace: r.workspace,
      use: { table: 'machine_tokens', id: r.principal.tokenId, lastUsedAt: r.lastUsedAt, machineId: r.principal.id },
      stamp: r.stamp,
      expiresAt: r.expiresAt,
      allowedCidrs: r.allowedCidrs,
    }
  }
  // A CLI login's token (`coffer_cli_`) is a personal token like `pat`, in the same table.
  if (kind !== 'pat' && kind !== 'cli') throw new UnauthenticatedError()
  const row = (await PERSONAL_TOKEN.run<PersonalTokenRow>(db, { hash: hashToken(token) })).rows[0]
  if (!row || row.revokedAt || (row.expiresAt && Date.parse(row.expiresAt) <= now.getTime())) throw new UnauthenticatedError()
  return {
    principal: {
      type: 'user',
      userId: row.userId,
      email: row.email,
      tokenId: row.tokenId,
      workspaceId: row.workspaceId,
      role: row.role as Role,
    },
    workspace: { id: row.workspaceId, slug: row.workspaceSlug, name: row.workspaceName, createdAt: row.workspaceCreatedAt },
    use: { table: 'tokens', id: row.tokenId, lastUsedAt: row.lastUsedAt },
    stamp: stampOf([row.workspaceId, row.userId], [row.workspaceEpoch, row.userEpoch]),
    expiresAt: row.expiresAt,
  }
}
