import { z } from 'zod'

// AWS role assumption (docs/aws.md).

/** The workspace's external ID, for Owners and Admins. */
export const awsExternalIdResponse = z.object({
  externalId: z.string(),
  version: z.number().int(),
  rotatedAt: z.string().nullable(),
  /** Coffer's AWS principal (COFFER_AWS_PRINCIPAL_ARN), when the operator set it. */
  principalArn: z.string().nullable(),
})
export type AwsExternalIdAnswer = z.infer<typeof awsExternalIdResponse>

/** The CloudFormation template (JSON) for a read-only role that trusts Coffer with the external ID. */
export const awsTemplateResponse = z.object({ template: z.record(z.string(), z.unknown()) })

/** An IAM role registered for an environment. */
export const awsRoleView = z.object({
  id: z.string(),
  name: z.string(),
  roleArn: z.string(),
  region: z.string().nullable(),
  maxDurationSeconds: z.number().int(),
  createdAt: z.string(),
})
export type AwsRoleView = z.infer<typeof awsRoleView>

const roleName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _, at most 63')

/** POST …/environments/:environment/aws-roles */
export const createAwsRoleBody = z.strictObject({
  name: roleName,
  roleArn: z.string().min(1).max(2048),
  region: z.string().min(1).max(64).optional(),
  maxDurationSeconds: z.number().int().min(900).max(3600).optional(),
})

export const awsRoleResponse = z.object({ role: awsRoleView })
export const awsRoleListResponse = z.object({ roles: z.array(awsRoleView) })

/** POST …/aws-roles/:role/credentials */
export const awsCredentialsBody = z.strictObject({ durationSeconds: z.number().int().min(900).max(3600).optional() })

/** An STS session's credentials, shown once and stored nowhere. */
export const awsCredentialsResponse = z.object({
  credentials: z.object({
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
    sessionToken: z.string(),
    expiresAt: z.string(),
    region: z.string().nullable(),
    sessionName: z.string(),
    assumedRoleArn: z.string(),
  }),
  role: awsRoleView,
})
export type AwsCredentialsAnswer = z.infer<typeof awsCredentialsResponse>

export { roleName as awsRoleName }
