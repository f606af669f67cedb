import { AuditorProjectRoleError, NotFoundError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { Environment, Project } from '../vault/project-service.js'
import { seesEveryProject, type GrantAccess, type Principal, type ProjectRole } from './policy.js'
import { findMember } from './members.js'

// Project roles and per-environment grants (the model is described in policy.ts). A Member
// holds at most one role per project; grants name one project member and one environment.

/** A project member as listings show them. */
export interface ProjectMemberView {
  userId: string
  email: string
  role: ProjectRole
  createdAt: string
}

/** A grant on an environment as listings show it. */
export interface GrantView {
  userId: string
  email: string
  access: GrantAccess
  createdAt: string
}

/** The project's members (Owners and Admins of the workspace are project admins without a row). */
export async function listProjectMembers(db: Executor, project: Project): Promise<ProjectMemberView[]> {
  const rows = await db
    .selectFrom('project_members')
    .innerJoin('users', 'users.id', 'project_members.user_id')
    .select(['users.id as userId', 'users.email', 'project_members.role', 'project_members.created_at as createdAt'])
    .where('project_members.workspace_id', '=', project.workspaceId)
    .where('project_members.project_id', '=', project.id)
    .orderBy('users.email')
    .execute()
  return rows
}

/** Gives a workspace member a role on the project (or changes it). Returns the previous role. An auditor gets AuditorProjectRoleError. */
export async function setProjectMember(
  db: Executor,
  project: Project,
  userId: string,
  role: ProjectRole,
  now: Date,
): Promise<{ member: ProjectMemberView; from: ProjectRole | null }> {
  const m = await findMember(db, project.workspaceId, userId)
  if (m.role === 'auditor') throw new AuditorProjectRoleError()
  const existing = await db
    .selectFrom('project_members')
    .select(['role', 'created_at'])
    .where('project_id', '=', project.id)
    .where('user_id', '=', userId)
    .executeTakeFirst()
  if (existing) {
    if (existing.role !== role)
      await db.updateTable('project_members').set({ role }).where('project_id', '=', project.id).where('user_id', '=', userId).execute()
    return { member: { userId, email: m.email, role, createdAt: existing.created_at }, from: existing.role }
  }
  const createdAt = now.toISOString()
  await db
    .insertInto('project_members')
    .values({ workspace_id: project.workspaceId, project_id: project.id, user_id: userId, role, created_at: createdAt })
    .execute()
  return { member: { userId, email: m.email, role, createdAt }, from: null }
}

/** Takes a person's project role away, and with it their grants on the project's environments. */
export async function removeProjectMember(db: Executor, project: Project, userId: string): Promise<ProjectMemberView> {
  const row = await db
    .selectFrom('project_members')
    .innerJoin('users', 'users.id', 'project_members.user_id')
    .select(['users.id as userId', 'users.email', 'project_members.role', 'project_members.created_at as createdAt'])
    .where('project_members.project_id', '=', project.id)
    .where('project_members.user_id', '=', userId)
    .executeTakeFirst()
  if (!row) throw new NotFoundError('project member')
  await db.deleteFrom('environment_grants').where('project_id', '=', project.id).where('user_id', '=', userId).execute()
  await db.deleteFrom('project_members').where('project_id', '=', project.id).where('user_id', '=', userId).execute()
  return row
}

/** Restricts an environment (developers list keys only, unless granted) or lifts the restriction. */
export async function setRestricted(db: Executor, environment: Environment, restricted: boolean): Promise<Environment> {
  await db
    .updateTable('environments')
    .set({ restricted: restricted ? 1 : 0 })
    .where('id', '=', environment.id)
    .execute()
  return { ...environment, restricted }
}

/** The grants on an environment. */
export async function listGrants(db: Executor, environment: Environment): Promise<GrantView[]> {
  return db
    .selectFrom('environment_grants')
    .innerJoin('users', 'users.id', 'environment_grants.user_id')
    .select(['users.id as userId', 'users.email', 'environment_grants.access', 'environment_grants.created_at as createdAt'])
    .where('environment_grants.environment_id', '=', environment.id)
    .orderBy('users.email')
    .execute()
}

/** Grants a project member `access` on one environment (or changes it). The person must hold a role on the project. */
export async function setGrant(
  db: Executor,
  project: Project,
  environment: Environment,
  userId: string,
  access: GrantAccess,
  now: Date,
): Promise<{ grant: GrantView; from: GrantAccess | null }> {
  const pm = await db
    .selectFrom('project_members')
    .innerJoin('users', 'users.id', 'project_members.user_id')
    .select(['users.email'])
    .where('project_members.project_id', '=', project.id)
    .where('project_members.user_id', '=', userId)
    .executeTakeFirst()
  if (!pm) throw new NotFoundError('project member')
  const existing = await db
    .selectFrom('environment_grants')
    .select(['access', 'created_at'])
    .where('environment_id', '=', environment.id)
    .where('user_id', '=', userId)
    .executeTakeFirst()
  if (existing) {
    if (existing.access !== access)
      await db
        .updateTable('environment_grants')
        .set({ access })
        .where('environment_id', '=', environment.id)
        .where('user_id', '=', userId)
        .execute()
    return { grant: { userId, email: pm.email, access, createdAt: existing.created_at }, from: existing.access }
  }
  const createdAt = now.toISOString()
  await db
    .insertInto('environment_grants')
    .values({
      workspace_id: project.workspaceId,
      project_id: project.id,
      environment_id: environment.id,
      user_id: userId,
      access,
      created_at: createdAt,
    })
    .execute()
  return { grant: { userId, email: pm.email, access, createdAt }, from: null }
}

/** Removes a grant. */
export async function removeGrant(db: Executor, environment: Environment, userId: string): Promise<GrantView> {
  const [g] = (await listGrants(db, environment)).filter((x) => x.userId === userId)
  if (!g) throw new NotFoundError('grant')
  await db.deleteFrom('environment_grants').where('environment_id', '=', environment.id).where('user_id', '=', userId).execute()
  return g
}

/**
 * The ids of the projects `principal` may see in its workspace: every project for Owners,
 * Admins and Auditors, the projects a Member holds a role in, the projects an integration is
 * scoped to. Null means all.
 */
export async function visibleProjectIds(db: Executor, principal: Principal): Promise<Set<string> | null> {
  if (principal.type !== 'user') return new Set(principal.scopes.map((s) => s.projectId))
  if (seesEveryProject(principal.role)) return null
  const rows = await db
    .selectFrom('project_members')
    .select('project_id')
    .where('workspace_id', '=', principal.workspaceId)
    .where('user_id', '=', principal.userId)
    .execute()
  return new Set(rows.map((r) => r.project_id))
}
