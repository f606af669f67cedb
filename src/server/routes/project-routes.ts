import {
  createEnvironmentBody,
  createProjectBody,
  deletionBody,
  environmentDeletionResponse,
  environmentListResponse,
  environmentMatrixResponse,
  environmentResponse,
  type MatrixCell,
  projectDeletionResponse,
  projectDetailResponse,
  projectListResponse,
  projectResponse,
  renameEnvironmentBody,
  renameProjectBody,
} from '../../api/projects.js'
import { workspaceView } from '../../api/workspaces.js'
import {
  createEnvironment,
  createProject,
  deleteEnvironment,
  deleteProject,
  type EnvironmentDeletion,
  listEnvironments,
  listProjects,
  renameEnvironment,
  renameProject,
} from '../../vault/project-service.js'
import { scrubAfterShred } from '../../vault/workspace-deletion.js'
import type { AuditEvent } from '../../audit/audit-log.js'
import { environmentViews } from '../../access/environment-access.js'
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
import { environmentParams, projectParams, workspaceParams } from '../schemas.js'

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

/** The environment the pipeline resolved (and the policy allowed) from the URL. */
function environmentOf(target: Target): Environment {
  if (!target.environment) throw new InternalError('an environment route without its environment')
  return target.environment
}

const rename = defineRoute({
  method: 'PATCH',
  url: '/v1/workspaces/:workspace/projects/:project',
  summary: 'Rename a project (its display name; the slug never changes)',
  tag: 'projects',
  action: 'project.manage',
  mode: 'write',
  params: projectParams,
  body: renameProjectBody,
  response: projectResponse,
  async handler({ db, target, body }) {
    const project = projectOf(target)
    const renamed = await renameProject(db, project, body.name)
    return {
      body: { project: renamed },
      audit: { action: 'project.rename', target: { type: 'project', id: project.id }, details: { from: project.name, to: renamed.name } },
    }
  },
})

/** The audit entry of one environment's deletion: the data key destroyed, with its id and versions. */
function environmentDeletionEvent(projectId: string, d: EnvironmentDeletion): AuditEvent {
  return {
    action: 'environment.delete',
    target: { type: 'environment', id: d.environmentId },
    details: {
      project: projectId,
      slug: d.slug,
      dataKey: d.dataKey.id,
      dataKeyVersions: d.dataKey.versions,
      secrets: d.secrets,
      versions: d.versions,
    },
  }
}

function deletionView(d: EnvironmentDeletion) {
  return { id: d.environmentId, slug: d.slug, dataKey: d.dataKey, secrets: d.secrets, versions: d.versions }
}

const remove = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/projects/:project',
  summary:
    'Delete a project (Owner/Admin; send its slug as "confirm", and "force" while it holds secrets): every data key is destroyed, its rows removed',
  tag: 'projects',
  action: 'project.delete',
  mode: 'write',
  params: projectParams,
  body: deletionBody,
  response: projectDeletionResponse,
  async handler({ app, db, target, body }) {
    const project = projectOf(target)
    const r = await deleteProject(db, { dataKeys: app.dataKeys }, project, {
      confirm: body.confirm,
      force: body.force ?? false,
      now: app.clock(),
    })
    return {
      body: {
        project: { id: project.id, slug: project.slug },
        environments: r.environments.map(deletionView),
        invitationsRevoked: r.invitationsRevoked,
      },
      audit: [
        ...r.environments.map((d) => environmentDeletionEvent(project.id, d)),
        {
          action: 'project.delete',
          target: { type: 'project', id: project.id },
          details: {
            slug: project.slug,
            name: project.name,
            environments: r.environments.map((d) => d.slug),
            dataKeys: r.environments.map((d) => d.dataKey.id ?? ''),
            secrets: r.environments.reduce((n, d) => n + d.secrets, 0),
            invitationsRevoked: r.invitationsRevoked,
          },
        },
      ],
      afterCommit: () => scrubAfterShred(app.store.db, app.store.engine),
    }
  },
})

const renameEnv = defineRoute({
  method: 'PATCH',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment',
  summary: 'Rename an environment (its display name; the slug never changes)',
  tag: 'projects',
  action: 'environment.manage',
  mode: 'write',
  params: environmentParams,
  body: renameEnvironmentBody,
  response: environmentResponse,
  async handler({ db, workspace, target, body }) {
    const environment = environmentOf(target)
    const renamed = await renameEnvironment(db, workspace.id, environment, body.name)
    return {
      body: { environment: renamed },
      audit: {
        action: 'environment.rename',
        target: { type: 'environment', id: environment.id },
        details: { project: environment.projectId, from: environment.name, to: renamed.name },
      },
    }
  },
})

const removeEnv = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace/projects/:project/environments/:environment',
  summary:
    'Delete an environment (project admin; send its slug as "confirm", and "force" while it holds secrets): its data key is destroyed at once, its rows removed',
  tag: 'projects',
  action: 'environment.delete',
  mode: 'write',
  params: environmentParams,
  body: deletionBody,
  response: environmentDeletionResponse,
  async handler({ app, db, target, body }) {
    const project = projectOf(target)
    const d = await deleteEnvironment(db, { dataKeys: app.dataKeys }, project, environmentOf(target), {
      confirm: body.confirm,
      force: body.force ?? false,
    })
    return {
      body: { projectId: project.id, environment: deletionView(d) },
      audit: environmentDeletionEvent(project.id, d),
      afterCommit: () => scrubAfterShred(app.store.db, app.store.engine),
    }
  },
})

const matrix = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/projects/:project/matrix',
  summary: 'Compare environments: every key, per environment present or missing, its version and a keyed fingerprint of its value',
  tag: 'secrets',
  action: 'project.read',
  mode: 'read',
  params: projectParams,
  response: environmentMatrixResponse,
  async handler({ app, db, principal, workspace, target }) {
    const project = projectOf(target)
    const environments = visibleEnvironments(principal, project.id, await listEnvironments(db, project))
    const views = await environmentViews(db, principal, project, environments)
    const listed = environments.filter((e) => views.get(e.id)?.access !== 'none')
    const withFingerprints = new Set(listed.filter((e) => views.get(e.id)?.fingerprints).map((e) => e.id))
    const cells = await app.secrets.matrix(
      db,
      { workspaceId: workspace.id, projectId: project.id },
      listed.map((e) => e.id),
      withFingerprints,
    )
    const keys = new Set<string>()
    for (const m of cells.values()) for (const k of m.keys()) keys.add(k)
    const missing: MatrixCell = { present: false }
    return {
      body: {
        project,
        environments: environments.map((e) => ({
          ...e,
          access: views.get(e.id)?.access ?? 'none',
          fingerprints: withFingerprints.has(e.id),
        })),
        keys: [...keys].sort().map((key) => ({
          key,
          cells: environments.map((e): MatrixCell | null => {
            const m = cells.get(e.id)
            if (!m) return null
            const c = m.get(key)
            if (!c) return missing
            return { present: true, version: c.version, fingerprint: c.fingerprint ? c.fingerprint.toString('base64url') : null }
          }),
        })),
      },
    }
  },
})

export const projectRoutes: AnyRoute[] = [
  getWorkspace,
  list,
  create,
  get,
  listEnvs,
  createEnv,
  rename,
  remove,
  renameEnv,
  removeEnv,
  matrix,
]
