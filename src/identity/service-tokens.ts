import { randomUUID } from 'node:crypto'
import type { IntegrationPrincipal, IntegrationScope } from './principal.js'
import { NotFoundError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { Workspace } from '../vault/workspace-service.js'
import { parseScopes } from './integration-scopes.js'
import { type Stamp, stampOf } from './principal-cache.js'
import { displayToken, generateToken, hashToken } from './token-format.js'

// Static service tokens (`coffer_svc_`): a workspace integration's long-lived credential, for
// CI and servers that cannot run an OAuth-style exchange. Scoped, optionally expiring,
// revocable, shown once, stored as a hash. Never a member: see policy.ts.

/** A service token as listings show it. */
export interface ServiceTokenView {
  id: string
  name: string
  display: string
  scopes: IntegrationScope[]
  createdBy: string
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}

const COLUMNS = ['id', 'name', 'display', 'scopes', 'created_by', 'created_at', 'expires_at', 'revoked_at', 'last_used_at'] as const
type Row = {
  id: string
  name: string
  display: string
  scopes: string
  created_by: string
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}

function toView(r: Row): ServiceTokenView {
  return {
    id: r.id,
    name: r.name,
    display: r.display,
    scopes: parseScopes(r.scopes),
    createdBy: r.created_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  }
}

/** Issues a service token; the token is returned once. */
export async function createServiceToken(
  db: Executor,
  input: { workspaceId: string; name: string; scopes: IntegrationScope[]; createdBy: string; expiresAt: string | null; now: Date },
): Promise<{ token: string; info: ServiceTokenView }> {
  const token = generateToken('svc')
  const row = {
    id: randomUUID(),
    workspace_id: input.workspaceId,
    name: input.name,
    token_hash: hashToken(token),
    display: displayToken(token),
    scopes: JSON.stringify(input.scopes),
    created_by: input.createdBy,
    created_at: input.now.toISOString(),
    expires_at: input.expiresAt,
    revoked_at: null,
    last_used_at: null,
  }
  await db.insertInto('service_tokens').values(row).execute()
  return { token, info: toView(row) }
}

/** The workspace's service tokens, newest first (never the tokens). */
export async function listServiceTokens(db: Executor, workspaceId: string): Promise<ServiceTokenView[]> {
  return (
    await db.selectFrom('service_tokens').select(COLUMNS).where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').execute()
  ).map(toView)
}

/** Revokes a service token: from now on it fails on every node (each request checks the row). */
export async function revokeServiceToken(db: Executor, workspaceId: string, id: string, now: Date): Promise<ServiceTokenView> {
  const r = await db
    .selectFrom('service_tokens')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('service token')
  if (r.revoked_at) return toView(r)
  await db.updateTable('service_tokens').set({ revoked_at: now.toISOString() }).where('id', '=', id).execute()
  return toView({ ...r, revoked_at: now.toISOString() })
}

/** The principal of a live service token, or undefined (unknown, revoked, expired, or its workspace deleted). */
export async function serviceTokenPrincipal(
  db: Executor,
  token: string,
  now: Date,
): Promise<
  { principal: IntegrationPrincipal; workspace: Workspace; lastUsedAt: string | null; expiresAt: string | null; stamp: Stamp } | undefined
> {
  const r = await db
    .selectFrom('service_tokens')
    .innerJoin('workspaces', 'workspaces.id', 'service_tokens.workspace_id')
    .leftJoin('auth_epochs as we', 'we.scope', 'service_tokens.workspace_id')
    .select([
      'we.epoch as workspaceEpoch',
      'service_tokens.id',
      'service_tokens.name',
      'service_tokens.scopes',
      'service_tokens.expires_at',
      'service_tokens.revoked_at',
      'service_tokens.last_used_at',
      'workspaces.id as workspaceId',
      'workspaces.slug',
      'workspaces.name as workspaceName',
      'workspaces.created_at as workspaceCreatedAt',
    ])
    .where('service_tokens.token_hash', '=', hashToken(token))
    .where('workspaces.deleted_at', 'is', null)
    .executeTakeFirst()
  if (!r || r.revoked_at || (r.expires_at && Date.parse(r.expires_at) <= now.getTime())) return undefined
  return {
    principal: { type: 'service', id: r.id, name: r.name, tokenId: r.id, workspaceId: r.workspaceId, scopes: parseScopes(r.scopes) },
    workspace: { id: r.workspaceId, slug: r.slug, name: r.workspaceName, createdAt: r.workspaceCreatedAt },
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    stamp: stampOf([r.workspaceId], [r.workspaceEpoch]),
  }
}
