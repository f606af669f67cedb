import { z } from 'zod'

/** A reseal job's progress after a rotation. */
export const keyJobView = z.object({
  id: z.string(),
  kind: z.literal('reseal'),
  state: z.enum(['running', 'done', 'failed']),
  reason: z.string(),
  keyId: z.string(),
  targetVersion: z.number().int(),
  total: z.number().int(),
  done: z.number().int(),
  error: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().nullable(),
})
export type KeyJob = z.infer<typeof keyJobView>

/** A data-key version as the API shows it (never the key). */
export const keyVersionView = z.object({
  id: z.string(),
  version: z.number().int(),
  state: z.enum(['primary', 'active', 'shredded']),
  encryptions: z.number().int(),
  rootKeyId: z.string(),
  createdAt: z.string(),
})
export type KeyVersion = z.infer<typeof keyVersionView>

/** POST …/environments/:environment/keys/rotate: the new primary version and the reseal job. */
export const keyRotationResponse = z.object({
  key: z.object({ id: z.string(), version: z.number().int(), previousVersion: z.number().int() }),
  job: keyJobView,
})
export type KeyRotation = z.infer<typeof keyRotationResponse>

/** GET …/environments/:environment/keys: the versions and the latest reseal jobs. */
export const keyStatusResponse = z.object({ versions: z.array(keyVersionView), jobs: z.array(keyJobView) })
export type KeyStatus = z.infer<typeof keyStatusResponse>

/** GET /v1/workspaces/:workspace/key-jobs/:job */
export const keyJobResponse = z.object({ job: keyJobView })
export type KeyJobAnswer = z.infer<typeof keyJobResponse>
