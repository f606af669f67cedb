import { ForbiddenError, LastOwnerError, NotFoundError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { Role, UserPrincipal } from './policy.js'

// Workspace membership: listing, role changes, removal and leaving. Only an Owner makes,
// unmakes or removes an Owner; the last Owner cannot leave, be removed or be demoted. Every
// change runs inside the request's write transaction, after the pipeline has locked the
// workspace's audit chain — which serialises writes to one workspace across nodes, so two
// Owners demoting each other at once cannot leave none.

/** A member as listings show them. */
export interface MemberView {
  userId: string
  email: string
  name: string
  role: Role
  createdAt: string
}

/** Every member of the workspace, by email. */
export async function listMembers(db: Executor, workspaceId: string): Promise<MemberView[]> {
  const rows = await db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select(['users.id as userId', 'users.email', 'users.name', 'memberships.role', 'memberships.created_at as createdAt'])
    .where('memberships.workspace_id', '=', workspaceId)
    .orderBy('users.email')
    .execute()
  return rows.map((r) => ({ ...r, role: r.role as Role }))
}

/** One member, or NotFoundError('member'). */
export async function findMember(db: Executor, workspaceId: string, userId: string): Promise<MemberView> {
  const r = await db
    .selectFrom('memberships')
    .innerJoin('users', 'users.id', 'memberships.user_id')
    .select(['users.id as userId', 'users.email', 'users.name', 'memberships.role', 'memberships.created_at as createdAt'])
    .where('memberships.workspace_id', '=', workspaceId)
    .where('memberships.user_id', '=', userId)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('member')
  return { ...r, role: r.role as Role }
}

async function ownerCount(db: Executor, workspaceId: string): Promise<number> {
  const r = await db
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .where('role', '=', 'owner')
    .executeTakeFirstOrThrow()
  return Number(r.n)
}

function ownerOnly(actor: UserPrincipal, what: string): void {
  if (actor.role !== 'owner') throw new ForbiddenError(`Only an Owner can ${what}.`)
}

/**
 * Changes a member's workspace role. Admins change Members, Admins and Auditors; only an
 * Owner makes or unmakes an Owner; the last Owner is never demoted. A member made Auditor
 * loses their project roles and environment grants (an auditor holds none; the policy ignores
 * them anyway, and they must not come back if the person is later made a Member again):
 * `removed` counts them, for the audit entry.
 */
export async function setMemberRole(
  db: Executor,
  workspaceId: string,
  actor: UserPrincipal,
  userId: string,
  role: Role,
): Promise<{ member: MemberView; from: Role; removed: { projectRoles: number; grants: number } }> {
  const m = await findMember(db, workspaceId, userId)
  if (m.role === 'owner' || role === 'owner') ownerOnly(actor, 'make or unmake an Owner')
  if (m.role === 'owner' && role !== 'owner' && (await ownerCount(db, workspaceId)) <= 1) {
    throw new LastOwnerError('This is the last Owner of the workspace: make someone else Owner first.')
  }
  const removed = { projectRoles: 0, grants: 0 }
  if (role === 'auditor') {
    const g = await db
      .deleteFrom('environment_grants')
      .where('workspace_id', '=', workspaceId)
      .where('user_id', '=', userId)
      .executeTakeFirst()
    const p = await db
      .deleteFrom('project_members')
      .where('workspace_id', '=', workspaceId)
      .where('user_id', '=', userId)
      .executeTakeFirst()
    removed.grants = Number(g.numDeletedRows)
    removed.projectRoles = Number(p.numDeletedRows)
  }
  if (m.role !== role) {
    await db.updateTable('memberships').set({ role }).where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute()
  }
  return { member: { ...m, role }, from: m.role, removed }
}

/**
 * Removes a person from the workspace: their membership, project roles and environment
 * grants, and their personal tokens of this workspace are revoked. Only an Owner removes an
 * Owner, and never the last one. `self` is leaving: allowed to every member but the last Owner.
 */
export async function removeMember(
  db: Executor,
  workspaceId: string,
  actor: UserPrincipal,
  userId: string,
  now: Date,
): Promise<{ member: MemberView; revokedTokens: number }> {
  const m = await findMember(db, workspaceId, userId)
  const self = actor.userId === userId
  if (m.role === 'owner') {
    if (!self) ownerOnly(actor, 'remove an Owner')
    if ((await ownerCount(db, workspaceId)) <= 1) {
      throw new LastOwnerError(
        self
          ? 'You are the last Owner of this workspace: make someone else Owner before you leave.'
          : 'This is the last Owner of the workspace.',
      )
    }
  }
  await db.deleteFrom('environment_grants').where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute()
  await db.deleteFrom('personal_overrides').where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute()
  await db.deleteFrom('project_members').where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute()
  const revoked = await db
    .updateTable('tokens')
    .set({ revoked_at: now.toISOString() })
    .where('workspace_id', '=', workspaceId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  await db.deleteFrom('memberships').where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute()
  return { member: m, revokedTokens: Number(revoked.numUpdatedRows) }
}
