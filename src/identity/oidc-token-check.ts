import type { JWTPayload, ProtectedHeaderParameters } from 'jose'
import { claimMatches, type OidcRule } from './machine-oidc-rules.js'
import { IssuerKeysUnavailable, type OidcIssuerKeys } from './oidc-issuer-keys.js'

// Checks a workload's ID token against a machine identity's trust rules, with jose (never by
// hand): the token's issuer must be one a rule names, its signature must verify with a key
// of that issuer's JWKS under an asymmetric algorithm (never `none`, never HS*: a public key
// used as an HMAC secret proves nothing), `exp`/`nbf`/`iat` must hold within a small clock
// skew, its `aud` must name an audience of the rule and every claim condition must match.

/** The signature algorithms accepted: asymmetric only. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const

/** The clock skew allowed on `exp`, `nbf` and `iat`, in seconds. */
export const OIDC_CLOCK_SKEW_SECONDS = 60

/** Which check refused a token (recorded in the audit entry; the caller only ever sees ERR_OIDC_TOKEN_REJECTED). */
export type OidcCheck =
  | 'malformed'
  | 'algorithm'
  | 'issuer'
  | 'issuer_unreachable'
  | 'key'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_at'
  | 'audience'
  | 'claims'
  | 'identity'
  | 'address'

export type OidcCheckResult =
  | { ok: true; rule: OidcRule; issuer: string; subject: string; expiresAt: number }
  | { ok: false; check: OidcCheck; issuer?: string; subject?: string; detail?: string }

/** A claim as the audit entry may show it: a string, cut short (it is unverified until the signature is). */
const shown = (v: unknown): string | undefined => (typeof v === 'string' ? v.slice(0, 200) : undefined)

function failedCheck(err: unknown): OidcCheck {
  const e = err as { code?: string; claim?: string }
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return e.claim === 'iat' ? 'issued_at' : 'expired'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return 'not_yet_valid'
      if (e.claim === 'iat') return 'issued_at'
      if (e.claim === 'iss') return 'issuer'
      if (e.claim === 'exp') return 'expired'
      return 'malformed'
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'key'
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature'
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm'
    default:
      return 'malformed'
  }
}

function audiencesOf(p: JWTPayload): string[] {
  if (typeof p.aud === 'string') return [p.aud]
  return Array.isArray(p.aud) ? p.aud.filter((a): a is string => typeof a === 'string') : []
}

/**
 * Checks `token` against `rules` (one identity's) at `now`. The first rule whose issuer,
 * audience and claim conditions all hold is the one matched. Never throws for a bad token.
 */
export async function checkIdToken(keys: OidcIssuerKeys, rules: readonly OidcRule[], token: string, now: Date): Promise<OidcCheckResult> {
  // jose is loaded on the first exchange, not when the server starts.
  const { decodeJwt, decodeProtectedHeader, jwtVerify } = await import('jose')
  let header: ProtectedHeaderParameters
  let unverified: JWTPayload
  try {
    header = decodeProtectedHeader(token)
    unverified = decodeJwt(token)
  } catch {
    return { ok: false, check: 'malformed' }
  }
  const claimed = {
    ...(shown(unverified.iss) ? { issuer: shown(unverified.iss)! } : {}),
    ...(shown(unverified.sub) ? { subject: shown(unverified.sub)! } : {}),
  }
  if (typeof header.alg !== 'string' || !(OIDC_ALGORITHMS as readonly string[]).includes(header.alg))
    return { ok: false, check: 'algorithm', ...claimed }
  const issuer = unverified.iss
  const ofIssuer = rules.filter((r) => r.issuer === issuer)
  if (typeof issuer !== 'string' || ofIssuer.length === 0) return { ok: false, check: 'issuer', ...claimed }

  let payload: JWTPayload
  try {
    const jwks = await keys.keys(issuer, typeof header.kid === 'string' ? header.kid : undefined)
    payload = (
      await jwtVerify(token, jwks, {
        issuer,
        algorithms: [...OIDC_ALGORITHMS],
        clockTolerance: OIDC_CLOCK_SKEW_SECONDS,
        currentDate: now,
        maxTokenAge: '1d',
        requiredClaims: ['exp', 'iat', 'sub'],
      })
    ).payload
  } catch (err) {
    if (err instanceof IssuerKeysUnavailable) return { ok: false, check: 'issuer_unreachable', ...claimed, detail: err.message }
    return { ok: false, check: failedCheck(err), ...claimed }
  }
  const subject = String(payload.sub)
  const verified = { issuer, subject: subject.slice(0, 200) }
  const auds = audiencesOf(payload)
  const forAudience = ofIssuer.filter((r) => r.audiences.some((a) => auds.includes(a)))
  if (forAudience.length === 0) return { ok: false, check: 'audience', ...verified }
  const rule = forAudience.find((r) => Object.entries(r.claims).every(([name, pattern]) => claimMatches(pattern, payload[name])))
  if (!rule) return { ok: false, check: 'claims', ...verified }
  return { ok: true, rule, ...verified, expiresAt: payload.exp! }
}
