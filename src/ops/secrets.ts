import { ConfigError } from '../errors.js'
import type { ServerEnv } from './env.js'

/**
 * Sensitive settings, kept in a type of their own so they are never passed to a logger
 * with the rest of the configuration. `toJSON` and inspection print nothing.
 */
export class ServerSecrets {
  readonly #rootKey: Buffer | undefined
  readonly #pkcs11Pin: string | undefined
  readonly #smtpUrl: string | undefined
  readonly #oidcClientSecret: string | undefined
  readonly #errorReportsDsn: string | undefined
  constructor(
    rootKey: Buffer | undefined,
    pkcs11Pin?: string,
    more: { smtpUrl?: string; oidcClientSecret?: string; errorReportsDsn?: string } = {},
  ) {
    this.#rootKey = rootKey
    this.#pkcs11Pin = pkcs11Pin
    this.#smtpUrl = more.smtpUrl
    this.#oidcClientSecret = more.oidcClientSecret
    this.#errorReportsDsn = more.errorReportsDsn
  }
  /** Where error reports go (COFFER_SENTRY_DSN): its key lets anyone send reports there, so it is kept here. */
  get errorReportsDsn(): string | undefined {
    return this.#errorReportsDsn
  }
  /** The SMTP server URL, which may hold a user name and password (COFFER_SMTP_URL). */
  get smtpUrl(): string | undefined {
    return this.#smtpUrl
  }
  /** The OpenID Connect client secret (COFFER_OIDC_CLIENT_SECRET), if the client has one. */
  get oidcClientSecret(): string | undefined {
    return this.#oidcClientSecret
  }
  /** The PIN of the PKCS#11 token, if set (COFFER_PKCS11_PIN). */
  get pkcs11Pin(): string | undefined {
    return this.#pkcs11Pin
  }
  /** The root key from COFFER_ROOT_KEY, if set. */
  get rootKey(): Buffer | undefined {
    return this.#rootKey
  }
  toJSON(): string {
    return '[ServerSecrets]'
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[ServerSecrets]'
  }
}

/** COFFER_SENTRY_DSN: `https://<public key>@<host>/<project id>` (http:// too, for a relay on the same network). */
function errorReportsDsn(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined
  const dsn = raw.trim()
  let u: URL | undefined
  try {
    u = new URL(dsn)
  } catch {
    u = undefined
  }
  // @NOTE the message never quotes the value: it holds the key.
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || !u.username || !/^\/(?:.*\/)?[A-Za-z0-9_-]+$/.test(u.pathname))
    throw new ConfigError('COFFER_SENTRY_DSN', 'must be a DSN such as https://<public key>@errors.example.com/<project id>')
  return dsn
}

/** Validates the sensitive settings; COFFER_ROOT_KEY must be base64 of exactly 32 bytes. */
export function buildSecrets(env: ServerEnv): ServerSecrets {
  const raw = env.COFFER_ROOT_KEY
  const more = {
    smtpUrl: env.COFFER_SMTP_URL,
    oidcClientSecret: env.COFFER_OIDC_CLIENT_SECRET,
    errorReportsDsn: errorReportsDsn(env.COFFER_SENTRY_DSN),
  }
  if (raw === undefined) return new ServerSecrets(undefined, env.COFFER_PKCS11_PIN, more)
  const s = raw.trim()
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s))
    throw new ConfigError('COFFER_ROOT_KEY', 'must be base64 of 32 random bytes (e.g. openssl rand -base64 32)')
  const key = Buffer.from(s.replaceAll('-', '+').replaceAll('_', '/'), 'base64')
  if (key.length !== 32) throw new ConfigError('COFFER_ROOT_KEY', `must decode to 32 bytes, not ${key.length}`)
  return new ServerSecrets(key, env.COFFER_PKCS11_PIN, more)
}
