import type { Executor } from '../storage/database.js'
import type { Environment, Project } from '../vault/project-service.js'
import { effectiveProjectRole, type EnvAccess, environmentAccess, integrationScope, type Principal, type ProjectRole } from './policy.js'

/** What a principal may do with one environment's secrets, and whether it is shown their fingerprints. */
export interface EnvironmentView {
  readonly access: EnvAccess
  /**
   * Whether value fingerprints are shown: only where the principal may reveal values (`read`
   * or `write`) — a fingerprint equal to one of a readable environment gives its value away —
   * and, for a person, not in a sealed environment (its values are reached only through a
   * break-glass grant; an integration keeps its scope, as break-glass.ts says).
   */
  readonly fingerprints: boolean
}

/**
 * The principal's access to each of `environments` (all of `project`), decided by the same
 * rules as `decide` (environmentAccess, integrationScope) from the principal's project role
 * and grants, read in two indexed queries.
 */
export async function environmentViews(
  db: Executor,
  principal: Principal,
  project: Project,
  environments: readonly Environment[],
): Promise<Map<string, EnvironmentView>> {
  const out = new Map<string, EnvironmentView>()
  if (principal.type !== 'user') {
    for (const e of environments) {
      const access: EnvAccess = integrationScope(principal, project.id, e.id)?.access ?? 'none'
      out.set(e.id, { access, fingerprints: access === 'read' || access === 'write' })
    }
    return out
  }
  const member = await db
    .selectFrom('project_members')
    .select('role')
    .where('workspace_id', '=', project.workspaceId)
    .where('project_id', '=', project.id)
    .where('user_id', '=', principal.userId)
    .executeTakeFirst()
  const grants = await db
    .selectFrom('environment_grants')
    .select(['environment_id', 'access'])
    .where('workspace_id', '=', project.workspaceId)
    .where('project_id', '=', project.id)
    .where('user_id', '=', principal.userId)
    .execute()
  const grantOf = new Map(grants.map((g) => [g.environment_id, g.access]))
  const role = effectiveProjectRole(principal.role, (member?.role ?? null) as ProjectRole | null)
  for (const e of environments) {
    const access = environmentAccess(role, e.restricted, grantOf.get(e.id) ?? null)
    out.set(e.id, { access, fingerprints: (access === 'read' || access === 'write') && !e.sealed })
  }
  return out
}
