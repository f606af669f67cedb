import type { AssumeRoleCommandOutput, STSClient } from '@aws-sdk/client-sts'
import { AwsAssumeRoleError, AwsNoCredentialsError } from '../errors.js'
import type { AwsRolesConfig } from '../ops/config.js'

// Coffer's one caller of AWS STS. Its own AWS credentials come from the AWS SDK's default
// chain (environment, shared config, instance or container role): nothing of them is a Coffer
// setting, and nothing of the customer's account is kept. The endpoint is the operator's
// (COFFER_AWS_STS_ENDPOINT, or the SDK's for the region): no user-typed address is ever
// reached from here, so this does not go through the outbound guard.

/** STS's longest session for a role assumed by another principal without role chaining. */
export const MAX_SESSION_SECONDS = 3600
/** STS's shortest session. */
export const MIN_SESSION_SECONDS = 900

const CONNECT_TIMEOUT_MS = 5_000
const REQUEST_TIMEOUT_MS = 10_000

/** Short-lived credentials of an assumed role, handed out once and stored nowhere. */
export interface AwsSessionCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken: string
  readonly expiresAt: string
  /** arn:aws:sts::…:assumed-role/ROLE/SESSION — what CloudTrail names the session by. */
  readonly assumedRoleArn: string
}

/** What to assume, and as whom. */
export interface AssumeRoleInput {
  readonly roleArn: string
  readonly externalId: string
  readonly sessionName: string
  readonly durationSeconds: number
}

/** The narrow dependency services use: one call, AssumeRole. */
export interface RoleAssumer {
  assumeRole(input: AssumeRoleInput): Promise<AwsSessionCredentials>
}

// Error names that say STS refused Coffer's own credentials (not the customer's role).
const OWN_CREDENTIALS_REFUSED = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
])

/**
 * Whether STS's message may be shown: it must hold nothing that looks like an access key, a
 * long key-like run of characters, or the external ID. STS messages name ARNs and policies,
 * which the caller already knows.
 */
export function safeStsMessage(message: unknown, externalId: string): string | undefined {
  if (typeof message !== 'string' || message.trim() === '') return undefined
  const m = message.trim().slice(0, 400)
  if (m.includes(externalId)) return undefined
  if (/\b(AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b/.test(m)) return undefined
  if (/[A-Za-z0-9+/=]{40,}/.test(m.replace(/arn:[\w:/+=,.@-]+/g, ''))) return undefined
  return m
}

/**
 * Letters, digits and `+=,.@-` (STS's RoleSessionName alphabet), 2 to 64 characters: what a
 * session name may hold. Anything else becomes `-`.
 */
export function sessionNameOf(actor: string): string {
  const cleaned = actor.replace(/[^\w+=,.@-]/g, '-').slice(0, 64)
  return cleaned.length >= 2 ? cleaned : `${cleaned}--`.slice(0, 2)
}

/** The AWS SDK's STS client, built once per context; credentials from the default chain. */
export class StsRoleAssumer implements RoleAssumer {
  readonly #config: AwsRolesConfig
  #client: STSClient | undefined

  constructor(config: AwsRolesConfig) {
    this.#config = config
  }

  /** The AWS SDK is loaded on the first assumption, not when the server starts (it is large). */
  async #sts(): Promise<{ client: STSClient; AssumeRoleCommand: typeof import('@aws-sdk/client-sts').AssumeRoleCommand }> {
    const sdk = await import('@aws-sdk/client-sts')
    this.#client ??= new sdk.STSClient({
      region: this.#config.stsRegion,
      ...(this.#config.stsEndpoint ? { endpoint: this.#config.stsEndpoint } : {}),
      maxAttempts: 2,
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
    })
    return { client: this.#client, AssumeRoleCommand: sdk.AssumeRoleCommand }
  }

  /**
   * AssumeRole with the external ID. Every failure is an AwsAssumeRoleError (or
   * AwsNoCredentialsError when the server has no AWS credentials); STS's message is added only
   * when safeStsMessage allows it.
   */
  async assumeRole(input: AssumeRoleInput): Promise<AwsSessionCredentials> {
    let out: AssumeRoleCommandOutput
    try {
      const { client, AssumeRoleCommand } = await this.#sts()
      out = await client.send(
        new AssumeRoleCommand({
          RoleArn: input.roleArn,
          ExternalId: input.externalId,
          RoleSessionName: input.sessionName,
          DurationSeconds: input.durationSeconds,
        }),
      )
    } catch (err) {
      throw assumeRoleError(err, input)
    }
    const c = out.Credentials
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration)
      throw new AwsAssumeRoleError(`STS answered AssumeRole for ${input.roleArn} without complete credentials.`)
    const expires = new Date(c.Expiration)
    if (Number.isNaN(expires.getTime())) throw new AwsAssumeRoleError('STS answered credentials without a valid expiry.')
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiresAt: expires.toISOString(),
      assumedRoleArn: out.AssumedRoleUser?.Arn ?? '',
    }
  }
}

function assumeRoleError(err: unknown, input: AssumeRoleInput): Error {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } }
  if (e?.name === 'CredentialsProviderError') return new AwsNoCredentialsError({ cause: err })
  if (e?.$metadata?.httpStatusCode === undefined)
    return new AwsAssumeRoleError('AWS STS could not be reached (check the server’s network and COFFER_AWS_STS_ENDPOINT).', { cause: err })
  if (e.name && OWN_CREDENTIALS_REFUSED.has(e.name))
    return new AwsAssumeRoleError('STS refused the Coffer server’s own AWS credentials; its operator must fix them.', { cause: err })
  const said = safeStsMessage(e.message, input.externalId)
  const hint =
    e.name === 'AccessDenied'
      ? " Check that the role's trust policy allows Coffer's principal with this workspace's current external ID (after a rotation, update the stack)."
      : ''
  return new AwsAssumeRoleError(
    `STS refused to let Coffer assume ${input.roleArn}${e.name ? ` (${e.name.slice(0, 64)})` : ''}${said ? `: ${said}` : '.'}${hint}`,
    { cause: err },
  )
}
