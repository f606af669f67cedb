// The role names the API accepts, for clients that check input before sending it (the CLI).
// The server decides with src/access/policy.ts; test/cli/client-roles.test.ts keeps the two
// lists equal.

/** Every workspace role, as the API names it. */
export const WORKSPACE_ROLES = ['owner', 'admin', 'member', 'auditor'] as const
export type WorkspaceRole = (typeof WORKSPACE_ROLES)[number]

/** Project roles, strongest first, as the API names them. */
export const PROJECT_ROLES = ['admin', 'developer', 'viewer'] as const
export type ProjectRole = (typeof PROJECT_ROLES)[number]
