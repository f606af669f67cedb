import { z } from 'zod'
import { createEnvironment, createProject, findProject, listEnvironments, listProjects } from '../../vault/project-service.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { environmentView, name, projectParams, projectView, slug, workspaceParams, workspaceView } from '../schemas.js'

const getWorkspace = defineRoute({
  method: 'GET', url: '/v1/workspaces/:workspace', summary: 'Show a workspace', tag: 'projects',
  action: 'workspace.read', mode: 'read', params: workspaceParams, response: workspaceView,
  async handler({ workspace }) {
    return { body: workspace }
  },
})

const list = defineRoute({
  method: 'GET', url: '/v1/workspaces/:workspace/projects', summary: 'List projects', tag: 'projects',
  action: 'project.read', mode: 'read', params: workspaceParams, response: z.object({ projects: z.array(projectView) }),
  async handler({ db, workspace }) {
    return { body: { projects: await listProjects(db, workspace.id) } }
  },
})

const create = defineRoute({
  method: 'POST', url: '/v1/workspaces/:workspace/projects', summary: 'Create a project with development, staging and production', tag: 'projects',
  action: 'project.create', mode: 'write', status: 201, params: workspaceParams,
  body: z.strictObject({ name, slug: slug.optional() }),
  response: z.object({ project: projectView, environments: z.array(environmentView) }),
  async handler({ app, db, workspace, body }) {
    const r = await createProject(db, { dataKeys: app.dataKeys }, workspace.id, body)
    return { body: r, audit: { action: 'project.create', target: { type: 'project', id: r.project.id }, details: { slug: r.project.slug, name: r.project.name, environments: r.environments.map((e) => e.slug) } } }
  },
})

const get = defineRoute({
  method: 'GET', url: '/v1/workspaces/:workspace/projects/:project', summary: 'Show a project and its environments', tag: 'projects',
  action: 'project.read', mode: 'read', params: projectParams, response: z.object({ project: projectView, environments: z.array(environmentView) }),
  async handler({ db, workspace, params }) {
    const project = await findProject(db, workspace.id, params.project)
    return { body: { project, environments: await listEnvironments(db, project) } }
  },
})

const listEnvs = defineRoute({
  method: 'GET', url: '/v1/workspaces/:workspace/projects/:project/environments', summary: 'List environments of a project', tag: 'projects',
  action: 'project.read', mode: 'read', params: projectParams, response: z.object({ environments: z.array(environmentView) }),
  async handler({ db, workspace, params }) {
    const project = await findProject(db, workspace.id, params.project)
    return { body: { environments: await listEnvironments(db, project) } }
  },
})

const createEnv = defineRoute({
  method: 'POST', url: '/v1/workspaces/:workspace/projects/:project/environments', summary: 'Create an environment (with its own data key)', tag: 'projects',
  action: 'environment.create', mode: 'write', status: 201, params: projectParams,
  body: z.strictObject({ name, slug: slug.optional() }),
  response: z.object({ environment: environmentView }),
  async handler({ app, db, workspace, params, body }) {
    const project = await findProject(db, workspace.id, params.project)
    const environment = await createEnvironment(db, { dataKeys: app.dataKeys }, project, body)
    return { body: { environment }, audit: { action: 'environment.create', target: { type: 'environment', id: environment.id }, details: { project: project.id, slug: environment.slug } } }
  },
})

export const projectRoutes: AnyRoute[] = [getWorkspace, list, create, get, listEnvs, createEnv]
