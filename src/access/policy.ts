import { ForbiddenError, NotFoundError } from '../errors.js'
import {
  ENV_ACCESS,
  type EnvAccess,
  type GrantAccess,
  type IntegrationPrincipal,
  type IntegrationScope,
  isRanked,
  PROJECT_ROLES,
  type Principal,
  type ProjectRole,
  type RankedRole,
  type Role,
  rankOf,
  roleAtLeast,
  type UnrankedRole,
  type UserPrincipal,
} from '../identity/principal.js'

// Who may do what. One function, `decide`, answers for every request; the pipeline calls it
// after resolving the workspace, project and environment the route names, and before it
// validates the input. The model:
//
// - Workspace roles, strongest first: owner, admin, member. Owners and Admins act as project
//   admin on every project. Only an Owner makes or unmakes an Owner.
// - The auditor (a compliance reviewer) stands outside that order: it is not "at least" any
//   of them, so it qualifies only for the actions whose rule names it in `also` — reading the
//   audit log, the workspace, its members, projects and environments (names and metadata),
//   key versions and break-glass requests, and its own tokens. It sees every project, like an
//   Admin, but holds no project role there, whatever rows say: its access to every
//   environment's secrets is 'none', so listing, revealing and writing them answer 403 (it
//   sees the project and the environment; it has no access to their secrets). It cannot be
//   given a project role (members.ts, invitations.ts) and is no break-glass approver.
// - Project roles: admin (manages the project's environments, members, restrictions and
//   grants; reveals and writes everywhere in it), developer (reveals and writes in
//   unrestricted environments), viewer (lists keys and metadata, never values).
// - A Member sees only projects they hold a project role in: any other project answers 404,
//   exactly like a project that does not exist, so existence does not leak.
// - An environment may be *restricted* (new `production` environments start restricted):
//   there a developer only lists keys, unless the environment grants them `read` (reveal) or
//   `write` (reveal and write). A grant names one project member and one environment.
// - Integrations (machine identities and service tokens) are not members: they carry only
//   their scopes — projects, environments, read or write — and may use only the actions
//   marked `integrations` below. Projects and environments outside their scope answer 404.
// - Another workspace answers 404, never 403.
//
// Sealed environments and break-glass grants (break-glass.ts) are decided after this.

export {
  ENV_ACCESS,
  type EnvAccess,
  GRANT_ACCESS,
  type GrantAccess,
  type IntegrationPrincipal,
  type IntegrationScope,
  isRanked,
  PROJECT_ROLES,
  type Principal,
  type ProjectRole,
  RANKED_ROLES,
  type RankedRole,
  ROLES,
  type Role,
  rankOf,
  roleAtLeast,
  type UnrankedRole,
  type UserPrincipal,
} from '../identity/principal.js'

/** How an action is decided. */
type Rule =
  /** No principal needed (health, documents, the machine token exchange). */
  | { readonly scope: 'public' }
  /** A workspace-wide action: people need `role` or one of `also`; integrations only when `integrations`. */
  | { readonly scope: 'workspace'; readonly role: RankedRole; readonly also?: readonly UnrankedRole[]; readonly integrations?: true }
  /** Any person, in the workspace the request names by its body (accepting an invitation). */
  | { readonly scope: 'person' }
  /**
   * An action on the route's project: people need the project role, or a workspace role listed
   * in `also` (which qualifies on every project, with no project role); integrations only when
   * `integrations` and in scope.
   */
  | { readonly scope: 'project'; readonly projectRole: ProjectRole; readonly also?: readonly UnrankedRole[]; readonly integrations?: true }
  /** An action on the secrets of the route's environment, needing at least `access`. */
  | { readonly scope: 'environment'; readonly access: Exclude<EnvAccess, 'none'> }

/**
 * Every action a route can perform, and its rule. A route names exactly one action (and may
 * name a stronger one for a query flag, e.g. reveal=true); `decide` applies the rule.
 * @NOTE the auditor qualifies only where `also` names it: a new action is closed to it until
 * someone decides otherwise.
 */
export const ACTIONS = {
  public: { scope: 'public' },
  'self.read': { scope: 'workspace', role: 'member', also: ['auditor'], integrations: true },
  'self.tokens.manage': { scope: 'workspace', role: 'member', also: ['auditor'] },
  'self.leave': { scope: 'workspace', role: 'member', also: ['auditor'] },
  'workspace.read': { scope: 'workspace', role: 'member', also: ['auditor'], integrations: true },
  'members.read': { scope: 'workspace', role: 'member', also: ['auditor'] },
  'members.manage': { scope: 'workspace', role: 'admin' },
  'invitations.manage': { scope: 'workspace', role: 'admin' },
  'invitation.accept': { scope: 'person' },
  // A signed-in person approves (or denies) a CLI login in the browser (cli-login-routes.ts).
  'cli.login.approve': { scope: 'person' },
  'project.list': { scope: 'workspace', role: 'member', also: ['auditor'], integrations: true },
  'project.create': { scope: 'workspace', role: 'admin' },
  'project.read': { scope: 'project', projectRole: 'viewer', also: ['auditor'], integrations: true },
  'project.members.manage': { scope: 'project', projectRole: 'admin' },
  'environment.create': { scope: 'project', projectRole: 'admin' },
  'environment.manage': { scope: 'project', projectRole: 'admin' },
  // Renaming a project (its slug never changes); deleting a project is the workspace's
  // Owners' and Admins' (it destroys every environment's data key); deleting an environment
  // is its project admins' — a sealed one is unsealed by an Owner or Admin first (ERR_ENVIRONMENT_SEALED).
  'project.manage': { scope: 'project', projectRole: 'admin' },
  'project.delete': { scope: 'workspace', role: 'admin' },
  'environment.delete': { scope: 'project', projectRole: 'admin' },
  'secret.read': { scope: 'environment', access: 'list' },
  'secret.reveal': { scope: 'environment', access: 'read' },
  // Dynamic credentials (PostgreSQL login roles and AWS STS sessions): made by whoever may
  // reveal the environment's values; the ways to make them (db roles, AWS roles) are its project admins'.
  'db.credentials': { scope: 'environment', access: 'read' },
  'db.roles.manage': { scope: 'project', projectRole: 'admin' },
  'secret.write': { scope: 'environment', access: 'write' },
  'audit.read': { scope: 'workspace', role: 'admin', also: ['auditor'] },
  'machines.manage': { scope: 'workspace', role: 'admin' },
  'service-tokens.manage': { scope: 'workspace', role: 'admin' },
  // The machine credential exchange: authenticated by the client secret in its body.
  'machine.authenticate': { scope: 'public' },
  // Data keys: versions and reseal progress, and rotation.
  'key.read': { scope: 'workspace', role: 'admin', also: ['auditor'] },
  'key.rotate': { scope: 'workspace', role: 'admin' },
  // Outbound webhooks: endpoints and their delivery log (payloads carry names, never values).
  'webhook.read': { scope: 'workspace', role: 'admin' },
  'webhook.manage': { scope: 'workspace', role: 'admin' },
  // AWS role assumption: the workspace's external ID (and the template carrying it) is shown to, and rotated by, Owners and Admins.
  'aws.external-id.read': { scope: 'workspace', role: 'admin' },
  'aws.external-id.rotate': { scope: 'workspace', role: 'admin' },
  // Third-party OAuth connections (docs/connections.md): Owners and Admins make, connect and
  // delete them and relay as the app; every member lists them, links their own account and
  // relays as themselves. Integrations hold no link and act as no app.
  'connection.read': { scope: 'workspace', role: 'member' },
  'connection.manage': { scope: 'workspace', role: 'admin' },
  'connection.link': { scope: 'workspace', role: 'member' },
  'connection.relay': { scope: 'workspace', role: 'member' },
  // Workspace deletion and break-glass (issue 4 §3–4; decisions in break-glass.ts).
  'workspace.delete': { scope: 'workspace', role: 'owner' },
  'environment.seal': { scope: 'workspace', role: 'admin' },
  'breakglass.read': { scope: 'workspace', role: 'admin', also: ['auditor'] },
  'breakglass.request': { scope: 'workspace', role: 'admin' },
  'breakglass.decide': { scope: 'workspace', role: 'admin' },
  'breakglass.revoke': { scope: 'workspace', role: 'admin' },
  // Protected environments and their change requests (change-requests.ts): Owners and Admins
  // protect and decide; every member lists and shows — a Member only their own requests.
  'environment.protect': { scope: 'workspace', role: 'admin' },
  'change.read': { scope: 'workspace', role: 'member', also: ['auditor'] },
  'change.decide': { scope: 'workspace', role: 'admin' },
  // A person's own account, outside any workspace (the account pipeline): any signed-in person.
  'account.read': { scope: 'person' },
  'account.manage': { scope: 'person' },
  // Verification and password-reset links for a member, when mail is off (or to mail them).
  'auth.links.issue': { scope: 'workspace', role: 'admin' },
} as const satisfies Record<string, Rule>

export type Action = keyof typeof ACTIONS

/** What the request touches, as the pipeline found it in the principal's workspace. */
export interface Resource {
  readonly workspaceId: string
  /** Absent: the route names no project. Null: it names one that does not exist here. */
  readonly project?: { readonly id: string; readonly memberRole: ProjectRole | null } | null
  /** Absent: the route names no environment. Null: it names one that does not exist in the project. */
  readonly environment?: { readonly id: string; readonly restricted: boolean; readonly grant: GrantAccess | null } | null
}

/** The policy's answer: allowed, forbidden (403), or hidden (404, the resource named). */
export type Decision =
  | { readonly allow: true }
  | { readonly allow: false; readonly status: 403 }
  | { readonly allow: false; readonly status: 404; readonly what: 'workspace' | 'project' | 'environment' }

/** Whether `role` is an unranked role that a rule's `also` names. */
function listedIn(role: Role, also: readonly UnrankedRole[] | undefined): boolean {
  return !isRanked(role) && also !== undefined && also.includes(role)
}

/** Whether project role `role` is at least `needed`. */
export function projectRoleAtLeast(role: ProjectRole, needed: ProjectRole): boolean {
  return rankOf(PROJECT_ROLES, role) >= rankOf(PROJECT_ROLES, needed)
}

function accessAtLeast(access: EnvAccess, needed: EnvAccess): boolean {
  return ENV_ACCESS.indexOf(access) >= ENV_ACCESS.indexOf(needed)
}

/**
 * A person's role on a project: Owners and Admins are project admins everywhere; Members have
 * what they were given; an Auditor has none, even if a project role row exists for them.
 */
export function effectiveProjectRole(role: Role, memberRole: ProjectRole | null): ProjectRole | null {
  if (role === 'owner' || role === 'admin') return 'admin'
  if (role === 'auditor') return null
  return memberRole
}

/** Whether a person sees every project of the workspace (Owners, Admins, Auditors), not only those they hold a role in. */
export function seesEveryProject(role: Role): boolean {
  return role === 'owner' || role === 'admin' || role === 'auditor'
}

/** A person's access to an environment's secrets, from their project role, the restriction and any grant. */
export function environmentAccess(projectRole: ProjectRole | null, restricted: boolean, grant: GrantAccess | null): EnvAccess {
  if (projectRole === null) return 'none'
  const base: EnvAccess = projectRole === 'admin' ? 'write' : projectRole === 'developer' ? (restricted ? 'list' : 'write') : 'list'
  const granted: EnvAccess = grant ?? 'none'
  return accessAtLeast(granted, base) ? granted : base
}

/** The scope of an integration that covers `projectId`, if any. */
export function integrationScope(p: IntegrationPrincipal, projectId: string, environmentId?: string): IntegrationScope | undefined {
  return p.scopes.find(
    (s) => s.projectId === projectId && (environmentId === undefined || s.environments === '*' || s.environments.includes(environmentId)),
  )
}

const HIDE_WORKSPACE: Decision = { allow: false, status: 404, what: 'workspace' }
const HIDE_PROJECT: Decision = { allow: false, status: 404, what: 'project' }
const HIDE_ENVIRONMENT: Decision = { allow: false, status: 404, what: 'environment' }
const FORBID: Decision = { allow: false, status: 403 }
const ALLOW: Decision = { allow: true }

/**
 * The one policy function: may `principal` perform `action` on `resource`? Visibility comes
 * first — another workspace, a missing project or environment, and a project or environment
 * the principal may not see all answer 404 alike — then the rule (403).
 */
export function decide(principal: Principal, action: Action, resource: Resource): Decision {
  const rule: Rule = ACTIONS[action]
  if (rule.scope === 'public') return ALLOW
  if (rule.scope === 'person') return principal.type === 'user' ? ALLOW : FORBID
  if (principal.workspaceId !== resource.workspaceId) return HIDE_WORKSPACE

  // Visibility of the project and environment the route names.
  let projectRole: ProjectRole | null = null
  let scope: IntegrationScope | undefined
  if (resource.project === null) return HIDE_PROJECT
  if (resource.project) {
    if (principal.type === 'user') {
      projectRole = effectiveProjectRole(principal.role, resource.project.memberRole)
      if (projectRole === null && !seesEveryProject(principal.role)) return HIDE_PROJECT
    } else if (!integrationScope(principal, resource.project.id)) {
      return HIDE_PROJECT
    }
  }
  if (resource.environment === null) return HIDE_ENVIRONMENT
  if (resource.environment && resource.project && principal.type !== 'user') {
    scope = integrationScope(principal, resource.project.id, resource.environment.id)
    if (!scope) return HIDE_ENVIRONMENT
  }

  switch (rule.scope) {
    case 'workspace':
      if (principal.type !== 'user') return 'integrations' in rule ? ALLOW : FORBID
      return roleAtLeast(principal.role, rule.role) || listedIn(principal.role, rule.also) ? ALLOW : FORBID
    case 'project':
      if (!resource.project) return FORBID
      if (principal.type !== 'user') return 'integrations' in rule ? ALLOW : FORBID
      if (listedIn(principal.role, rule.also)) return ALLOW
      return projectRole !== null && projectRoleAtLeast(projectRole, rule.projectRole) ? ALLOW : FORBID
    case 'environment': {
      if (!resource.project || !resource.environment) return FORBID
      const access: EnvAccess =
        principal.type === 'user'
          ? environmentAccess(projectRole, resource.environment.restricted, resource.environment.grant)
          : scope!.access
      return accessAtLeast(access, rule.access) ? ALLOW : FORBID
    }
  }
}

/** Throws NotFoundError or ForbiddenError unless `decide` allows. */
export function authorize(principal: Principal, action: Action, resource: Resource): void {
  const d = decide(principal, action, resource)
  if (d.allow) return
  if (d.status === 404) throw new NotFoundError(d.what)
  throw new ForbiddenError()
}

/** The person behind a request; integrations get ForbiddenError (they are never members). */
export function requireUser(principal: Principal): UserPrincipal {
  if (principal.type !== 'user') throw new ForbiddenError('An integration token cannot act as a member.')
  return principal
}

/** The id the audit log and version history record for the principal. */
export function actorId(principal: Principal): string {
  return principal.type === 'user' ? principal.userId : principal.id
}
