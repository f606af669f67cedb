import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { type Binding, open, seal } from '../crypto/envelope.js'
import { ConnectionStateError, InternalError, NotFoundError } from '../errors.js'
import type { OutboundClient } from '../ops/outbound.js'
import type { Executor } from '../storage/database.js'
import type { ConnectionLinkTable, ConnectionStateTable, ConnectionTable } from '../storage/schema.js'
import type { DataKeys } from '../vault/data-keys.js'
import { clientSecretOf, findConnectionRow, type LinkState, linkState } from './connections.js'
import { exchangeCode, type TokenClient, type TokenSet } from './token-endpoint.js'

// A connection's links: the app's tokens (owner 'app') and each member's own (owner = their
// user id), obtained through the authorization-code flow with PKCE (S256) and a single-use
// state. The state is the credential of the public callback: 32 random bytes, stored only as
// its SHA-256, bound to the connection, the kind, the owner and who started the flow, and
// expiring after STATE_TTL_MS; the PKCE verifier is sealed beside it (the token endpoint needs
// it in clear). Tokens are sealed under the workspace's integration key, each with a fresh
// nonce, the AAD naming the workspace, the connection, the owner, the field and the token
// version (bumped by every refresh).

export const STATE_TTL_MS = 10 * 60_000
export const APP_OWNER = 'app'
export type LinkKind = ConnectionLinkTable['kind']

function hashState(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('hex')
}

function b64url(b: Buffer): string {
  return b.toString('base64url')
}

function verifierBinding(workspaceId: string, stateHash: string): Binding {
  return { workspaceId, projectId: '', environmentId: '', recordId: stateHash, recordVersion: 1, field: 'connection.pkce_verifier' }
}

/** The AAD of one token of one link: workspace, connection, owner, field and token version. */
export function tokenBinding(
  workspaceId: string,
  connectionId: string,
  owner: string,
  field: 'access_token' | 'refresh_token',
  version: number,
): Binding {
  return {
    workspaceId,
    projectId: '',
    environmentId: '',
    recordId: `${connectionId}/${owner}`,
    recordVersion: version,
    field: `connection.${field}`,
  }
}

/** The callback URL providers redirect to: registered with the provider as the app's redirect URI. */
export function callbackUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/oauth/callback`
}

/**
 * Starts an authorization flow for `owner` (APP_OWNER or a member's user id) and returns the
 * provider URL to open. Expired flows of the workspace are forgotten on the way.
 */
export async function startAuthorization(
  db: Executor,
  keys: DataKeys,
  outbound: OutboundClient,
  input: { workspaceId: string; connectionId: string; kind: LinkKind; owner: string; startedBy: string; publicUrl: string; now: Date },
): Promise<{ url: string; expiresAt: string }> {
  const c = await findConnectionRow(db, input.workspaceId, input.connectionId)
  await outbound.check(c.authorize_url, { requireHttps: true })
  await db
    .deleteFrom('connection_states')
    .where('workspace_id', '=', input.workspaceId)
    .where('expires_at', '<=', input.now.toISOString())
    .execute()
  const state = b64url(randomBytes(32))
  const verifier = b64url(randomBytes(32))
  const challenge = b64url(createHash('sha256').update(verifier, 'ascii').digest())
  const stateHash = hashState(state)
  const key = await keys.integrationKey(db, input.workspaceId)
  const expiresAt = new Date(input.now.getTime() + STATE_TTL_MS).toISOString()
  await db
    .insertInto('connection_states')
    .values({
      state_hash: stateHash,
      workspace_id: input.workspaceId,
      connection_id: c.id,
      kind: input.kind,
      owner: input.owner,
      started_by: input.startedBy,
      verifier_ct: seal(key, Buffer.from(verifier, 'ascii'), verifierBinding(input.workspaceId, stateHash)),
      expires_at: expiresAt,
      created_at: input.now.toISOString(),
    })
    .execute()
  const url = new URL(c.authorize_url)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', c.client_id)
  url.searchParams.set('redirect_uri', callbackUrl(input.publicUrl))
  if (c.scopes !== '') url.searchParams.set('scope', c.scopes)
  url.searchParams.set('state', state)
  url.searchParams.set('code_challenge', challenge)
  url.searchParams.set('code_challenge_method', 'S256')
  return { url: url.toString(), expiresAt }
}

/** What the callback found for its state and, once exchanged, the tokens the provider gave for the code. */
export interface Callback {
  readonly state: ConnectionStateTable
  readonly connection: Pick<ConnectionTable, 'id' | 'name' | 'workspace_id'>
  readonly client: TokenClient
  readonly verifier: string
  readonly tokens: TokenSet | null
}

/**
 * The callback's reads, before any transaction: the state (unknown or expired:
 * ERR_CONNECTION_STATE), its connection, the PKCE verifier and the token endpoint's client.
 * The state is consumed by `completeCallback`, in the transaction that stores the tokens.
 */
export async function findCallback(db: Executor, keys: DataKeys, input: { state: string; now: Date }): Promise<Callback> {
  const stateHash = hashState(input.state)
  const s = await db.selectFrom('connection_states').selectAll().where('state_hash', '=', stateHash).executeTakeFirst()
  if (!s || s.expires_at <= input.now.toISOString()) throw new ConnectionStateError()
  let c: ConnectionTable
  try {
    c = await findConnectionRow(db, s.workspace_id, s.connection_id)
  } catch (err) {
    if (err instanceof NotFoundError) throw new ConnectionStateError()
    throw err
  }
  const key = await keys.integrationKey(db, s.workspace_id)
  const verifier = open(key, s.verifier_ct, verifierBinding(s.workspace_id, stateHash)).toString('ascii')
  return {
    state: s,
    connection: { id: c.id, name: c.name, workspace_id: c.workspace_id },
    client: await tokenClientOf(db, keys, c),
    verifier,
    tokens: null,
  }
}

/** The callback's network half, outside any transaction: the code exchanged at the token endpoint. */
export async function exchangeCallback(
  outbound: OutboundClient,
  cb: Callback,
  input: { code: string; publicUrl: string },
): Promise<Callback> {
  const tokens = await exchangeCode(outbound, cb.client, {
    code: input.code,
    verifier: cb.verifier,
    redirectUri: callbackUrl(input.publicUrl),
  })
  return { ...cb, tokens }
}

/** The token endpoint's client of a connection (the secret opened for this use only). */
export async function tokenClientOf(db: Executor, keys: DataKeys, c: ConnectionTable): Promise<TokenClient> {
  return { tokenUrl: c.token_url, clientId: c.client_id, clientSecret: await clientSecretOf(db, keys, c), tokenAuth: c.token_auth }
}

function expiry(tokens: TokenSet, now: Date): string | null {
  return tokens.expiresIn === null ? null : new Date(now.getTime() + tokens.expiresIn * 1000).toISOString()
}

/**
 * The callback's write: consumes the state (a second use, even racing this one, finds none:
 * ERR_CONNECTION_STATE) and stores the tokens sealed, replacing the owner's earlier link.
 */
export async function completeCallback(
  db: Executor,
  keys: DataKeys,
  cb: Callback,
  now: Date,
): Promise<{ kind: LinkKind; owner: string; state: LinkState }> {
  const tokens = cb.tokens
  if (!tokens) throw new InternalError('a callback stored before its code was exchanged')
  const s = cb.state
  const gone = await db
    .deleteFrom('connection_states')
    .where('state_hash', '=', s.state_hash)
    .where('expires_at', '>', now.toISOString())
    .executeTakeFirst()
  if (Number(gone.numDeletedRows) !== 1) throw new ConnectionStateError()
  const previous = await db
    .selectFrom('connection_links')
    .select(['id', 'token_version'])
    .where('workspace_id', '=', s.workspace_id)
    .where('connection_id', '=', s.connection_id)
    .where('owner', '=', s.owner)
    .executeTakeFirst()
  const version = (previous ? Number(previous.token_version) : 0) + 1
  const key = await keys.integrationKey(db, s.workspace_id)
  const bind = (f: 'access_token' | 'refresh_token') => tokenBinding(s.workspace_id, s.connection_id, s.owner, f, version)
  const row = {
    token_version: version,
    access_token_ct: seal(key, Buffer.from(tokens.accessToken, 'utf8'), bind('access_token')),
    refresh_token_ct: tokens.refreshToken === null ? null : seal(key, Buffer.from(tokens.refreshToken, 'utf8'), bind('refresh_token')),
    expires_at: expiry(tokens, now),
    scopes: tokens.scope ?? '',
    status: 'connected' as const,
    linked_at: now.toISOString(),
    linked_by: s.started_by,
    refreshed_at: null,
    last_error: null,
  }
  if (previous) await db.updateTable('connection_links').set(row).where('id', '=', previous.id).execute()
  else
    await db
      .insertInto('connection_links')
      .values({ id: randomUUID(), workspace_id: s.workspace_id, connection_id: s.connection_id, kind: s.kind, owner: s.owner, ...row })
      .execute()
  return { kind: s.kind, owner: s.owner, state: linkState(row) }
}

/** Removes a member's own link to a connection; false when there was none. */
export async function unlink(db: Executor, workspaceId: string, connectionId: string, userId: string): Promise<boolean> {
  await findConnectionRow(db, workspaceId, connectionId)
  const r = await db
    .deleteFrom('connection_links')
    .where('workspace_id', '=', workspaceId)
    .where('connection_id', '=', connectionId)
    .where('kind', '=', 'personal')
    .where('owner', '=', userId)
    .executeTakeFirst()
  return Number(r.numDeletedRows) > 0
}

/** A link row, for the relay. */
export async function findLink(
  db: Executor,
  workspaceId: string,
  connectionId: string,
  owner: string,
): Promise<ConnectionLinkTable | undefined> {
  return db
    .selectFrom('connection_links')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('connection_id', '=', connectionId)
    .where('owner', '=', owner)
    .executeTakeFirst()
}

/** Opens a link's tokens (for the relay only). */
export async function openTokens(
  db: Executor,
  keys: DataKeys,
  l: ConnectionLinkTable,
): Promise<{ accessToken: string; refreshToken: string | null }> {
  const key = await keys.integrationKey(db, l.workspace_id)
  const v = Number(l.token_version)
  const bind = (f: 'access_token' | 'refresh_token') => tokenBinding(l.workspace_id, l.connection_id, l.owner, f, v)
  return {
    accessToken: open(key, l.access_token_ct, bind('access_token')).toString('utf8'),
    refreshToken: l.refresh_token_ct === null ? null : open(key, l.refresh_token_ct, bind('refresh_token')).toString('utf8'),
  }
}

/**
 * Stores refreshed tokens on a link, sealed under the next token version — only if the link is
 * still at `fromVersion` (a concurrent refresh or re-connect wins; false then). A provider that
 * does not rotate the refresh token keeps the old one.
 */
export async function storeRefreshed(
  db: Executor,
  keys: DataKeys,
  l: ConnectionLinkTable,
  tokens: TokenSet,
  previousRefresh: string | null,
  now: Date,
): Promise<boolean> {
  const v = Number(l.token_version) + 1
  const key = await keys.integrationKey(db, l.workspace_id)
  const bind = (f: 'access_token' | 'refresh_token') => tokenBinding(l.workspace_id, l.connection_id, l.owner, f, v)
  const refresh = tokens.refreshToken ?? previousRefresh
  const r = await db
    .updateTable('connection_links')
    .set({
      token_version: v,
      access_token_ct: seal(key, Buffer.from(tokens.accessToken, 'utf8'), bind('access_token')),
      refresh_token_ct: refresh === null ? null : seal(key, Buffer.from(refresh, 'utf8'), bind('refresh_token')),
      expires_at: expiry(tokens, now),
      ...(tokens.scope !== null ? { scopes: tokens.scope } : {}),
      status: 'connected',
      refreshed_at: now.toISOString(),
      last_error: null,
      refresher: null,
      refresher_until: null,
    })
    .where('id', '=', l.id)
    .where('token_version', '=', Number(l.token_version))
    .executeTakeFirst()
  return Number(r.numUpdatedRows) === 1
}

/** Marks a link as needing re-connecting (its refresh failed); the reason is Coffer's own words. */
export async function markNeedsReconnect(db: Executor, l: ConnectionLinkTable, reason: string): Promise<void> {
  await db
    .updateTable('connection_links')
    .set({ status: 'needs_reconnect', last_error: reason.slice(0, 300), refresher: null, refresher_until: null })
    .where('id', '=', l.id)
    .where('token_version', '=', Number(l.token_version))
    .execute()
}
