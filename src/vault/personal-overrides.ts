import { randomUUID } from 'node:crypto'
import { keyRefOf, open, seal, type Binding } from '../crypto/envelope.js'
import type { Clock } from '../ops/clock.js'
import type { Executor } from '../storage/database.js'
import type { DataKeys } from './data-keys.js'
import { checkKey, MAX_VALUE_BYTES, type SecretScope } from './secret-service.js'
import { ValidationError } from '../errors.js'

/**
 * The field name a member's override is bound to: the member's id is part of the associated
 * data, so a row copied to another member (or another key, environment, version) fails to
 * decrypt like any moved ciphertext.
 */
function fieldOf(userId: string): string {
  return `personal-value:${userId}`
}

/** One override as its owner sees it: the key and the row's version, never anyone else's. */
export interface OverrideView {
  key: string
  version: number
  updatedAt: string
}

/**
 * Personal overrides (issue 16 §2): one member's own value for a key of an environment,
 * which only that member's fetches see. Encrypted under the environment's data key, bound to
 * the row (id, version) and to the member. Every function takes the member's id and reads or
 * writes only that member's rows: there is no way here to list another member's overrides.
 * Whether overrides are allowed at all is the caller's decision (the routes check the
 * environment's setting, its restriction and seal, and that the caller is a person).
 */
export class PersonalOverrides {
  readonly #keys: DataKeys
  readonly #clock: Clock

  constructor(deps: { dataKeys: DataKeys; clock: Clock }) {
    this.#keys = deps.dataKeys
    this.#clock = deps.clock
  }

  static binding(scope: SecretScope, id: string, version: number, userId: string): Binding {
    return {
      workspaceId: scope.workspaceId,
      projectId: scope.projectId,
      environmentId: scope.environmentId,
      recordId: id,
      recordVersion: version,
      field: fieldOf(userId),
    }
  }

  /** Sets the member's value for `key` (a new row, or the row's next version). Returns the view and the value it replaced. */
  async set(
    tx: Executor,
    scope: SecretScope,
    userId: string,
    key: string,
    value: string,
  ): Promise<{ view: OverrideView; before: string | null }> {
    checkKey(key)
    if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES)
      throw new ValidationError('A secret value may be at most 64 KiB.', [{ path: 'value', message: 'too long' }])
    const now = this.#clock().toISOString()
    const row = await this.#row(tx, scope, userId, key)
    const before = row ? await this.#open(tx, scope, userId, row) : null
    const id = row?.id ?? randomUUID()
    const version = (row?.version ?? 0) + 1
    const dek = await this.#keys.forWrite(tx, scope, 1)
    const ct = seal(dek, Buffer.from(value, 'utf8'), PersonalOverrides.binding(scope, id, version, userId))
    if (row) {
      await tx
        .updateTable('personal_overrides')
        .set({ version, value_ct: ct, dek_id: dek.id, dek_version: dek.version, updated_at: now })
        .where('id', '=', id)
        .where('workspace_id', '=', scope.workspaceId)
        .execute()
    } else {
      await tx
        .insertInto('personal_overrides')
        .values({
          id,
          workspace_id: scope.workspaceId,
          project_id: scope.projectId,
          environment_id: scope.environmentId,
          user_id: userId,
          key,
          version,
          value_ct: ct,
          dek_id: dek.id,
          dek_version: dek.version,
          created_at: now,
          updated_at: now,
        })
        .execute()
    }
    return { view: { key, version, updatedAt: now }, before }
  }

  /** Removes the member's override of `key`; null when there was none. */
  async remove(tx: Executor, scope: SecretScope, userId: string, key: string): Promise<{ view: OverrideView; before: string } | null> {
    checkKey(key)
    const row = await this.#row(tx, scope, userId, key)
    if (!row) return null
    const before = await this.#open(tx, scope, userId, row)
    await tx.deleteFrom('personal_overrides').where('id', '=', row.id).where('workspace_id', '=', scope.workspaceId).execute()
    return { view: { key, version: row.version, updatedAt: row.updated_at }, before }
  }

  /** The keys the member overrides in the environment (no value is decrypted). */
  async keys(db: Executor, scope: SecretScope, userId: string): Promise<Set<string>> {
    const rows = await this.#rows(db, scope, userId).select('key').execute()
    return new Set(rows.map((r) => r.key))
  }

  /** The member's overrides in the environment, decrypted, by key. */
  async values(db: Executor, scope: SecretScope, userId: string): Promise<Map<string, string>> {
    const rows = await this.#rows(db, scope, userId).select(['id', 'key', 'version', 'value_ct', 'updated_at']).execute()
    const out = new Map<string, string>()
    for (const r of rows) out.set(r.key, await this.#open(db, scope, userId, r))
    return out
  }

  #rows(db: Executor, scope: SecretScope, userId: string) {
    return db
      .selectFrom('personal_overrides')
      .where('workspace_id', '=', scope.workspaceId)
      .where('project_id', '=', scope.projectId)
      .where('environment_id', '=', scope.environmentId)
      .where('user_id', '=', userId)
  }

  #row(db: Executor, scope: SecretScope, userId: string, key: string) {
    return this.#rows(db, scope, userId)
      .select(['id', 'key', 'version', 'value_ct', 'updated_at'])
      .where('key', '=', key)
      .executeTakeFirst()
  }

  async #open(db: Executor, scope: SecretScope, userId: string, r: { id: string; version: number; value_ct: Buffer }): Promise<string> {
    const dek = await this.#keys.byRef(db, keyRefOf(r.value_ct), scope)
    const plain = open(dek, r.value_ct, PersonalOverrides.binding(scope, r.id, r.version, userId))
    const text = plain.toString('utf8')
    plain.fill(0)
    return text
  }

  /**
   * Re-encrypts the scope's overrides still under a version of `dekId` older than the primary
   * (a reseal job calls it before destroying old versions; overrides are few, so they go in
   * one step). Returns how many were resealed.
   */
  static async reseal(tx: Executor, keys: DataKeys, scope: SecretScope, dekId: string, primary: number): Promise<number> {
    const rows = await tx
      .selectFrom('personal_overrides')
      .select(['id', 'user_id', 'version', 'value_ct', 'dek_version'])
      .where('workspace_id', '=', scope.workspaceId)
      .where('environment_id', '=', scope.environmentId)
      .where('dek_id', '=', dekId)
      .where('dek_version', '<', primary)
      .execute()
    if (rows.length === 0) return 0
    const dek = await keys.forWrite(tx, scope, rows.length)
    for (const r of rows) {
      const binding = PersonalOverrides.binding(scope, r.id, r.version, r.user_id)
      const old = await keys.byRef(tx, keyRefOf(r.value_ct), scope)
      const plain = open(old, r.value_ct, binding)
      const ct = seal(dek, plain, binding)
      plain.fill(0)
      await tx
        .updateTable('personal_overrides')
        .set({ value_ct: ct, dek_id: dek.id, dek_version: dek.version })
        .where('id', '=', r.id)
        .where('workspace_id', '=', scope.workspaceId)
        .execute()
    }
    return rows.length
  }
}
