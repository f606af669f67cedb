import { z } from 'zod'

// Dynamic PostgreSQL credentials (docs/dynamic-credentials.md).

/** A way to make login roles, as the API shows it: never the admin URL's credentials. */
export const dbRoleView = z.object({
  id: z.string(),
  name: z.string(),
  target: z.string(),
  creationSql: z.string(),
  defaultTtlSeconds: z.number().int(),
  maxTtlSeconds: z.number().int(),
  createdAt: z.string(),
})
export type DbRoleView = z.infer<typeof dbRoleView>

const roleName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _, at most 63')

/** POST …/environments/:environment/db-roles */
export const createDbRoleBody = z.strictObject({
  name: roleName,
  adminUrl: z.string().min(1).max(2048),
  creationSql: z.string().min(1).max(10_000),
  defaultTtlSeconds: z.number().int().min(10).max(86_400).optional(),
  maxTtlSeconds: z.number().int().min(10).max(86_400).optional(),
})

export const dbRoleResponse = z.object({ role: dbRoleView })
export const dbRoleListResponse = z.object({ roles: z.array(dbRoleView) })

/** POST …/db-roles/:role/credentials */
export const dbCredentialsBody = z.strictObject({ ttlSeconds: z.number().int().min(10).max(86_400).optional() })

/** Credentials, shown once. */
export const dbCredentialsResponse = z.object({
  credentials: z.object({
    leaseId: z.string(),
    username: z.string(),
    password: z.string(),
    host: z.string(),
    port: z.number().int(),
    database: z.string(),
    url: z.string(),
    expiresAt: z.string(),
  }),
  role: dbRoleView,
})
export type DbCredentialsAnswer = z.infer<typeof dbCredentialsResponse>

export { roleName as dbRoleName }
