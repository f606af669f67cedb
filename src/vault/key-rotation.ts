import { randomUUID } from 'node:crypto'
import type { AuditEvent } from '../audit/audit-log.js'
import type { DataKeyScope } from '../crypto/key-provider.js'
import { NotFoundError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { KeyJobTable } from '../storage/schema.js'
import type { DataKeys } from './data-keys.js'

/** A data-key version as the API shows it; never the key. */
export interface KeyVersionView {
  id: string
  version: number
  state: 'primary' | 'active' | 'shredded'
  encryptions: number
  rootKeyId: string
  createdAt: string
}

/** A reseal job's progress. */
export interface KeyJobView {
  id: string
  kind: 'reseal'
  state: KeyJobTable['state']
  reason: string
  keyId: string
  targetVersion: number
  total: number
  done: number
  error: string | null
  createdAt: string
  updatedAt: string
  finishedAt: string | null
}

/** Why a key rotates: asked for, its age, or its usage count. */
export type RotationReason = 'manual' | 'schedule' | 'usage'

export function jobView(r: KeyJobTable): KeyJobView {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    reason: r.reason,
    keyId: r.dek_id,
    targetVersion: r.target_version,
    total: Number(r.total),
    done: Math.min(Number(r.done), Number(r.total)),
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  }
}

/** Counts the ciphertext-carrying versions of `dekId` older than `below`. */
async function countOlder(db: Executor, dekId: string, below: number): Promise<number> {
  const r = await db
    .selectFrom('secret_versions')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('dek_id', '=', dekId)
    .where('dek_version', '<', below)
    .executeTakeFirst()
  return Number(r?.n ?? 0)
}

/**
 * Rotates the scope's data key: a new version becomes primary in this transaction (so new
 * writes use it on every node as soon as it commits) and one reseal job per scope carries
 * every older version to it. Returns null when `expectVersion` is no longer the primary.
 */
export async function rotateDataKey(
  tx: Executor,
  dataKeys: DataKeys,
  scope: DataKeyScope,
  reason: RotationReason,
  now: Date,
  expectVersion?: number,
): Promise<{ key: { id: string; version: number; previous: number }; job: KeyJobView; audit: AuditEvent } | null> {
  const key = await dataKeys.rotate(tx, scope, expectVersion)
  if (!key) return null
  const at = now.toISOString()
  const total = await countOlder(tx, key.id, key.version)
  const running = await tx
    .selectFrom('key_jobs')
    .selectAll()
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('state', '=', 'running')
    .executeTakeFirst()
  let job: KeyJobTable
  if (running) {
    // One job per scope: it now carries everything older than the new primary.
    job = { ...running, target_version: key.version, total: Number(running.done) + total, updated_at: at }
    await tx
      .updateTable('key_jobs')
      .set({ target_version: job.target_version, total: job.total, updated_at: at })
      .where('id', '=', running.id)
      .execute()
  } else {
    job = {
      id: randomUUID(),
      kind: 'reseal',
      workspace_id: scope.workspaceId,
      project_id: scope.projectId,
      environment_id: scope.environmentId,
      dek_id: key.id,
      target_version: key.version,
      state: 'running',
      reason,
      total,
      done: 0,
      lease_owner: null,
      lease_until: 0,
      error: null,
      created_at: at,
      updated_at: at,
      finished_at: null,
    }
    await tx.insertInto('key_jobs').values(job).execute()
  }
  return {
    key,
    job: jobView(job),
    audit: {
      action: 'key.rotated',
      target: { type: 'environment', id: scope.environmentId },
      details: { keyId: key.id, version: key.version, previousVersion: key.previous, reason, resealJob: job.id, toReseal: total },
    },
  }
}

/** Every version of the scope's key and its latest reseal jobs, newest first. */
export async function keyStatus(db: Executor, scope: DataKeyScope): Promise<{ versions: KeyVersionView[]; jobs: KeyJobView[] }> {
  const versions = await db
    .selectFrom('data_keys')
    .select(['id', 'version', 'state', 'encryptions', 'root_key_id', 'created_at'])
    .where('workspace_id', '=', scope.workspaceId)
    .where('project_id', '=', scope.projectId)
    .where('environment_id', '=', scope.environmentId)
    .orderBy('version', 'desc')
    .execute()
  const jobs = await db
    .selectFrom('key_jobs')
    .selectAll()
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .orderBy('created_at', 'desc')
    .limit(10)
    .execute()
  return {
    versions: versions.map((v) => ({
      id: v.id,
      version: v.version,
      state: v.state,
      encryptions: Number(v.encryptions),
      rootKeyId: v.root_key_id,
      createdAt: v.created_at,
    })),
    jobs: jobs.map(jobView),
  }
}

/** One reseal job of the workspace; another workspace's job is NotFound. */
export async function findKeyJob(db: Executor, workspaceId: string, jobId: string): Promise<KeyJobView> {
  const r = await db.selectFrom('key_jobs').selectAll().where('id', '=', jobId).where('workspace_id', '=', workspaceId).executeTakeFirst()
  if (!r) throw new NotFoundError('key job')
  return jobView(r)
}

/**
 * Scopes whose primary key is due: older than `rotationDays`, or with `maxEncryptions` or
 * more encryptions made under it.
 */
export async function keysDueForRotation(
  db: Executor,
  policy: { rotationDays: number; maxEncryptions: number },
  now: Date,
): Promise<Array<DataKeyScope & { version: number; reason: RotationReason }>> {
  let q = db
    .selectFrom('data_keys')
    .select(['workspace_id', 'project_id', 'environment_id', 'version', 'encryptions', 'created_at'])
    .where('state', '=', 'primary')
  const cutoff = policy.rotationDays > 0 ? new Date(now.getTime() - policy.rotationDays * 86_400_000).toISOString() : null
  q = q.where((eb) => {
    const due = [eb('encryptions', '>=', policy.maxEncryptions)]
    if (cutoff) due.push(eb('created_at', '<', cutoff))
    return eb.or(due)
  })
  const rows = await q.limit(1000).execute()
  return rows.map((r) => ({
    workspaceId: r.workspace_id,
    projectId: r.project_id,
    environmentId: r.environment_id,
    version: r.version,
    reason: Number(r.encryptions) >= policy.maxEncryptions ? 'usage' : 'schedule',
  }))
}
