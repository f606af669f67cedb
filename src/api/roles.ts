// The role and access names the API speaks; src/access (policy.ts, break-glass.ts) gives
// them their meaning.

/** The ranked workspace roles, strongest first: each may do what the ones after it may. */
export const RANKED_ROLES = ['owner', 'admin', 'member'] as const
export type RankedRole = (typeof RANKED_ROLES)[number]

/** Every workspace role: the ranked ones, then the auditor, which is outside their order. */
export const ROLES = [...RANKED_ROLES, 'auditor'] as const
export type Role = (typeof ROLES)[number]

/** Project roles, strongest first. */
export const PROJECT_ROLES = ['admin', 'developer', 'viewer'] as const
export type ProjectRole = (typeof PROJECT_ROLES)[number]

/** What a grant on a restricted environment, or an integration's scope, gives: read reveals; write reveals and writes. */
export const GRANT_ACCESS = ['read', 'write'] as const
export type GrantAccess = (typeof GRANT_ACCESS)[number]

/** The access a break-glass grant gives: `read` reveals values; `read-write` also writes them. */
export const BREAK_GLASS_ACCESS = ['read', 'read-write'] as const
export type BreakGlassAccess = (typeof BREAK_GLASS_ACCESS)[number]
