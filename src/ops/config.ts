import { isAbsolute, resolve } from 'node:path'
import { ConfigError } from '../errors.js'
import type { ServerEnv } from './env.js'

export type DatabaseConfig =
  | { readonly engine: 'sqlite'; readonly path: string }
  | { readonly engine: 'postgres'; readonly url: string }

/**
 * Where the root key lives; the PKCS#11 PIN is a secret and lives in ServerSecrets. AWS
 * credentials are never configured here: the AWS SDK's default chain finds them.
 */
export type KeyProviderConfig =
  | { readonly provider: 'local'; readonly keyFileDir: string }
  | { readonly provider: 'pkcs11'; readonly module: string; readonly tokenLabel: string; readonly keyLabel: string }
  | { readonly provider: 'aws-kms'; readonly keyId: string; readonly region: string; readonly endpoint?: string }

/** Validated, defaulted, non-secret server configuration; safe to log. */
export interface ServerConfig {
  readonly dataDir: string
  readonly host: string
  readonly port: number
  readonly database: DatabaseConfig
  readonly keyProvider: KeyProviderConfig
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  readonly bodyLimit: number
  readonly dekCache: { readonly maxEntries: number; readonly ttlMs: number }
  /** How often checkpoints are signed and the audit logs verified (0: never). */
  readonly audit: { readonly checkpointIntervalMs: number; readonly verifyIntervalMs: number }
}

/** Overrides from command-line flags; they win over the environment. */
export interface ConfigOverrides {
  dataDir?: string
  host?: string
  port?: string | number
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

function int(setting: string, raw: string | number | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def
  const s = String(raw).trim()
  if (!/^\d+$/.test(s)) throw new ConfigError(setting, `must be a whole number between ${min} and ${max}`)
  const n = Number(s)
  if (n < min || n > max) throw new ConfigError(setting, `must be between ${min} and ${max}`)
  return n
}

function keyProviderConfig(env: ServerEnv, dataDir: string): KeyProviderConfig {
  const provider = env.COFFER_KEY_PROVIDER ?? 'local'
  if (provider === 'local') return { provider: 'local', keyFileDir: dataDir }
  if (provider === 'aws-kms') return awsKmsConfig(env)
  if (provider !== 'pkcs11') throw new ConfigError('COFFER_KEY_PROVIDER', 'must be local, pkcs11 or aws-kms')
  if (!env.COFFER_PKCS11_MODULE) throw new ConfigError('COFFER_PKCS11_MODULE', 'is required with COFFER_KEY_PROVIDER=pkcs11 (the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so)')
  if (!env.COFFER_PKCS11_TOKEN_LABEL) throw new ConfigError('COFFER_PKCS11_TOKEN_LABEL', 'is required with COFFER_KEY_PROVIDER=pkcs11')
  if (!env.COFFER_PKCS11_PIN) throw new ConfigError('COFFER_PKCS11_PIN', 'is required with COFFER_KEY_PROVIDER=pkcs11')
  return { provider: 'pkcs11', module: env.COFFER_PKCS11_MODULE, tokenLabel: env.COFFER_PKCS11_TOKEN_LABEL, keyLabel: env.COFFER_PKCS11_KEY_LABEL ?? 'coffer-root' }
}

function awsKmsConfig(env: ServerEnv): KeyProviderConfig {
  const keyId = env.COFFER_AWS_KMS_KEY_ID?.trim()
  if (!keyId) throw new ConfigError('COFFER_AWS_KMS_KEY_ID', 'is required with COFFER_KEY_PROVIDER=aws-kms (a key id, key ARN or alias/…)')
  const region = (env.COFFER_AWS_REGION ?? env.AWS_REGION)?.trim()
  if (!region) throw new ConfigError('COFFER_AWS_REGION', 'is required with COFFER_KEY_PROVIDER=aws-kms when AWS_REGION is not set')
  if (!/^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(region)) throw new ConfigError('COFFER_AWS_REGION', 'must be an AWS region name, e.g. eu-west-1')
  const endpoint = env.COFFER_AWS_KMS_ENDPOINT
  if (endpoint === undefined) return { provider: 'aws-kms', keyId, region }
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new ConfigError('COFFER_AWS_KMS_ENDPOINT', 'is not a valid URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('COFFER_AWS_KMS_ENDPOINT', 'must be an http:// or https:// URL')
  return { provider: 'aws-kms', keyId, region, endpoint }
}

/**
 * Fills defaults and validates every setting; an invalid one throws ConfigError naming it,
 * so start-up stops with a message the operator can act on.
 */
export function buildConfig(env: ServerEnv, overrides: ConfigOverrides = {}, cwd = process.cwd()): ServerConfig {
  const dataDirRaw = overrides.dataDir ?? env.COFFER_DATA_DIR ?? './.coffer'
  if (dataDirRaw.includes('\0')) throw new ConfigError('COFFER_DATA_DIR', 'must be a path')
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(cwd, dataDirRaw)

  const host = overrides.host ?? env.COFFER_HOST ?? '127.0.0.1'
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host)) throw new ConfigError('COFFER_HOST', 'must be a host name or IP address')

  const port = int('COFFER_PORT', overrides.port ?? env.COFFER_PORT, 8700, 0, 65535)

  let database: DatabaseConfig
  const dbUrl = env.DATABASE_URL
  if (dbUrl === undefined) {
    database = { engine: 'sqlite', path: resolve(dataDir, 'coffer.db') }
  } else if (/^postgres(ql)?:\/\//i.test(dbUrl)) {
    try {
      new URL(dbUrl)
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid URL')
    }
    database = { engine: 'postgres', url: dbUrl }
  } else if (/^(sqlite|file):/i.test(dbUrl)) {
    const p = dbUrl.replace(/^(sqlite|file):(\/\/)?/i, '')
    if (p === '') throw new ConfigError('DATABASE_URL', 'a sqlite: URL needs a file path')
    database = { engine: 'sqlite', path: isAbsolute(p) ? p : resolve(cwd, p) }
  } else {
    throw new ConfigError('DATABASE_URL', 'must start with postgres://, postgresql:// or sqlite:')
  }

  const logLevel = (env.COFFER_LOG_LEVEL ?? 'info') as ServerConfig['logLevel']
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('COFFER_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`)

  return {
    dataDir,
    host,
    port,
    database,
    keyProvider: keyProviderConfig(env, dataDir),
    logLevel,
    bodyLimit: int('COFFER_BODY_LIMIT', env.COFFER_BODY_LIMIT, 2 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    dekCache: {
      maxEntries: int('COFFER_DEK_CACHE_SIZE', env.COFFER_DEK_CACHE_SIZE, 10_000, 1, 1_000_000),
      ttlMs: int('COFFER_DEK_CACHE_TTL', env.COFFER_DEK_CACHE_TTL, 300, 1, 86_400) * 1000,
    },
    audit: {
      checkpointIntervalMs: int('COFFER_CHECKPOINT_INTERVAL', env.COFFER_CHECKPOINT_INTERVAL, 300, 0, 86_400) * 1000,
      verifyIntervalMs: int('COFFER_AUDIT_VERIFY_INTERVAL', env.COFFER_AUDIT_VERIFY_INTERVAL, 3600, 0, 7 * 86_400) * 1000,
    },
  }
}
