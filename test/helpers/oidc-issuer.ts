import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, type JWK, SignJWT, type JWTPayload } from 'jose'

// A small OpenID Connect issuer for tests, as a CI provider's would look to Coffer: a
// discovery document and a JWKS over HTTP on loopback, and ID tokens signed with jose. Its
// signing key can be rotated; it counts the requests it answers.

export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
}

/** A fresh RS256 key pair named `kid`. */
export async function signingKey(kid: string = randomUUID()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } }
}

export interface TestIssuer {
  /** The issuer URL (`iss`), http://127.0.0.1:PORT. */
  readonly url: string
  /** The key tokens are signed with (the last in the published set). */
  key: SigningKey
  /** The published keys. */
  published: SigningKey[]
  /** Requests answered, by path. */
  readonly hits: Map<string, number>
  /** What the discovery document says (default: this issuer and its /jwks), for tests that lie. */
  discovery: { issuer?: string; jwks_uri?: string }
  /** A new key becomes the signing key and the only published one. */
  rotate(): Promise<SigningKey>
  /** An ID token with the usual claims (iss, aud, sub, iat, exp in 5 minutes), `claims` on top. */
  token(claims?: JWTPayload, options?: { key?: SigningKey; kid?: string; now?: Date }): Promise<string>
  close(): Promise<void>
}

export async function startIssuer(): Promise<TestIssuer> {
  const hits = new Map<string, number>()
  let url = ''
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (path === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ['RS256'], ...issuer.discovery }),
      )
    } else if (path === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: issuer.published.map((k) => k.publicJwk) }))
    } else res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const first = await signingKey()
  const issuer: TestIssuer = {
    url,
    key: first,
    published: [first],
    hits,
    discovery: {},
    async rotate() {
      const k = await signingKey()
      issuer.key = k
      issuer.published = [k]
      return k
    },
    async token(claims = {}, options = {}) {
      const key = options.key ?? issuer.key
      const now = Math.floor((options.now ?? new Date()).getTime() / 1000)
      return new SignJWT({ iss: url, aud: 'coffer', sub: 'repo:acme/web:ref:refs/heads/main', iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? key.kid, typ: 'JWT' })
        .sign(key.privateKey)
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
  return issuer
}
