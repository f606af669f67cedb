import { z } from 'zod'
import { ref } from './fields.js'
import { secretKey } from './secrets.js'
import { diffEntryView } from './secrets.js'

/** One key of an environment diff: its version on each side (0: absent there). */
export const environmentDiffEntry = z.object({
  key: z.string(),
  fromVersion: z.number(),
  toVersion: z.number(),
  fromValue: z.string().optional().describe('with reveal=true only (audited)'),
  toValue: z.string().optional().describe('with reveal=true only (audited)'),
})
export type EnvironmentDiffEntry = z.infer<typeof environmentDiffEntry>

/** GET …/environments/:environment/diff?to=…: compare this environment (from) with another (to). */
export const environmentDiffQuery = z.strictObject({
  to: ref.describe('the environment to compare with (id or slug)'),
  toProject: ref.optional().describe('its project (id or slug); default: the same project'),
  reveal: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .optional()
    .describe('also answer the values of both sides (needs reveal on both; audited)'),
})
export type EnvironmentDiffQuery = z.input<typeof environmentDiffQuery>

/**
 * Keys missing in `to`, extra in `to`, and in both with different or equal values — compared
 * by keyed fingerprints (HMAC-SHA256 under a workspace key), never by decrypting. Values are
 * compared only where the caller may reveal both sides (`valuesCompared`); otherwise keys in
 * both are listed in `uncompared`.
 */
export const environmentDiffResponse = z.object({
  from: z.object({ projectId: z.string(), environmentId: z.string(), slug: z.string(), state: z.string() }),
  to: z.object({ projectId: z.string(), environmentId: z.string(), slug: z.string(), state: z.string() }),
  valuesCompared: z.boolean(),
  revealed: z.boolean(),
  missing: z.array(environmentDiffEntry),
  extra: z.array(environmentDiffEntry),
  different: z.array(environmentDiffEntry),
  same: z.array(environmentDiffEntry),
  uncompared: z.array(environmentDiffEntry),
})
export type EnvironmentDiffAnswer = z.infer<typeof environmentDiffResponse>

/** POST …/environments/:environment/promote: copy the current values of keys from another environment into this one. */
export const promoteBody = z
  .strictObject({
    from: z.strictObject({
      project: ref.optional().describe('id or slug; default: the same project'),
      environment: ref,
    }),
    keys: z.array(secretKey).min(1).max(1000).optional().describe('the keys to promote'),
    all: z.boolean().optional().describe('promote every live key of the source'),
    ifState: z.string().max(64).optional().describe("check-and-set: this environment's `state` (from the diff's `to.state`)"),
  })
  .refine((b) => (b.keys !== undefined) !== (b.all === true), { message: 'give keys or all: true (not both)', path: ['keys'] })
export type PromoteInput = z.input<typeof promoteBody>

/** What the promotion wrote in this environment (keys and versions, never values). */
export const promoteResponse = z.object({
  source: z.object({ projectId: z.string(), environmentId: z.string() }),
  state: z.string().describe('the state before the write'),
  adds: z.array(diffEntryView),
  changes: z.array(diffEntryView),
  unchanged: z.array(diffEntryView),
})
export type PromoteAnswer = z.infer<typeof promoteResponse>
