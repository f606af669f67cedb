import { randomBytes, randomUUID } from 'node:crypto'
import { DecryptionError, RootKeyMismatchError } from '../errors.js'
import type { SelectQueryBuilder } from 'kysely'
import type { Executor } from '../storage/database.js'
import type { Database } from '../storage/schema.js'
import { DekCache } from './dek-cache.js'
import { lp } from './encoding.js'
import type { DataKey, KeyRef } from './envelope.js'
import { dataKeyAad, type DataKeyScope, type KeyProvider } from './key-provider.js'

const ROOT_CHECK = 'root_key_check'
const ROOT_CHECK_AAD = Buffer.from('coffer/root-key-check/v1', 'utf8')
const FINGERPRINT_AAD = Buffer.from('coffer/fingerprint-key/v1', 'utf8')

type DataKeyQuery = SelectQueryBuilder<Database, 'data_keys', { id: string; version: number; wrapped: Buffer }>

/** A cached plaintext key; `key` is the only sensitive part. */
interface CachedKey extends DataKey {}

function scopeId(s: DataKeyScope): string {
  return `${s.workspaceId}/${s.projectId}/${s.environmentId}`
}

/**
 * Data keys: creates them wrapped by the root key, finds the primary key of a scope and the
 * exact key a ciphertext names, and keeps plaintext keys only in a bounded TTL cache.
 */
export class DataKeys {
  readonly #provider: KeyProvider
  readonly #cache: DekCache<CachedKey>

  constructor(provider: KeyProvider, cache: { maxEntries: number; ttlMs: number }) {
    this.#provider = provider
    this.#cache = new DekCache<CachedKey>(cache)
  }

  get provider(): KeyProvider {
    return this.#provider
  }

  /**
   * Checks that the root key opens this database, or records a check value in a new one.
   * Throws RootKeyMismatchError when the key is not the one the database was made with.
   */
  async checkRootKey(db: Executor): Promise<void> {
    let row = await db.selectFrom('meta').select('value').where('key', '=', ROOT_CHECK).executeTakeFirst()
    if (!row) {
      // @NOTE a database that already holds keys but no check value was not made by this
      // root key's first start: refuse rather than trust whatever key we were given.
      const used = await db.selectFrom('data_keys').select('id').limit(1).executeTakeFirst()
      const ws = await db.selectFrom('workspaces').select('id').limit(1).executeTakeFirst()
      if (used || ws) throw new RootKeyMismatchError()
      const wrapped = await this.#provider.wrap(randomBytes(32), ROOT_CHECK_AAD)
      // Two nodes starting on one empty database: the first insert wins, both check it.
      await db.insertInto('meta').values({ key: ROOT_CHECK, value: wrapped }).onConflict((oc) => oc.column('key').doNothing()).execute()
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
    const wrapped = await this.#provider.wrap(key, dataKeyAad(id, 1, scope))
    await db
      .insertInto('data_keys')
      .values({
        id, version: 1, workspace_id: scope.workspaceId, project_id: scope.projectId, environment_id: scope.environmentId,
        wrapped, root_key_id: this.#provider.keyId, state: 'primary', created_at: new Date().toISOString(),
      })
      .execute()
    const dek = { id, version: 1, key }
    this.#cache.set(`${scopeId(scope)}:${id}:1`, dek)
    return dek
  }

  /** The key new writes in `scope` use. */
  primary(db: Executor, scope: DataKeyScope): Promise<DataKey> {
    return this.#load(`primary:${scopeId(scope)}`, db, scope, (q) => q.where('state', '=', 'primary'))
  }

  /**
   * The exact key `ref` names, provided it belongs to `scope`. A ciphertext naming a key of
   * another scope fails like any other decryption failure.
   */
  byRef(db: Executor, ref: KeyRef, scope: DataKeyScope): Promise<DataKey> {
    return this.#load(`${scopeId(scope)}:${ref.id}:${ref.version}`, db, scope, (q) => q.where('id', '=', ref.id).where('version', '=', ref.version))
  }

  /** A key of `scope` picked by `which`, from the cache or unwrapped from its row. */
  async #load(cacheId: string, db: Executor, scope: DataKeyScope, which: (q: DataKeyQuery) => DataKeyQuery): Promise<DataKey> {
    const hit = this.#cache.get(cacheId)
    if (hit) return hit
    const row = await which(
      db.selectFrom('data_keys').select(['id', 'version', 'wrapped'])
        .where('workspace_id', '=', scope.workspaceId).where('project_id', '=', scope.projectId).where('environment_id', '=', scope.environmentId),
    ).executeTakeFirst()
    if (!row) throw new DecryptionError()
    const dek = await this.#unwrap(row, scope)
    this.#cache.set(cacheId, dek)
    return dek
  }

  /** A new wrapped fingerprint (HMAC) key for a workspace's audit log. */
  async newFingerprintKey(workspaceId: string): Promise<{ wrapped: Buffer; key: Buffer }> {
    const key = randomBytes(32)
    const wrapped = await this.#provider.wrap(key, Buffer.concat([FINGERPRINT_AAD, lp(workspaceId)]))
    this.#cache.set(`fp:${workspaceId}`, { id: workspaceId, version: 0, key })
    return { wrapped, key }
  }

  /** The workspace's fingerprint key, unwrapped (cached). */
  async fingerprintKey(db: Executor, workspaceId: string): Promise<Buffer> {
    const hit = this.#cache.get(`fp:${workspaceId}`)
    if (hit) return hit.key
    const row = await db.selectFrom('workspaces').select('fingerprint_key').where('id', '=', workspaceId).executeTakeFirst()
    if (!row) throw new DecryptionError()
    const key = await this.#provider.unwrap(Buffer.from(row.fingerprint_key), Buffer.concat([FINGERPRINT_AAD, lp(workspaceId)]))
    this.#cache.set(`fp:${workspaceId}`, { id: workspaceId, version: 0, key })
    return key
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
