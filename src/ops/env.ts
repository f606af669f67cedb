// The one place that reads process.env for the server. Values stay raw strings here;
// config.ts validates them and secrets.ts keeps the sensitive ones apart.

/** Raw settings as found in the environment. */
export interface ServerEnv {
  COFFER_DATA_DIR?: string
  COFFER_HOST?: string
  COFFER_PORT?: string
  DATABASE_URL?: string
  /** PostgreSQL: the role that owns the schema and runs migrations, when the application connects as another (DATABASE_URL). */
  COFFER_MIGRATION_DATABASE_URL?: string
  /** PostgreSQL: connections this node's pool opens at most. */
  COFFER_DATABASE_POOL_SIZE?: string
  COFFER_ROOT_KEY?: string
  COFFER_LOG_LEVEL?: string
  COFFER_BODY_LIMIT?: string
  COFFER_DEK_CACHE_SIZE?: string
  COFFER_DEK_CACHE_TTL?: string
  COFFER_PRINCIPAL_CACHE_SIZE?: string
  COFFER_PRINCIPAL_CACHE_TTL?: string
  COFFER_CHECKPOINT_INTERVAL?: string
  COFFER_AUDIT_VERIFY_INTERVAL?: string
  COFFER_AUDIT_MERGE_DELAY?: string
  COFFER_AUDIT_SEQUENCER_LEASE_MS?: string
  COFFER_PURGE_AFTER_DAYS?: string
  COFFER_BREAKGLASS_MAX_MINUTES?: string
  COFFER_BREAKGLASS_APPROVALS?: string
  COFFER_DEK_ROTATION_DAYS?: string
  COFFER_DEK_MAX_ENCRYPTIONS?: string
  COFFER_KEY_ROTATION_CHECK_INTERVAL?: string
  COFFER_RESEAL_BATCH?: string
  COFFER_RESEAL_LEASE_MS?: string
  COFFER_KEY_PROVIDER?: string
  COFFER_PKCS11_MODULE?: string
  COFFER_PKCS11_TOKEN_LABEL?: string
  COFFER_PKCS11_KEY_LABEL?: string
  COFFER_PKCS11_PIN?: string
  COFFER_AWS_KMS_KEY_ID?: string
  COFFER_AWS_REGION?: string
  COFFER_AWS_KMS_ENDPOINT?: string
  /** AWS role assumption: Coffer's own IAM principal, which customers' roles trust (docs/aws.md). */
  COFFER_AWS_PRINCIPAL_ARN?: string
  /** AWS role assumption: another STS endpoint (a regional or VPC endpoint). */
  COFFER_AWS_STS_ENDPOINT?: string
  /** The AWS SDK's own region variable: the default for COFFER_AWS_REGION. */
  AWS_REGION?: string
  REDIS_URL?: string
  COFFER_RATE_KEY_PREFIX?: string
  COFFER_RATE_AUTH_PER_IP?: string
  COFFER_RATE_AUTH_PER_ACCOUNT?: string
  COFFER_RATE_AUTH_WINDOW?: string
  COFFER_RATE_LOCKOUT_MAX?: string
  COFFER_RATE_BAD_TOKEN_PER_IP?: string
  COFFER_RATE_TOKEN_PER_MINUTE?: string
  COFFER_RATE_TOKEN_PER_MONTH?: string
  COFFER_REDIS_TIMEOUT?: string
  COFFER_TRUST_PROXY?: string
  COFFER_OUTBOUND_ALLOW?: string
  COFFER_WEBHOOK_RETRY_SCHEDULE?: string
  COFFER_WEBHOOK_TIMEOUT?: string
  COFFER_TLS_CERT?: string
  COFFER_TLS_KEY?: string
  COFFER_PUBLIC_URL?: string
  COFFER_AUTH_MODE?: string
  COFFER_SMTP_URL?: string
  COFFER_MAIL_FROM?: string
  COFFER_OIDC_ISSUER?: string
  COFFER_OIDC_CLIENT_ID?: string
  COFFER_OIDC_CLIENT_SECRET?: string
  COFFER_OIDC_ALLOWED_DOMAINS?: string
  COFFER_SESSION_IDLE_TIMEOUT?: string
  COFFER_SESSION_ABSOLUTE_TIMEOUT?: string
  /** Where unexpected errors are reported (a Sentry DSN); unset: nowhere. */
  COFFER_SENTRY_DSN?: string
  COFFER_BACKUP_DIR?: string
  COFFER_BACKUP_INTERVAL?: string
  COFFER_BACKUP_KEEP?: string
}

/** The name of every server setting, as read from the environment (deployment files are checked against it). */
export const SERVER_SETTINGS: ReadonlyArray<keyof ServerEnv> = [
  'COFFER_DATA_DIR',
  'COFFER_HOST',
  'COFFER_PORT',
  'DATABASE_URL',
  'COFFER_MIGRATION_DATABASE_URL',
  'COFFER_DATABASE_POOL_SIZE',
  'COFFER_ROOT_KEY',
  'COFFER_LOG_LEVEL',
  'COFFER_BODY_LIMIT',
  'COFFER_DEK_CACHE_SIZE',
  'COFFER_DEK_CACHE_TTL',
  'COFFER_PRINCIPAL_CACHE_SIZE',
  'COFFER_PRINCIPAL_CACHE_TTL',
  'COFFER_CHECKPOINT_INTERVAL',
  'COFFER_AUDIT_VERIFY_INTERVAL',
  'COFFER_AUDIT_MERGE_DELAY',
  'COFFER_AUDIT_SEQUENCER_LEASE_MS',
  'COFFER_PURGE_AFTER_DAYS',
  'COFFER_BREAKGLASS_MAX_MINUTES',
  'COFFER_BREAKGLASS_APPROVALS',
  'COFFER_DEK_ROTATION_DAYS',
  'COFFER_DEK_MAX_ENCRYPTIONS',
  'COFFER_KEY_ROTATION_CHECK_INTERVAL',
  'COFFER_RESEAL_BATCH',
  'COFFER_RESEAL_LEASE_MS',
  'COFFER_KEY_PROVIDER',
  'COFFER_PKCS11_MODULE',
  'COFFER_PKCS11_TOKEN_LABEL',
  'COFFER_PKCS11_KEY_LABEL',
  'COFFER_PKCS11_PIN',
  'COFFER_AWS_KMS_KEY_ID',
  'COFFER_AWS_REGION',
  'COFFER_AWS_KMS_ENDPOINT',
  'COFFER_AWS_PRINCIPAL_ARN',
  'COFFER_AWS_STS_ENDPOINT',
  'AWS_REGION',
  'REDIS_URL',
  'COFFER_RATE_KEY_PREFIX',
  'COFFER_RATE_AUTH_PER_IP',
  'COFFER_RATE_AUTH_PER_ACCOUNT',
  'COFFER_RATE_AUTH_WINDOW',
  'COFFER_RATE_LOCKOUT_MAX',
  'COFFER_RATE_BAD_TOKEN_PER_IP',
  'COFFER_RATE_TOKEN_PER_MINUTE',
  'COFFER_RATE_TOKEN_PER_MONTH',
  'COFFER_REDIS_TIMEOUT',
  'COFFER_TRUST_PROXY',
  'COFFER_OUTBOUND_ALLOW',
  'COFFER_WEBHOOK_RETRY_SCHEDULE',
  'COFFER_WEBHOOK_TIMEOUT',
  'COFFER_TLS_CERT',
  'COFFER_TLS_KEY',
  'COFFER_PUBLIC_URL',
  'COFFER_AUTH_MODE',
  'COFFER_SMTP_URL',
  'COFFER_MAIL_FROM',
  'COFFER_OIDC_ISSUER',
  'COFFER_OIDC_CLIENT_ID',
  'COFFER_OIDC_CLIENT_SECRET',
  'COFFER_OIDC_ALLOWED_DOMAINS',
  'COFFER_SESSION_IDLE_TIMEOUT',
  'COFFER_SESSION_ABSOLUTE_TIMEOUT',
  'COFFER_SENTRY_DSN',
  'COFFER_BACKUP_DIR',
  'COFFER_BACKUP_INTERVAL',
  'COFFER_BACKUP_KEEP',
]

/** Reads the server's settings from `source` (process.env by default); empty strings count as unset. */
export function readEnv(source: NodeJS.ProcessEnv = process.env): ServerEnv {
  const env: ServerEnv = {}
  for (const name of SERVER_SETTINGS) {
    const v = source[name]
    if (v !== undefined && v !== '') env[name] = v
  }
  return env
}
