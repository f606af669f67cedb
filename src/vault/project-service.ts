import { randomUUID } from 'node:crypto'
import { isUuid } from '../crypto/encoding.js'
import { ConfirmationMismatchError, EnvironmentSealedError, NotEmptyError, NotFoundError } from '../errors.js'
import { AlreadyExistsError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from './data-keys.js'
import { slugify } from './slug.js'

export interface Project {
  id: string
  workspaceId: string
  slug: string
  name: string
  createdAt: string
}

export interface Environment {
  id: string
  projectId: string
  slug: string
  name: string
  createdAt: string
  /** Developers list keys only, unless granted (see src/access/policy.ts). */
  restricted: boolean
  /** Sealed: people reveal or write its values only through a break-glass grant (access/break-glass.ts). */
  sealed: boolean
  /** Members may keep personal overrides here (never honoured while restricted or sealed). */
  personalOverrides: boolean
  /** The environments it imports (ids), in order: their keys, under its own (migration 13). */
  imports: string[]
  /** Protected: a write becomes a change request that this many other Owners/Admins approve (0: not protected). */
  changeApprovals: number
}

/** Environments every new project starts with. */
export const DEFAULT_ENVIRONMENTS = [
  { slug: 'development', name: 'Development' },
  { slug: 'staging', name: 'Staging' },
  { slug: 'production', name: 'Production' },
] as const

function toProject(r: { id: string; workspace_id: string; slug: string; name: string; created_at: string }): Project {
  return { id: r.id, workspaceId: r.workspace_id, slug: r.slug, name: r.name, createdAt: r.created_at }
}
/** An environments row as the API shows it. */
export function toEnvironment(r: {
  id: string
  project_id: string
  slug: string
  name: string
  created_at: string
  restricted: number
  sealed?: number
  personal_overrides?: number
  imports?: string | null
  change_approvals?: number
}): Environment {
  return {
    id: r.id,
    projectId: r.project_id,
    slug: r.slug,
    name: r.name,
    createdAt: r.created_at,
    restricted: Number(r.restricted) === 1,
    sealed: Number(r.sealed ?? 0) === 1,
    personalOverrides: Number(r.personal_overrides ?? 0) === 1,
    imports: r.imports ? (JSON.parse(r.imports) as string[]) : [],
    changeApprovals: Number(r.change_approvals ?? 0),
  }
}

export async function listProjects(db: Executor, workspaceId: string): Promise<Project[]> {
  const rows = await db.selectFrom('projects').selectAll().where('workspace_id', '=', workspaceId).orderBy('slug').execute()
  return rows.map(toProject)
}

/** The project `ref` (id or slug) inside `workspaceId`; any other is NotFound. */
export async function findProject(db: Executor, workspaceId: string, ref: string): Promise<Project> {
  const q = db.selectFrom('projects').selectAll().where('workspace_id', '=', workspaceId)
  const row = await (isUuid(ref) ? q.where('id', '=', ref) : q.where('slug', '=', ref)).executeTakeFirst()
  if (!row) throw new NotFoundError('project')
  return toProject(row)
}

/** Creates a project with the default environments, each with its own data key. */
export async function createProject(
  tx: Executor,
  deps: { dataKeys: DataKeys },
  workspaceId: string,
  input: { name: string; slug?: string },
  now: Date,
): Promise<{ project: Project; environments: Environment[] }> {
  const slug = input.slug ?? slugify(input.name)
  const taken = await tx
    .selectFrom('projects')
    .select('id')
    .where('workspace_id', '=', workspaceId)
    .where('slug', '=', slug)
    .executeTakeFirst()
  if (taken) throw new AlreadyExistsError('project')
  const row = { id: randomUUID(), workspace_id: workspaceId, slug, name: input.name, created_at: now.toISOString() }
  await tx.insertInto('projects').values(row).execute()
  const project = toProject(row)
  const environments: Environment[] = []
  for (const e of DEFAULT_ENVIRONMENTS) environments.push(await createEnvironment(tx, deps, project, { name: e.name, slug: e.slug }, now))
  return { project, environments }
}

export async function listEnvironments(db: Executor, project: Project): Promise<Environment[]> {
  const rows = await db
    .selectFrom('environments')
    .selectAll()
    .where('workspace_id', '=', project.workspaceId)
    .where('project_id', '=', project.id)
    .orderBy('created_at')
    .orderBy('slug')
    .execute()
  return rows.map(toEnvironment)
}

/** The environment `ref` (id or slug) of `project`; any other is NotFound. */
export async function findEnvironment(db: Executor, project: Project, ref: string): Promise<Environment> {
  const q = db.selectFrom('environments').selectAll().where('workspace_id', '=', project.workspaceId).where('project_id', '=', project.id)
  const row = await (isUuid(ref) ? q.where('id', '=', ref) : q.where('slug', '=', ref)).executeTakeFirst()
  if (!row) throw new NotFoundError('environment')
  return toEnvironment(row)
}

/**
 * Creates an environment and its data key (version 1, primary). It starts restricted when
 * `input.restricted` says so, and by default when its slug is `production`.
 */
let lastCreation = 0

/**
 * A creation time that never repeats or goes back within this process, so environments made
 * in one go (development, staging, production) list in the order they were made even when
 * the clock has not moved between them.
 */
function creationTime(now: Date): string {
  lastCreation = Math.max(now.getTime(), lastCreation + 1)
  return new Date(lastCreation).toISOString()
}

export async function createEnvironment(
  tx: Executor,
  deps: { dataKeys: DataKeys },
  project: Project,
  input: { name: string; slug?: string; restricted?: boolean },
  now: Date,
): Promise<Environment> {
  const slug = input.slug ?? slugify(input.name)
  const taken = await tx
    .selectFrom('environments')
    .select('id')
    .where('project_id', '=', project.id)
    .where('slug', '=', slug)
    .executeTakeFirst()
  if (taken) throw new AlreadyExistsError('environment')
  const restricted = (input.restricted ?? slug === 'production') ? 1 : 0
  const row = {
    id: randomUUID(),
    workspace_id: project.workspaceId,
    project_id: project.id,
    slug,
    name: input.name,
    created_at: creationTime(now),
    restricted,
  }
  await tx.insertInto('environments').values(row).execute()
  await deps.dataKeys.create(tx, { workspaceId: project.workspaceId, projectId: project.id, environmentId: row.id })
  return toEnvironment(row)
}

/** The secret scope named by project and environment refs inside `workspaceId`; NotFound otherwise. */
export async function findScope(
  db: Executor,
  workspaceId: string,
  projectRef: string,
  environmentRef: string,
): Promise<{ workspaceId: string; projectId: string; environmentId: string }> {
  // One query on the hot path (every secret request); the two-step look-up below runs only
  // on a miss, to say which of the two was not found.
  let q = db
    .selectFrom('environments')
    .innerJoin('projects', 'projects.id', 'environments.project_id')
    .select(['projects.id as projectId', 'environments.id as environmentId'])
    .where('environments.workspace_id', '=', workspaceId)
    .where('projects.workspace_id', '=', workspaceId)
  q = isUuid(projectRef) ? q.where('projects.id', '=', projectRef) : q.where('projects.slug', '=', projectRef)
  q = isUuid(environmentRef) ? q.where('environments.id', '=', environmentRef) : q.where('environments.slug', '=', environmentRef)
  const row = await q.executeTakeFirst()
  if (row) return { workspaceId, projectId: row.projectId, environmentId: row.environmentId }
  const project = await findProject(db, workspaceId, projectRef)
  const environment = await findEnvironment(db, project, environmentRef)
  return { workspaceId, projectId: project.id, environmentId: environment.id }
}

/** Protects environment `environmentId` with `approvals` required approvals per change request (0: unprotects it). */
export async function setEnvironmentProtection(db: Executor, workspaceId: string, environmentId: string, approvals: number): Promise<void> {
  await db
    .updateTable('environments')
    .set({ change_approvals: approvals })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', environmentId)
    .execute()
}

/** Seals or unseals environment `environmentId` of the workspace (break-glass decides what sealing means). */
export async function setEnvironmentSealed(db: Executor, workspaceId: string, environmentId: string, sealed: boolean): Promise<void> {
  await db
    .updateTable('environments')
    .set({ sealed: sealed ? 1 : 0 })
    .where('id', '=', environmentId)
    .where('workspace_id', '=', workspaceId)
    .execute()
}

/** Renames a project; its slug (in URLs and CLI configs) never changes. */
export async function renameProject(tx: Executor, project: Project, name: string): Promise<Project> {
  await tx.updateTable('projects').set({ name }).where('id', '=', project.id).where('workspace_id', '=', project.workspaceId).execute()
  return { ...project, name }
}

/** Renames an environment; its slug never changes. */
export async function renameEnvironment(tx: Executor, workspaceId: string, environment: Environment, name: string): Promise<Environment> {
  await tx.updateTable('environments').set({ name }).where('id', '=', environment.id).where('workspace_id', '=', workspaceId).execute()
  return { ...environment, name }
}

/** What deleting an environment destroyed. */
export interface EnvironmentDeletion {
  environmentId: string
  slug: string
  /** The environment's data key: its id and every version destroyed. */
  dataKey: { id: string | null; versions: number[] }
  /** Live secrets (not deleted) and versions of every secret removed. */
  secrets: number
  versions: number
}

async function liveSecrets(tx: Executor, workspaceId: string, where: { projectId: string; environmentId?: string }): Promise<number> {
  let q = tx
    .selectFrom('secrets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .where('project_id', '=', where.projectId)
    .where('deleted', '=', 0)
  if (where.environmentId) q = q.where('environment_id', '=', where.environmentId)
  return Number((await q.executeTakeFirst())?.n ?? 0)
}

/**
 * Deletes an environment in `tx`, crypto-shredding first: every version of its data key is
 * overwritten (state `shredded`, as a workspace deletion does), so its ciphertexts are
 * unreadable from that statement on; then its rows (secrets, versions, keys, grants,
 * break-glass requests, reseal jobs, the environment) are removed in the same transaction.
 * `confirm` must be its slug, a sealed environment is
 * refused (unsealed first), and one holding live secrets needs `force`.
 */
export async function deleteEnvironment(
  tx: Executor,
  deps: { dataKeys: DataKeys },
  project: Project,
  environment: Environment,
  opts: { confirm: string; force: boolean },
): Promise<EnvironmentDeletion> {
  if (opts.confirm !== environment.slug) {
    throw new ConfirmationMismatchError(
      'To delete the environment, send its slug again as "confirm"; it did not match. Nothing was deleted.',
    )
  }
  const ws = project.workspaceId
  // Read the seal inside the write's transaction: a seal committed since the request was placed counts.
  const row = await tx
    .selectFrom('environments')
    .select('sealed')
    .where('id', '=', environment.id)
    .where('workspace_id', '=', ws)
    .executeTakeFirst()
  if (!row) throw new NotFoundError('environment')
  if (Number(row.sealed) === 1) throw new EnvironmentSealedError()
  const live = await liveSecrets(tx, ws, { projectId: project.id, environmentId: environment.id })
  if (live > 0 && !opts.force) {
    throw new NotEmptyError(
      `The environment ${environment.slug} holds ${live} secret(s); deleting it destroys them for good. Send "force": true to delete it anyway.`,
    )
  }
  const scope = { workspaceId: ws, projectId: project.id, environmentId: environment.id }
  // In the documented lock order (docs/architecture.md): reseal jobs, data keys, then secrets.
  await tx.deleteFrom('key_jobs').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  const dataKey = await deps.dataKeys.shredScope(tx, scope)
  const versions = await tx
    .deleteFrom('secret_versions')
    .where('workspace_id', '=', ws)
    .where('environment_id', '=', environment.id)
    .executeTakeFirst()
  await tx.deleteFrom('secrets').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  // The triggers dropped it with the secrets; an environment that never held one may still have one.
  await tx.deleteFrom('environment_snapshots').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  await tx.deleteFrom('personal_overrides').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  await tx.deleteFrom('environment_grants').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  await tx.deleteFrom('data_keys').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  const requests = tx
    .selectFrom('breakglass_requests')
    .select('id')
    .where('workspace_id', '=', ws)
    .where('environment_id', '=', environment.id)
  await tx.deleteFrom('breakglass_decisions').where('workspace_id', '=', ws).where('request_id', 'in', requests).execute()
  await tx.deleteFrom('breakglass_requests').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  const changes = tx.selectFrom('change_requests').select('id').where('workspace_id', '=', ws).where('environment_id', '=', environment.id)
  await tx.deleteFrom('change_request_decisions').where('workspace_id', '=', ws).where('request_id', 'in', changes).execute()
  await tx.deleteFrom('change_requests').where('workspace_id', '=', ws).where('environment_id', '=', environment.id).execute()
  await tx.deleteFrom('environments').where('workspace_id', '=', ws).where('id', '=', environment.id).execute()
  // Environments that imported it import it no more.
  const importers = await tx
    .selectFrom('environments')
    .select(['id', 'imports'])
    .where('workspace_id', '=', ws)
    .where('imports', 'is not', null)
    .execute()
  for (const e of importers) {
    const ids = JSON.parse(e.imports ?? '[]') as string[]
    if (!ids.includes(environment.id)) continue
    const left = ids.filter((id) => id !== environment.id)
    await tx
      .updateTable('environments')
      .set({ imports: left.length ? JSON.stringify(left) : null })
      .where('workspace_id', '=', ws)
      .where('id', '=', e.id)
      .execute()
  }
  return { environmentId: environment.id, slug: environment.slug, dataKey, secrets: live, versions: Number(versions.numDeletedRows) }
}

/**
 * Deletes a project in `tx`: each of its environments as `deleteEnvironment` does (keys
 * shredded first), then its project roles, and pending invitations that named it are revoked
 * (their project reference cleared). `confirm` must be its slug; a sealed environment is
 * refused; live secrets anywhere in it need `force`. Integration scopes that named the project
 * are left as they are and grant nothing: project ids are never reused.
 */
export async function deleteProject(
  tx: Executor,
  deps: { dataKeys: DataKeys },
  project: Project,
  opts: { confirm: string; force: boolean; now: Date },
): Promise<{ environments: EnvironmentDeletion[]; invitationsRevoked: number }> {
  if (opts.confirm !== project.slug) {
    throw new ConfirmationMismatchError('To delete the project, send its slug again as "confirm"; it did not match. Nothing was deleted.')
  }
  const ws = project.workspaceId
  const envs = await listEnvironments(tx, project)
  const sealed = envs.filter((e) => e.sealed)
  if (sealed.length) {
    throw new EnvironmentSealedError(
      `The project's environment ${sealed.map((e) => e.slug).join(', ')} is sealed: an Owner or Admin unseals it first, then the project can be deleted.`,
    )
  }
  const live = await liveSecrets(tx, ws, { projectId: project.id })
  if (live > 0 && !opts.force) {
    throw new NotEmptyError(
      `The project ${project.slug} holds ${live} secret(s); deleting it destroys them for good. Send "force": true to delete it anyway.`,
    )
  }
  const environments: EnvironmentDeletion[] = []
  for (const e of envs) environments.push(await deleteEnvironment(tx, deps, project, e, { confirm: e.slug, force: true }))
  await tx.deleteFrom('project_members').where('workspace_id', '=', ws).where('project_id', '=', project.id).execute()
  const revoked = await tx
    .updateTable('invitations')
    .set({ revoked_at: opts.now.toISOString() })
    .where('workspace_id', '=', ws)
    .where('project_id', '=', project.id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  await tx
    .updateTable('invitations')
    .set({ project_id: null, project_role: null })
    .where('workspace_id', '=', ws)
    .where('project_id', '=', project.id)
    .execute()
  await tx.deleteFrom('projects').where('workspace_id', '=', ws).where('id', '=', project.id).execute()
  return { environments, invitationsRevoked: Number(revoked.numUpdatedRows) }
}

/** Sets the environments `environmentId` imports (ids, in order; none: empty). */
export async function setEnvironmentImports(db: Executor, workspaceId: string, environmentId: string, imports: string[]): Promise<void> {
  await db
    .updateTable('environments')
    .set({ imports: imports.length ? JSON.stringify(imports) : null })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', environmentId)
    .execute()
}

/** Every environment of the workspace that imports others, with what it imports (ids). */
export async function environmentImportGraph(db: Executor, workspaceId: string): Promise<Map<string, string[]>> {
  const rows = await db
    .selectFrom('environments')
    .select(['id', 'imports'])
    .where('workspace_id', '=', workspaceId)
    .where('imports', 'is not', null)
    .execute()
  return new Map(rows.map((r) => [r.id, JSON.parse(r.imports ?? '[]') as string[]]))
}

/** Allows (or stops allowing) personal overrides in an environment. */
export async function setPersonalOverridesAllowed(
  db: Executor,
  workspaceId: string,
  environmentId: string,
  allowed: boolean,
): Promise<void> {
  await db
    .updateTable('environments')
    .set({ personal_overrides: allowed ? 1 : 0 })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', environmentId)
    .execute()
}
