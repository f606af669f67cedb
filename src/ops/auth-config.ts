import { ConfigError } from '../errors.js'
import type { ServerEnv } from './env.js'

/** OpenID Connect settings; the client secret is a secret and lives in ServerSecrets. */
export interface OidcConfig {
  readonly issuer: string
  readonly clientId: string
  /** Lower-case email domains allowed to sign in; empty: any. */
  readonly allowedDomains: readonly string[]
  /** True for an http:// issuer on a loopback address (development): plain HTTP is then allowed. */
  readonly insecureLoopback: boolean
}

/** How people sign in (COFFER_AUTH_MODE, COFFER_OIDC_*, COFFER_SMTP_URL, COFFER_SESSION_*). */
export interface AuthConfig {
  /** Where people reach Coffer: links in mails and OIDC redirect URIs. An origin, no trailing slash. */
  readonly publicUrl: string
  /** Whether `publicUrl` was set (COFFER_PUBLIC_URL) rather than derived from host and port. */
  readonly publicUrlSet: boolean
  /** Password sign-in, sign-up and reset (off with COFFER_AUTH_MODE=oidc-only). */
  readonly password: boolean
  readonly oidc: OidcConfig | null
  /** Mail goes out over SMTP when COFFER_SMTP_URL is set (the URL itself is a secret). */
  readonly mail: { readonly enabled: boolean; readonly from: string }
  readonly session: { readonly idleMs: number; readonly absoluteMs: number }
}

const MODES = ['password', 'password,oidc', 'oidc-only'] as const

function seconds(setting: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(setting, `must be a whole number of seconds between ${min} and ${max}`)
  const n = Number(raw.trim())
  if (n < min || n > max) throw new ConfigError(setting, `must be between ${min} and ${max} seconds`)
  return n
}

function httpUrl(setting: string, raw: string): URL {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new ConfigError(setting, 'is not a valid URL')
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new ConfigError(setting, 'must be an http:// or https:// URL')
  if (u.username || u.password) throw new ConfigError(setting, 'must not contain credentials')
  return u
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

function oidcConfig(env: ServerEnv): OidcConfig | null {
  if (env.COFFER_OIDC_ISSUER === undefined) {
    for (const s of ['COFFER_OIDC_CLIENT_ID', 'COFFER_OIDC_CLIENT_SECRET', 'COFFER_OIDC_ALLOWED_DOMAINS'] as const) {
      if (env[s] !== undefined) throw new ConfigError('COFFER_OIDC_ISSUER', `is required when ${s} is set`)
    }
    return null
  }
  const u = httpUrl('COFFER_OIDC_ISSUER', env.COFFER_OIDC_ISSUER)
  // @NOTE plain HTTP would let anyone on the path forge ID tokens; only a provider on this
  // machine (development, tests) may use it.
  if (u.protocol === 'http:' && !isLoopback(u.hostname))
    throw new ConfigError('COFFER_OIDC_ISSUER', 'must be https:// (http:// only for a provider on a loopback address)')
  const clientId = env.COFFER_OIDC_CLIENT_ID?.trim()
  if (!clientId) throw new ConfigError('COFFER_OIDC_CLIENT_ID', 'is required when COFFER_OIDC_ISSUER is set')
  const allowedDomains = (env.COFFER_OIDC_ALLOWED_DOMAINS ?? '')
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter((d) => d !== '')
  for (const d of allowedDomains) {
    if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(d))
      throw new ConfigError('COFFER_OIDC_ALLOWED_DOMAINS', 'must be a comma-separated list of domain names (example.com,corp.example)')
  }
  return { issuer: env.COFFER_OIDC_ISSUER.replace(/\/+$/, ''), clientId, allowedDomains, insecureLoopback: u.protocol === 'http:' }
}

/**
 * Validates the sign-in settings. COFFER_AUTH_MODE is `password` or `password,oidc` (both
 * mean: passwords, plus OIDC when COFFER_OIDC_ISSUER is set) or `oidc-only` (no passwords at
 * all; OIDC must be configured). Without COFFER_PUBLIC_URL, the public URL is derived from
 * the listen address, with https when the server terminates TLS itself (`tls`).
 */
export function authConfig(env: ServerEnv, host: string, port: number, tls = false): AuthConfig {
  let publicUrl: string
  if (env.COFFER_PUBLIC_URL !== undefined) {
    const u = httpUrl('COFFER_PUBLIC_URL', env.COFFER_PUBLIC_URL)
    if (u.pathname !== '/' || u.search || u.hash)
      throw new ConfigError('COFFER_PUBLIC_URL', 'must be an origin such as https://coffer.example.com (no path)')
    publicUrl = u.origin
  } else {
    const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
    // @NOTE a server that speaks TLS itself answers https only: links it mails or prints say so.
    publicUrl = `${tls ? 'https' : 'http'}://${h}:${port}`
  }
  const mode = (env.COFFER_AUTH_MODE ?? 'password,oidc').replace(/\s+/g, '').toLowerCase()
  if (!(MODES as readonly string[]).includes(mode)) throw new ConfigError('COFFER_AUTH_MODE', `must be one of ${MODES.join(', ')}`)
  const oidc = oidcConfig(env)
  if (mode === 'oidc-only' && !oidc) throw new ConfigError('COFFER_OIDC_ISSUER', 'is required with COFFER_AUTH_MODE=oidc-only')
  if (env.COFFER_SMTP_URL !== undefined && !/^smtps?:\/\/[^\s]+$/i.test(env.COFFER_SMTP_URL))
    throw new ConfigError('COFFER_SMTP_URL', 'must be an smtp:// or smtps:// URL')
  const from = env.COFFER_MAIL_FROM ?? `Coffer <coffer@${new URL(publicUrl).hostname.replace(/^\[|\]$/g, '') || 'localhost'}>`
  if (!/^[^\r\n]{3,256}$/.test(from) || !from.includes('@'))
    throw new ConfigError('COFFER_MAIL_FROM', 'must be an address such as "Coffer <coffer@example.com>"')
  const idle = seconds('COFFER_SESSION_IDLE_TIMEOUT', env.COFFER_SESSION_IDLE_TIMEOUT, 1800, 60, 7 * 86_400)
  const absolute = seconds('COFFER_SESSION_ABSOLUTE_TIMEOUT', env.COFFER_SESSION_ABSOLUTE_TIMEOUT, 43_200, 300, 90 * 86_400)
  if (absolute < idle) throw new ConfigError('COFFER_SESSION_ABSOLUTE_TIMEOUT', 'must be at least COFFER_SESSION_IDLE_TIMEOUT')
  return {
    publicUrl,
    publicUrlSet: env.COFFER_PUBLIC_URL !== undefined,
    password: mode !== 'oidc-only',
    oidc,
    mail: { enabled: env.COFFER_SMTP_URL !== undefined, from },
    session: { idleMs: idle * 1000, absoluteMs: absolute * 1000 },
  }
}
