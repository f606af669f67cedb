import { randomBytes } from 'node:crypto'
import type { GrantAccess, ProjectRole, Role } from '../../src/access/policy.js'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import type { Harness } from './harness.js'

/** A person made the way an admin would make them: a workspace role, optionally a project role and a grant. */
export interface TestPerson {
  token: string
  userId: string
  email: string
}

/**
 * Adds a new person to workspace `workspaceId` with `role`, a role on `project` and a grant on
 * `grantEnv` when given, and issues their personal token. Runs as system work (no request).
 */
export async function addPerson(
  h: Harness,
  input: {
    workspaceId: string
    role: Role
    project?: { id: string; role: ProjectRole }
    grant?: { projectId: string; environmentId: string; access: GrantAccess }
    label?: string
  },
): Promise<TestPerson> {
  return h.ctx.committer.run(async (tx) => {
    const email = `${input.label ?? input.role}-${randomBytes(4).toString('hex')}@people.test`
    const u = await ensureUser(tx, email, new Date())
    await addMember(tx, input.workspaceId, u.id, input.role, new Date())
    const now = new Date().toISOString()
    if (input.project) {
      await tx
        .insertInto('project_members')
        .values({ workspace_id: input.workspaceId, project_id: input.project.id, user_id: u.id, role: input.project.role, created_at: now })
        .execute()
    }
    if (input.grant) {
      await tx
        .insertInto('environment_grants')
        .values({
          workspace_id: input.workspaceId,
          project_id: input.grant.projectId,
          environment_id: input.grant.environmentId,
          user_id: u.id,
          access: input.grant.access,
          created_at: now,
        })
        .execute()
    }
    const { token } = await issueToken(tx, { workspaceId: input.workspaceId, userId: u.id, name: 'test' }, new Date())
    return { token, userId: u.id, email }
  })
}
