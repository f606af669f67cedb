import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose'
import type { Clock } from '../ops/clock.js'
import type { OutboundClient } from '../ops/outbound.js'
import { discoveryUrl } from './machine-oidc-rules.js'

// The signing keys of the OIDC issuers machine identities trust: each issuer's discovery
// document (`/.well-known/openid-configuration`) and JWKS, fetched through the guarded
// outbound client (a loopback, private or metadata address is refused unless the operator
// allowed it) and kept for a while. A token naming a key id the cached set lacks (the issuer
// rotated its key) fetches both again — at most once per cooldown per issuer, failures
// included, so a stream of forged tokens cannot make Coffer hammer an issuer. Only issuers a
// rule names are ever fetched: a token's `iss` is matched against the identity's rules first.
// When a refetch fails (the issuer down), the keys it last published stay in use.

/** Why an issuer's keys could not be had (recorded in the refusal's audit entry, never shown to the caller). */
export class IssuerKeysUnavailable extends Error {}

interface Entry {
  readonly jwks: JWTVerifyGetKey | null
  readonly kids: ReadonlySet<string>
  readonly fetchedAt: number
  readonly failure: string | null
}

const MAX_BYTES = 256 * 1024
const TIMEOUT_MS = 5_000

export class OidcIssuerKeys {
  readonly #outbound: Pick<OutboundClient, 'request'>
  readonly #clock: Clock
  readonly #ttlMs: number
  readonly #cooldownMs: number
  readonly #maxIssuers: number
  readonly #entries = new Map<string, Entry>()
  readonly #inflight = new Map<string, Promise<Entry>>()

  /**
   * `ttlMs`: how long a fetched key set is used before it is fetched again (default 10 min);
   * `cooldownMs`: the least time between two fetches of one issuer (default 30 s).
   */
  constructor(options: {
    outbound: Pick<OutboundClient, 'request'>
    clock: Clock
    ttlMs?: number
    cooldownMs?: number
    maxIssuers?: number
  }) {
    this.#outbound = options.outbound
    this.#clock = options.clock
    this.#ttlMs = options.ttlMs ?? 600_000
    this.#cooldownMs = options.cooldownMs ?? 30_000
    this.#maxIssuers = options.maxIssuers ?? 1_000
  }

  /**
   * The issuer's key set, for a token whose header names `kid`: the cached set while it is
   * fresh and knows `kid`; otherwise fetched again when the cooldown allows. Throws
   * IssuerKeysUnavailable when the issuer could not be reached or answered nonsense.
   */
  async keys(issuer: string, kid: string | undefined): Promise<JWTVerifyGetKey> {
    const now = this.#clock().getTime()
    let e = this.#entries.get(issuer)
    const stale = !e || now - e.fetchedAt >= this.#ttlMs || e.failure !== null || (kid !== undefined && !e.kids.has(kid))
    if (stale && (!e || now - e.fetchedAt >= this.#cooldownMs)) e = await this.#refetch(issuer)
    if (!e?.jwks) throw new IssuerKeysUnavailable(e?.failure ?? 'not fetched')
    return e.jwks
  }

  #refetch(issuer: string): Promise<Entry> {
    const running = this.#inflight.get(issuer)
    if (running) return running
    const p = this.#fetch(issuer)
      .then((fetched) => {
        // A failed refetch keeps the keys the issuer last published: a token naming an unknown
        // kid while the issuer is down must not lock out the tokens signed with a known key.
        const prev = this.#entries.get(issuer)
        const e = fetched.jwks === null && prev?.jwks ? { ...fetched, jwks: prev.jwks, kids: prev.kids } : fetched
        this.#entries.delete(issuer)
        if (this.#entries.size >= this.#maxIssuers) this.#entries.delete(this.#entries.keys().next().value!)
        this.#entries.set(issuer, e)
        return e
      })
      .finally(() => this.#inflight.delete(issuer))
    this.#inflight.set(issuer, p)
    return p
  }

  async #fetch(issuer: string): Promise<Entry> {
    const fetchedAt = this.#clock().getTime()
    try {
      const doc = await this.#json(discoveryUrl(issuer), 'discovery document')
      // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
      if (doc.issuer !== issuer) throw new IssuerKeysUnavailable('the discovery document names another issuer')
      if (typeof doc.jwks_uri !== 'string') throw new IssuerKeysUnavailable('the discovery document has no jwks_uri')
      const set = await this.#json(doc.jwks_uri, 'JWKS')
      if (!Array.isArray(set.keys)) throw new IssuerKeysUnavailable('the JWKS has no keys')
      const { createLocalJWKSet } = await import('jose')
      const jwks = createLocalJWKSet(set as unknown as JSONWebKeySet)
      const kids = new Set((set.keys as Array<{ kid?: unknown }>).flatMap((k) => (typeof k?.kid === 'string' ? [k.kid] : [])))
      return { jwks, kids, fetchedAt, failure: null }
    } catch (err) {
      const failure =
        err instanceof IssuerKeysUnavailable ? err.message : `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`
      return { jwks: null, kids: new Set(), fetchedAt, failure: failure.slice(0, 300) }
    }
  }

  async #json(url: string, what: string): Promise<Record<string, unknown>> {
    const r = await this.#outbound.request(url, { headers: { accept: 'application/json' }, timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES })
    if (r.status !== 200) throw new IssuerKeysUnavailable(`the ${what} answered ${r.status}`)
    let v: unknown
    try {
      v = JSON.parse(r.body.toString('utf8'))
    } catch {
      throw new IssuerKeysUnavailable(`the ${what} is not JSON`)
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new IssuerKeysUnavailable(`the ${what} is not a JSON object`)
    return v as Record<string, unknown>
  }
}
