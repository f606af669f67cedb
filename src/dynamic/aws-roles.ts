import { randomUUID } from 'node:crypto'
import { AlreadyExistsError, NotFoundError, ValidationError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from '../vault/data-keys.js'
import { currentExternalId } from './aws-external-id.js'
import { type AwsSessionCredentials, MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, type RoleAssumer, sessionNameOf } from './aws-sts.js'
import type { EnvScope } from './database-roles.js'

// AWS roles of an environment: an IAM role in a customer's account that trusts Coffer's
// principal with the workspace's external ID. Asking for credentials assumes it with STS
// (at most one hour) and hands the session's keys out once; nothing of them is stored, and
// nothing long-lived of the customer's account ever is — revoking is deleting the role (the
// CloudFormation stack), after which STS refuses.

/** An AWS role as the API shows it. */
export interface AwsRoleView {
  readonly id: string
  readonly name: string
  readonly roleArn: string
  readonly region: string | null
  readonly maxDurationSeconds: number
  readonly createdAt: string
}

/** Credentials handed out once (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
export interface AwsCredentials extends AwsSessionCredentials {
  readonly region: string | null
  readonly sessionName: string
}

export const ROLE_ARN_RE = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/
export const REGION_RE = /^[a-z]{2}(-[a-z0-9]+)+-\d+$/

const VIEW = ['id', 'name', 'role_arn', 'region', 'max_duration_seconds', 'created_at'] as const

function viewOf(r: {
  id: string
  name: string
  role_arn: string
  region: string | null
  max_duration_seconds: number
  created_at: string
}): AwsRoleView {
  return {
    id: r.id,
    name: r.name,
    roleArn: r.role_arn,
    region: r.region,
    maxDurationSeconds: Number(r.max_duration_seconds),
    createdAt: r.created_at,
  }
}

function checkDuration(seconds: number, max: number, path: string): void {
  if (!Number.isInteger(seconds) || seconds < MIN_SESSION_SECONDS || seconds > max)
    throw new ValidationError(`A session lasts ${MIN_SESSION_SECONDS} to ${max} seconds.`, [{ path, message: 'out of range' }])
}

/** Registers an IAM role for the environment (checked for form only: STS is asked when credentials are). */
export async function createAwsRole(
  db: Executor,
  scope: EnvScope,
  input: { name: string; roleArn: string; region?: string; maxDurationSeconds?: number; createdBy: string; now: Date },
): Promise<AwsRoleView> {
  if (!ROLE_ARN_RE.test(input.roleArn))
    throw new ValidationError('The role ARN must look like arn:aws:iam::123456789012:role/NAME.', [
      { path: 'body.roleArn', message: 'not an IAM role ARN' },
    ])
  if (input.region !== undefined && !REGION_RE.test(input.region))
    throw new ValidationError('The region must be an AWS region name, e.g. eu-west-1.', [{ path: 'body.region', message: 'not a region' }])
  const max = input.maxDurationSeconds ?? MAX_SESSION_SECONDS
  checkDuration(max, MAX_SESSION_SECONDS, 'body.maxDurationSeconds')
  const taken = await db
    .selectFrom('aws_roles')
    .select('id')
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('name', '=', input.name)
    .executeTakeFirst()
  if (taken) throw new AlreadyExistsError('AWS role')
  const row = {
    id: randomUUID(),
    workspace_id: scope.workspaceId,
    project_id: scope.projectId,
    environment_id: scope.environmentId,
    name: input.name,
    role_arn: input.roleArn,
    region: input.region ?? null,
    max_duration_seconds: max,
    created_at: input.now.toISOString(),
    created_by: input.createdBy,
  }
  await db.insertInto('aws_roles').values(row).execute()
  return viewOf(row)
}

export async function listAwsRoles(db: Executor, scope: EnvScope): Promise<AwsRoleView[]> {
  const rows = await db
    .selectFrom('aws_roles')
    .select(VIEW)
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .orderBy('name')
    .execute()
  return rows.map(viewOf)
}

async function findRole(db: Executor, scope: EnvScope, name: string): Promise<AwsRoleView> {
  const r = await db
    .selectFrom('aws_roles')
    .select(VIEW)
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('name', '=', name)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('AWS role')
  return viewOf(r)
}

/**
 * Forgets a role. Credentials already issued stay valid until they expire (at most an hour):
 * STS sessions cannot be recalled from here; deleting the role in AWS (the stack) ends them.
 */
export async function deleteAwsRole(db: Executor, scope: EnvScope, name: string): Promise<AwsRoleView> {
  const role = await findRole(db, scope, name)
  await db.deleteFrom('aws_roles').where('workspace_id', '=', scope.workspaceId).where('id', '=', role.id).execute()
  return role
}

/**
 * Assumes the role named `name` with the workspace's current external ID for
 * `durationSeconds` (default: the role's longest) and returns the session's credentials once.
 * `actor` names who asked (an email, a machine's name): it becomes the STS session name.
 */
export async function issueAwsCredentials(
  read: <T>(fn: (db: Executor) => Promise<T>) => Promise<T>,
  keys: DataKeys,
  sts: RoleAssumer,
  scope: EnvScope,
  input: { name: string; durationSeconds?: number; actor: string },
): Promise<{ credentials: AwsCredentials; role: AwsRoleView }> {
  // One short read; STS is asked with no database connection or snapshot held (`read` ends first).
  const { role, externalId } = await read(async (db) => ({
    role: await findRole(db, scope, input.name),
    externalId: (await currentExternalId(db, keys, scope.workspaceId)).externalId,
  }))
  const duration = input.durationSeconds ?? role.maxDurationSeconds
  checkDuration(duration, role.maxDurationSeconds, 'body.durationSeconds')
  const sessionName = sessionNameOf(input.actor)
  const session = await sts.assumeRole({ roleArn: role.roleArn, externalId, sessionName, durationSeconds: duration })
  return { credentials: { ...session, region: role.region, sessionName }, role }
}
