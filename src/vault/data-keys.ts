import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { DekCache } from '../crypto/dek-cache.js'
import type { DataKey, KeyRef } from '../crypto/envelope.js'
import { dataKeyAad, fingerprintAad, ROOT_CHECK_AAD, type DataKeyScope, type KeyProvider } from '../crypto/key-provider.js'
import { DecryptionError, RootKeyMigrationError, RootKeyMismatchError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import { takeEnvironmentWriteLock } from '../storage/advisory-lock.js'
import { type Executor, engineOf } from '../storage/database.js'

/** The meta row holding a value wrapped by the root key, checked at every start. */
export const ROOT_CHECK = 'root_key_check'
/** Set while `coffer keys migrate`/`rotate-root` rewraps keys; no server starts meanwhile. */
export const ROOT_MIGRATION = 'root_key_migration'

/** A cached plaintext key; `key` is the only sensitive part. */
interface CachedKey extends DataKey {}

function refId(s: DataKeyScope, id: string, version: number): string {
  return `${s.workspaceId}/${s.projectId}/${s.environmentId}:${id}:${version}`
}

/**
 * Data keys: the vault's rows of wrapped keys (`data_keys`, the workspaces' fingerprint keys,
 * the root-key check in `meta`) over the pure crypto of src/crypto. Creates them wrapped by the root key, picks (and counts) the primary key of a
 * scope for each write, finds the exact key a ciphertext names, rotates and destroys versions,
 * and keeps plaintext keys only in a bounded TTL cache.
 */
export class DataKeys {
  readonly #provider: KeyProvider
  readonly #cache: DekCache<CachedKey>
  readonly #clock: Clock

  /** `clock` stamps a key's creation, from which its age (and rotation) counts. */
  constructor(provider: KeyProvider, cache: { maxEntries: number; ttlMs: number }, clock: Clock) {
    this.#provider = provider
    this.#cache = new DekCache<CachedKey>(cache)
    this.#clock = clock
  }

  get provider(): KeyProvider {
    return this.#provider
  }

  /**
   * Checks that the root key opens this database, or records a check value in a new one.
   * Throws RootKeyMismatchError when the key is not the one the database was made with.
   */
  async checkRootKey(db: Executor): Promise<void> {
    const migrating = await db.selectFrom('meta').select('value').where('key', '=', ROOT_MIGRATION).executeTakeFirst()
    if (migrating)
      throw new RootKeyMigrationError(JSON.parse(Buffer.from(migrating.value).toString('utf8')) as { from: string; to: string })
    let row = await db.selectFrom('meta').select('value').where('key', '=', ROOT_CHECK).executeTakeFirst()
    if (!row) {
      // @NOTE a database that already holds keys but no check value was not made by this
      // root key's first start: refuse rather than trust whatever key we were given.
      const used = await db.selectFrom('data_keys').select('id').limit(1).executeTakeFirst()
      const ws = await db.selectFrom('workspaces').select('id').limit(1).executeTakeFirst()
      if (used || ws) throw new RootKeyMismatchError()
      const wrapped = await this.#provider.wrap(randomBytes(32), ROOT_CHECK_AAD)
      // Two nodes starting on one empty database: the first insert wins, both check it.
      await db
        .insertInto('meta')
        .values({ key: ROOT_CHECK, value: wrapped })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute()
      row = await db.selectFrom('meta').select('value').where('key', '=', ROOT_CHECK).executeTakeFirstOrThrow()
    }
    try {
      await this.#provider.unwrap(Buffer.from(row.value), ROOT_CHECK_AAD)
    } catch {
      throw new RootKeyMismatchError()
    }
  }

  /** Creates version 1 of the scope's data key as primary and returns it. */
  async create(db: Executor, scope: DataKeyScope): Promise<DataKey> {
    const id = randomUUID()
    const key = randomBytes(32)
    await this.#insert(db, scope, id, 1, key)
    const dek = { id, version: 1, key }
    this.#cache.set(refId(scope, id, 1), dek)
    return dek
  }

  async #insert(db: Executor, scope: DataKeyScope, id: string, version: number, key: Buffer): Promise<void> {
    const wrapped = await this.#provider.wrap(key, dataKeyAad(id, version, scope))
    await db
      .insertInto('data_keys')
      .values({
        id,
        version,
        workspace_id: scope.workspaceId,
        project_id: scope.projectId,
        environment_id: scope.environmentId,
        wrapped,
        root_key_id: this.#provider.keyId,
        state: 'primary',
        created_at: this.#clock().toISOString(),
        encryptions: 0,
      })
      .execute()
  }

  /**
   * The key a write in `scope` must use, counting `encryptions` against it in the same
   * transaction. The counting UPDATE also locks the primary row until the write commits, so
   * a rotation (which updates that row) waits for every write that chose the old key: once a
   * rotation commits, no later commit can add a ciphertext under the old key.
   */
  async forWrite(tx: Executor, scope: DataKeyScope, encryptions: number): Promise<DataKey & { encryptions: number }> {
    const deferred = this.#deferred.get(tx)
    if (deferred) return this.#forDeferredWrite(tx, deferred, scope, encryptions)
    for (let attempt = 0; attempt < 5; attempt++) {
      const row = await tx
        .updateTable('data_keys')
        .set((eb) => ({ encryptions: eb('encryptions', '+', encryptions) }))
        .where('workspace_id', '=', scope.workspaceId)
        .where('project_id', '=', scope.projectId)
        .where('environment_id', '=', scope.environmentId)
        .where('state', '=', 'primary')
        .returning(['id', 'version', 'wrapped', 'encryptions'])
        .executeTakeFirst()
      // @NOTE on PostgreSQL (READ COMMITTED) a rotation committing while this statement waited
      // for the row leaves it matching nothing: the new primary is visible to the next one.
      if (!row) continue
      const dek = await this.#cached(refId(scope, row.id, row.version), () => this.#unwrap(row, scope))
      return { ...dek, encryptions: Number(row.encryptions) }
    }
    throw new DecryptionError()
  }

  /**
   * Transactions whose encryptions are counted at their end (`countAtEnd`), with what they
   * counted so far per key version. Keyed by the transaction object the committer hands every
   * unit of a batch.
   */
  readonly #deferred = new WeakMap<object, Map<string, { scope: DataKeyScope; ref: KeyRef; n: number }>>()

  /**
   * From now on `forWrite` in `tx` reads the primary key without locking its row and only notes
   * the encryptions; `flushCounts(tx)` adds them, last thing before COMMIT. For the batches of
   * one-key secret writes, which hold their environment's write lock shared: the row lock of
   * the counting UPDATE, held from a batch's first encryption to its COMMIT, would queue every
   * such batch behind the others. What keeps a rotation from slipping between a batch's choice
   * of key and its COMMIT is then the environment's write lock, which a rotation takes
   * exclusively (`rotate`, advisory-lock.ts).
   */
  countAtEnd(tx: object): void {
    this.#deferred.set(tx, new Map())
  }

  /** Adds the encryptions `tx` noted since `countAtEnd` (nothing when it noted none). */
  async flushCounts(tx: Executor): Promise<void> {
    const noted = this.#deferred.get(tx)
    if (!noted) return
    this.#deferred.delete(tx)
    for (const { scope, ref, n } of noted.values()) await this.countEncryptions(tx, scope, ref, n)
  }

  async #forDeferredWrite(
    tx: Executor,
    noted: Map<string, { scope: DataKeyScope; ref: KeyRef; n: number }>,
    scope: DataKeyScope,
    encryptions: number,
  ): Promise<DataKey & { encryptions: number }> {
    const row = await tx
      .selectFrom('data_keys')
      .select(['id', 'version', 'wrapped', 'encryptions'])
      .where('workspace_id', '=', scope.workspaceId)
      .where('project_id', '=', scope.projectId)
      .where('environment_id', '=', scope.environmentId)
      .where('state', '=', 'primary')
      .executeTakeFirst()
    if (!row) throw new DecryptionError()
    const id = refId(scope, row.id, row.version)
    const dek = await this.#cached(id, () => this.#unwrap(row, scope))
    const entry = noted.get(id) ?? { scope, ref: { id: row.id, version: row.version }, n: 0 }
    entry.n += encryptions
    noted.set(id, entry)
    return { ...dek, encryptions: Number(row.encryptions) + entry.n }
  }

  /** Counts `n` encryptions made under the exact key `ref` (the resealer's, outside forWrite). */
  async countEncryptions(tx: Executor, scope: DataKeyScope, ref: KeyRef, n: number): Promise<void> {
    await tx
      .updateTable('data_keys')
      .set((eb) => ({ encryptions: eb('encryptions', '+', n) }))
      .where('id', '=', ref.id)
      .where('version', '=', ref.version)
      .where('workspace_id', '=', scope.workspaceId)
      .execute()
  }

  /**
   * Makes a new version of the scope's key primary; the old one stays readable (`active`)
   * until the resealer has moved every ciphertext off it. With `expectVersion`, rotates only
   * if that version is still the primary (returns null otherwise), so several nodes
   * rotating on a schedule rotate once.
   */
  async rotate(
    tx: Executor,
    scope: DataKeyScope,
    expectVersion?: number,
  ): Promise<{ id: string; version: number; previous: number } | null> {
    // Batches of one-key writes hold the environment's write lock shared and count at their end:
    // wait for those in flight, hold back new ones (countAtEnd).
    if (scope.environmentId) await takeEnvironmentWriteLock(tx, engineOf(tx), scope.environmentId)
    const old = await tx
      .updateTable('data_keys')
      .set({ state: 'active' })
      .where('workspace_id', '=', scope.workspaceId)
      .where('project_id', '=', scope.projectId)
      .where('environment_id', '=', scope.environmentId)
      .where('state', '=', 'primary')
      .returning(['id', 'version'])
      .executeTakeFirst()
    if (!old) throw new DecryptionError()
    if (expectVersion !== undefined && old.version !== expectVersion) {
      await tx.updateTable('data_keys').set({ state: 'primary' }).where('id', '=', old.id).where('version', '=', old.version).execute()
      return null
    }
    const version = old.version + 1
    const key = randomBytes(32)
    await this.#insert(tx, scope, old.id, version, key)
    return { id: old.id, version, previous: old.version }
  }

  /**
   * Destroys the scope's old key versions that no ciphertext uses any more (the database
   * refuses to delete one still in use). Returns the versions destroyed.
   */
  async destroyUnused(tx: Executor, scope: DataKeyScope, dekId: string, below: number): Promise<number[]> {
    const rows = await tx
      .deleteFrom('data_keys')
      .where('id', '=', dekId)
      .where('version', '<', below)
      .where('state', '=', 'active')
      .where('workspace_id', '=', scope.workspaceId)
      .where('environment_id', '=', scope.environmentId)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('secret_versions')
              .select('secret_id')
              .whereRef('secret_versions.dek_id', '=', 'data_keys.id')
              .whereRef('secret_versions.dek_version', '=', 'data_keys.version'),
          ),
        ),
      )
      // A personal override (migration 13) or a pending change request's sealed proposal
      // (migration 14) keeps its key version too.
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('personal_overrides')
              .select('id')
              .whereRef('personal_overrides.dek_id', '=', 'data_keys.id')
              .whereRef('personal_overrides.dek_version', '=', 'data_keys.version'),
          ),
        ),
      )
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('change_requests')
              .select('id')
              .whereRef('change_requests.dek_id', '=', 'data_keys.id')
              .whereRef('change_requests.dek_version', '=', 'data_keys.version'),
          ),
        ),
      )
      .returning('version')
      .execute()
    for (const r of rows) this.#cache.delete(refId(scope, dekId, r.version))
    return rows.map((r) => r.version)
  }

  /**
   * The exact key `ref` names, provided it belongs to `scope`. A ciphertext naming a key of
   * another scope fails like any other decryption failure.
   */
  byRef(db: Executor, ref: KeyRef, scope: DataKeyScope): Promise<DataKey> {
    return this.#cached(refId(scope, ref.id, ref.version), async () => {
      const row = await db
        .selectFrom('data_keys')
        .select(['id', 'version', 'wrapped'])
        .where('workspace_id', '=', scope.workspaceId)
        .where('project_id', '=', scope.projectId)
        .where('environment_id', '=', scope.environmentId)
        .where('id', '=', ref.id)
        .where('version', '=', ref.version)
        .executeTakeFirst()
      if (!row) throw new DecryptionError()
      return this.#unwrap(row, scope)
    })
  }

  async #cached(cacheId: string, load: () => Promise<DataKey>): Promise<DataKey> {
    const hit = this.#cache.get(cacheId)
    if (hit) return hit
    const dek = await load()
    this.#cache.set(cacheId, dek)
    return dek
  }

  /** A new wrapped fingerprint (HMAC) key for a workspace's audit log. */
  async newFingerprintKey(workspaceId: string): Promise<{ wrapped: Buffer; key: Buffer }> {
    const key = randomBytes(32)
    const wrapped = await this.#provider.wrap(key, fingerprintAad(workspaceId))
    this.#cache.set(`fp:${workspaceId}`, { id: workspaceId, version: 0, key })
    return { wrapped, key }
  }

  /** The workspace's fingerprint key, unwrapped (cached). */
  async fingerprintKey(db: Executor, workspaceId: string): Promise<Buffer> {
    const hit = this.#cache.get(`fp:${workspaceId}`)
    if (hit) return hit.key
    const row = await db.selectFrom('workspaces').select('fingerprint_key').where('id', '=', workspaceId).executeTakeFirst()
    if (!row) throw new DecryptionError()
    const key = await this.#provider.unwrap(Buffer.from(row.fingerprint_key), fingerprintAad(workspaceId))
    this.#cache.set(`fp:${workspaceId}`, { id: workspaceId, version: 0, key })
    return key
  }

  /**
   * The workspace's integration key: HMAC-SHA256(fingerprint key, "coffer/integration-secrets/v1"),
   * an AES-256-GCM key for the secrets Coffer itself keeps for a workspace's integrations (webhook
   * signing secrets), sealed with the envelope format and AAD binding of every secret. Derived,
   * like the value-fingerprint key: rewrapping the root key leaves it unchanged, and deleting the
   * workspace (which shreds the fingerprint key) makes those secrets unreadable with it.
   */
  async integrationKey(db: Executor, workspaceId: string): Promise<DataKey> {
    const hit = this.#cache.get(`int:${workspaceId}`)
    if (hit) return hit
    const key = createHmac('sha256', await this.fingerprintKey(db, workspaceId))
      .update('coffer/integration-secrets/v1')
      .digest()
    const dek: DataKey = { id: workspaceId, version: 1, key }
    this.#cache.set(`int:${workspaceId}`, dek)
    return dek
  }

  /**
   * The workspace's value-fingerprint key: HMAC-SHA256(fingerprint key, "coffer/value-fingerprint/v1").
   * Derived, not stored: it changes only if the fingerprint key does (never, until the workspace
   * is deleted), so fingerprints stored with each version stay comparable. Kept apart from the
   * audit log's own fingerprints by the label.
   */
  async valueFingerprintKey(db: Executor, workspaceId: string): Promise<Buffer> {
    const hit = this.#cache.get(`vfp:${workspaceId}`)
    if (hit) return hit.key
    const key = createHmac('sha256', await this.fingerprintKey(db, workspaceId))
      .update('coffer/value-fingerprint/v1')
      .digest()
    this.#cache.set(`vfp:${workspaceId}`, { id: workspaceId, version: 0, key })
    return key
  }

  /** Drops the cached plaintext keys of one workspace (its data keys and fingerprint keys). */
  forgetWorkspace(workspaceId: string): void {
    this.#cache.deletePrefix(`${workspaceId}/`)
    this.#cache.delete(`fp:${workspaceId}`)
    this.#cache.delete(`vfp:${workspaceId}`)
    this.#cache.delete(`int:${workspaceId}`)
  }

  /** Drops the cached plaintext keys of one environment (after its keys were destroyed). */
  forgetScope(scope: DataKeyScope): void {
    this.#cache.deletePrefix(`${scope.workspaceId}/${scope.projectId}/${scope.environmentId}:`)
  }

  /**
   * Destroys every version of the scope's data key in `tx`: the wrapped keys are overwritten
   * (state `shredded`, as a workspace deletion does) and this node forgets its cached copies.
   * Returns the key id and the versions destroyed. The caller removes the rows that used them.
   */
  async shredScope(tx: Executor, scope: DataKeyScope): Promise<{ id: string | null; versions: number[] }> {
    const rows = await tx
      .updateTable('data_keys')
      .set({ wrapped: Buffer.alloc(0), state: 'shredded' })
      .where('workspace_id', '=', scope.workspaceId)
      .where('project_id', '=', scope.projectId)
      .where('environment_id', '=', scope.environmentId)
      .returning(['id', 'version'])
      .execute()
    this.forgetScope(scope)
    return { id: rows[0]?.id ?? null, versions: rows.map((r) => r.version).sort((a, b) => a - b) }
  }

  /** Drops every cached plaintext key. */
  clearCache(): void {
    this.#cache.clear()
  }

  async #unwrap(row: { id: string; version: number; wrapped: Buffer }, scope: DataKeyScope): Promise<DataKey> {
    const key = await this.#provider.unwrap(Buffer.from(row.wrapped), dataKeyAad(row.id, row.version, scope))
    return { id: row.id, version: row.version, key }
  }
}
