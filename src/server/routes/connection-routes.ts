import { z } from 'zod'
import {
  authorizeBody,
  authorizeResponse,
  connectionListResponse,
  connectionResponse,
  createConnectionBody,
  oauthCallbackQuery,
  oauthCallbackResponse,
  unlinkResponse,
} from '../../api/connections.js'
import { type Principal, requireUser, roleAtLeast } from '../../access/policy.js'
import { createConnection, deleteConnection, getConnection, listConnections } from '../../connections/connections.js'
import {
  APP_OWNER,
  type Callback,
  completeCallback,
  exchangeCallback,
  findCallback,
  startAuthorization,
  unlink,
} from '../../connections/links.js'
import { RELAY_METHODS, type RelayMethod } from '../../connections/allow-list.js'
import { relay } from '../../connections/relay.js'
import { ForbiddenError, OAuthProviderError } from '../../errors.js'
import { rowLockedPartition } from '../../storage/commit-partition.js'
import { readInScope } from '../../storage/tenant-scope.js'
import { defineAuthRoute, type AnyAuthRoute } from '../auth-route.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

// Third-party OAuth connections (docs/connections.md). Owners and Admins make, connect and
// delete them; every member links their own account and relays through them. No answer
// carries a token or the client secret; the tokens are used only by the relay.

const W = '/v1/workspaces/:workspace/connections'
const connectionParams = workspaceParams.extend({ connection: z.uuid() })
const relayParams = connectionParams.extend({ '*': z.string() })

/** Owners and Admins act for the app (connect it, relay as it); integrations never. */
function requireAppActor(principal: Principal, what: string): void {
  const u = requireUser(principal)
  if (!roleAtLeast(u.role, 'admin')) throw new ForbiddenError(`Only Owners and Admins ${what}.`)
}

const create = defineRoute({
  method: 'POST',
  url: W,
  tag: 'connections',
  action: 'connection.manage',
  mode: 'write',
  status: 201,
  summary: 'Add an OAuth app at a provider (the client secret is kept sealed and never shown again)',
  params: workspaceParams,
  body: createConnectionBody,
  response: connectionResponse,
  async handler({ app, db, principal, workspace, body }) {
    const connection = await createConnection(db, app.dataKeys, app.outbound, workspace.id, {
      name: body.name,
      authorizeUrl: body.authorizeUrl,
      tokenUrl: body.tokenUrl,
      clientId: body.clientId,
      clientSecret: body.clientSecret,
      tokenAuth: body.tokenAuth ?? 'client_secret_basic',
      scopes: body.scopes ?? [],
      apiBase: body.apiBase,
      allow: body.allow,
      createdBy: requireUser(principal).userId,
      now: app.clock(),
    })
    return {
      body: { connection },
      audit: {
        action: 'connection.create',
        target: { type: 'connection', id: connection.id },
        details: { name: connection.name, apiBase: connection.apiBase, allow: connection.allow, scopes: connection.scopes },
      },
    }
  },
})

const list = defineRoute({
  method: 'GET',
  url: W,
  tag: 'connections',
  action: 'connection.read',
  mode: 'read',
  summary: "The workspace's connections: settings and the state of the app's and your own link (never a token)",
  params: workspaceParams,
  response: connectionListResponse,
  async handler({ db, principal, workspace }) {
    return { body: { connections: await listConnections(db, workspace.id, principal.type === 'user' ? principal.userId : null) } }
  },
})

const show = defineRoute({
  method: 'GET',
  url: `${W}/:connection`,
  tag: 'connections',
  action: 'connection.read',
  mode: 'read',
  summary: 'One connection and the state of its links (the CLI polls it while a browser connects)',
  params: connectionParams,
  response: connectionResponse,
  async handler({ db, principal, workspace, params }) {
    const viewer = principal.type === 'user' ? principal.userId : null
    return { body: { connection: await getConnection(db, workspace.id, params.connection, viewer) } }
  },
})

const remove = defineRoute({
  method: 'DELETE',
  url: `${W}/:connection`,
  tag: 'connections',
  action: 'connection.manage',
  mode: 'write',
  summary: 'Delete a connection with every token it holds',
  params: connectionParams,
  response: connectionResponse,
  async handler({ db, workspace, params }) {
    const connection = await deleteConnection(db, workspace.id, params.connection)
    return {
      body: { connection },
      audit: { action: 'connection.delete', target: { type: 'connection', id: connection.id }, details: { name: connection.name } },
    }
  },
})

const authorize = defineRoute({
  method: 'POST',
  url: `${W}/:connection/authorize`,
  tag: 'connections',
  action: 'connection.link',
  mode: 'write',
  summary:
    'Start the authorization-code flow (PKCE, single-use state, 10 minutes): the provider URL to open. `kind` app (Owners and Admins) or personal',
  params: connectionParams,
  body: authorizeBody.optional(),
  response: authorizeResponse,
  async handler({ app, db, principal, workspace, params, body }) {
    const kind = body?.kind ?? 'personal'
    if (kind === 'app') requireAppActor(principal, 'connect the app')
    const user = requireUser(principal)
    const r = await startAuthorization(db, app.dataKeys, app.outbound, {
      workspaceId: workspace.id,
      connectionId: params.connection,
      kind,
      owner: kind === 'app' ? APP_OWNER : user.userId,
      startedBy: user.userId,
      publicUrl: app.config.auth.publicUrl,
      now: app.clock(),
    })
    return {
      body: r,
      audit: {
        action: 'connection.authorize',
        target: { type: 'connection', id: params.connection },
        details: { kind, expiresAt: r.expiresAt },
      },
    }
  },
})

const unlinkRoute = defineRoute({
  method: 'DELETE',
  url: `${W}/:connection/link`,
  tag: 'connections',
  action: 'connection.link',
  mode: 'write',
  summary: 'Remove your own link (your tokens) from a connection',
  params: connectionParams,
  response: unlinkResponse,
  async handler({ db, principal, workspace, params }) {
    const user = requireUser(principal)
    const unlinked = await unlink(db, workspace.id, params.connection, user.userId)
    const connection = await getConnection(db, workspace.id, params.connection, user.userId)
    return {
      body: { connection, unlinked },
      audit: {
        action: 'connection.unlink',
        target: { type: 'connection', id: connection.id },
        details: { name: connection.name, unlinked },
      },
    }
  },
})

/** The query string as sent, less Coffer's own `as` parameter. */
function forwardedQuery(url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return ''
  return url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '' && p.split('=')[0] !== 'as')
    .join('&')
}

const RELAY_PREFIX = /^\/v1\/workspaces\/[^/?]+\/connections\/[^/?]+\/relay(?=\/|$)/

function relayRoute(method: RelayMethod): AnyRoute {
  return defineRoute({
    method,
    url: `${W}/:connection/relay/*`,
    tag: 'connections',
    action: 'connection.relay',
    mode: 'read',
    rawBody: true,
    outsideTransaction: true,
    summary: `Relay ${method} to the connection's API with your token (or the app's: \`?as=app\` or \`Coffer-Relay-As: app\`, Owners and Admins), within its allow-list; audited per use`,
    params: relayParams,
    query: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    body: z.instanceof(Buffer).optional(),
    response: z.unknown(),
    async handler({ app, principal, workspace, params, query, body, request }) {
      const header = request.headers['coffer-relay-as']
      const asApp = query.as === 'app' || (typeof header === 'string' && header.toLowerCase() === 'app')
      if (asApp) requireAppActor(principal, 'relay as the app')
      const user = requireUser(principal)
      const path = request.url.split('?')[0]!.replace(RELAY_PREFIX, '')
      const out = await relay(
        {
          keys: app.dataKeys,
          outbound: app.outbound,
          read: (fn) => readInScope(app.store, workspace.id, fn),
          write: (fn) => app.committer.run((tx) => fn(tx), rowLockedPartition(workspace.id)),
        },
        {
          workspaceId: workspace.id,
          connectionId: params.connection,
          method,
          rawPath: path,
          rawQuery: forwardedQuery(request.url),
          headers: request.headers,
          body,
          as: asApp ? { kind: 'app' } : { kind: 'personal', userId: user.userId },
          now: app.clock(),
        },
      )
      const audit = out.events.map((e) => ({ action: e.action, target: { type: 'connection', id: params.connection }, details: e.details }))
      if (out.kind === 'refused')
        return {
          body: { error: { code: out.error.code, message: out.error.message } },
          status: out.error.status,
          audit,
        }
      return {
        body: out.body,
        status: out.status,
        headers: { 'content-type': 'application/octet-stream', ...out.headers, 'coffer-relay': asApp ? 'app' : 'personal' },
        audit,
      }
    },
  })
}

/** What the callback's slow half found. */
type Prepared = Callback

const callback = defineAuthRoute({
  scope: 'public',
  method: 'GET',
  url: '/oauth/callback',
  summary: 'Where a provider sends the browser back after the user authorized a connection (the single-use state is the credential)',
  tag: 'connections',
  action: 'public',
  mode: 'write',
  authRateLimit: { account: () => undefined },
  query: oauthCallbackQuery,
  response: oauthCallbackResponse,
  async prepare({ app, db, query, now }): Promise<Prepared> {
    if (query.code === undefined) {
      const denied = query.error !== undefined && /^[a-z_]{1,40}$/.test(query.error) ? ` (${query.error})` : ''
      throw new OAuthProviderError(`The provider did not authorize the connection${denied}.`)
    }
    return findCallback(db, app.dataKeys, { state: query.state, now })
  },
  // The code is exchanged with no database connection held (the provider may be slow).
  async verify({ app, query, prepared }): Promise<Prepared> {
    return exchangeCallback(app.outbound, prepared, { code: query.code!, publicUrl: app.config.auth.publicUrl })
  },
  auditWorkspace: (prepared: Prepared) => prepared.connection.workspace_id,
  async handler({ app, db, prepared, now, request }) {
    const r = await completeCallback(db, app.dataKeys, prepared, now)
    return {
      body: { connected: true, connection: prepared.connection.name, kind: r.kind },
      // A browser comes back to the dashboard's Connections screen, which shows the new link; a program gets the JSON.
      ...(/\btext\/html\b/.test(request.accept) ? { redirect: `/w/${prepared.connection.workspace_id}/connections` } : {}),
      auditUser: prepared.state.started_by,
      audit: {
        action: r.kind === 'app' ? 'connection.connect' : 'connection.link',
        target: { type: 'connection', id: prepared.connection.id },
        details: { name: prepared.connection.name, kind: r.kind, scopes: r.state.scopes, expiresAt: r.state.expiresAt },
      },
    }
  },
})

export const connectionRoutes: AnyRoute[] = [create, list, show, remove, authorize, unlinkRoute, ...RELAY_METHODS.map(relayRoute)]
export const connectionAuthRoutes: AnyAuthRoute[] = [callback]
