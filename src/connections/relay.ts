import type { IncomingHttpHeaders } from 'node:http'
import { ConnectionNeedsReconnectError, ConnectionNotLinkedError, OAuthProviderError, RelayRefusedError } from '../errors.js'
import type { AuditDetail } from '../audit/audit-log.js'
import type { OutboundClient } from '../ops/outbound.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from '../vault/data-keys.js'
import { admits, parseRules, relayPath } from './allow-list.js'
import { findConnectionRow } from './connections.js'
import { APP_OWNER, findLink, markNeedsReconnect, openTokens, storeRefreshed, tokenClientOf } from './links.js'
import { refreshTokens } from './token-endpoint.js'

// The relay: the one place a connection's tokens are used. A request to
// `…/connections/:id/relay/<path>` is forwarded to the connection's API base + path — only
// when the allow-list admits its method and path, and the path cannot leave the base — with
// the caller's own token (or the app's) as `Authorization: Bearer`, through the guarded
// outbound client (https unless the operator allowed the address; no redirects followed),
// bounded in time and size. Only listed request headers go out (never the caller's
// Authorization or cookies), and only listed response headers come back (never Set-Cookie).
// A token within REFRESH_MARGIN_MS of its expiry is refreshed first; a refresh the provider
// refuses marks the link as needing re-connecting.

export const REFRESH_MARGIN_MS = 2 * 60_000
export const RELAY_TIMEOUT_MS = 30_000
export const RELAY_MAX_BYTES = 10 * 1024 * 1024

/** Request headers passed on (besides `x-…` headers other than the forwarding and Coffer ones). */
const REQUEST_HEADERS = new Set([
  'accept',
  'accept-language',
  'content-type',
  'content-language',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'user-agent',
])
const REQUEST_X_REFUSED = /^x-(forwarded-|real-ip|csrf|coffer)/

/** Response headers passed back (besides `x-ratelimit-…`). */
const RESPONSE_HEADERS = new Set([
  'content-type',
  'content-language',
  'cache-control',
  'etag',
  'last-modified',
  'link',
  'location',
  'retry-after',
  'x-request-id',
])

function requestHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) {
    const name = k.toLowerCase()
    if (v === undefined) continue
    if (REQUEST_HEADERS.has(name) || (name.startsWith('x-') && !REQUEST_X_REFUSED.test(name)))
      out[name] = Array.isArray(v) ? v.join(', ') : v
  }
  return out
}

function responseHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) {
    const name = k.toLowerCase()
    if (v === undefined) continue
    if (RESPONSE_HEADERS.has(name) || name.startsWith('x-ratelimit-')) out[name] = Array.isArray(v) ? v.join(', ') : v
  }
  return out
}

/** What the route asks the relay to forward. */
export interface RelayRequest {
  readonly workspaceId: string
  readonly connectionId: string
  readonly method: string
  /** The path after `…/relay`, as sent (percent-encoded), starting with `/`. */
  readonly rawPath: string
  /** The query string as sent, without `?` (Coffer's own `as` parameter removed). */
  readonly rawQuery: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer | undefined
  /** Whose token: the app's, or the member's own (their user id). */
  readonly as: { readonly kind: 'app' } | { readonly kind: 'personal'; readonly userId: string }
  readonly now: Date
}

/** What happened, for the audit log: never a token, a header value or a body. */
export interface RelayEvent {
  readonly action: 'connection.relay' | 'connection.refresh' | 'connection.refresh_failed'
  readonly details: Record<string, AuditDetail>
}

export type RelayOutcome =
  | {
      readonly kind: 'answer'
      readonly status: number
      readonly headers: Record<string, string>
      readonly body: Buffer
      readonly events: RelayEvent[]
    }
  /** The provider refused the refresh: the link now needs re-connecting (recorded), and the caller gets this error. */
  | { readonly kind: 'refused'; readonly error: ConnectionNeedsReconnectError; readonly events: RelayEvent[] }

export interface RelayDeps {
  readonly keys: DataKeys
  readonly outbound: OutboundClient
  /** Runs reads in a short read of the workspace's scope. */
  readonly read: <T>(fn: (db: Executor) => Promise<T>) => Promise<T>
  /** Runs a write in a transaction of its own in the workspace's scope. */
  readonly write: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T>
}

/** The URL a relay request goes to: the base's path, then the checked path, then the query. */
export function relayTarget(apiBase: string, path: string, rawQuery: string): string {
  const base = new URL(apiBase)
  const prefix = base.pathname.replace(/\/+$/, '')
  const url = new URL(`${base.origin}${prefix}${path}${rawQuery === '' ? '' : `?${rawQuery}`}`)
  // @NOTE belt and braces: the checked path cannot climb out, and the parsed URL must agree.
  if (url.origin !== base.origin || !url.pathname.startsWith(`${prefix}/`))
    throw new RelayRefusedError('The relay path leaves the API base.')
  return url.toString()
}

/**
 * Forwards one request (see the header). What it needs from the database is read first, in one
 * short read; the remote calls (refresh, the API) run outside any transaction.
 */
export async function relay(deps: RelayDeps, r: RelayRequest): Promise<RelayOutcome> {
  const { path, segments } = relayPath(r.rawPath)
  const method = r.method.toUpperCase()
  const as = r.as.kind === 'app' ? 'app' : 'personal'
  const owner = r.as.kind === 'app' ? APP_OWNER : r.as.userId
  const loaded = await deps.read(async (db) => {
    const c = await findConnectionRow(db, r.workspaceId, r.connectionId)
    if (!admits(parseRules(JSON.parse(c.allow_rules) as string[]), method, segments))
      throw new RelayRefusedError(`${method} ${path.slice(0, 200)} is not on the connection's allow-list.`)
    const link = await findLink(db, r.workspaceId, c.id, owner)
    if (!link)
      throw new ConnectionNotLinkedError(
        r.as.kind === 'app'
          ? 'The connection has no app token: an Owner or Admin connects it first (coffer connections connect).'
          : 'You have not linked your account at this provider (coffer connections link).',
      )
    if (link.status === 'needs_reconnect')
      throw new ConnectionNeedsReconnectError(
        r.as.kind === 'app'
          ? 'The app token could not be refreshed: connect the connection again (coffer connections connect).'
          : 'Your token could not be refreshed: link your account again (coffer connections link).',
      )
    const tokens = await openTokens(db, deps.keys, link)
    const due = link.expires_at !== null && new Date(link.expires_at).getTime() - r.now.getTime() < REFRESH_MARGIN_MS
    const client = due && tokens.refreshToken !== null ? await tokenClientOf(db, deps.keys, c) : null
    return { c, link, tokens, due, client }
  })
  const { c, link, due, client } = loaded
  const target = relayTarget(c.api_base, path, r.rawQuery)
  const events: RelayEvent[] = []
  let accessToken = loaded.tokens.accessToken
  const refreshToken = loaded.tokens.refreshToken
  if (due) {
    const expired = new Date(link.expires_at!).getTime() <= r.now.getTime()
    if (refreshToken === null || client === null) {
      if (expired) {
        await deps.write((tx) => markNeedsReconnect(tx, link, 'expired, and the provider gave no refresh token'))
        return {
          kind: 'refused',
          error: new ConnectionNeedsReconnectError('The token expired and the provider gave no refresh token: connect or link again.'),
          events: [{ action: 'connection.refresh_failed', details: { connection: c.name, as, reason: 'no refresh token' } }],
        }
      }
    } else {
      try {
        const fresh = await refreshTokens(deps.outbound, client, refreshToken)
        const stored = await deps.write((tx) => storeRefreshed(tx, deps.keys, link, fresh, refreshToken, r.now))
        accessToken = fresh.accessToken
        events.push({ action: 'connection.refresh', details: { connection: c.name, as, stored } })
      } catch (err) {
        // Only a refusal by the provider ends the link; a network failure may pass (the token may still work).
        if (!(err instanceof OAuthProviderError)) {
          if (expired) throw err
        } else {
          await deps.write((tx) => markNeedsReconnect(tx, link, err.message))
          return {
            kind: 'refused',
            error: new ConnectionNeedsReconnectError(
              r.as.kind === 'app'
                ? 'The provider refused to refresh the app token: connect the connection again (coffer connections connect).'
                : 'The provider refused to refresh your token: link your account again (coffer connections link).',
            ),
            events: [{ action: 'connection.refresh_failed', details: { connection: c.name, as, reason: err.message } }],
          }
        }
      }
    }
  }
  const headers = requestHeaders(r.headers)
  headers.authorization = `Bearer ${accessToken}`
  const sendsBody = r.body !== undefined && method !== 'GET' && (method !== 'DELETE' || r.body.length > 0)
  const res = await deps.outbound.request(target, {
    method,
    headers,
    ...(sendsBody ? { body: r.body } : {}),
    timeoutMs: RELAY_TIMEOUT_MS,
    maxBytes: RELAY_MAX_BYTES,
    maxRedirects: 0,
    requireHttps: true,
  })
  events.push({ action: 'connection.relay', details: { connection: c.name, as, method, path: path.slice(0, 500), status: res.status } })
  return { kind: 'answer', status: res.status, headers: responseHeaders(res.headers), body: res.body, events }
}
