import { z } from 'zod'
import { ref } from './fields.js'
import { GRANT_ACCESS } from './roles.js'

/** What an integration may touch, as a caller names it: a project, its environments (ids or slugs, or '*'), read or write. */
export const integrationScopeInput = z.strictObject({
  project: ref,
  environments: z
    .union([z.literal('*'), z.array(ref).min(1).max(50)])
    .describe("environment ids or slugs, or '*' for all (present and future)"),
  access: z.enum(GRANT_ACCESS).describe('read: list and reveal; write: also write'),
})
export type ScopeInput = z.input<typeof integrationScopeInput>

/** An integration's scope as the server resolved it: ids only. */
export const integrationScopeView = z.object({
  projectId: z.string(),
  environments: z.union([z.literal('*'), z.array(z.string())]),
  access: z.enum(GRANT_ACCESS),
})
export type IntegrationScope = z.infer<typeof integrationScopeView>
