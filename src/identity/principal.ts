import {
  GRANT_ACCESS,
  type GrantAccess,
  PROJECT_ROLES,
  type ProjectRole,
  RANKED_ROLES,
  type RankedRole,
  ROLES,
  type Role,
} from '../api/roles.js'

// Who is asking: the workspace and project roles a person can hold, and the principals a
// request is made by. Identity establishes them; access (policy.ts) decides what they may do.

// The role and access names are part of the HTTP API's contract (src/api/roles.ts).
export { GRANT_ACCESS, PROJECT_ROLES, RANKED_ROLES, ROLES }
export type { GrantAccess, ProjectRole, RankedRole, Role }

/** A workspace role outside the ranked order: it qualifies only where a rule lists it in `also`. */
export type UnrankedRole = Exclude<Role, RankedRole>

/** What a principal may do with an environment's secrets, weakest first. */
export const ENV_ACCESS = ['none', 'list', 'read', 'write'] as const
export type EnvAccess = (typeof ENV_ACCESS)[number]

/** One scope of an integration: a project, some (or all) of its environments, read or write. */
export interface IntegrationScope {
  readonly projectId: string
  /** Environment ids, or '*' for every environment of the project (present and future). */
  readonly environments: readonly string[] | '*'
  readonly access: GrantAccess
}

/** A person, through a personal token or a browser session, acting in one workspace. */
export interface UserPrincipal {
  readonly type: 'user'
  readonly userId: string
  readonly email: string
  /** The personal token or session the request came with. */
  readonly tokenId: string
  readonly workspaceId: string
  readonly role: Role
}

/** A workspace integration: a machine identity's access token, or a static service token. */
export interface IntegrationPrincipal {
  readonly type: 'machine' | 'service'
  /** The machine identity's id, or the service token's id. */
  readonly id: string
  readonly name: string
  /** The access token or service token the request came with. */
  readonly tokenId: string
  readonly workspaceId: string
  readonly scopes: readonly IntegrationScope[]
}

/** Who is asking. */
export type Principal = UserPrincipal | IntegrationPrincipal

/** Rank of `v` in `order` (strongest first): higher is stronger. */
export function rankOf<T extends string>(order: readonly T[], v: T): number {
  return order.length - order.indexOf(v)
}

/** Whether workspace role `role` is at least `needed` in the ranked order (an unranked role never is). */
export function roleAtLeast(role: Role, needed: RankedRole): boolean {
  return isRanked(role) && rankOf(RANKED_ROLES, role) >= rankOf(RANKED_ROLES, needed)
}

export function isRanked(role: Role): role is RankedRole {
  return (RANKED_ROLES as readonly string[]).includes(role)
}
