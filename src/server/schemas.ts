import { z } from 'zod'
import { MAX_KEY_LENGTH, MAX_TAGS, SECRET_KEY_RE, TAG_RE } from '../vault/secret-service.js'

// Shared Zod schemas for the HTTP API. They are the validation and the OpenAPI document.

export const ref = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/, 'must be an id or a slug')
export const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'lowercase letters, digits and dashes, at most 64')
export const name = z.string().trim().min(1).max(128)
export const secretKey = z.string().min(1).max(MAX_KEY_LENGTH).regex(SECRET_KEY_RE, 'must match ^[A-Za-z_][A-Za-z0-9_]*$')
export const secretValue = z.string().max(64 * 1024)
export const tags = z.array(z.string().regex(TAG_RE, 'tags use A-Z a-z 0-9 _ . : / -, 1 to 64 characters')).max(MAX_TAGS)
export const version = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31)
export const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')

export const workspaceParams = z.strictObject({ workspace: ref })
export const projectParams = z.strictObject({ workspace: ref, project: ref })
export const environmentParams = z.strictObject({ workspace: ref, project: ref, environment: ref })
export const secretParams = z.strictObject({ workspace: ref, project: ref, environment: ref, key: secretKey })

export const workspaceView = z.object({ id: z.string(), slug: z.string(), name: z.string(), createdAt: z.string() })
export const projectView = z.object({ id: z.string(), workspaceId: z.string(), slug: z.string(), name: z.string(), createdAt: z.string() })
export const environmentView = z.object({
  id: z.string(),
  projectId: z.string(),
  slug: z.string(),
  name: z.string(),
  createdAt: z.string(),
  restricted: z.boolean(),
  sealed: z.boolean(),
})
export const secretView = z.object({
  id: z.string(),
  key: z.string(),
  version: z.number(),
  deleted: z.boolean(),
  tags: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
  value: z.string().optional(),
  comment: z.string().nullable().optional(),
})
export const versionView = z.object({
  version: z.number(),
  origin: z.enum(['set', 'rollback', 'delete', 'restore']),
  originVersion: z.number().nullable(),
  deleted: z.boolean(),
  tags: z.array(z.string()),
  createdAt: z.string(),
  createdBy: z.string(),
  value: z.string().nullable().optional(),
  comment: z.string().nullable().optional(),
})
export const tokenView = z.object({
  id: z.string(),
  name: z.string(),
  display: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
})
export const errorEnvelope = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string().optional(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
})
