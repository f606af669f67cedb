import { z } from 'zod'
import { name, ref, slug } from './fields.js'

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
  personalOverrides: z.boolean().optional().describe('members may keep personal overrides here (never while restricted or sealed)'),
  imports: z.array(z.string()).optional().describe('ids of the environments it imports, in order (its own keys win)'),
  changeApprovals: z.number().describe('protected when > 0: a write becomes a change request needing this many approvals'),
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

/** PATCH /v1/workspaces/:workspace/projects/:project — the display name; the slug never changes. */
export const renameProjectBody = z.strictObject({ name })
export type RenameProjectInput = z.input<typeof renameProjectBody>

/** One project (renaming one answers it). */
export const projectResponse = z.object({ project: projectView })
export type ProjectAnswer = z.infer<typeof projectResponse>

/** PATCH …/environments/:environment — the display name; the slug never changes. */
export const renameEnvironmentBody = z.strictObject({ name })
export type RenameEnvironmentInput = z.input<typeof renameEnvironmentBody>

/**
 * DELETE …/projects/:project and DELETE …/environments/:environment: `confirm` is the slug
 * typed again; `force` is needed while it still holds live secrets.
 */
export const deletionBody = z.strictObject({
  confirm: z.string().max(128).describe('the slug of what is deleted, typed again'),
  force: z.boolean().optional().describe('delete even though it still holds secrets (they are destroyed)'),
})
export type DeletionInput = z.input<typeof deletionBody>

/** What deleting an environment destroyed: its data key (id and versions) and its secrets. */
export const environmentDeletionView = z.object({
  id: z.string(),
  slug: z.string(),
  dataKey: z.object({ id: z.string().nullable(), versions: z.array(z.number()) }),
  secrets: z.number().describe('live secrets destroyed'),
  versions: z.number().describe('secret versions removed'),
})
export type EnvironmentDeletion = z.infer<typeof environmentDeletionView>

/** DELETE …/environments/:environment */
export const environmentDeletionResponse = z.object({ projectId: z.string(), environment: environmentDeletionView })
export type EnvironmentDeletionAnswer = z.infer<typeof environmentDeletionResponse>

/** DELETE …/projects/:project */
export const projectDeletionResponse = z.object({
  project: z.object({ id: z.string(), slug: z.string() }),
  environments: z.array(environmentDeletionView),
  invitationsRevoked: z.number(),
})
export type ProjectDeletionAnswer = z.infer<typeof projectDeletionResponse>

/** One environment as a column of the matrix: what the caller may do with its secrets. */
export const matrixEnvironmentView = environmentView.extend({
  access: z.enum(['none', 'list', 'read', 'write']).describe('none: its keys are not shown (cells are null)'),
  fingerprints: z.boolean().describe('whether its cells carry value fingerprints'),
})
export type MatrixEnvironment = z.infer<typeof matrixEnvironmentView>

/** A key in one environment: present (its version and, where shown, its value's fingerprint) or missing. */
export const matrixCellView = z.union([
  z.object({
    present: z.literal(true),
    version: z.number(),
    fingerprint: z
      .string()
      .nullable()
      .describe('base64url HMAC-SHA256 of the value under a workspace key: equal fingerprints, equal values'),
  }),
  z.object({ present: z.literal(false) }),
])
export type MatrixCell = z.infer<typeof matrixCellView>

/**
 * GET …/projects/:project/matrix — every key of the project's environments the caller may list,
 * with one cell per environment (in the order of `environments`; null where access is none).
 */
export const environmentMatrixResponse = z.object({
  project: projectView,
  environments: z.array(matrixEnvironmentView),
  keys: z.array(z.object({ key: z.string(), cells: z.array(matrixCellView.nullable()) })),
})
export type EnvironmentMatrix = z.infer<typeof environmentMatrixResponse>

/** PUT …/environments/:environment/imports: the environments it imports (all their keys; its own win; later imports win over earlier). */
export const environmentImportsBody = z.strictObject({
  imports: z
    .array(
      z.strictObject({
        project: ref.optional().describe('id or slug; default: the same project'),
        environment: ref,
      }),
    )
    .max(10),
})
export type EnvironmentImportsInput = z.input<typeof environmentImportsBody>

/** PUT …/environments/:environment/personal-overrides: whether members may keep personal overrides here. */
export const personalOverridesSettingBody = z.strictObject({ allowed: z.boolean() })
export type PersonalOverridesSettingInput = z.input<typeof personalOverridesSettingBody>
