import { OAuthProviderError } from '../errors.js'
import type { OutboundClient } from '../ops/outbound.js'

// The provider's token endpoint (RFC 6749 §4.1.3 and §6), reached only through the guarded
// outbound client, https unless the operator allowed the address. The client authenticates
// with `client_secret_basic` (RFC 6749 §2.3.1: id and secret form-encoded, then Basic) or
// `client_secret_post`. The provider's answer is read for the token fields only; its error
// text is not passed on (it may echo what was sent), only a standard OAuth error code.

const TIMEOUT_MS = 15_000
const MAX_BYTES = 256 * 1024

/** What a token endpoint gave. */
export interface TokenSet {
  readonly accessToken: string
  readonly refreshToken: string | null
  /** Seconds, when the provider said. */
  readonly expiresIn: number | null
  /** Space-separated, when the provider said. */
  readonly scope: string | null
}

/** The client a connection authenticates as at the token endpoint. */
export interface TokenClient {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly tokenAuth: 'client_secret_basic' | 'client_secret_post'
}

const OAUTH_ERROR = /^[a-z_]{1,40}$/

async function call(outbound: OutboundClient, client: TokenClient, grant: Record<string, string>, what: string): Promise<TokenSet> {
  const form = new URLSearchParams(grant)
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  }
  if (client.tokenAuth === 'client_secret_post') {
    form.set('client_id', client.clientId)
    form.set('client_secret', client.clientSecret)
  } else {
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
    headers.authorization = `Basic ${Buffer.from(`${enc(client.clientId)}:${enc(client.clientSecret)}`).toString('base64')}`
  }
  const r = await outbound.request(client.tokenUrl, {
    method: 'POST',
    headers,
    body: form.toString(),
    timeoutMs: TIMEOUT_MS,
    maxBytes: MAX_BYTES,
    requireHttps: true,
  })
  let json: Record<string, unknown> = {}
  try {
    const parsed: unknown = JSON.parse(r.body.toString('utf8'))
    if (parsed && typeof parsed === 'object') json = parsed as Record<string, unknown>
  } catch {
    // not JSON: refused below
  }
  if (r.status !== 200) {
    const code = typeof json.error === 'string' && OAUTH_ERROR.test(json.error) ? ` (${json.error})` : ''
    throw new OAuthProviderError(`The provider's token endpoint refused ${what}: HTTP ${r.status}${code}.`)
  }
  const accessToken = json.access_token
  const type = json.token_type
  if (typeof accessToken !== 'string' || accessToken === '' || (typeof type === 'string' && type.toLowerCase() !== 'bearer'))
    throw new OAuthProviderError(`The provider's token endpoint did not answer ${what} with a Bearer access token.`)
  const expiresIn =
    typeof json.expires_in === 'number' ? json.expires_in : typeof json.expires_in === 'string' ? Number(json.expires_in) : null
  return {
    accessToken,
    refreshToken: typeof json.refresh_token === 'string' && json.refresh_token !== '' ? json.refresh_token : null,
    expiresIn: expiresIn !== null && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : null,
    scope: typeof json.scope === 'string' ? json.scope : null,
  }
}

/** Exchanges an authorization code (with its PKCE verifier) for tokens. */
export function exchangeCode(
  outbound: OutboundClient,
  client: TokenClient,
  input: { code: string; verifier: string; redirectUri: string },
): Promise<TokenSet> {
  return call(
    outbound,
    client,
    { grant_type: 'authorization_code', code: input.code, code_verifier: input.verifier, redirect_uri: input.redirectUri },
    'the authorization code',
  )
}

/** Trades a refresh token for fresh tokens (the provider may rotate the refresh token). */
export function refreshTokens(outbound: OutboundClient, client: TokenClient, refreshToken: string): Promise<TokenSet> {
  return call(outbound, client, { grant_type: 'refresh_token', refresh_token: refreshToken }, 'the refresh token')
}
