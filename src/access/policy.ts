import { ForbiddenError } from '../errors.js'

/** Workspace roles, strongest first. */
export const ROLES = ['owner', 'admin', 'member'] as const
export type Role = (typeof ROLES)[number]

/**
 * Every action a route can perform. A route names exactly one; the policy below decides it.
 * `public` routes (health, the API document) need no principal at all.
 */
export const ACTIONS = {
  'public': null,
  'self.read': 'member',
  'self.tokens.manage': 'member',
  'workspace.read': 'member',
  'project.read': 'member',
  'project.create': 'admin',
  'environment.create': 'admin',
  'secret.read': 'member',
  'secret.reveal': 'member',
  'secret.write': 'member',
  'audit.read': 'admin',
} as const satisfies Record<string, Role | null>

export type Action = keyof typeof ACTIONS

/** Who is asking: a person, through a token bound to one workspace. */
export interface Principal {
  readonly type: 'user'
  readonly userId: string
  readonly email: string
  readonly tokenId: string
  readonly workspaceId: string
  readonly role: Role
}

function rank(role: Role): number {
  return ROLES.length - ROLES.indexOf(role)
}

/**
 * The one policy function: may `principal` perform `action` in workspace `workspaceId`?
 * Callers resolve the workspace first and answer 404 for one the principal does not belong
 * to, so this function is only asked about the principal's own workspace.
 */
export function isAllowed(principal: Principal, action: Action, workspaceId: string): boolean {
  const needed = ACTIONS[action]
  if (needed === null) return true
  if (principal.workspaceId !== workspaceId) return false
  return rank(principal.role) >= rank(needed)
}

/** Throws ForbiddenError unless `isAllowed`. */
export function authorize(principal: Principal, action: Action, workspaceId: string): void {
  if (!isAllowed(principal, action, workspaceId)) throw new ForbiddenError()
}
