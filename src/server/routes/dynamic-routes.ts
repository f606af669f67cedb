import {
  createDbRoleBody,
  dbCredentialsBody,
  dbCredentialsResponse,
  dbRoleListResponse,
  dbRoleName,
  dbRoleResponse,
} from '../../api/dynamic.js'
import { createDbRole, deleteDbRole, type EnvScope, issueDbCredentials, listDbRoles } from '../../dynamic/database-roles.js'
import { InternalError } from '../../errors.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'
import { environmentParams } from '../schemas.js'

// Dynamic PostgreSQL credentials (docs/dynamic-credentials.md): project admins define how
// login roles are made for an environment; whoever may reveal the environment's values (a
// person, a machine identity, a service token) gets a fresh role that expires.

const E = '/v1/workspaces/:workspace/projects/:project/environments/:environment'
const roleParams = environmentParams.extend({ role: dbRoleName })

function scopeOf(workspaceId: string, target: Target): EnvScope {
  if (!target.project || !target.environment) throw new InternalError('a db-role route without its environment')
  return { workspaceId, projectId: target.project.id, environmentId: target.environment.id }
}

const create = defineRoute({
  method: 'POST',
  url: `${E}/db-roles`,
  tag: 'dynamic',
  action: 'db.roles.manage',
  mode: 'write',
  status: 201,
  summary: 'Define how short-lived PostgreSQL login roles are made for the environment (the admin URL is kept sealed, never shown)',
  params: environmentParams,
  body: createDbRoleBody,
  response: dbRoleResponse,
  async handler({ app, db, principal, workspace, target, body }) {
    const max = body.maxTtlSeconds ?? 3600
    const role = await createDbRole(db, app.dataKeys, app.outbound, scopeOf(workspace.id, target), {
      name: body.name,
      adminUrl: body.adminUrl,
      creationSql: body.creationSql,
      defaultTtlSeconds: body.defaultTtlSeconds ?? Math.min(3600, max),
      maxTtlSeconds: max,
      createdBy: principal.type === 'user' ? principal.userId : principal.type,
      now: app.clock(),
    })
    return {
      body: { role },
      audit: { action: 'db.role_create', target: { type: 'db_role', id: role.id }, details: { name: role.name, target: role.target } },
    }
  },
})

const list = defineRoute({
  method: 'GET',
  url: `${E}/db-roles`,
  tag: 'dynamic',
  action: 'secret.read',
  mode: 'read',
  summary: "The environment's ways to make database credentials",
  params: environmentParams,
  response: dbRoleListResponse,
  async handler({ db, workspace, target }) {
    return { body: { roles: await listDbRoles(db, scopeOf(workspace.id, target)) } }
  },
})

const remove = defineRoute({
  method: 'DELETE',
  url: `${E}/db-roles/:role`,
  tag: 'dynamic',
  action: 'db.roles.manage',
  mode: 'write',
  summary: 'Delete a db role; the login roles made from it expire now and are dropped',
  params: roleParams,
  response: dbRoleResponse,
  async handler({ app, db, workspace, target, params }) {
    const r = await deleteDbRole(db, scopeOf(workspace.id, target), params.role, app.clock())
    return {
      body: { role: r.role },
      audit: { action: 'db.role_delete', target: { type: 'db_role', id: r.role.id }, details: { name: r.role.name, expired: r.expired } },
    }
  },
})

const credentials = defineRoute({
  method: 'POST',
  url: `${E}/db-roles/:role/credentials`,
  tag: 'dynamic',
  action: 'db.credentials',
  mode: 'write',
  status: 201,
  summary: 'A fresh PostgreSQL login role that expires (shown once; audited without the password)',
  params: roleParams,
  body: dbCredentialsBody.optional(),
  response: dbCredentialsResponse,
  async handler({ app, db, principal, workspace, target, params, body }) {
    const actor = principal.type === 'user' ? principal.userId : `${principal.type}`
    const r = await issueDbCredentials(db, app.dataKeys, app.outbound, scopeOf(workspace.id, target), {
      name: params.role,
      ...(body?.ttlSeconds !== undefined ? { ttlSeconds: body.ttlSeconds } : {}),
      actor,
      now: app.clock(),
    })
    return {
      body: r,
      audit: {
        action: 'db.credentials_issue',
        target: { type: 'db_role', id: r.role.id },
        details: { name: r.role.name, username: r.credentials.username, lease: r.credentials.leaseId, expiresAt: r.credentials.expiresAt },
      },
    }
  },
})

export const dynamicRoutes: AnyRoute[] = [create, list, remove, credentials]
