import {
  awsCredentialsBody,
  awsCredentialsResponse,
  awsExternalIdResponse,
  awsRoleListResponse,
  awsRoleName,
  awsRoleResponse,
  awsTemplateResponse,
  createAwsRoleBody,
} from '../../api/aws.js'
import type { Principal } from '../../access/policy.js'
import { currentExternalId, rotateExternalId } from '../../dynamic/aws-external-id.js'
import { readInScope } from '../../storage/tenant-scope.js'
import type { Executor } from '../../storage/database.js'
import { createAwsRole, deleteAwsRole, issueAwsCredentials, listAwsRoles } from '../../dynamic/aws-roles.js'
import { cloudFormationTemplate } from '../../dynamic/aws-template.js'
import type { EnvScope } from '../../dynamic/database-roles.js'
import { InternalError } from '../../errors.js'
import { defineRoute, type AnyRoute, type Target } from '../route.js'
import { environmentParams, workspaceParams } from '../schemas.js'

// AWS role assumption (docs/aws.md): Owners and Admins see and rotate the workspace's external
// ID and download the CloudFormation template; project admins register IAM roles per
// environment; whoever may reveal the environment's values gets an STS session of at most an
// hour, shown once.

const W = '/v1/workspaces/:workspace/aws'
const E = '/v1/workspaces/:workspace/projects/:project/environments/:environment/aws-roles'
const roleParams = environmentParams.extend({ role: awsRoleName })

function scopeOf(workspaceId: string, target: Target): EnvScope {
  if (!target.project || !target.environment) throw new InternalError('an aws-role route without its environment')
  return { workspaceId, projectId: target.project.id, environmentId: target.environment.id }
}

/** Who asked, as the STS session is named (CloudTrail shows it): a person's email, or the integration's kind and name. */
function actorName(p: Principal): string {
  return p.type === 'user' ? `coffer-${p.email}` : `coffer-${p.type === 'machine' ? 'machine' : 'token'}-${p.name}`
}

const externalId = defineRoute({
  method: 'GET',
  url: `${W}/external-id`,
  tag: 'aws',
  action: 'aws.external-id.read',
  mode: 'read',
  summary: "The workspace's external ID, which the trust policy of every role Coffer assumes must require (audited)",
  params: workspaceParams,
  response: awsExternalIdResponse,
  async handler({ app, db, workspace }) {
    const id = await currentExternalId(db, app.dataKeys, workspace.id)
    return {
      body: { ...id, principalArn: app.config.aws.principalArn ?? null },
      audit: { action: 'aws.external_id_read', target: { type: 'workspace', id: workspace.id }, details: { version: id.version } },
    }
  },
})

const rotate = defineRoute({
  method: 'POST',
  url: `${W}/external-id/rotate`,
  tag: 'aws',
  action: 'aws.external-id.rotate',
  mode: 'write',
  summary: 'A new external ID; the old one is never sent to STS again (update the stacks that trust it)',
  params: workspaceParams,
  response: awsExternalIdResponse,
  async handler({ app, db, principal, workspace }) {
    const by = principal.type === 'user' ? principal.userId : principal.id
    const id = await rotateExternalId(db, app.dataKeys, workspace.id, { by, now: app.clock() })
    return {
      body: { externalId: id.externalId, version: id.version, rotatedAt: id.rotatedAt, principalArn: app.config.aws.principalArn ?? null },
      audit: {
        action: 'aws.external_id_rotate',
        target: { type: 'workspace', id: workspace.id },
        details: { version: id.version, previousVersion: id.previousVersion },
      },
    }
  },
})

const template = defineRoute({
  method: 'GET',
  url: `${W}/template`,
  tag: 'aws',
  action: 'aws.external-id.read',
  mode: 'read',
  summary: 'A CloudFormation template (JSON) for a read-only role that trusts Coffer with the external ID (audited: it carries the ID)',
  params: workspaceParams,
  response: awsTemplateResponse,
  async handler({ app, db, workspace }) {
    const id = await currentExternalId(db, app.dataKeys, workspace.id)
    const principalArn = app.config.aws.principalArn
    return {
      body: {
        template: cloudFormationTemplate({
          externalId: id.externalId,
          workspace: workspace.slug,
          ...(principalArn ? { principalArn } : {}),
        }),
      },
      audit: {
        action: 'aws.external_id_read',
        target: { type: 'workspace', id: workspace.id },
        details: { version: id.version, template: true },
      },
    }
  },
})

const create = defineRoute({
  method: 'POST',
  url: E,
  tag: 'aws',
  action: 'db.roles.manage',
  mode: 'write',
  status: 201,
  summary: 'Register an IAM role Coffer may assume for the environment (its ARN, an optional region, the longest session)',
  params: environmentParams,
  body: createAwsRoleBody,
  response: awsRoleResponse,
  async handler({ app, db, principal, workspace, target, body }) {
    const role = await createAwsRole(db, scopeOf(workspace.id, target), {
      name: body.name,
      roleArn: body.roleArn,
      ...(body.region !== undefined ? { region: body.region } : {}),
      ...(body.maxDurationSeconds !== undefined ? { maxDurationSeconds: body.maxDurationSeconds } : {}),
      createdBy: principal.type === 'user' ? principal.userId : principal.id,
      now: app.clock(),
    })
    return {
      body: { role },
      audit: {
        action: 'aws.role_create',
        target: { type: 'aws_role', id: role.id },
        details: { name: role.name, roleArn: role.roleArn, region: role.region, maxDurationSeconds: role.maxDurationSeconds },
      },
    }
  },
})

const list = defineRoute({
  method: 'GET',
  url: E,
  tag: 'aws',
  action: 'secret.read',
  mode: 'read',
  summary: "The environment's AWS roles",
  params: environmentParams,
  response: awsRoleListResponse,
  async handler({ db, workspace, target }) {
    return { body: { roles: await listAwsRoles(db, scopeOf(workspace.id, target)) } }
  },
})

const remove = defineRoute({
  method: 'DELETE',
  url: `${E}/:role`,
  tag: 'aws',
  action: 'db.roles.manage',
  mode: 'write',
  summary: 'Forget an AWS role (sessions already issued run out within the hour; delete the stack to end them at once)',
  params: roleParams,
  response: awsRoleResponse,
  async handler({ db, workspace, target, params }) {
    const role = await deleteAwsRole(db, scopeOf(workspace.id, target), params.role)
    return {
      body: { role },
      audit: { action: 'aws.role_delete', target: { type: 'aws_role', id: role.id }, details: { name: role.name, roleArn: role.roleArn } },
    }
  },
})

const credentials = defineRoute({
  method: 'POST',
  url: `${E}/:role/credentials`,
  tag: 'aws',
  action: 'db.credentials',
  // Nothing is written: the role is read in a short read of its own, STS is asked outside any
  // transaction (no pooled connection is held while it answers), and the issuance's audit
  // entry is committed before the answer leaves.
  mode: 'read',
  outsideTransaction: true,
  status: 201,
  summary: 'An STS session of the role (at most an hour): access key, secret key and session token, shown once; audited without them',
  params: roleParams,
  body: awsCredentialsBody.optional(),
  response: awsCredentialsResponse,
  async handler({ app, principal, workspace, target, params, body }) {
    const read = <T>(fn: (db: Executor) => Promise<T>) => readInScope(app.store, workspace.id, fn)
    const r = await issueAwsCredentials(read, app.dataKeys, app.awsSts, scopeOf(workspace.id, target), {
      name: params.role,
      ...(body?.durationSeconds !== undefined ? { durationSeconds: body.durationSeconds } : {}),
      actor: actorName(principal),
    })
    return {
      body: r,
      audit: {
        action: 'aws.credentials_issue',
        target: { type: 'aws_role', id: r.role.id },
        details: {
          name: r.role.name,
          roleArn: r.role.roleArn,
          sessionName: r.credentials.sessionName,
          assumedRoleArn: r.credentials.assumedRoleArn,
          expiresAt: r.credentials.expiresAt,
        },
      },
    }
  },
})

export const awsRoutes: AnyRoute[] = [externalId, rotate, template, create, list, remove, credentials]
