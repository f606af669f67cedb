import { z } from 'zod'
import { name, slug } from './fields.js'

export const projectView = z.object({ id: z.string(), workspaceId: z.string(), slug: z.string(), name: z.string(), createdAt: z.string() })
export type Project = z.infer<typeof projectView>

export const environmentView = z.object({
  id: z.string(),
  projectId: z.string(),
  slug: z.string(),
  name: z.string(),
  createdAt: z.string(),
  restricted: z.boolean(),
  sealed: z.boolean(),
})
export type Environment = z.infer<typeof environmentView>

/** GET /v1/workspaces/:workspace/projects */
export const projectListResponse = z.object({ projects: z.array(projectView) })
export type ProjectList = z.infer<typeof projectListResponse>

/** POST /v1/workspaces/:workspace/projects: the project gets development, staging and production. */
export const createProjectBody = z.strictObject({ name, slug: slug.optional() })
export type CreateProjectInput = z.input<typeof createProjectBody>

/** A project and the environments the caller may see (creating one answers the same). */
export const projectDetailResponse = z.object({ project: projectView, environments: z.array(environmentView) })
export type ProjectDetail = z.infer<typeof projectDetailResponse>

/** GET /v1/workspaces/:workspace/projects/:project/environments */
export const environmentListResponse = z.object({ environments: z.array(environmentView) })
export type EnvironmentList = z.infer<typeof environmentListResponse>

/** POST /v1/workspaces/:workspace/projects/:project/environments */
export const createEnvironmentBody = z.strictObject({
  name,
  slug: slug.optional(),
  restricted: z.boolean().optional().describe('developers list keys only unless granted (default: true for `production`)'),
})
export type CreateEnvironmentInput = z.input<typeof createEnvironmentBody>

/** One environment (creating or restricting one answers it). */
export const environmentResponse = z.object({ environment: environmentView })
export type EnvironmentAnswer = z.infer<typeof environmentResponse>
