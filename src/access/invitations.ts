import { randomUUID } from 'node:crypto'
import { INVITATION_DAYS } from '../api/limits.js'
import {
  AlreadyExistsError,
  AuditorProjectRoleError,
  ForbiddenError,
  InvitationInvalidError,
  InvitationWrongAccountError,
  NotFoundError,
} from '../errors.js'
import { addMember } from '../identity/identity-service.js'
import { generateToken, hashToken, tokenKind } from '../identity/token-format.js'
import type { Executor } from '../storage/database.js'
import type { InvitationTable } from '../storage/schema.js'
import type { Project } from '../vault/project-service.js'
import type { Workspace } from '../vault/workspace-service.js'
import type { ProjectRole, Role, UserPrincipal } from './policy.js'

// Invitations by email. An Admin or Owner invites an address with a workspace role (and
// optionally a role on one project); the invitation is a single-use `coffer_inv_` token,
// stored only as its SHA-256 hash, that expires (7 days by default) and can be revoked. It is
// accepted by a signed-in person whose email is the invited one: the token travels to that
// mailbox, so holding it and being signed in as that address go together. Inviting an Owner
// takes an Owner. An auditor is invited without a project role (AuditorProjectRoleError).
// A newer invitation of the same address supersedes the pending one.

/** An invitation as listings show it (never its token). */
export interface InvitationView {
  id: string
  email: string
  role: Role
  projectId: string | null
  projectRole: ProjectRole | null
  invitedBy: string
  createdAt: string
  expiresAt: string
  state: 'pending' | 'accepted' | 'revoked' | 'expired'
  acceptedAt: string | null
  revokedAt: string | null
}

type Row = Omit<InvitationTable, 'token_hash'>

function toView(r: Row, now: Date): InvitationView {
  const state = r.accepted_at ? 'accepted' : r.revoked_at ? 'revoked' : Date.parse(r.expires_at) <= now.getTime() ? 'expired' : 'pending'
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    projectId: r.project_id,
    projectRole: r.project_role,
    invitedBy: r.invited_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    state,
    acceptedAt: r.accepted_at,
    revokedAt: r.revoked_at,
  }
}

const COLUMNS = [
  'id',
  'workspace_id',
  'email',
  'role',
  'project_id',
  'project_role',
  'invited_by',
  'created_at',
  'expires_at',
  'accepted_at',
  'accepted_by',
  'revoked_at',
] as const

/** Normalises an email the way users are stored. */
export function normalEmail(email: string): string {
  return email.trim().toLowerCase()
}

/**
 * Creates an invitation and returns its token, once. Refuses (403) an Admin inviting an
 * Owner, (409) an auditor with a project or project role, and (409) an address that is
 * already a member. A pending invitation of the same
 * address is revoked: the newest one counts.
 */
export async function createInvitation(
  db: Executor,
  input: {
    workspaceId: string
    inviter: UserPrincipal
    email: string
    role: Role
    project?: Project
    projectRole?: ProjectRole
    days?: number
    now: Date
  },
): Promise<{ token: string; invitation: InvitationView; superseded: string[] }> {
  const email = normalEmail(input.email)
  if (input.role === 'owner' && input.inviter.role !== 'owner') throw new ForbiddenError('Only an Owner can invite an Owner.')
  if (input.role === 'auditor' && (input.project || input.projectRole))
    throw new AuditorProjectRoleError(
      "An auditor cannot be invited with a project role: leave out the project (auditors see every project's metadata, never secrets).",
    )
  const member = await db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select('users.id')
    .where('memberships.workspace_id', '=', input.workspaceId)
    .where('users.email', '=', email)
    .executeTakeFirst()
  if (member) throw new AlreadyExistsError('member')
  const nowIso = input.now.toISOString()
  const pending = await db
    .selectFrom('invitations')
    .select('id')
    .where('workspace_id', '=', input.workspaceId)
    .where('email', '=', email)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', nowIso)
    .execute()
  if (pending.length)
    await db
      .updateTable('invitations')
      .set({ revoked_at: nowIso })
      .where(
        'id',
        'in',
        pending.map((p) => p.id),
      )
      .execute()
  const token = generateToken('inv')
  const row = {
    id: randomUUID(),
    workspace_id: input.workspaceId,
    email,
    role: input.role,
    project_id: input.project?.id ?? null,
    project_role: input.project ? (input.projectRole ?? 'developer') : null,
    token_hash: hashToken(token),
    invited_by: input.inviter.userId,
    created_at: nowIso,
    expires_at: new Date(input.now.getTime() + (input.days ?? INVITATION_DAYS.default) * 86_400_000).toISOString(),
    accepted_at: null,
    accepted_by: null,
    revoked_at: null,
  }
  await db.insertInto('invitations').values(row).execute()
  return { token, invitation: toView(row, input.now), superseded: pending.map((p) => p.id) }
}

/** The workspace's invitations, newest first. */
export async function listInvitations(db: Executor, workspaceId: string, now: Date): Promise<InvitationView[]> {
  const rows = await db
    .selectFrom('invitations')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .orderBy('created_at', 'desc')
    .execute()
  return rows.map((r) => toView(r, now))
}

/** Revokes a pending invitation (an accepted or revoked one is returned as it is). */
export async function revokeInvitation(db: Executor, workspaceId: string, id: string, now: Date): Promise<InvitationView> {
  const r = await db
    .selectFrom('invitations')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('invitation')
  if (r.accepted_at || r.revoked_at) return toView(r, now)
  await db.updateTable('invitations').set({ revoked_at: now.toISOString() }).where('id', '=', id).execute()
  return toView({ ...r, revoked_at: now.toISOString() }, now)
}

/**
 * The workspace a usable invitation token belongs to (system scope: the token is all that
 * is known). Unknown, malformed, expired, revoked and used tokens all give InvitationInvalidError.
 */
export async function invitationWorkspace(db: Executor, token: string, now: Date): Promise<Workspace> {
  if (tokenKind(token) !== 'inv') throw new InvitationInvalidError()
  const r = await db
    .selectFrom('invitations')
    .innerJoin('workspaces', 'workspaces.id', 'invitations.workspace_id')
    .select([
      'workspaces.id',
      'workspaces.slug',
      'workspaces.name',
      'workspaces.created_at',
      'invitations.accepted_at',
      'invitations.revoked_at',
      'invitations.expires_at',
    ])
    .where('invitations.token_hash', '=', hashToken(token))
    .where('workspaces.deleted_at', 'is', null)
    .executeTakeFirst()
  if (!r || r.accepted_at || r.revoked_at || Date.parse(r.expires_at) <= now.getTime()) throw new InvitationInvalidError()
  return { id: r.id, slug: r.slug, name: r.name, createdAt: r.created_at }
}

/** What the invite page shows the invited person before they accept (never to anyone else). */
export interface InvitationPreview {
  workspace: Workspace
  email: string
  role: Role
  project: { name: string; role: ProjectRole } | null
}

/**
 * A usable invitation as the invited person may see it (system scope, by its token). Gives
 * InvitationInvalidError for unusable tokens (like `invitationWorkspace`) and
 * InvitationWrongAccountError — before reading anything else — when `email` is not the
 * invited address, so another account learns nothing about the invitation.
 */
export async function previewInvitation(db: Executor, token: string, email: string, now: Date): Promise<InvitationPreview> {
  const workspace = await invitationWorkspace(db, token, now)
  const r = await db
    .selectFrom('invitations')
    .leftJoin('projects', (j) =>
      j.onRef('projects.id', '=', 'invitations.project_id').onRef('projects.workspace_id', '=', 'invitations.workspace_id'),
    )
    .select(['invitations.email', 'invitations.role', 'invitations.project_role', 'projects.name as project_name'])
    .where('invitations.workspace_id', '=', workspace.id)
    .where('invitations.token_hash', '=', hashToken(token))
    .executeTakeFirst()
  if (!r) throw new InvitationInvalidError()
  if (normalEmail(email) !== r.email) throw new InvitationWrongAccountError()
  return {
    workspace,
    email: r.email,
    role: r.role,
    project: r.project_name && r.project_role ? { name: r.project_name, role: r.project_role } : null,
  }
}

/**
 * Accepts the invitation `token` (or, for one-click acceptance by the invited address, its id)
 * for `person` inside the request's write transaction: marks
 * it used (only if it still is pending — a second accept, even a concurrent one, fails), adds
 * the membership and the project role. Refuses another person's invitation without using it.
 */
export async function acceptInvitation(
  db: Executor,
  workspaceId: string,
  token: string | { id: string },
  person: { userId: string; email: string },
  now: Date,
): Promise<{ invitation: InvitationView; role: Role; project: { id: string; role: ProjectRole } | null }> {
  const r = await db
    .selectFrom('invitations')
    .select(COLUMNS)
    .where('workspace_id', '=', workspaceId)
    .$call((q) => (typeof token === 'string' ? q.where('token_hash', '=', hashToken(token)) : q.where('id', '=', token.id)))
    .executeTakeFirst()
  const nowIso = now.toISOString()
  if (!r || r.accepted_at || r.revoked_at || r.expires_at <= nowIso) throw new InvitationInvalidError()
  if (normalEmail(person.email) !== r.email) throw new InvitationWrongAccountError()
  const used = await db
    .updateTable('invitations')
    .set({ accepted_at: nowIso, accepted_by: person.userId })
    .where('id', '=', r.id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  if (Number(used.numUpdatedRows) !== 1) throw new InvitationInvalidError()
  const already = await db
    .selectFrom('memberships')
    .select('role')
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', person.userId)
    .executeTakeFirst()
  if (already) throw new AlreadyExistsError('member')
  await addMember(db, workspaceId, person.userId, r.role, now)
  let project: { id: string; role: ProjectRole } | null = null
  // An auditor holds no project role (createInvitation refuses one; this guards older rows).
  if (r.project_id && r.project_role && r.role !== 'auditor') {
    // The project may have been deleted since; then the workspace role alone is given.
    const exists = await db
      .selectFrom('projects')
      .select('id')
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', r.project_id)
      .executeTakeFirst()
    if (exists) {
      await db
        .insertInto('project_members')
        .values({ workspace_id: workspaceId, project_id: r.project_id, user_id: person.userId, role: r.project_role, created_at: nowIso })
        .execute()
      project = { id: r.project_id, role: r.project_role }
    }
  }
  return { invitation: toView({ ...r, accepted_at: nowIso, accepted_by: person.userId }, now), role: r.role, project }
}

/** A pending invitation as its invited person sees it in the dashboard: never its token. */
export interface MyInvitation {
  id: string
  workspace: { slug: string; name: string }
  role: Role
  project: { name: string; role: ProjectRole } | null
  invitedBy: string
  expiresAt: string
}

/**
 * The usable invitations addressed to `email` (system scope: they span workspaces), newest
 * first. The caller passes the signed-in person's own verified address, never one from a request.
 */
export async function listMyInvitations(db: Executor, email: string, now: Date): Promise<MyInvitation[]> {
  const rows = await db
    .selectFrom('invitations')
    .innerJoin('workspaces', 'workspaces.id', 'invitations.workspace_id')
    .leftJoin('projects', (j) =>
      j.onRef('projects.id', '=', 'invitations.project_id').onRef('projects.workspace_id', '=', 'invitations.workspace_id'),
    )
    .leftJoin('users as inviter', 'inviter.id', 'invitations.invited_by')
    .select([
      'invitations.id',
      'invitations.role',
      'invitations.project_role',
      'invitations.expires_at',
      'workspaces.slug',
      'workspaces.name',
      'projects.name as project_name',
      'inviter.email as inviter_email',
    ])
    .where('invitations.email', '=', normalEmail(email))
    .where('invitations.accepted_at', 'is', null)
    .where('invitations.revoked_at', 'is', null)
    .where('invitations.expires_at', '>', now.toISOString())
    .where('workspaces.deleted_at', 'is', null)
    .orderBy('invitations.created_at', 'desc')
    .execute()
  return rows.map((r) => ({
    id: r.id,
    workspace: { slug: r.slug, name: r.name },
    role: r.role,
    project: r.project_name && r.project_role ? { name: r.project_name, role: r.project_role } : null,
    invitedBy: r.inviter_email ?? '',
    expiresAt: r.expires_at,
  }))
}

/**
 * The workspace of the usable invitation `id` addressed to `email` (system scope). Anything
 * else — another address's invitation, a used, revoked or expired one, a made-up id — gives
 * InvitationInvalidError alike, so an id tells nobody else anything.
 */
export async function myInvitationWorkspace(db: Executor, id: string, email: string, now: Date): Promise<Workspace> {
  const r = await db
    .selectFrom('invitations')
    .innerJoin('workspaces', 'workspaces.id', 'invitations.workspace_id')
    .select(['workspaces.id', 'workspaces.slug', 'workspaces.name', 'workspaces.created_at'])
    .where('invitations.id', '=', id)
    .where('invitations.email', '=', normalEmail(email))
    .where('invitations.accepted_at', 'is', null)
    .where('invitations.revoked_at', 'is', null)
    .where('invitations.expires_at', '>', now.toISOString())
    .where('workspaces.deleted_at', 'is', null)
    .executeTakeFirst()
  if (!r) throw new InvitationInvalidError()
  return { id: r.id, slug: r.slug, name: r.name, createdAt: r.created_at }
}
