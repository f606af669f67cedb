import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import { SIGNER_AAD, SIGNER_META } from '../audit/audit-tree.js'
import { dataKeyAad, fingerprintAad, ROOT_CHECK_AAD, type KeyProvider } from '../crypto/key-provider.js'
import { DecryptionError, RootKeyMismatchError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { Executor, Store } from '../storage/database.js'
import type { GroupCommitter } from '../storage/group-commit.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { ROOT_CHECK, ROOT_MIGRATION } from './data-keys.js'

/** What a root-key migration changed. */
export interface RootKeyMigrationResult {
  from: string
  to: string
  dataKeys: number
  workspaces: number
  metaValues: number
  /** True when an earlier, interrupted run was carried on. */
  resumed: boolean
}

const OPERATOR: AuditActor = { type: 'system', id: 'root-key-migration', ip: '', userAgent: '' }
/** Values in `meta` wrapped by the root key, with the AAD each is bound to. */
const WRAPPED_META: ReadonlyArray<{ key: string; aad: Buffer }> = [
  { key: SIGNER_META, aad: SIGNER_AAD },
  // Last: while it still opens with the old key, an interrupted run can be resumed with it.
  { key: ROOT_CHECK, aad: ROOT_CHECK_AAD },
]

/**
 * Rewraps every key the root key protects — each data key (EDEK), each workspace's audit
 * fingerprint key, the audit signing key and the root-key check value — from `from` to `to`,
 * without touching a single secret row. Resumable: rows record the root key that wraps them
 * (`root_key_id`), so a second run skips what the first finished; a marker in `meta` keeps
 * every server from starting on the half-migrated database until a run completes. Each
 * workspace's audit log records the change. Run it with every server stopped.
 */
export async function migrateRootKey(
  deps: { store: Store; committer: GroupCommitter; audit: AuditLog; clock: Clock },
  from: KeyProvider,
  to: KeyProvider,
  opts: { batch?: number; onProgress?: (done: number) => void } = {},
): Promise<RootKeyMigrationResult> {
  const db = deps.store.db
  // Every workspace's rows: system reads (row-level security on PostgreSQL).
  const read = <T>(fn: (db: Executor) => Promise<T>) => readInScope(deps.store, SYSTEM_SCOPE, fn)
  if (from.keyId === to.keyId) throw new Error('the old and the new root key are the same key')
  const existing = await db.selectFrom('meta').select('value').where('key', '=', ROOT_MIGRATION).executeTakeFirst()
  let resumed = false
  if (existing) {
    const m = JSON.parse(Buffer.from(existing.value).toString('utf8')) as { from: string; to: string }
    if (m.from !== from.keyId || m.to !== to.keyId) {
      throw new Error(`an unfinished migration from ${m.from} to ${m.to} is recorded; finish it with those keys first`)
    }
    resumed = true
  } else {
    // The old key must really open this database before anything is touched.
    const check = await db.selectFrom('meta').select('value').where('key', '=', ROOT_CHECK).executeTakeFirst()
    if (check) {
      try {
        await from.unwrap(Buffer.from(check.value), ROOT_CHECK_AAD)
      } catch {
        throw new RootKeyMismatchError()
      }
    }
    const marker = Buffer.from(JSON.stringify({ from: from.keyId, to: to.keyId, startedAt: deps.clock().toISOString() }), 'utf8')
    await db.insertInto('meta').values({ key: ROOT_MIGRATION, value: marker }).execute()
  }

  const batch = opts.batch ?? 500
  let dataKeys = 0
  for (;;) {
    const rows = await read((r) =>
      r
        .selectFrom('data_keys')
        .select(['id', 'version', 'workspace_id', 'project_id', 'environment_id', 'wrapped'])
        .where('root_key_id', '!=', to.keyId)
        .where('state', '!=', 'shredded')
        .limit(batch)
        .execute(),
    )
    if (rows.length === 0) break
    const rewrapped: Array<{ id: string; version: number; wrapped: Buffer }> = []
    for (const r of rows) {
      const aad = dataKeyAad(r.id, r.version, { workspaceId: r.workspace_id, projectId: r.project_id, environmentId: r.environment_id })
      const key = await from.unwrap(Buffer.from(r.wrapped), aad)
      try {
        rewrapped.push({ id: r.id, version: r.version, wrapped: await to.wrap(key, aad) })
      } finally {
        key.fill(0)
      }
    }
    await deps.committer.run(async (tx) => {
      for (const r of rewrapped) {
        await tx
          .updateTable('data_keys')
          .set({ wrapped: r.wrapped, root_key_id: to.keyId })
          .where('id', '=', r.id)
          .where('version', '=', r.version)
          .execute()
      }
    })
    dataKeys += rows.length
    opts.onProgress?.(dataKeys)
  }

  let workspaces = 0
  const wss = await read((r) => r.selectFrom('workspaces').select(['id', 'fingerprint_key']).where('root_key_id', '!=', to.keyId).execute())
  for (const w of wss) {
    if (w.fingerprint_key.length === 0) continue
    const key = await from.unwrap(Buffer.from(w.fingerprint_key), fingerprintAad(w.id))
    const wrapped = await to.wrap(key, fingerprintAad(w.id))
    key.fill(0)
    await deps.committer.run((tx) =>
      tx.updateTable('workspaces').set({ fingerprint_key: wrapped, root_key_id: to.keyId }).where('id', '=', w.id).execute(),
    )
    workspaces++
  }

  let metaValues = 0
  for (const m of WRAPPED_META) {
    const row = await db.selectFrom('meta').select('value').where('key', '=', m.key).executeTakeFirst()
    if (!row) continue
    const value = Buffer.from(row.value)
    if (await opens(to, value, m.aad)) continue // done by an earlier run
    const plain = await from.unwrap(value, m.aad)
    const wrapped = await to.wrap(plain, m.aad)
    plain.fill(0)
    await deps.committer.run((tx) => tx.updateTable('meta').set({ value: wrapped }).where('key', '=', m.key).execute())
    metaValues++
  }

  // One audit entry per workspace, then the marker goes: servers may start with the new key.
  // Deleted workspaces' logs are closed (and their keys shredded): nothing to record there.
  const all = await read((r) => r.selectFrom('workspaces').select('id').where('deleted_at', 'is', null).execute())
  await deps.committer.run(async (tx: Executor) => {
    for (const w of all) {
      await deps.audit.append(tx, w.id, OPERATOR, `root-key-${to.keyId}`, {
        action: 'keys.root_rewrapped',
        target: { type: 'workspace', id: w.id },
        details: { from: from.keyId, fromKind: from.kind, to: to.keyId, toKind: to.kind, resumed },
      })
    }
    await tx.deleteFrom('meta').where('key', '=', ROOT_MIGRATION).execute()
  })
  return { from: from.keyId, to: to.keyId, dataKeys, workspaces, metaValues, resumed }
}

async function opens(p: KeyProvider, wrapped: Buffer, aad: Buffer): Promise<boolean> {
  try {
    ;(await p.unwrap(wrapped, aad)).fill(0)
    return true
  } catch (err) {
    if (err instanceof DecryptionError) return false
    throw err
  }
}
