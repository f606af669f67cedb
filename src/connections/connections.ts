import { randomUUID } from 'node:crypto'
import { type Binding, open, seal } from '../crypto/envelope.js'
import { AlreadyExistsError, NotFoundError, ValidationError } from '../errors.js'
import type { OutboundClient } from '../ops/outbound.js'
import type { Executor } from '../storage/database.js'
import type { ConnectionLinkTable, ConnectionTable } from '../storage/schema.js'
import type { DataKeys } from '../vault/data-keys.js'
import { parseRules } from './allow-list.js'

// Third-party OAuth connections (docs/connections.md): an OAuth 2.0 app at a provider, per
// workspace. Its client secret is sealed under the workspace's integration key (AAD: the
// workspace, the connection, the field) and never leaves: the API shows the connection's
// settings and the state of its links — connected or not, when they expire, their scopes —
// never a token or the secret. Every URL passes the SSRF guard (https unless the operator
// allowed the address) when saved, and again on every use.

export type TokenAuth = ConnectionTable['token_auth']

/** A link's state as the API shows it: never a token. */
export interface LinkState {
  readonly status: 'connected' | 'needs_reconnect'
  readonly expiresAt: string | null
  readonly scopes: string[]
  readonly linkedAt: string
  readonly refreshedAt: string | null
}

/** A connection as the API shows it: never the client secret or a token. */
export interface ConnectionView {
  readonly id: string
  readonly name: string
  readonly authorizeUrl: string
  readonly tokenUrl: string
  readonly clientId: string
  readonly tokenAuth: TokenAuth
  readonly scopes: string[]
  readonly apiBase: string
  readonly allow: string[]
  readonly createdAt: string
  /** The app token's state (null: not connected). */
  readonly app: LinkState | null
  /** The caller's own link (null: not linked, or the caller is no member). */
  readonly personal: LinkState | null
  /** How many members have linked their own account. */
  readonly personalLinks: number
}

/** The AAD of a connection's client secret. */
export function secretBinding(workspaceId: string, connectionId: string): Binding {
  return { workspaceId, projectId: '', environmentId: '', recordId: connectionId, recordVersion: 1, field: 'connection.client_secret' }
}

function splitScopes(s: string): string[] {
  return s.split(' ').filter((x) => x !== '')
}

export function linkState(l: Pick<ConnectionLinkTable, 'status' | 'expires_at' | 'scopes' | 'linked_at' | 'refreshed_at'>): LinkState {
  return {
    status: l.status,
    expiresAt: l.expires_at,
    scopes: splitScopes(l.scopes),
    linkedAt: l.linked_at,
    refreshedAt: l.refreshed_at,
  }
}

type ConnectionRow = Omit<ConnectionTable, 'client_secret_ct'>

const VIEW = [
  'id',
  'workspace_id',
  'name',
  'authorize_url',
  'token_url',
  'client_id',
  'token_auth',
  'scopes',
  'api_base',
  'allow_rules',
  'created_at',
  'created_by',
] as const

/** Checks a URL a user gave for a connection: absolute, no credentials or fragment, through the guard. */
async function checkUrl(outbound: OutboundClient, url: string, field: string): Promise<void> {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new ValidationError(`${field} is not a valid URL.`, [{ path: `body.${field}`, message: 'invalid URL' }])
  }
  if (u.hash !== '' || u.username !== '' || u.password !== '')
    throw new ValidationError(`${field} may not carry a fragment or credentials.`, [
      { path: `body.${field}`, message: 'fragment or credentials' },
    ])
  await outbound.check(url, { requireHttps: true })
}

/** Reads every link of `connections` and shapes the views (the caller's own link by `viewer`). */
async function viewsOf(db: Executor, workspaceId: string, rows: ConnectionRow[], viewer: string | null): Promise<ConnectionView[]> {
  if (rows.length === 0) return []
  const links = await db
    .selectFrom('connection_links')
    .select(['connection_id', 'kind', 'owner', 'status', 'expires_at', 'scopes', 'linked_at', 'refreshed_at'])
    .where('workspace_id', '=', workspaceId)
    .where(
      'connection_id',
      'in',
      rows.map((r) => r.id),
    )
    .execute()
  return rows.map((r) => {
    const mine = links.filter((l) => l.connection_id === r.id)
    const app = mine.find((l) => l.kind === 'app')
    const personal = viewer === null ? undefined : mine.find((l) => l.kind === 'personal' && l.owner === viewer)
    return {
      id: r.id,
      name: r.name,
      authorizeUrl: r.authorize_url,
      tokenUrl: r.token_url,
      clientId: r.client_id,
      tokenAuth: r.token_auth,
      scopes: splitScopes(r.scopes),
      apiBase: r.api_base,
      allow: JSON.parse(r.allow_rules) as string[],
      createdAt: r.created_at,
      app: app ? linkState(app) : null,
      personal: personal ? linkState(personal) : null,
      personalLinks: mine.filter((l) => l.kind === 'personal').length,
    }
  })
}

export interface NewConnection {
  readonly name: string
  readonly authorizeUrl: string
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly tokenAuth: TokenAuth
  readonly scopes: readonly string[]
  readonly apiBase: string
  readonly allow: readonly string[]
  readonly createdBy: string
  readonly now: Date
}

/** Saves a connection after checking its URLs through the guard and its allow-list rules. */
export async function createConnection(
  db: Executor,
  keys: DataKeys,
  outbound: OutboundClient,
  workspaceId: string,
  input: NewConnection,
): Promise<ConnectionView> {
  parseRules(input.allow)
  if (new URL(input.apiBase).search !== '')
    throw new ValidationError('apiBase may not carry a query string.', [{ path: 'body.apiBase', message: 'query' }])
  const taken = await db
    .selectFrom('connections')
    .select('id')
    .where('workspace_id', '=', workspaceId)
    .where('name', '=', input.name)
    .executeTakeFirst()
  if (taken) throw new AlreadyExistsError('connection')
  await checkUrl(outbound, input.authorizeUrl, 'authorizeUrl')
  await checkUrl(outbound, input.tokenUrl, 'tokenUrl')
  await checkUrl(outbound, input.apiBase, 'apiBase')
  const id = randomUUID()
  const key = await keys.integrationKey(db, workspaceId)
  const row: ConnectionTable = {
    id,
    workspace_id: workspaceId,
    name: input.name,
    authorize_url: input.authorizeUrl,
    token_url: input.tokenUrl,
    client_id: input.clientId,
    client_secret_ct: seal(key, Buffer.from(input.clientSecret, 'utf8'), secretBinding(workspaceId, id)),
    token_auth: input.tokenAuth,
    scopes: input.scopes.join(' '),
    api_base: input.apiBase,
    allow_rules: JSON.stringify(input.allow.map((r) => r.trim())),
    created_at: input.now.toISOString(),
    created_by: input.createdBy,
  }
  await db.insertInto('connections').values(row).execute()
  const [view] = await viewsOf(db, workspaceId, [row], null)
  return view!
}

/** The workspace's connections, with the caller's own link state. */
export async function listConnections(db: Executor, workspaceId: string, viewer: string | null): Promise<ConnectionView[]> {
  const rows = await db.selectFrom('connections').select(VIEW).where('workspace_id', '=', workspaceId).orderBy('name').execute()
  return viewsOf(db, workspaceId, rows, viewer)
}

/** One connection of the workspace (another workspace's id answers 404 like a missing one). */
export async function findConnectionRow(db: Executor, workspaceId: string, id: string): Promise<ConnectionTable> {
  const r = await db.selectFrom('connections').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst()
  if (!r) throw new NotFoundError('connection')
  return r
}

export async function getConnection(db: Executor, workspaceId: string, id: string, viewer: string | null): Promise<ConnectionView> {
  const r = await findConnectionRow(db, workspaceId, id)
  const [view] = await viewsOf(db, workspaceId, [r], viewer)
  return view!
}

/** Deletes a connection with its tokens and flows under way (crypto-wise: their ciphertext rows are gone). */
export async function deleteConnection(db: Executor, workspaceId: string, id: string): Promise<ConnectionView> {
  const view = await getConnection(db, workspaceId, id, null)
  await db.deleteFrom('connection_states').where('workspace_id', '=', workspaceId).where('connection_id', '=', id).execute()
  await db.deleteFrom('connection_links').where('workspace_id', '=', workspaceId).where('connection_id', '=', id).execute()
  await db.deleteFrom('connections').where('workspace_id', '=', workspaceId).where('id', '=', id).execute()
  return view
}

/** Opens a connection's client secret (for the token endpoint only). */
export async function clientSecretOf(
  db: Executor,
  keys: DataKeys,
  row: Pick<ConnectionTable, 'workspace_id' | 'id' | 'client_secret_ct'>,
): Promise<string> {
  const key = await keys.integrationKey(db, row.workspace_id)
  return open(key, row.client_secret_ct, secretBinding(row.workspace_id, row.id)).toString('utf8')
}
