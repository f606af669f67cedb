import { isIP } from 'node:net'
import { isAbsolute, resolve } from 'node:path'
import { ConfigError } from '../errors.js'
import { type AllowEntry, parseAllowList } from './address-policy.js'
import { authConfig, type AuthConfig } from './auth-config.js'
import type { ServerEnv } from './env.js'

/** Connections a node's PostgreSQL pool opens at most, unless COFFER_DATABASE_POOL_SIZE says otherwise. */
export const DEFAULT_POOL_SIZE = 10

export type DatabaseConfig =
  | { readonly engine: 'sqlite'; readonly path: string }
  /**
   * `migrationUrl`: the schema owner's connection, used only to migrate; the application then
   * connects with `url` as a role that owns nothing and is bound by row-level security.
   * `poolSize`: connections the pool opens at most (DEFAULT_POOL_SIZE when absent).
   */
  | { readonly engine: 'postgres'; readonly url: string; readonly migrationUrl?: string; readonly poolSize?: number }

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
  /** The per-node cache of authenticated credentials (src/identity/principal-cache.ts); 0 entries or 0 s turn it off. */
  readonly principalCache: { readonly maxEntries: number; readonly ttlMs: number }
  /** How often checkpoints are signed and the audit logs verified (0: never). */
  readonly audit: {
    readonly checkpointIntervalMs: number
    readonly verifyIntervalMs: number
    /** The longest an entry waits in the queue before the sequencer integrates it (COFFER_AUDIT_MERGE_DELAY). */
    readonly mergeDelayMs: number
    /** How long a node's hold on a workspace's sequencer lasts without renewal (COFFER_AUDIT_SEQUENCER_LEASE_MS). */
    readonly sequencerLeaseMs: number
  }
  /** How people sign in: passwords, OIDC, mail, browser sessions (see auth-config.ts). */
  readonly auth: AuthConfig
  /** Days a deleted workspace's (already unreadable) rows are kept before the purge job removes them. */
  readonly purgeAfterDays: number
  /** Break-glass: the longest grant a request may ask for, and how many other Owners/Admins approve it. */
  readonly breakGlass: { readonly maxMinutes: number; readonly approvals: number }
  /** Data-key rotation and resealing (COFFER_DEK_*, COFFER_RESEAL_*). */
  readonly keys: KeyRotationConfig
  /** Rate limits; counters live in Redis when `redisUrl` is set (shared by every node), else in memory. */
  readonly rateLimit: RateLimitConfig
  /**
   * Which proxies may name the client in X-Forwarded-For (COFFER_TRUST_PROXY): `false` (the
   * socket's address is the client), a hop count, or the proxies' addresses and CIDR ranges.
   */
  readonly trustProxy: TrustProxy
  /** Address ranges outbound requests to user-given URLs may reach besides the public internet (COFFER_OUTBOUND_ALLOW). */
  readonly outbound: { readonly allow: readonly AllowEntry[] }
  /** AWS role assumption (docs/aws.md): Coffer's principal for the trust policy, and where STS is. */
  readonly aws: AwsRolesConfig
  /** Webhook delivery (COFFER_WEBHOOK_*): the retry schedule and one attempt's time limit. */
  readonly webhooks: { readonly retryDelaysMs: readonly number[]; readonly timeoutMs: number }
  /** Backups (COFFER_BACKUP_*): scheduled and before schema migrations when `dir` is set. */
  readonly backup: BackupConfig
  /** Paths of the certificate and key when Coffer terminates TLS itself. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string }
}

/** Where and how often backups are taken, and how many are kept. */
export interface BackupConfig {
  /** The directory of scheduled and pre-migration backups; unset: neither is taken. */
  readonly dir?: string
  /** How often one node takes a scheduled backup (0: never; pre-migration backups still are). */
  readonly intervalMs: number
  /** How many backups the directory keeps (the newest); older than the purge window go regardless. */
  readonly keep: number
}

/** Rate-limit settings (COFFER_RATE_*, REDIS_URL). A limit of 0 turns that limit off. */
export interface RateLimitConfig {
  readonly redisUrl?: string
  /** Prefix of every Redis key, so several deployments (or test runs) can share one Redis. */
  readonly keyPrefix: string
  /** Authentication attempts per client IP, and per account, in one window. */
  readonly authPerIp: number
  readonly authPerAccount: number
  readonly authWindowMs: number
  /** The longest lockout: each further lockout of the same key doubles, up to this. */
  readonly lockoutMaxMs: number
  /** Requests with a malformed, unknown, expired or revoked credential per IP in one auth window. */
  readonly badTokenPerIp: number
  /** Requests per token (or session) per minute and per calendar month (UTC). */
  readonly tokenPerMinute: number
  readonly tokenPerMonth: number
  /** The longest wait for one Redis call before the counters fall back to this node's memory. */
  readonly redisTimeoutMs: number
}

/** COFFER_TRUST_PROXY, validated: off, a number of proxy hops, or trusted proxy addresses and CIDR ranges. */
export type TrustProxy = false | number | readonly string[]

/** When data keys rotate by themselves, and how the resealer works. */
export interface KeyRotationConfig {
  /** Rotate a primary key older than this many days (0: never on age). */
  readonly rotationDays: number
  /** Rotate a primary key once this many encryptions were made under it (before 2^31). */
  readonly maxEncryptions: number
  /** How often each node looks for keys due for rotation and for reseal work (0: never). */
  readonly checkIntervalMs: number
  /** Secret versions resealed per transaction. */
  readonly resealBatch: number
  /** How long a node holds a reseal job without renewing it before another may take it. */
  readonly resealLeaseMs: number
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

/** A duration given in seconds, to the millisecond (`1`, `0.25`), as milliseconds. */
function milliseconds(setting: string, raw: string | undefined, defSeconds: number, min: number, max: number): number {
  if (raw === undefined) return Math.round(defSeconds * 1000)
  const s = raw.trim()
  if (!/^\d+(\.\d{1,3})?$/.test(s))
    throw new ConfigError(setting, `must be a number of seconds between ${min} and ${max} (at most 3 decimals)`)
  const n = Number(s)
  if (n < min || n > max) throw new ConfigError(setting, `must be between ${min} and ${max} seconds`)
  return Math.round(n * 1000)
}

function rateLimitConfig(env: ServerEnv): RateLimitConfig {
  const redisUrl = env.REDIS_URL
  if (redisUrl !== undefined) {
    let u: URL
    try {
      u = new URL(redisUrl)
    } catch {
      throw new ConfigError('REDIS_URL', 'is not a valid URL (redis://host:6379 or rediss://…)')
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ConfigError('REDIS_URL', 'must start with redis:// or rediss://')
  }
  const keyPrefix = env.COFFER_RATE_KEY_PREFIX ?? 'coffer:rl:'
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(keyPrefix)) throw new ConfigError('COFFER_RATE_KEY_PREFIX', 'must be 1–64 letters, digits or : _ . -')
  const authWindowMs = int('COFFER_RATE_AUTH_WINDOW', env.COFFER_RATE_AUTH_WINDOW, 900, 1, 86_400) * 1000
  const lockoutMaxMs = int('COFFER_RATE_LOCKOUT_MAX', env.COFFER_RATE_LOCKOUT_MAX, 86_400, 1, 30 * 86_400) * 1000
  if (lockoutMaxMs < authWindowMs) throw new ConfigError('COFFER_RATE_LOCKOUT_MAX', 'must be at least COFFER_RATE_AUTH_WINDOW')
  return {
    ...(redisUrl === undefined ? {} : { redisUrl }),
    keyPrefix,
    authPerIp: int('COFFER_RATE_AUTH_PER_IP', env.COFFER_RATE_AUTH_PER_IP, 30, 0, 1_000_000),
    authPerAccount: int('COFFER_RATE_AUTH_PER_ACCOUNT', env.COFFER_RATE_AUTH_PER_ACCOUNT, 10, 0, 1_000_000),
    authWindowMs,
    lockoutMaxMs,
    badTokenPerIp: int('COFFER_RATE_BAD_TOKEN_PER_IP', env.COFFER_RATE_BAD_TOKEN_PER_IP, 30, 0, 1_000_000),
    tokenPerMinute: int('COFFER_RATE_TOKEN_PER_MINUTE', env.COFFER_RATE_TOKEN_PER_MINUTE, 6000, 0, 10_000_000),
    tokenPerMonth: int('COFFER_RATE_TOKEN_PER_MONTH', env.COFFER_RATE_TOKEN_PER_MONTH, 0, 0, 1_000_000_000),
    redisTimeoutMs: int('COFFER_REDIS_TIMEOUT', env.COFFER_REDIS_TIMEOUT, 200, 10, 5000),
  }
}

/** The names the proxy-address matcher knows for ranges of addresses. */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * COFFER_TRUST_PROXY: unset or `off` trusts no proxy; `1` … `10` trusts that many hops in
 * front of Coffer; otherwise a comma-separated list of proxy addresses, CIDR ranges, or
 * `loopback`, `linklocal`, `uniquelocal`. @NOTE `true` (trust any sender) is refused: it
 * would let every client choose the address its rate limits and audit entries are counted under.
 */
export function trustProxyConfig(raw: string | undefined): TrustProxy {
  const SETTING = 'COFFER_TRUST_PROXY'
  if (raw === undefined) return false
  const s = raw.trim().toLowerCase()
  if (s === 'off' || s === 'false' || s === '0') return false
  if (s === 'true' || s === 'on' || s === '*')
    throw new ConfigError(SETTING, 'may not trust every sender: give a hop count (e.g. 1) or the proxies’ addresses or CIDR ranges')
  if (/^\d+$/.test(s)) return int(SETTING, s, 0, 1, 10)
  const entries = s.split(',').map((e) => e.trim())
  for (const e of entries) {
    if (PROXY_RANGE_NAMES.includes(e)) continue
    const [addr, bits, extra] = e.split('/')
    const family = isIP(addr ?? '')
    const max = family === 4 ? 32 : 128
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max)))
      throw new ConfigError(
        SETTING,
        `"${e.slice(0, 60)}" is not a hop count, an IP address, a CIDR range or one of ${PROXY_RANGE_NAMES.join(', ')} (a comma-separated list)`,
      )
  }
  return entries
}

/** COFFER_OUTBOUND_ALLOW: addresses and CIDR ranges (canonical forms), comma-separated. */
function outboundAllowConfig(raw: string | undefined): AllowEntry[] {
  const r = parseAllowList(raw)
  if (typeof r === 'string') throw new ConfigError('COFFER_OUTBOUND_ALLOW', r)
  return r
}

/** The default webhook retry schedule, seconds: eleven attempts over about 24 hours. */
const WEBHOOK_RETRY_SCHEDULE = [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 28_800]

/** COFFER_WEBHOOK_RETRY_SCHEDULE: seconds before each retry, comma-separated (1 to 20 of them). */
function retryScheduleConfig(raw: string | undefined): number[] {
  const SETTING = 'COFFER_WEBHOOK_RETRY_SCHEDULE'
  if (raw === undefined) return WEBHOOK_RETRY_SCHEDULE.map((s) => s * 1000)
  const parts = raw.split(',').map((p) => p.trim())
  if (parts.length < 1 || parts.length > 20 || parts.some((p) => !/^\d+(\.\d{1,3})?$/.test(p) || Number(p) > 86_400))
    throw new ConfigError(SETTING, 'must be 1 to 20 comma-separated numbers of seconds (each at most 86400), e.g. 5,30,120')
  return parts.map((p) => Math.round(Number(p) * 1000))
}

function tlsConfig(env: ServerEnv, cwd: string): ServerConfig['tls'] {
  const cert = env.COFFER_TLS_CERT
  const key = env.COFFER_TLS_KEY
  if (cert === undefined && key === undefined) return undefined
  if (cert === undefined) throw new ConfigError('COFFER_TLS_CERT', 'is required when COFFER_TLS_KEY is set (the certificate chain, PEM)')
  if (key === undefined) throw new ConfigError('COFFER_TLS_KEY', 'is required when COFFER_TLS_CERT is set (the private key, PEM)')
  for (const [setting, p] of [
    ['COFFER_TLS_CERT', cert],
    ['COFFER_TLS_KEY', key],
  ] as const) {
    if (p.includes('\0')) throw new ConfigError(setting, 'must be a path')
  }
  return { certPath: isAbsolute(cert) ? cert : resolve(cwd, cert), keyPath: isAbsolute(key) ? key : resolve(cwd, key) }
}

function keyProviderConfig(env: ServerEnv, dataDir: string): KeyProviderConfig {
  const provider = env.COFFER_KEY_PROVIDER ?? 'local'
  if (provider === 'local') return { provider: 'local', keyFileDir: dataDir }
  if (provider === 'aws-kms') return awsKmsConfig(env)
  if (provider !== 'pkcs11') throw new ConfigError('COFFER_KEY_PROVIDER', 'must be local, pkcs11 or aws-kms')
  if (!env.COFFER_PKCS11_MODULE)
    throw new ConfigError(
      'COFFER_PKCS11_MODULE',
      'is required with COFFER_KEY_PROVIDER=pkcs11 (the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so)',
    )
  if (!env.COFFER_PKCS11_TOKEN_LABEL) throw new ConfigError('COFFER_PKCS11_TOKEN_LABEL', 'is required with COFFER_KEY_PROVIDER=pkcs11')
  if (!env.COFFER_PKCS11_PIN) throw new ConfigError('COFFER_PKCS11_PIN', 'is required with COFFER_KEY_PROVIDER=pkcs11')
  return {
    provider: 'pkcs11',
    module: env.COFFER_PKCS11_MODULE,
    tokenLabel: env.COFFER_PKCS11_TOKEN_LABEL,
    keyLabel: env.COFFER_PKCS11_KEY_LABEL ?? 'coffer-root',
  }
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
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigError('COFFER_AWS_KMS_ENDPOINT', 'must be an http:// or https:// URL')
  return { provider: 'aws-kms', keyId, region, endpoint }
}

/**
 * AWS role assumption. Coffer's own AWS credentials are not settings here: the AWS SDK's
 * default chain finds them (environment, shared config, instance or container role).
 */
export interface AwsRolesConfig {
  /** The IAM principal customers' roles trust (COFFER_AWS_PRINCIPAL_ARN): the template's default; unset, its parameter is left blank. */
  readonly principalArn?: string
  /** Another STS endpoint (COFFER_AWS_STS_ENDPOINT); operator config, trusted like the KMS endpoint. */
  readonly stsEndpoint?: string
  /** The region STS requests are signed for: COFFER_AWS_REGION, AWS_REGION, or us-east-1 (the global endpoint's). */
  readonly stsRegion: string
}

function awsRolesConfig(env: ServerEnv): AwsRolesConfig {
  const region = (env.COFFER_AWS_REGION ?? env.AWS_REGION)?.trim() || 'us-east-1'
  const principalArn = env.COFFER_AWS_PRINCIPAL_ARN?.trim()
  const regionOk = /^[a-z]{2}(-[a-z0-9]+)+-\d+$/.test(region)
  // @NOTE a server that does not assume roles starts whatever AWS_REGION says (it may be meant for another program).
  if (!regionOk && (principalArn !== undefined || env.COFFER_AWS_STS_ENDPOINT !== undefined))
    throw new ConfigError('COFFER_AWS_REGION', 'must be an AWS region name, e.g. eu-west-1')
  if (principalArn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:(root|(user|role)\/[\w+=,.@/-]{1,512})$/.test(principalArn))
    throw new ConfigError('COFFER_AWS_PRINCIPAL_ARN', 'must be an IAM ARN, e.g. arn:aws:iam::123456789012:role/coffer')
  const endpoint = env.COFFER_AWS_STS_ENDPOINT?.trim()
  if (endpoint !== undefined) {
    let url: URL
    try {
      url = new URL(endpoint)
    } catch {
      throw new ConfigError('COFFER_AWS_STS_ENDPOINT', 'is not a valid URL')
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new ConfigError('COFFER_AWS_STS_ENDPOINT', 'must be an http:// or https:// URL')
  }
  return {
    stsRegion: regionOk ? region : 'us-east-1',
    ...(principalArn ? { principalArn } : {}),
    ...(endpoint ? { stsEndpoint: endpoint } : {}),
  }
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
    const migrationUrl = env.COFFER_MIGRATION_DATABASE_URL
    if (migrationUrl !== undefined) {
      let u: URL | undefined
      try {
        u = new URL(migrationUrl)
      } catch {
        u = undefined
      }
      if (!u || !/^postgres(ql)?:$/i.test(u.protocol))
        throw new ConfigError(
          'COFFER_MIGRATION_DATABASE_URL',
          'must be a postgres:// URL (the schema owner; DATABASE_URL is the application role)',
        )
    }
    database = {
      engine: 'postgres',
      url: dbUrl,
      ...(migrationUrl === undefined ? {} : { migrationUrl }),
      ...(env.COFFER_DATABASE_POOL_SIZE === undefined
        ? {}
        : { poolSize: int('COFFER_DATABASE_POOL_SIZE', env.COFFER_DATABASE_POOL_SIZE, DEFAULT_POOL_SIZE, 1, 1000) }),
    }
  } else if (/^(sqlite|file):/i.test(dbUrl)) {
    const p = dbUrl.replace(/^(sqlite|file):(\/\/)?/i, '')
    if (p === '') throw new ConfigError('DATABASE_URL', 'a sqlite: URL needs a file path')
    database = { engine: 'sqlite', path: isAbsolute(p) ? p : resolve(cwd, p) }
  } else {
    throw new ConfigError('DATABASE_URL', 'must start with postgres://, postgresql:// or sqlite:')
  }
  if (database.engine === 'sqlite' && env.COFFER_MIGRATION_DATABASE_URL !== undefined) {
    throw new ConfigError('COFFER_MIGRATION_DATABASE_URL', 'applies only with a PostgreSQL DATABASE_URL')
  }
  if (database.engine === 'sqlite' && env.COFFER_DATABASE_POOL_SIZE !== undefined) {
    throw new ConfigError('COFFER_DATABASE_POOL_SIZE', 'applies only with a PostgreSQL DATABASE_URL')
  }

  const logLevel = (env.COFFER_LOG_LEVEL ?? 'info') as ServerConfig['logLevel']
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('COFFER_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`)

  const tls = tlsConfig(env, cwd)
  const backupDir = env.COFFER_BACKUP_DIR
  if (backupDir?.includes('\0')) throw new ConfigError('COFFER_BACKUP_DIR', 'must be a path')
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
    principalCache: {
      maxEntries: int('COFFER_PRINCIPAL_CACHE_SIZE', env.COFFER_PRINCIPAL_CACHE_SIZE, 10_000, 0, 1_000_000),
      ttlMs: int('COFFER_PRINCIPAL_CACHE_TTL', env.COFFER_PRINCIPAL_CACHE_TTL, 30, 0, 300) * 1000,
    },
    audit: {
      checkpointIntervalMs: int('COFFER_CHECKPOINT_INTERVAL', env.COFFER_CHECKPOINT_INTERVAL, 300, 0, 86_400) * 1000,
      verifyIntervalMs: int('COFFER_AUDIT_VERIFY_INTERVAL', env.COFFER_AUDIT_VERIFY_INTERVAL, 3600, 0, 7 * 86_400) * 1000,
      mergeDelayMs: milliseconds('COFFER_AUDIT_MERGE_DELAY', env.COFFER_AUDIT_MERGE_DELAY, 1, 0.05, 60),
      sequencerLeaseMs: int('COFFER_AUDIT_SEQUENCER_LEASE_MS', env.COFFER_AUDIT_SEQUENCER_LEASE_MS, 3000, 200, 600_000),
    },
    purgeAfterDays: int('COFFER_PURGE_AFTER_DAYS', env.COFFER_PURGE_AFTER_DAYS, 30, 0, 30),
    breakGlass: {
      maxMinutes: int('COFFER_BREAKGLASS_MAX_MINUTES', env.COFFER_BREAKGLASS_MAX_MINUTES, 60, 1, 24 * 60),
      approvals: int('COFFER_BREAKGLASS_APPROVALS', env.COFFER_BREAKGLASS_APPROVALS, 2, 1, 10),
    },
    keys: {
      rotationDays: int('COFFER_DEK_ROTATION_DAYS', env.COFFER_DEK_ROTATION_DAYS, 30, 0, 3650),
      maxEncryptions: int('COFFER_DEK_MAX_ENCRYPTIONS', env.COFFER_DEK_MAX_ENCRYPTIONS, 2_000_000_000, 1, 2 ** 31),
      checkIntervalMs: int('COFFER_KEY_ROTATION_CHECK_INTERVAL', env.COFFER_KEY_ROTATION_CHECK_INTERVAL, 60, 0, 86_400) * 1000,
      resealBatch: int('COFFER_RESEAL_BATCH', env.COFFER_RESEAL_BATCH, 25, 1, 5000),
      resealLeaseMs: int('COFFER_RESEAL_LEASE_MS', env.COFFER_RESEAL_LEASE_MS, 15_000, 200, 600_000),
    },
    rateLimit: rateLimitConfig(env),
    trustProxy: trustProxyConfig(env.COFFER_TRUST_PROXY),
    outbound: { allow: outboundAllowConfig(env.COFFER_OUTBOUND_ALLOW) },
    aws: awsRolesConfig(env),
    webhooks: {
      retryDelaysMs: retryScheduleConfig(env.COFFER_WEBHOOK_RETRY_SCHEDULE),
      timeoutMs: milliseconds('COFFER_WEBHOOK_TIMEOUT', env.COFFER_WEBHOOK_TIMEOUT, 10, 0.1, 60),
    },
    backup: {
      ...(backupDir === undefined ? {} : { dir: isAbsolute(backupDir) ? backupDir : resolve(cwd, backupDir) }),
      intervalMs: int('COFFER_BACKUP_INTERVAL', env.COFFER_BACKUP_INTERVAL, 86_400, 0, 30 * 86_400) * 1000,
      keep: int('COFFER_BACKUP_KEEP', env.COFFER_BACKUP_KEEP, 10, 1, 10_000),
    },
    auth: authConfig(env, host, port, tls !== undefined),
    ...(tls ? { tls } : {}),
  }
}
