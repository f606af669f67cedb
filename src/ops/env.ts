// The one place that reads process.env for the server. Values stay raw strings here;
// config.ts validates them and secrets.ts keeps the sensitive ones apart.

/** Raw settings as found in the environment. */
export interface ServerEnv {
  COFFER_DATA_DIR?: string
  COFFER_HOST?: string
  COFFER_PORT?: string
  DATABASE_URL?: string
  COFFER_ROOT_KEY?: string
  COFFER_LOG_LEVEL?: string
  COFFER_BODY_LIMIT?: string
  COFFER_DEK_CACHE_SIZE?: string
  COFFER_DEK_CACHE_TTL?: string
  COFFER_CHECKPOINT_INTERVAL?: string
  COFFER_AUDIT_VERIFY_INTERVAL?: string
  COFFER_KEY_PROVIDER?: string
  COFFER_PKCS11_MODULE?: string
  COFFER_PKCS11_TOKEN_LABEL?: string
  COFFER_PKCS11_KEY_LABEL?: string
  COFFER_PKCS11_PIN?: string
  COFFER_AWS_KMS_KEY_ID?: string
  COFFER_AWS_REGION?: string
  COFFER_AWS_KMS_ENDPOINT?: string
  /** The AWS SDK's own region variable: the default for COFFER_AWS_REGION. */
  AWS_REGION?: string
}

const NAMES: Array<keyof ServerEnv> = [
  'COFFER_DATA_DIR', 'COFFER_HOST', 'COFFER_PORT', 'DATABASE_URL', 'COFFER_ROOT_KEY',
  'COFFER_LOG_LEVEL', 'COFFER_BODY_LIMIT', 'COFFER_DEK_CACHE_SIZE', 'COFFER_DEK_CACHE_TTL',
  'COFFER_CHECKPOINT_INTERVAL', 'COFFER_AUDIT_VERIFY_INTERVAL',
  'COFFER_KEY_PROVIDER', 'COFFER_PKCS11_MODULE', 'COFFER_PKCS11_TOKEN_LABEL', 'COFFER_PKCS11_KEY_LABEL', 'COFFER_PKCS11_PIN',
  'COFFER_AWS_KMS_KEY_ID', 'COFFER_AWS_REGION', 'COFFER_AWS_KMS_ENDPOINT', 'AWS_REGION',
]

/** Reads the server's settings from `source` (process.env by default); empty strings count as unset. */
export function readEnv(source: NodeJS.ProcessEnv = process.env): ServerEnv {
  const env: ServerEnv = {}
  for (const name of NAMES) {
    const v = source[name]
    if (v !== undefined && v !== '') env[name] = v
  }
  return env
}
