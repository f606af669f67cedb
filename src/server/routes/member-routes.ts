import { z } from 'zod'
import { listMembers, removeMember, setMemberRole } from '../../access/members.js'
import { requireUser } from '../../access/policy.js'
import {
  grantBody,
  grantResponse,
  grantView,
  memberListResponse,
  memberRemovalResponse,
  memberResponse,
  memberRoleBody,
  projectMemberResponse,
  projectMemberView,
  projectRoleBody,
  restrictionBody,
} from '../../api/members.js'
import { environmentResponse } from '../../api/projects.js'
import {
  listGrants,
  listProjectMembers,
  removeGrant,
  removeProjectMember,
  setGrant,
  setProjectMember,
  setRestricted,
} from '../../access/project-members.js'
import { InternalError } from '../../errors.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'
import { environmentParams, projectParams, workspaceParams } from '../schemas.js'

// Workspace members, project members, environment restrictions and grants. Every change is
// an audit entry (member.role_change, member.remove, member.leave, project_member.set,
// project_member.remove, environment.restrict, environment_grant.set, environment_grant.remove).

const userParams = z.strictObject({ workspace: workspaceParams.shape.workspace, user: z.uuid() })
const projectUserParams = projectParams.extend({ user: z.uuid() }).strict()
const environmentUserParams = environmentParams.extend({ user: z.uuid() }).strict()

function targetOf(target: Target) {
  if (!target.project) throw new InternalError('a project route without its project')
  return { project: target.project, environment: target.environment }
}

const list = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/members',
  summary: "List the workspace's members and their roles",
  tag: 'members',
  action: 'members.read',
  mode: 'read',
  params: workspaceParams,
  response: memberListResponse,
  async handler({ db, workspace }) {
    return { body: { members: await listMembers(db, workspace.id) } }
  },
})

const setRole = defineRoute({
  method: 'PUT',
  url: '/v1/workspaces/:workspace/members/:user',
  summary:
    "Change a member's workspace role: owner, admin, member or auditor (only an Owner makes or unmakes an Owner; an auditor loses any project roles)",
  tag: 'members',
  action: 'members.manage',
  mode: 'write',
  params: userParams,
  body: memberRoleBody,
  response: memberResponse,
  async handler({ db, principal, workspace, params, body }) {
    const r = await setMemberRole(db, workspace.id, requireUser(principal), params.user, body.role)
    const details = {
      email: r.member.email,
      from: r.from,
      to: body.role,
      ...(body.role === 'auditor' ? { removedProjectRoles: r.removed.projectRoles, removedGrants: r.removed.grants } : {}),
    }
    return { body: { member: r.member }, audit: { action: 'member.role_change', target: { type: 'user', id: params.user }, details } }
  },
})

const remove = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/members/:user',
  summary: 'Remove a member: their roles, grants and tokens of this workspace go with them',
  tag: 'members',
  action: 'members.manage',
  mode: 'write',
  params: userParams,
  response: memberRemovalResponse,
  async handler({ app, db, principal, workspace, params }) {
    const r = await removeMember(db, workspace.id, requireUser(principal), params.user, app.clock())
    return {
      body: r,
      audit: {
        action: 'member.remove',
        target: { type: 'user', id: params.user },
        details: { email: r.member.email, role: r.member.role, revokedTokens: r.revokedTokens },
      },
    }
  },
})

const leave = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/leave',
  summary: 'Leave the workspace (the last Owner cannot)',
  tag: 'members',
  action: 'self.leave',
  mode: 'write',
  params: workspaceParams,
  response: memberRemovalResponse,
  async handler({ app, db, principal, workspace }) {
    const me = requireUser(principal)
    const r = await removeMember(db, workspace.id, me, me.userId, app.clock())
    return {
      body: r,
      audit: {
        action: 'member.leave',
        target: { type: 'user', id: me.userId },
        details: { email: r.member.email, role: r.member.role, revokedTokens: r.revokedTokens },
      },
    }
  },
})

const listProject = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/projects/:project/members',
  summary: "List the project's members (workspace Owners and Admins are project admins without a row)",
  tag: 'members',
  action: 'project.read',
  mode: 'read',
  params: projectParams,
  response: z.object({ members: z.array(projectMemberView) }),
  async handler({ db, target }) {
    return { body: { members: await listProjectMembers(db, targetOf(target).project) } }
  },
})

const setProject = defineRoute({
  method: 'PUT',
  url: '/v1/workspaces/:workspace/projects/:project/members/:user',
  summary: 'Give a workspace member a role on the project (admin, developer or viewer; never to an auditor)',
  tag: 'members',
  action: 'project.members.manage',
  mode: 'write',
  params: projectUserParams,
  body: projectRoleBody,
  response: projectMemberResponse,
  async handler({ app, db, target, params, body }) {
    const { project } = targetOf(target)
    const r = await setProjectMember(db, project, params.user, body.role, app.clock())
    return {
      body: { member: r.member },
      audit: {
        action: 'project_member.set',
        target: { type: 'user', id: params.user },
        details: { project: project.id, email: r.member.email, from: r.from, to: body.role },
      },
    }
  },
})

const removeProject = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/projects/:project/members/:user',
  summary: "Take a person's project role (and their grants in the project) away",
  tag: 'members',
  action: 'project.members.manage',
  mode: 'write',
  params: projectUserParams,
  response: projectMemberResponse,
  async handler({ db, target, params }) {
    const { project } = targetOf(target)
    const member = await removeProjectMember(db, project, params.user)
    return {
      body: { member },
      audit: {
        action: 'project_member.remove',
        target: { type: 'user', id: params.user },
        details: { project: project.id, email: member.email, role: member.role },
      },
    }
  },
})

const restrict = defineRoute({
  method: 'PUT',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment/restriction',
  summary: 'Restrict an environment (developers list keys only unless granted), or lift it',
  tag: 'members',
  action: 'environment.manage',
  mode: 'write',
  params: environmentParams,
  body: restrictionBody,
  response: environmentResponse,
  async handler({ db, target, body }) {
    const { environment } = targetOf(target)
    if (!environment) throw new InternalError('an environment route without its environment')
    const updated = await setRestricted(db, environment, body.restricted)
    return {
      body: { environment: updated },
      audit: {
        action: 'environment.restrict',
        target: { type: 'environment', id: environment.id },
        details: { from: environment.restricted, to: body.restricted },
      },
    }
  },
})

const grants = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment/grants',
  summary: 'List who is granted access to a (restricted) environment',
  tag: 'members',
  action: 'environment.manage',
  mode: 'read',
  params: environmentParams,
  response: z.object({ grants: z.array(grantView) }),
  async handler({ db, target }) {
    const { environment } = targetOf(target)
    if (!environment) throw new InternalError('an environment route without its environment')
    return { body: { grants: await listGrants(db, environment) } }
  },
})

const grant = defineRoute({
  method: 'PUT',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment/grants/:user',
  summary: 'Grant a project member read (reveal) or write access to one environment',
  tag: 'members',
  action: 'environment.manage',
  mode: 'write',
  params: environmentUserParams,
  body: grantBody,
  response: grantResponse,
  async handler({ app, db, target, params, body }) {
    const { project, environment } = targetOf(target)
    if (!environment) throw new InternalError('an environment route without its environment')
    const r = await setGrant(db, project, environment, params.user, body.access, app.clock())
    return {
      body: { grant: r.grant },
      audit: {
        action: 'environment_grant.set',
        target: { type: 'environment', id: environment.id },
        details: { user: params.user, email: r.grant.email, from: r.from, to: body.access },
      },
    }
  },
})

const ungrant = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment/grants/:user',
  summary: 'Remove a grant',
  tag: 'members',
  action: 'environment.manage',
  mode: 'write',
  params: environmentUserParams,
  response: grantResponse,
  async handler({ db, target, params }) {
    const { environment } = targetOf(target)
    if (!environment) throw new InternalError('an environment route without its environment')
    const g = await removeGrant(db, environment, params.user)
    return {
      body: { grant: g },
      audit: {
        action: 'environment_grant.remove',
        target: { type: 'environment', id: environment.id },
        details: { user: params.user, email: g.email, access: g.access },
      },
    }
  },
})

export const memberRoutes: AnyRoute[] = [
  list,
  setRole,
  remove,
  leave,
  listProject,
  setProject,
  removeProject,
  restrict,
  grants,
  grant,
  ungrant,
]
