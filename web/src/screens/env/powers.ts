import { useQuery } from '@tanstack/react-query'
import { api, keys } from '../../api.js'

/** What the signed-in person may do to a project and its environments; null while it is not known yet. */
export interface ProjectPowers {
  /** Rename the project, create, rename and delete its environments (the project admin's: `project.manage`, `environment.*`). */
  manage: boolean
  /** Delete the project (the workspace's Owners and Admins: `project.delete`). */
  deleteProject: boolean
}

/**
 * The person's powers on a project, as the API decides them (src/access/policy.ts): Owners and
 * Admins are every project's admin; an Auditor is none's; a Member is what their project role
 * says, read from the project's member list (GET …/members, open to every project member).
 * If either list cannot be read, every button stays and the API's refusal is shown as text.
 */
export function useProjectPowers(workspace: string, project: string): ProjectPowers | null {
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  const role = account.data?.workspaces.find((w) => w.slug === workspace)?.role
  const member = role === 'member'
  const projectMembers = useQuery({
    queryKey: keys.projectMembers(workspace, project),
    queryFn: () => api.projectMembers(workspace, project),
    enabled: member,
  })
  if (account.isError || (member && projectMembers.isError)) return { manage: true, deleteProject: true }
  if (!account.data) return null
  if (role === 'auditor') return { manage: false, deleteProject: false }
  if (!member) return { manage: true, deleteProject: true }
  if (!projectMembers.data) return null
  const mine = projectMembers.data.members.find((m) => m.userId === account.data.user.id)
  return { manage: mine?.role === 'admin', deleteProject: false }
}
