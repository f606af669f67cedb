import { DecryptCommand, DescribeKeyCommand, EncryptCommand, KMSClient, type KeyMetadata } from '@aws-sdk/client-kms'
import { ConfigError, DecryptionError, InternalError } from '../errors.js'
import type { KeyProvider } from './key-provider.js'

const WRAP_VERSION = 0x03
const CONTEXT_VERSION = 'dek/v1'

/** Which KMS key holds the root key, in which region; `client` replaces the one open() builds (tests). */
export interface AwsKmsOptions {
  /** Key id, key ARN, alias name (alias/…) or alias ARN (COFFER_AWS_KMS_KEY_ID). */
  readonly keyId: string
  readonly region: string
  /** Another KMS endpoint (COFFER_AWS_KMS_ENDPOINT), e.g. a VPC endpoint. */
  readonly endpoint?: string
  /** A client to use instead of building one; the caller keeps it (close() does not destroy it). */
  readonly client?: KMSClient
}

// Error names that say the credentials were found but KMS did not accept them.
const CREDENTIAL_ERRORS = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredTokenException',
  'InvalidSignatureException',
  'IncompleteSignature',
  'SignatureDoesNotMatch',
])

/**
 * The `aws-kms` provider: the root key is a symmetric AWS KMS key and never leaves KMS.
 * Wrapped DEKs are 0x03 ‖ the KMS ciphertext blob of Encrypt(dek) under the encryption
 * context { coffer: 'dek/v1', aad: base64(aad) }, so KMS itself binds a blob to its scope.
 * Unwrap asks KMS to decrypt with that key only and checks which key answered. Every unwrap
 * failure is a DecryptionError; no AWS error text reaches a message.
 */
export class AwsKmsKeyProvider implements KeyProvider {
  readonly kind = 'aws-kms'
  readonly keyId: string
  readonly #client: KMSClient
  readonly #ownsClient: boolean
  readonly #arn: string
  readonly #accepted: ReadonlySet<string>
  #closed = false

  private constructor(client: KMSClient, ownsClient: boolean, arn: string, configuredKeyId: string) {
    this.#client = client
    this.#ownsClient = ownsClient
    this.#arn = arn
    this.#accepted = new Set([arn, configuredKeyId])
    this.keyId = `aws-kms:${arn}`
  }

  /**
   * Builds a KMS client (credentials from the SDK's default chain) and checks with
   * DescribeKey that the key exists, is Enabled, and is a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT
   * key. Every failure is a ConfigError naming the setting at fault (COFFER_AWS_KMS_KEY_ID,
   * COFFER_AWS_REGION, COFFER_AWS_KMS_ENDPOINT or 'AWS credentials'); no message carries AWS
   * error text or credentials.
   */
  static async open(options: AwsKmsOptions): Promise<AwsKmsKeyProvider> {
    if (options.keyId.trim() === '') throw new ConfigError('COFFER_AWS_KMS_KEY_ID', 'is empty')
    const owns = options.client === undefined
    const client = options.client ?? new KMSClient({ region: options.region, ...(options.endpoint ? { endpoint: options.endpoint } : {}) })
    try {
      let meta: KeyMetadata | undefined
      try {
        meta = (await client.send(new DescribeKeyCommand({ KeyId: options.keyId }))).KeyMetadata
      } catch (err) {
        throw describeKeyError(err, options)
      }
      if (!meta?.Arn) throw new ConfigError('COFFER_AWS_KMS_KEY_ID', 'KMS did not describe the key')
      if (meta.KeyState !== 'Enabled')
        throw new ConfigError('COFFER_AWS_KMS_KEY_ID', `the key is ${meta.KeyState ?? 'in an unknown state'}, not Enabled`)
      if (meta.KeySpec !== 'SYMMETRIC_DEFAULT' || meta.KeyUsage !== 'ENCRYPT_DECRYPT') {
        throw new ConfigError('COFFER_AWS_KMS_KEY_ID', 'the key must be a symmetric (SYMMETRIC_DEFAULT) ENCRYPT_DECRYPT key')
      }
      return new AwsKmsKeyProvider(client, owns, meta.Arn, options.keyId)
    } catch (err) {
      if (owns) client.destroy()
      throw err
    }
  }

  async wrap(dek: Buffer, aad: Buffer): Promise<Buffer> {
    if (this.#closed) throw new Error('the key provider is closed')
    let blob: Uint8Array | undefined
    try {
      blob = (await this.#client.send(new EncryptCommand({ KeyId: this.#arn, Plaintext: dek, EncryptionContext: context(aad) })))
        .CiphertextBlob
    } catch (err) {
      throw new InternalError(`AWS KMS could not wrap a data key (${errorName(err)}).`)
    }
    if (!blob || blob.length === 0) throw new InternalError('AWS KMS returned no ciphertext for a data key.')
    return Buffer.concat([Buffer.of(WRAP_VERSION), blob])
  }

  async unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    if (this.#closed) throw new Error('the key provider is closed')
    if (wrapped.length < 2 || wrapped[0] !== WRAP_VERSION) throw new DecryptionError()
    let plaintext: Uint8Array | undefined
    let keyId: string | undefined
    try {
      const out = await this.#client.send(
        new DecryptCommand({ CiphertextBlob: Buffer.from(wrapped.subarray(1)), KeyId: this.#arn, EncryptionContext: context(aad) }),
      )
      plaintext = out.Plaintext
      keyId = out.KeyId
    } catch {
      throw new DecryptionError()
    }
    if (!plaintext) throw new DecryptionError()
    const dek = Buffer.from(plaintext)
    plaintext.fill(0)
    if (keyId === undefined || !this.#accepted.has(keyId)) {
      dek.fill(0)
      throw new DecryptionError()
    }
    return dek
  }

  /** Stops further calls and destroys the KMS client open() built. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownsClient) this.#client.destroy()
  }
}

/** The encryption context a DEK is wrapped under: the format version and the scope's AAD. */
function context(aad: Buffer): Record<string, string> {
  return { coffer: CONTEXT_VERSION, aad: aad.toString('base64') }
}

function errorName(err: unknown): string {
  const name = (err as { name?: unknown } | null)?.name
  return typeof name === 'string' && /^[A-Za-z0-9_.]{1,80}$/.test(name) ? name : 'error'
}

/** Maps a DescribeKey failure to the setting an operator should look at; only the error name is shown. */
function describeKeyError(err: unknown, options: AwsKmsOptions): ConfigError {
  const name = errorName(err)
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode
  if (name === 'NotFoundException')
    return new ConfigError('COFFER_AWS_KMS_KEY_ID', 'KMS has no key with that id or alias in this region and account')
  if (name === 'CredentialsProviderError')
    return new ConfigError(
      'AWS credentials',
      'none were found by the AWS SDK default chain (environment, shared config files, web identity, instance or container role)',
    )
  if (CREDENTIAL_ERRORS.has(name)) return new ConfigError('AWS credentials', `KMS did not accept them (${name})`)
  if (name === 'AccessDeniedException')
    return new ConfigError('COFFER_AWS_KMS_KEY_ID', 'the AWS credentials may not use this key (kms:DescribeKey was denied)')
  if (status === undefined) {
    // No HTTP answer at all: DNS, connection or timeout.
    return options.endpoint
      ? new ConfigError('COFFER_AWS_KMS_ENDPOINT', `KMS could not be reached at this endpoint (${name})`)
      : new ConfigError('COFFER_AWS_REGION', `KMS could not be reached in region ${options.region} (${name})`)
  }
  return new ConfigError('COFFER_AWS_KMS_KEY_ID', `KMS refused DescribeKey for the key (${name})`)
}
