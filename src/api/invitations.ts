import { z } from 'zod'
import { name, ref } from './fields.js'
import { INVITATION_DAYS } from './limits.js'
import { PROJECT_ROLES, ROLES } from './roles.js'
import { tokenView } from './tokens.js'
import { workspaceView } from './workspaces.js'

/** An invitation as listed: never its token. */
export const invitationView = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(ROLES),
  projectId: z.string().nullable(),
  projectRole: z.enum(PROJECT_ROLES).nullable(),
  invitedBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  state: z.enum(['pending', 'accepted', 'revoked', 'expired']),
  acceptedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
})
export type Invitation = z.infer<typeof invitationView>

/** POST /v1/workspaces/:workspace/invitations */
export const createInvitationBody = z.strictObject({
  email: z.email().max(254),
  role: z.enum(ROLES).default('member'),
  project: ref.optional(),
  projectRole: z.enum(PROJECT_ROLES).optional(),
  expiresInDays: z.number().int().min(1).max(INVITATION_DAYS.max).optional(),
})
export type CreateInvitationInput = z.input<typeof createInvitationBody>

/** The invitation and its token, shown this once, with where to accept it. */
export const createdInvitationResponse = z.object({
  invitation: invitationView,
  token: z.string(),
  acceptUrl: z.string(),
  acceptCommand: z.string(),
  mailed: z.boolean(),
})
export type CreatedInvitation = z.infer<typeof createdInvitationResponse>

/** GET /v1/workspaces/:workspace/invitations */
export const invitationListResponse = z.object({ invitations: z.array(invitationView) })
export type InvitationList = z.infer<typeof invitationListResponse>

/** DELETE /v1/workspaces/:workspace/invitations/:invitation */
export const invitationResponse = z.object({ invitation: invitationView })
export type InvitationAnswer = z.infer<typeof invitationResponse>

/** POST /v1/invitations/accept: with `tokenName`, a personal token for the new workspace is issued too. */
export const acceptInvitationBody = z.strictObject({ token: z.string().min(1).max(200), tokenName: name.optional() })
export type AcceptInvitationInput = z.input<typeof acceptInvitationBody>

export const acceptedInvitationResponse = z.object({
  workspace: workspaceView,
  role: z.enum(ROLES),
  project: z.object({ id: z.string(), role: z.enum(PROJECT_ROLES) }).nullable(),
  token: z.string().nullable(),
  tokenInfo: tokenView.nullable(),
})
export type AcceptedInvitation = z.infer<typeof acceptedInvitationResponse>

/** A usable invitation addressed to the signed-in person (GET /v1/account/invitations): never its token. */
export const myInvitationView = z.object({
  id: z.string(),
  workspace: z.object({ slug: z.string(), name: z.string() }),
  role: z.enum(ROLES),
  project: z.object({ name: z.string(), role: z.enum(PROJECT_ROLES) }).nullable(),
  invitedBy: z.string(),
  expiresAt: z.string(),
})
export type MyInvitation = z.infer<typeof myInvitationView>

/**
 * GET /v1/account/invitations. `oneClick`: whether this account may accept them here without
 * the link (false for an account whose address was confirmed only by an invitation link).
 */
export const myInvitationListResponse = z.object({ invitations: z.array(myInvitationView), oneClick: z.boolean() })
export type MyInvitationList = z.infer<typeof myInvitationListResponse>

/** POST /v1/account/invitations/:invitation/accept */
export const myInvitationAcceptedResponse = z.object({
  workspace: workspaceView,
  role: z.enum(ROLES),
  project: z.object({ id: z.string(), role: z.enum(PROJECT_ROLES) }).nullable(),
})
export type MyInvitationAccepted = z.infer<typeof myInvitationAcceptedResponse>
