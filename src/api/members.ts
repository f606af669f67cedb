import { z } from 'zod'
import { GRANT_ACCESS, PROJECT_ROLES, ROLES } from './roles.js'

/** A workspace member and their workspace role. */
export const memberView = z.object({ userId: z.string(), email: z.string(), name: z.string(), role: z.enum(ROLES), createdAt: z.string() })
export type Member = z.infer<typeof memberView>

/** A project member and their project role. */
export const projectMemberView = z.object({ userId: z.string(), email: z.string(), role: z.enum(PROJECT_ROLES), createdAt: z.string() })
export type ProjectMember = z.infer<typeof projectMemberView>

/** A person's grant on one (restricted) environment. */
export const grantView = z.object({ userId: z.string(), email: z.string(), access: z.enum(GRANT_ACCESS), createdAt: z.string() })
export type EnvironmentGrant = z.infer<typeof grantView>

/** GET /v1/workspaces/:workspace/members */
export const memberListResponse = z.object({ members: z.array(memberView) })
export type MemberList = z.infer<typeof memberListResponse>

/** PUT /v1/workspaces/:workspace/members/:user */
export const memberRoleBody = z.strictObject({ role: z.enum(ROLES) })
export type MemberRoleInput = z.input<typeof memberRoleBody>

export const memberResponse = z.object({ member: memberView })
export type MemberAnswer = z.infer<typeof memberResponse>

/** DELETE /v1/workspaces/:workspace/members/:user (and leaving): the member and how many of their tokens were revoked. */
export const memberRemovalResponse = z.object({ member: memberView, revokedTokens: z.number() })
export type MemberRemoval = z.infer<typeof memberRemovalResponse>

/** PUT /v1/workspaces/:workspace/projects/:project/members/:user */
export const projectRoleBody = z.strictObject({ role: z.enum(PROJECT_ROLES) })
export type ProjectRoleInput = z.input<typeof projectRoleBody>

export const projectMemberResponse = z.object({ member: projectMemberView })
export type ProjectMemberAnswer = z.infer<typeof projectMemberResponse>

/** PUT …/environments/:environment/restriction */
export const restrictionBody = z.strictObject({ restricted: z.boolean() })
export type RestrictionInput = z.input<typeof restrictionBody>

/** PUT …/environments/:environment/grants/:user */
export const grantBody = z.strictObject({ access: z.enum(GRANT_ACCESS) })
export type GrantInput = z.input<typeof grantBody>

export const grantResponse = z.object({ grant: grantView })
export type GrantAnswer = z.infer<typeof grantResponse>
