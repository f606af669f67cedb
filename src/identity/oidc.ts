import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import type * as OpenidClient from 'openid-client'
import { OidcEmailRefusedError, OidcFailedError, OidcStateError } from '../errors.js'
import type { OidcConfig } from '../ops/auth-config.js'
import type { Executor } from '../storage/database.js'
import { normalEmail } from './accounts.js'

// Sign-in with OpenID Connect (openid-client): authorization code flow with PKCE (S256),
// state and nonce. The state travels in the redirect and in a cookie of this browser
// (coffer_oidc); the server keeps, under the state's SHA-256, the nonce and the PKCE
// verifier, and deletes them when the callback arrives — so a callback is used once, only in
// the browser that started it, and only within FLOW_LIFETIME_MS.

/** How long a sign-in may take at the provider. */
export const FLOW_LIFETIME_MS = 10 * 60_000

/** The cookie that binds a sign-in in flight to the browser that started it. */
export const OIDC_STATE_COOKIE = 'coffer_oidc'

/** Where the provider sends the browser back, relative to the public URL. */
export const OIDC_CALLBACK_PATH = '/v1/auth/oidc/callback'

/** What Coffer keeps of the provider's answer. */
export interface OidcClaims {
  issuer: string
  subject: string
  email: string
  emailVerified: boolean
  name?: string
}

/** A sign-in about to start: the provider URL to send the browser to, and what to keep. */
export interface OidcStart {
  url: string
  state: string
  nonce: string
  codeVerifier: string
}

function hashState(state: string): Buffer {
  return createHash('sha256').update(state, 'utf8').digest()
}

/** The OIDC client of one provider (COFFER_OIDC_*); discovery happens on first use and is retried after a failure. */
/** openid-client, loaded when OIDC sign-in is first used, not when the server starts. */
let loaded: Promise<typeof OpenidClient> | undefined
function openidClient(): Promise<typeof OpenidClient> {
  loaded ??= import('openid-client')
  return loaded
}

export class OidcService {
  readonly settings: OidcConfig
  readonly redirectUri: string
  readonly #secret: string | undefined
  #config: Promise<OpenidClient.Configuration> | undefined

  constructor(settings: OidcConfig, clientSecret: string | undefined, publicUrl: string) {
    this.settings = settings
    this.#secret = clientSecret
    this.redirectUri = `${publicUrl}${OIDC_CALLBACK_PATH}`
  }

  #discover(): Promise<OpenidClient.Configuration> {
    this.#config ??= openidClient()
      .then((client) =>
        client.discovery(
          new URL(this.settings.issuer),
          this.settings.clientId,
          this.#secret,
          this.#secret ? client.ClientSecretBasic(this.#secret) : client.None(),
          this.settings.insecureLoopback ? { execute: [client.allowInsecureRequests] } : undefined,
        ),
      )
      .catch((err: unknown) => {
        this.#config = undefined
        throw new OidcFailedError({ cause: err })
      })
    return this.#config
  }

  /** Prepares a sign-in: fresh state, nonce and PKCE verifier, and the provider's authorization URL. */
  async start(): Promise<OidcStart> {
    const config = await this.#discover()
    const client = await openidClient()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const codeVerifier = client.randomPKCECodeVerifier()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid email profile',
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    return { url: url.href, state, nonce, codeVerifier }
  }

  /**
   * Exchanges the callback's code (with the PKCE verifier) and validates the ID token
   * (issuer, audience, signature, expiry, nonce). Any failure — a used code, a wrong nonce —
   * is OidcFailedError.
   */
  async finish(callbackUrl: URL, flow: { state: string; nonce: string; codeVerifier: string }): Promise<OidcClaims> {
    const config = await this.#discover()
    const client = await openidClient()
    let tokens: Awaited<ReturnType<typeof OpenidClient.authorizationCodeGrant>>
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: flow.codeVerifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      })
    } catch (err) {
      throw new OidcFailedError({ cause: err })
    }
    const claims = tokens.claims()
    if (!claims) throw new OidcFailedError()
    let email = typeof claims.email === 'string' ? claims.email : undefined
    let verified = claims.email_verified === true
    let name = typeof claims.name === 'string' ? claims.name : undefined
    if (email === undefined) {
      // Providers that keep the ID token small put the email in UserInfo only.
      try {
        const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
        email = typeof info.email === 'string' ? info.email : undefined
        verified = info.email_verified === true
        name ??= typeof info.name === 'string' ? info.name : undefined
      } catch (err) {
        throw new OidcFailedError({ cause: err })
      }
    }
    if (!email) throw new OidcEmailRefusedError('The identity provider did not share an email address.')
    return {
      issuer: String(claims.iss),
      subject: claims.sub,
      email: normalEmail(email),
      emailVerified: verified,
      ...(name ? { name } : {}),
    }
  }
}

/** Keeps a sign-in in flight (and drops expired ones). */
export async function saveFlow(db: Executor, start: OidcStart, returnTo: string, now: Date): Promise<void> {
  await db.deleteFrom('oidc_flows').where('expires_at', '<=', now.toISOString()).execute()
  await db
    .insertInto('oidc_flows')
    .values({
      state_hash: hashState(start.state),
      nonce: start.nonce,
      code_verifier: start.codeVerifier,
      return_to: returnTo,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + FLOW_LIFETIME_MS).toISOString(),
    })
    .execute()
}

/**
 * Takes the sign-in in flight for a callback: the state in the URL must equal this
 * browser's cookie, and name a flow that exists and has not expired. The flow is deleted
 * (single use) whatever happens next. Anything else is OidcStateError.
 */
export async function takeFlow(
  db: Executor,
  queryState: string | undefined,
  cookieState: string | undefined,
  now: Date,
): Promise<{ state: string; nonce: string; codeVerifier: string; returnTo: string }> {
  if (!queryState || !cookieState || queryState.length > 512) throw new OidcStateError()
  const a = Buffer.from(queryState)
  const b = Buffer.from(cookieState)
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new OidcStateError()
  const row = await db.deleteFrom('oidc_flows').where('state_hash', '=', hashState(queryState)).returningAll().executeTakeFirst()
  if (!row || Date.parse(row.expires_at) <= now.getTime()) throw new OidcStateError()
  return { state: queryState, nonce: row.nonce, codeVerifier: row.code_verifier, returnTo: row.return_to }
}

/** Whether `email`'s domain may sign in (an empty list allows any). */
export function domainAllowed(email: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase()
  return allowed.includes(domain)
}

/**
 * The person for a validated OIDC sign-in. An identity already linked by (issuer, subject)
 * is that person. Otherwise the email must be verified by the provider: it is linked to the
 * account with that email, or a new account is created — through OIDC, so with no password.
 * The email's domain must be allowed every time.
 */
export async function signInWithOidc(
  db: Executor,
  claims: OidcClaims,
  allowedDomains: readonly string[],
  now: Date,
): Promise<{ userId: string; email: string; created: boolean; linked: boolean }> {
  if (!domainAllowed(claims.email, allowedDomains)) throw new OidcEmailRefusedError()
  const at = now.toISOString()
  const known = await db
    .selectFrom('user_identities')
    .innerJoin('users', 'users.id', 'user_identities.user_id')
    .select(['users.id', 'users.email'])
    .where('issuer', '=', claims.issuer)
    .where('subject', '=', claims.subject)
    .executeTakeFirst()
  if (known) {
    if (!domainAllowed(known.email, allowedDomains)) throw new OidcEmailRefusedError()
    await db
      .updateTable('user_identities')
      .set({ last_used_at: at, email: claims.email })
      .where('issuer', '=', claims.issuer)
      .where('subject', '=', claims.subject)
      .execute()
    return { userId: known.id, email: known.email, created: false, linked: false }
  }
  // @NOTE linking by email trusts the provider's word that the mailbox is the person's; an
  // unverified email could take over an existing account, so it is refused.
  if (!claims.emailVerified) throw new OidcEmailRefusedError('The identity provider has not verified your email address.')
  const existing = await db
    .selectFrom('users')
    .select(['id', 'email', 'email_verified_at'])
    .where('email', '=', claims.email)
    .executeTakeFirst()
  let userId: string
  let created = false
  if (existing) {
    userId = existing.id
    if (!existing.email_verified_at) await db.updateTable('users').set({ email_verified_at: at }).where('id', '=', userId).execute()
  } else {
    userId = randomUUID()
    created = true
    await db
      .insertInto('users')
      .values({
        id: userId,
        email: claims.email,
        name: claims.name?.slice(0, 128) || claims.email.split('@')[0]!,
        created_at: at,
        password_hash: null,
        email_verified_at: at,
        created_via: 'oidc',
      })
      .execute()
  }
  await db
    .insertInto('user_identities')
    .values({ issuer: claims.issuer, subject: claims.subject, user_id: userId, email: claims.email, created_at: at, last_used_at: at })
    .execute()
  return { userId, email: claims.email, created, linked: true }
}
