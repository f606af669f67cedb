import { randomUUID, timingSafeEqual } from 'node:crypto'
import { MAX_TOKEN_TTL_SECONDS } from '../api/limits.js'
import type { IntegrationPrincipal, IntegrationScope } from './principal.js'
import { NotFoundError, UnauthenticatedError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { Workspace } from '../vault/workspace-service.js'
import { ipAllowed, parseScopes } from './integration-scopes.js'
import { type Stamp, stampOf } from './principal-cache.js'
import { displayToken, generateToken, hashToken, tokenKind } from './token-format.js'

// Machine identities: a workspace integration with a client id (its id) and a client secret
// (`coffer_mcs_`, shown once, stored as a hash), exchanged at POST /v1/machine/token for an
// access token (`coffer_sat_`) that lives at most an hour. An optional IP allow-list applies
// to the exchange and to every use of the access token. Revoking the identity ends its live
// access tokens at once on every node: every request joins the identity's row.

/** A machine identity as listings show it (never its secret). */
export interface MachineView {
  id: string
  clientId: string
  name: string
  secretDisplay: string
  scopes: IntegrationScope[]
  allowedCidrs: string[]
  tokenTtlSeconds: number
  /** An access token from an OIDC exchange lives no longer than the ID token had left. */
  oidcLimitTtl: boolean
  createdBy: string
  createdAt: string
  revokedAt: string | null
  lastUsedAt: string | null
}

const COLUMNS = [
  'id',
  'name',
  'secret_display',
  'scopes',
  'allowed_cidrs',
  'token_ttl_seconds',
  'oidc_limit_ttl',
  'created_by',
  'created_at',
  'revoked_at',
  'last_used_at',
] as const
type Row = {
  id: string
  name: string
  secret_display: string
  scopes: string
  allowed_cidrs: string
  token_ttl_seconds: number
  oidc_limit_ttl: number
  created_by: string
  created_at: string
  revoked_at: string | null
  last_used_at: string | null
}

function toView(r: Row): MachineView {
  return {
    id: r.id,
    clientId: r.id,
    name: r.name,
    secretDisplay: r.secret_display,
    scopes: parseScopes(r.scopes),
    allowedCidrs: JSON.parse(r.allowed_cidrs) as string[],
    tokenTtlSeconds: Number(r.token_ttl_seconds),
    oidcLimitTtl: Number(r.oidc_limit_ttl) === 1,
    createdBy: r.created_by,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  }
}

/**
 * Creates a machine identity; its client secret is returned once. Without one (`clientSecret`
 * false: an identity that trusts OIDC issuers only) the row still holds the hash of a random
 * secret nobody was shown, and an empty display, which the client-credential check refuses.
 */
export async function createMachine(
  db: Executor,
  input: {
    workspaceId: string
    name: string
    scopes: IntegrationScope[]
    allowedCidrs: string[]
    tokenTtlSeconds: number
    createdBy: string
    now: Date
    clientSecret?: boolean
    oidcLimitTtl?: boolean
  },
): Promise<{ machine: MachineView; clientSecret: string | null }> {
  const clientSecret = generateToken('mcs')
  const withSecret = input.clientSecret !== false
  const row = {
    id: randomUUID(),
    workspace_id: input.workspaceId,
    name: input.name,
    secret_hash: hashToken(clientSecret),
    secret_display: withSecret ? displayToken(clientSecret) : '',
    scopes: JSON.stringify(input.scopes),
    allowed_cidrs: JSON.stringify(input.allowedCidrs),
    token_ttl_seconds: Math.min(input.tokenTtlSeconds, MAX_TOKEN_TTL_SECONDS),
    oidc_limit_ttl: input.oidcLimitTtl ? 1 : 0,
    created_by: input.createdBy,
    created_at: input.now.toISOString(),
    revoked_at: null,
    last_used_at: null,
  }
  await db.insertInto('machine_identities').values(row).execute()
  return { machine: toView(row), clientSecret: withSecret ? clientSecret : null }
}

/** The workspace's machine identities, newest first. */
export async function listMachines(db: Executor, workspaceId: string): Promise<MachineView[]> {
  return (
    await db
      .selectFrom('machine_identities')
      .select(COLUMNS)
      .where('workspace_id', '=', workspaceId)
      .orderBy('created_at', 'desc')
      .execute()
  ).map(toView)
}

/** One machine identity of the workspace, or NotFoundError. */
export async function findMachine(db: Executor, workspaceId: string, id: string): Promise<MachineView> {
  const r = await db
    .selectFrom('machine_identities')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('machine identity')
  return toView(r)
}

/**
 * Revokes a machine identity: its secret no longer exchanges, and its live access tokens
 * stop working at once (they are checked against this row on every request). Returns the
 * number of access tokens that were still live.
 */
export async function revokeMachine(
  db: Executor,
  workspaceId: string,
  id: string,
  now: Date,
): Promise<{ machine: MachineView; liveTokens: number }> {
  const m = await findMachine(db, workspaceId, id)
  if (m.revokedAt) return { machine: m, liveTokens: 0 }
  const nowIso = now.toISOString()
  await db.updateTable('machine_identities').set({ revoked_at: nowIso }).where('id', '=', id).execute()
  const live = await db
    .selectFrom('machine_tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('machine_id', '=', id)
    .where('expires_at', '>', nowIso)
    .executeTakeFirstOrThrow()
  return { machine: { ...m, revokedAt: nowIso }, liveTokens: Number(live.n) }
}

const BAD_CLIENT = 'The client credentials are invalid or revoked, or not allowed from this address.'

/**
 * Checks a client id and secret (system scope: nothing else is known yet) and the caller's
 * address against the allow-list. Every failure is the same UnauthenticatedError.
 */
export async function checkClientCredentials(
  db: Executor,
  clientId: string,
  clientSecret: string,
  ip: string,
): Promise<{ principal: IntegrationPrincipal; workspace: Workspace; ttlSeconds: number }> {
  if (tokenKind(clientSecret) !== 'mcs' || !/^[0-9a-f-]{36}$/i.test(clientId)) throw new UnauthenticatedError(BAD_CLIENT)
  const r = await db
    .selectFrom('machine_identities')
    .innerJoin('workspaces', 'workspaces.id', 'machine_identities.workspace_id')
    .select([
      'machine_identities.id',
      'machine_identities.name',
      'machine_identities.secret_hash',
      'machine_identities.secret_display',
      'machine_identities.scopes',
      'machine_identities.allowed_cidrs',
      'machine_identities.token_ttl_seconds',
      'machine_identities.revoked_at',
      'workspaces.id as workspaceId',
      'workspaces.slug',
      'workspaces.name as workspaceName',
      'workspaces.created_at as workspaceCreatedAt',
    ])
    .where('machine_identities.id', '=', clientId)
    .where('workspaces.deleted_at', 'is', null)
    .executeTakeFirst()
  const given = hashToken(clientSecret)
  const ok =
    r !== undefined &&
    r.secret_display !== '' &&
    timingSafeEqual(Buffer.from(r.secret_hash), given) &&
    !r.revoked_at &&
    ipAllowed(JSON.parse(r.allowed_cidrs) as string[], ip)
  if (!ok || !r) throw new UnauthenticatedError(BAD_CLIENT)
  return {
    principal: { type: 'machine', id: r.id, name: r.name, tokenId: r.id, workspaceId: r.workspaceId, scopes: parseScopes(r.scopes) },
    workspace: { id: r.workspaceId, slug: r.slug, name: r.workspaceName, createdAt: r.workspaceCreatedAt },
    ttlSeconds: Math.min(Number(r.token_ttl_seconds), MAX_TOKEN_TTL_SECONDS),
  }
}

/** Issues an access token for a machine identity (in the request's write transaction); returned once. */
export async function issueMachineToken(
  db: Executor,
  input: { workspaceId: string; machineId: string; ttlSeconds: number; ip: string; now: Date },
): Promise<{ token: string; id: string; expiresAt: string }> {
  const token = generateToken('sat')
  const id = randomUUID()
  const expiresAt = new Date(input.now.getTime() + Math.min(input.ttlSeconds, MAX_TOKEN_TTL_SECONDS) * 1000).toISOString()
  await db
    .insertInto('machine_tokens')
    .values({
      id,
      workspace_id: input.workspaceId,
      machine_id: input.machineId,
      token_hash: hashToken(token),
      created_at: input.now.toISOString(),
      expires_at: expiresAt,
      ip: input.ip,
      last_used_at: null,
    })
    .execute()
  await db.updateTable('machine_identities').set({ last_used_at: input.now.toISOString() }).where('id', '=', input.machineId).execute()
  return { token, id, expiresAt }
}

/**
 * The principal of a live machine access token, or undefined: unknown, expired, its identity
 * revoked, its workspace deleted, or the caller's address outside the identity's allow-list.
 */
export async function machineTokenPrincipal(
  db: Executor,
  token: string,
  now: Date,
  ip: string,
): Promise<
  | {
      principal: IntegrationPrincipal
      workspace: Workspace
      lastUsedAt: string | null
      expiresAt: string
      allowedCidrs: string[]
      stamp: Stamp
    }
  | undefined
> {
  const r = await db
    .selectFrom('machine_tokens')
    .innerJoin('machine_identities', 'machine_identities.id', 'machine_tokens.machine_id')
    .innerJoin('workspaces', 'workspaces.id', 'machine_tokens.workspace_id')
    .leftJoin('auth_epochs as we', 'we.scope', 'machine_tokens.workspace_id')
    .select([
      'we.epoch as workspaceEpoch',
      'machine_tokens.id as tokenId',
      'machine_tokens.expires_at',
      'machine_tokens.last_used_at',
      'machine_identities.id',
      'machine_identities.name',
      'machine_identities.scopes',
      'machine_identities.allowed_cidrs',
      'machine_identities.revoked_at',
      'workspaces.id as workspaceId',
      'workspaces.slug',
      'workspaces.name as workspaceName',
      'workspaces.created_at as workspaceCreatedAt',
    ])
    .where('machine_tokens.token_hash', '=', hashToken(token))
    .where('workspaces.deleted_at', 'is', null)
    .executeTakeFirst()
  const allowedCidrs = r ? (JSON.parse(r.allowed_cidrs) as string[]) : []
  if (!r || r.revoked_at || Date.parse(r.expires_at) <= now.getTime() || !ipAllowed(allowedCidrs, ip)) return undefined
  return {
    principal: { type: 'machine', id: r.id, name: r.name, tokenId: r.tokenId, workspaceId: r.workspaceId, scopes: parseScopes(r.scopes) },
    workspace: { id: r.workspaceId, slug: r.slug, name: r.workspaceName, createdAt: r.workspaceCreatedAt },
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    allowedCidrs,
    stamp: stampOf([r.workspaceId], [r.workspaceEpoch]),
  }
}

/**
 * The live machine identity `id` names, for an OIDC exchange (system scope: nothing else is
 * known yet): its principal, workspace and token settings, or undefined when it is unknown,
 * revoked, or its workspace deleted. `workspaceId` is set whenever the identity exists, so a
 * refusal can be recorded in its workspace's log.
 */
export async function machineForExchange(
  db: Executor,
  id: string,
): Promise<
  | {
      live: true
      principal: IntegrationPrincipal
      workspace: Workspace
      ttlSeconds: number
      oidcLimitTtl: boolean
      allowedCidrs: string[]
    }
  | { live: false; workspaceId: string | null }
> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return { live: false, workspaceId: null }
  const r = await db
    .selectFrom('machine_identities')
    .innerJoin('workspaces', 'workspaces.id', 'machine_identities.workspace_id')
    .select([
      'machine_identities.id',
      'machine_identities.name',
      'machine_identities.scopes',
      'machine_identities.allowed_cidrs',
      'machine_identities.token_ttl_seconds',
      'machine_identities.oidc_limit_ttl',
      'machine_identities.revoked_at',
      'workspaces.id as workspaceId',
      'workspaces.slug',
      'workspaces.name as workspaceName',
      'workspaces.created_at as workspaceCreatedAt',
      'workspaces.deleted_at as workspaceDeletedAt',
    ])
    .where('machine_identities.id', '=', id)
    .executeTakeFirst()
  if (!r || r.workspaceDeletedAt) return { live: false, workspaceId: null }
  if (r.revoked_at) return { live: false, workspaceId: r.workspaceId }
  return {
    live: true,
    principal: { type: 'machine', id: r.id, name: r.name, tokenId: r.id, workspaceId: r.workspaceId, scopes: parseScopes(r.scopes) },
    workspace: { id: r.workspaceId, slug: r.slug, name: r.workspaceName, createdAt: r.workspaceCreatedAt },
    ttlSeconds: Math.min(Number(r.token_ttl_seconds), MAX_TOKEN_TTL_SECONDS),
    oidcLimitTtl: Number(r.oidc_limit_ttl) === 1,
    allowedCidrs: JSON.parse(r.allowed_cidrs) as string[],
  }
}
