import { z } from 'zod'
import { ref } from './fields.js'
import { MAX_KEY_LENGTH, MAX_TAGS, SECRET_KEY_RE, TAG_RE } from './limits.js'

export const secretKey = z.string().min(1).max(MAX_KEY_LENGTH).regex(SECRET_KEY_RE, 'must match ^[A-Za-z_][A-Za-z0-9_]*$')
export const secretValue = z.string().max(64 * 1024)
export const tags = z.array(z.string().regex(TAG_RE, 'tags use A-Z a-z 0-9 _ . : / -, 1 to 64 characters')).max(MAX_TAGS)
/** A secret's version number (0: the secret does not exist yet). */
export const version = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31)

/** A secret at its current version; `value` and `comment` only when revealed. */
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
  overridden: z.boolean().optional().describe('you hold a personal override of this key here (your fetches see its value)'),
  importedFrom: z.string().optional().describe('the key comes from an imported environment (project-slug/environment-slug)'),
})
export type Secret = z.infer<typeof secretView>

/** One version of a secret's history; `value` and `comment` only when revealed. */
export const secretVersionView = z.object({
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
export type SecretVersion = z.infer<typeof secretVersionView>

/** PUT …/secrets/:key: a new version; `ifVersion` makes it check-and-set. */
export const secretWriteBody = z.strictObject({
  value: secretValue,
  comment: z.string().max(4096).optional(),
  tags: tags.optional(),
  ifVersion: version.optional(),
})
export type SecretWrite = z.input<typeof secretWriteBody>

/** POST …/secrets: many secrets, written atomically. */
export const secretBulkWriteBody = z.strictObject({
  secrets: z
    .array(secretWriteBody.omit({ ifVersion: true }).extend({ key: secretKey }))
    .min(1)
    .max(500),
})
export type SecretBulkWrite = z.input<typeof secretBulkWriteBody>

/** POST …/secrets/:key/rollback: a new version equal to `version`. */
export const secretRollbackBody = z.strictObject({ version: version.min(1), ifVersion: version.optional() })
export type SecretRollback = z.input<typeof secretRollbackBody>

/** One secret (reading, writing, deleting, restoring or rolling one back answers it). */
export const secretResponse = z.object({ secret: secretView })
export type SecretAnswer = z.infer<typeof secretResponse>

/** Several secrets (listing an environment, or a bulk write). */
export const secretListResponse = z.object({ secrets: z.array(secretView) })
export type SecretList = z.infer<typeof secretListResponse>

/**
 * GET …/environments/:environment/events (server-sent events, `coffer run --watch`): each
 * `secrets` event holds the environment's keys and current versions — never a value, a comment
 * or a fingerprint — sorted by key; the stream sends it on open and whenever it changes.
 */
export const environmentStateResponse = z.object({
  secrets: z.array(z.object({ key: z.string(), version: z.number().int() })),
  /**
   * The other environments the reader's fetch of this one reads — those it imports and those
   * its values reference — each with a digest of its keys and versions (absent when there are
   * none, or when the reader may not reveal this environment): a change there changes `run`'s
   * values too.
   */
  dependencies: z.array(z.object({ environment: z.string(), state: z.string() })).optional(),
})
export type EnvironmentState = z.infer<typeof environmentStateResponse>

/** GET …/secrets/:key/versions: every version, newest first. */
export const secretHistoryResponse = z.object({ secret: secretView, versions: z.array(secretVersionView) })
export type SecretHistory = z.infer<typeof secretHistoryResponse>

/** One key of a diff: its version before (0: absent) and after (null: a preview, or not written). */
export const diffEntryView = z.object({ key: z.string(), version: z.number(), newVersion: z.number().nullable() })
export type DiffEntry = z.infer<typeof diffEntryView>

/**
 * POST …/secrets/apply: make the environment hold these values (a pasted `.env`). With
 * `dryRun` it only answers the diff; otherwise it writes everything or nothing.
 */
export const secretApplyBody = z.strictObject({
  upserts: z
    .array(z.strictObject({ key: secretKey, value: secretValue }))
    .max(1000)
    .describe('keys and values to hold; a value equal to the current one writes nothing'),
  deletes: z.array(secretKey).max(1000).optional().describe('keys to delete (absent ones are ignored)'),
  replace: z.boolean().optional().describe('the upserts are the whole set: every other key is deleted'),
  dryRun: z.boolean().optional().describe('answer the diff, write nothing'),
  ifState: z.string().max(64).optional().describe("check-and-set: the preview's `state`; 409 ERR_ENVIRONMENT_CHANGED if it moved"),
})
export type SecretApply = z.input<typeof secretApplyBody>

/** The diff (keys and versions, never values), and the environment's state before and after. */
export const secretApplyResponse = z.object({
  dryRun: z.boolean(),
  state: z.string().describe('the state the diff was computed against (send it back as ifState)'),
  newState: z.string().nullable(),
  adds: z.array(diffEntryView),
  changes: z.array(diffEntryView),
  deletes: z.array(diffEntryView),
  unchanged: z.array(diffEntryView),
})
export type SecretApplyAnswer = z.infer<typeof secretApplyResponse>

/** POST …/secrets/copy: copy live keys (value, comment, tags) into another environment of the workspace. */
export const secretCopyBody = z.strictObject({
  keys: z.array(secretKey).min(1).max(1000),
  to: z.strictObject({
    project: ref.optional().describe('id or slug; default: the same project'),
    environment: ref,
  }),
  overwrite: z.boolean().optional().describe('replace keys that hold another value in the target (409 otherwise)'),
})
export type SecretCopy = z.input<typeof secretCopyBody>

/** What the copy did in the target environment. */
export const secretCopyResponse = z.object({
  target: z.object({ projectId: z.string(), environmentId: z.string() }),
  adds: z.array(diffEntryView),
  changes: z.array(diffEntryView),
  unchanged: z.array(diffEntryView),
})
export type SecretCopyAnswer = z.infer<typeof secretCopyResponse>

/** PUT …/secrets/:key/personal: your own value for the key, seen only by your fetches. */
export const personalOverrideBody = z.strictObject({ value: secretValue })
export type PersonalOverrideWrite = z.input<typeof personalOverrideBody>

/** A personal override as its owner sees it (never its value: reveal the key to see it). */
export const personalOverrideView = z.object({ key: z.string(), version: z.number(), updatedAt: z.string() })
export const personalOverrideResponse = z.object({ override: personalOverrideView })
export type PersonalOverrideAnswer = z.infer<typeof personalOverrideResponse>
