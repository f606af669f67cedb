import type { AwsCredentialsAnswer } from '../api/aws.js'

/**
 * The variables an STS session is handed over as (`coffer run --aws`, `coffer aws creds`): the
 * three the AWS SDKs and CLI read, the expiry (AWS_CREDENTIAL_EXPIRATION, which they read too),
 * and the role's region when it has one.
 */
export function awsVariables(c: AwsCredentialsAnswer['credentials']): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_SESSION_TOKEN: c.sessionToken,
    AWS_CREDENTIAL_EXPIRATION: c.expiresAt,
    ...(c.region ? { AWS_REGION: c.region, AWS_DEFAULT_REGION: c.region } : {}),
  }
}
