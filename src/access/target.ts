import { isUuid } from '../crypto/encoding.js'
import type { Executor } from '../storage/database.js'
import { QueryTemplate } from '../storage/query-template.js'
import { toEnvironment, type Environment, type Project } from '../vault/project-service.js'
import type { GrantAccess, Principal, ProjectRole, Resource } from './policy.js'

/** What a request names, as found in its workspace, with the facts the policy decides on. */
export interface ResolvedTarget {
  /** For the policy. */
  readonly resource: Resource
  /** For the handler (only what exists). */
  readonly project?: Project
  readonly environment?: Environment
}

interface ProjectRow {
  id: string
  workspace_id: string
  slug: string
  name: string
  created_at: string
  memberRole: string | null
}
interface EnvironmentRow {
  id: string
  project_id: string
  slug: string
  name: string
  created_at: string
  restricted: number
  sealed: number
  personal_overrides: number
  imports: string | null
  change_approvals: number
  grant: string | null
}

// @NOTE these run on every request that names a project: compiled once (see QueryTemplate).
const projectLookup = (by: 'id' | 'slug') =>
  new QueryTemplate<'ws' | 'user' | 'ref'>((db, p) =>
    db
      .selectFrom('projects')
      .leftJoin('project_members', (j) =>
        j.onRef('project_members.project_id', '=', 'projects.id').on('project_members.user_id', '=', p('user')),
      )
      .select([
        'projects.id',
        'projects.workspace_id',
        'projects.slug',
        'projects.name',
        'projects.created_at',
        'project_members.role as memberRole',
      ])
      .where('projects.workspace_id', '=', p('ws'))
      .where(`projects.${by}`, '=', p('ref')),
  )
const PROJECT_BY_ID = projectLookup('id')
const PROJECT_BY_SLUG = projectLookup('slug')

const environmentLookup = (by: 'id' | 'slug') =>
  new QueryTemplate<'ws' | 'project' | 'user' | 'ref'>((db, p) =>
    db
      .selectFrom('environments')
      .leftJoin('environment_grants', (j) =>
        j.onRef('environment_grants.environment_id', '=', 'environments.id').on('environment_grants.user_id', '=', p('user')),
      )
      .select([
        'environments.id',
        'environments.project_id',
        'environments.slug',
        'environments.name',
        'environments.created_at',
        'environments.restricted',
        'environments.sealed',
        'environments.personal_overrides',
        'environments.imports',
        'environments.change_approvals',
        'environment_grants.access as grant',
      ])
      .where('environments.workspace_id', '=', p('ws'))
      .where('environments.project_id', '=', p('project'))
      .where(`environments.${by}`, '=', p('ref')),
  )
const ENVIRONMENT_BY_ID = environmentLookup('id')
const ENVIRONMENT_BY_SLUG = environmentLookup('slug')

/**
 * Finds the project and environment that the route's `:project` and `:environment` params
 * name (by id or slug) inside `workspaceId`, with the principal's project role and
 * environment grant — two small queries, each one indexed look-up. Nothing here decides:
 * a missing project or environment is reported as null, and `decide` turns it (and an
 * invisible one) into the same 404.
 */
export async function resolveTarget(db: Executor, principal: Principal, workspaceId: string, params: unknown): Promise<ResolvedTarget> {
  const p = (params ?? {}) as Record<string, unknown>
  const projectRef = typeof p.project === 'string' ? p.project : undefined
  const environmentRef = typeof p.environment === 'string' ? p.environment : undefined
  if (projectRef === undefined) return { resource: { workspaceId } }
  const userId = principal.type === 'user' ? principal.userId : ''

  const pr = (
    await (isUuid(projectRef) ? PROJECT_BY_ID : PROJECT_BY_SLUG).run<ProjectRow>(db, { ws: workspaceId, user: userId, ref: projectRef })
  ).rows[0]
  if (!pr) return { resource: { workspaceId, project: null } }
  const project: Project = { id: pr.id, workspaceId: pr.workspace_id, slug: pr.slug, name: pr.name, createdAt: pr.created_at }
  const projectFacts = { id: project.id, memberRole: (pr.memberRole ?? null) as ProjectRole | null }
  if (environmentRef === undefined) return { resource: { workspaceId, project: projectFacts }, project }

  const er = (
    await (isUuid(environmentRef) ? ENVIRONMENT_BY_ID : ENVIRONMENT_BY_SLUG).run<EnvironmentRow>(db, {
      ws: workspaceId,
      project: project.id,
      user: userId,
      ref: environmentRef,
    })
  ).rows[0]
  if (!er) return { resource: { workspaceId, project: projectFacts, environment: null }, project }
  const environment = toEnvironment(er)
  return {
    resource: {
      workspaceId,
      project: projectFacts,
      environment: { id: environment.id, restricted: environment.restricted, grant: (er.grant ?? null) as GrantAccess | null },
    },
    project,
    environment,
  }
}
