import {
  createEnvironmentBody,
  createProjectBody,
  environmentListResponse,
  environmentResponse,
  projectDetailResponse,
  projectListResponse,
} from '../../api/projects.js'
import { workspaceView } from '../../api/workspaces.js'
import { createEnvironment, createProject, listEnvironments, listProjects } from '../../vault/project-service.js'
import { integrationScope, type Principal } from '../../access/policy.js'
import { visibleProjectIds } from '../../access/project-members.js'
import { InternalError } from '../../errors.js'
import type { Environment, Project } from '../../vault/project-service.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'

/** The project the pipeline resolved (and the policy allowed) from the URL. */
function projectOf(target: Target): Project {
  if (!target.project) throw new InternalError('a project route without its project')
  return target.project
}

/** An integration sees only the environments of its scope; a person sees them all (restricted ones say so). */
function visibleEnvironments(principal: Principal, projectId: string, environments: Environment[]): Environment[] {
  if (principal.type === 'user') return environments
  return environments.filter((e) => integrationScope(principal, projectId, e.id))
}
import { projectParams, workspaceParams } from '../schemas.js'

const getWorkspace = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace',
  summary: 'Show a workspace',
  tag: 'projects',
  action: 'workspace.read',
  mode: 'read',
  params: workspaceParams,
  response: workspaceView,
  async handler({ workspace }) {
    return { body: workspace }
  },
})

const list = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/projects',
  summary: 'List projects',
  tag: 'projects',
  action: 'project.list',
  mode: 'read',
  params: workspaceParams,
  response: projectListResponse,
  async handler({ db, principal, workspace }) {
    // Only the projects the caller may see: a Member's, an integration's scope, all for Owners and Admins.
    const visible = await visibleProjectIds(db, principal)
    const projects = await listProjects(db, workspace.id)
    return { body: { projects: visible ? projects.filter((p) => visible.has(p.id)) : projects } }
  },
})

const create = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/projects',
  summary: 'Create a project with development, staging and production',
  tag: 'projects',
  action: 'project.create',
  mode: 'write',
  status: 201,
  params: workspaceParams,
  body: createProjectBody,
  response: projectDetailResponse,
  async handler({ app, db, workspace, body }) {
    const r = await createProject(db, { dataKeys: app.dataKeys }, workspace.id, body, app.clock())
    return {
      body: r,
      audit: {
        action: 'project.create',
        target: { type: 'project', id: r.project.id },
        details: { slug: r.project.slug, name: r.project.name, environments: r.environments.map((e) => e.slug) },
      },
    }
  },
})

const get = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/projects/:project',
  summary: 'Show a project and its environments',
  tag: 'projects',
  action: 'project.read',
  mode: 'read',
  params: projectParams,
  response: projectDetailResponse,
  async handler({ db, principal, target }) {
    const project = projectOf(target)
    return { body: { project, environments: visibleEnvironments(principal, project.id, await listEnvironments(db, project)) } }
  },
})

const listEnvs = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/projects/:project/environments',
  summary: 'List environments of a project',
  tag: 'projects',
  action: 'project.read',
  mode: 'read',
  params: projectParams,
  response: environmentListResponse,
  async handler({ db, principal, target }) {
    const project = projectOf(target)
    return { body: { environments: visibleEnvironments(principal, project.id, await listEnvironments(db, project)) } }
  },
})

const createEnv = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/projects/:project/environments',
  summary: 'Create an environment (with its own data key)',
  tag: 'projects',
  action: 'environment.create',
  mode: 'write',
  status: 201,
  params: projectParams,
  body: createEnvironmentBody,
  response: environmentResponse,
  async handler({ app, db, target, body }) {
    const project = projectOf(target)
    const environment = await createEnvironment(db, { dataKeys: app.dataKeys }, project, body, app.clock())
    return {
      body: { environment },
      audit: {
        action: 'environment.create',
        target: { type: 'environment', id: environment.id },
        details: { project: project.id, slug: environment.slug, restricted: environment.restricted },
      },
    }
  },
})

export const projectRoutes: AnyRoute[] = [getWorkspace, list, create, get, listEnvs, createEnv]
