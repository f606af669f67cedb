// A third-party OAuth 2.0 authorization server (oidc-provider, in-process, plain http on
// loopback) and an API behind it that accepts only its access tokens and records who called:
// what a Coffer connection talks to in the tests.
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'

export interface ThirdParty {
  issuer: string
  apiBase: string
  clientId: string
  clientSecret: string
  /** Every access and refresh token the provider issued (to look for them where they must not be). */
  issued: Set<string>
  /** Every call the API accepted or refused. */
  calls: Array<{ sub: string | null; method: string; url: string; token: string | null; headers: IncomingHttpHeaders; body: string }>
  close(): Promise<void>
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function closing(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

/** Starts the provider (client `coffer-app`, redirect `${publicUrl}/oauth/callback`) and its API. */
export async function startThirdParty(publicUrl: string, tokenAuth = 'client_secret_basic'): Promise<ThirdParty> {
  let handler: Parameters<typeof createServer>[1]
  const idpServer = createServer((req, res) => handler!(req, res))
  const issuer = await listen(idpServer)
  const clientId = 'coffer-app'
  const clientSecret = `third-party-client-secret-${Math.random().toString(36).slice(2)}`
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [`${publicUrl}/oauth/callback`],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: tokenAuth as 'client_secret_basic',
      },
    ],
    scopes: ['openid', 'offline_access', 'api'],
    claims: { openid: ['sub'] },
    async findAccount(_ctx: unknown, id: string) {
      return { accountId: id, claims: async () => ({ sub: id }) }
    },
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
  } as never)
  provider.on('server_error', () => {})
  const issued = new Set<string>()
  for (const ev of ['access_token.saved', 'refresh_token.saved', 'access_token.issued'])
    provider.on(ev, (...args: unknown[]) => {
      const jti = (args[0] as { jti?: string } | undefined)?.jti
      if (jti) issued.add(jti)
    })
  handler = provider.callback()

  const calls: ThirdParty['calls'] = []
  const apiServer = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const auth = req.headers.authorization ?? ''
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : null
      const tokens = (
        provider as unknown as { AccessToken: { find(t: string): Promise<{ accountId: string; isExpired: boolean } | undefined> } }
      ).AccessToken
      const at = token ? await tokens.find(token) : undefined
      const sub = at && !at.isExpired ? at.accountId : null
      calls.push({ sub, method: req.method ?? '', url: req.url ?? '', token, headers: req.headers, body: Buffer.concat(chunks).toString() })
      if (!sub) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' }).end('{"error":"invalid_token"}')
        return
      }
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'set-cookie': 'tracker=1; Path=/',
          'x-ratelimit-remaining': '42',
          'x-powered-by': 'third-party',
        })
        .end(JSON.stringify({ sub, method: req.method, url: req.url }))
    })
  })
  const apiBase = `${await listen(apiServer)}/api`
  return {
    issuer,
    apiBase,
    clientId,
    clientSecret,
    issued,
    calls,
    async close() {
      await closing(apiServer)
      await closing(idpServer)
    },
  }
}

/**
 * A user agent at the provider: follows redirects, keeps cookies, signs in as `login` and
 * consents; returns the URL it is finally sent to outside the provider (Coffer's callback).
 */
export async function atProvider(authUrl: string, login: string, stopAt: string): Promise<string> {
  const jar = new Map<string, string>()
  let url = authUrl
  let method = 'GET'
  let body: string | undefined
  for (let i = 0; i < 20; i++) {
    if (url.startsWith(stopAt)) return url
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      body,
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
    })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const eq = pair!.indexOf('=')
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1))
    }
    const location = res.headers.get('location')
    if (location) {
      url = new URL(location, url).href
      method = 'GET'
      body = undefined
      continue
    }
    const html = await res.text()
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1]
    assert.ok(action && prompt, `the provider showed a form (status ${res.status}): ${html.slice(0, 300)}`)
    url = new URL(action.replace(/&amp;/g, '&'), url).href
    method = 'POST'
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt }).toString()
  }
  throw new Error('too many redirects at the provider')
}
