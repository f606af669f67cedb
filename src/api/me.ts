import { z } from 'zod'
import { integrationScopeView } from './integration-scopes.js'
import { workspaceView } from './workspaces.js'

/** GET /v1/me: whom a token acts as, a person (user, role) or a workspace integration (integration). */
export const meResponse = z.object({
  user: z.object({ id: z.string(), email: z.string() }).nullable().describe('the person; null for an integration'),
  integration: z
    .object({
      type: z.enum(['machine', 'service']),
      id: z.string(),
      name: z.string(),
      scopes: z.array(integrationScopeView).describe('what it may reach: projects, environments, read or write'),
    })
    .nullable()
    .describe('the machine identity or service token; null for a person'),
  workspace: workspaceView,
  role: z.string().nullable().describe('the workspace role; null for an integration'),
  tokenId: z.string(),
  scope: z
    .object({ project: z.string(), environment: z.string() })
    .nullable()
    .optional()
    .describe(
      'for an integration limited to exactly one project and one environment, their ids: `coffer run` needs no --project/--env with it; null otherwise',
    ),
})
export type Me = z.infer<typeof meResponse>
