import { createHash, createHmac, randomUUID } from 'node:crypto'
import type { JoinBuilder } from 'kysely'
import { MAX_KEY_LENGTH, MAX_TAGS, SECRET_KEY_RE, TAG_RE } from '../api/limits.js'
import { keyRefOf, open, seal, type Binding } from '../crypto/envelope.js'
import { AlreadyExistsError, EnvironmentChangedError, NotFoundError, ValidationError, VersionConflictError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { Engine, Executor } from '../storage/database.js'
import { QueryTemplate } from '../storage/query-template.js'
import type { Database, SecretVersionTable } from '../storage/schema.js'
import { BatchOpener } from './batch-opener.js'
import type { DataKeys } from './data-keys.js'

export const MAX_VALUE_BYTES = 64 * 1024
export const MAX_COMMENT_BYTES = 4 * 1024

/** Where secrets live: one environment of one project of one workspace. */
export interface SecretScope {
  readonly workspaceId: string
  readonly projectId: string
  readonly environmentId: string
}

export interface SecretInput {
  value: string
  comment?: string | undefined
  tags?: string[] | undefined
}

/** A secret's current state; `value` and `comment` are present only when revealed. */
export interface SecretView {
  id: string
  key: string
  version: number
  deleted: boolean
  tags: string[]
  createdAt: string
  updatedAt: string
  value?: string
  comment?: string | null
  /** The reader holds a personal override of this key (src/vault/personal-overrides.ts). */
  overridden?: boolean
  /** The key comes from an imported environment ("project/environment"). */
  importedFrom?: string
}

/** One immutable version. */
export interface VersionView {
  version: number
  origin: SecretVersionTable['origin']
  originVersion: number | null
  deleted: boolean
  tags: string[]
  createdAt: string
  createdBy: string
  value?: string | null
  comment?: string | null
}

/** What a change did, for the response and for the audit entry (values never leave the server unasked). */
export interface SecretChange {
  secret: SecretView
  previousVersion: number
  /** Plaintext before and after; the pipeline only ever fingerprints them. */
  before: string | null
  after: string | null
}

/** One key of a diff: its version before (0: absent) and after (null: not written, or a preview). */
export interface DiffEntry {
  key: string
  version: number
  newVersion: number | null
}

/** What applying a set of values to an environment does (or did): keys and versions, never values. */
export interface ApplyResult {
  /** The environment's state the diff was computed against (see `stateOf`). */
  state: string
  /** The state after the write; null for a preview. */
  newState: string | null
  adds: DiffEntry[]
  changes: DiffEntry[]
  deletes: DiffEntry[]
  unchanged: DiffEntry[]
  /** The changes written, for the audit log (empty for a preview). */
  written: Array<{ kind: 'create' | 'update' | 'delete'; change: SecretChange }>
}

/** Values to make an environment hold. */
export interface ApplyInput {
  upserts: Array<{ key: string; value: string }>
  deletes?: string[] | undefined
  /** The upserts are the whole set: every other live key is deleted. */
  replace?: boolean | undefined
  dryRun?: boolean | undefined
  /** Check-and-set: the `state` of the preview this apply is based on. */
  ifState?: string | undefined
}

/** What copying keys did in the target environment. */
export interface CopyResult {
  adds: DiffEntry[]
  changes: DiffEntry[]
  unchanged: DiffEntry[]
  written: Array<{ kind: 'create' | 'update'; change: SecretChange; from: { id: string; version: number } }>
}

/** One key of an environment diff, with its current version on each side (0: absent there). */
export interface EnvironmentDiffEntry {
  key: string
  fromVersion: number
  toVersion: number
}

/** Two environments compared by keyed value fingerprints: no value is decrypted for it. */
export interface EnvironmentDiff {
  /** `stateOf` each side: send `toState` back to promote as check-and-set. */
  fromState: string
  toState: string
  /** Live in `from`, absent (or deleted) in `to`. */
  missing: EnvironmentDiffEntry[]
  /** Live in `to`, absent (or deleted) in `from`. */
  extra: EnvironmentDiffEntry[]
  /** Live in both, with different values. */
  different: EnvironmentDiffEntry[]
  /** Live in both, with equal values. */
  same: EnvironmentDiffEntry[]
}

/** A key's current content, decrypted (what a promotion proposes to copy). */
export interface CurrentContent {
  key: string
  version: number
  value: string
  comment: string | null
  tags: string[]
}

/** A key's current version and its value's fingerprint, as the matrix shows them. */
export interface MatrixCell {
  version: number
  /** Null when fingerprints were not asked for this environment. */
  fingerprint: Buffer | null
}

/** A secret's current row with its value's stored fingerprint (null: a deletion, or written before migration 10). */
interface StateRow extends SecretRow {
  fingerprint: Buffer | null
}

type SecretRow = { id: string; key: string; current_version: number; deleted: number; created_at: string; updated_at: string }
type VersionRow = Pick<
  SecretVersionTable,
  'version' | 'value_ct' | 'comment_ct' | 'tags' | 'deleted' | 'origin' | 'origin_version' | 'created_at' | 'created_by'
>
/** A secret's row as a write reads it: with its current version, when read in the same statement. */
type LockedRow = SecretRow & { current?: VersionRow }

/** Validates a key, or throws ValidationError naming it. */
export function checkKey(key: string): void {
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !SECRET_KEY_RE.test(key)) {
    throw new ValidationError('A secret key must match ^[A-Za-z_][A-Za-z0-9_]*$ and be at most 256 characters.', [
      { path: 'key', message: 'invalid key' },
    ])
  }
}

function checkInput(input: SecretInput): void {
  if (Buffer.byteLength(input.value, 'utf8') > MAX_VALUE_BYTES)
    throw new ValidationError('A secret value may be at most 64 KiB.', [{ path: 'value', message: 'too long' }])
  if (input.comment !== undefined && Buffer.byteLength(input.comment, 'utf8') > MAX_COMMENT_BYTES)
    throw new ValidationError('A comment may be at most 4 KiB.', [{ path: 'comment', message: 'too long' }])
  const tags = input.tags ?? []
  if (tags.length > MAX_TAGS || !tags.every((t) => TAG_RE.test(t))) {
    throw new ValidationError('Tags: at most 32, each 1–64 of A-Z a-z 0-9 _ . : / -.', [{ path: 'tags', message: 'invalid tags' }])
  }
}

/** A secret joined with its current version, as the list and get queries return it. */
interface CurrentRow extends SecretRow {
  version: number
  value_ct: Buffer | null
  comment_ct: Buffer | null
  tags: string
  v_deleted: number
  origin: SecretVersionTable['origin']
  origin_version: number | null
  v_created_at: string
  created_by: string
}

/** A secret's row as a write reads it: the current version's columns are null when the join found none. */
type LockedReadRow = SecretRow & { [K in Exclude<keyof CurrentRow, keyof SecretRow>]: CurrentRow[K] | null }

/** The join of a secret to its current version (`secret_versions` joined to `secrets`). */
function onCurrentVersion(j: JoinBuilder<Database, 'secrets' | 'secret_versions'>) {
  return j.onRef('secret_versions.secret_id', '=', 'secrets.id').onRef('secret_versions.version', '=', 'secrets.current_version')
}

/** The columns of SecretRow, in its order. */
const SECRET_COLUMNS = [
  'secrets.id',
  'secrets.key',
  'secrets.current_version',
  'secrets.deleted',
  'secrets.created_at',
  'secrets.updated_at',
] as const

/** The columns of CurrentRow, in its order. */
const CURRENT_COLUMNS = [
  ...SECRET_COLUMNS,
  'secret_versions.version',
  'secret_versions.value_ct',
  'secret_versions.comment_ct',
  'secret_versions.tags',
  'secret_versions.deleted as v_deleted',
  'secret_versions.origin',
  'secret_versions.origin_version',
  'secret_versions.created_at as v_created_at',
  'secret_versions.created_by',
] as const

/**
 * A row of the environment list, in select order: secret id, key, current version, deleted,
 * created, updated, the version's tags, and (revealing) its value and comment ciphertexts.
 */
type ListRow = [string, string, number, number, string, string, string, (Buffer | null)?, (Buffer | null)?]

/** The value and comment ciphertexts of live list rows (what a reveal opens). */
function* ciphertextsOf(rows: ListRow[]): Generator<Buffer | null> {
  for (const r of rows) {
    if (r[3] === 1) continue
    yield r[7] ?? null
    yield r[8] ?? null
  }
}

const NO_TAGS = '[]'

/** A version's tags (most have none: no JSON parse then). */
function tagsOf(json: string): string[] {
  return json === NO_TAGS ? [] : (JSON.parse(json) as string[])
}

/** A version's decrypted value, comment and tags. */
type PlainContent = { value: string | null; comment: string | null; tags: string[] }

/** A write lost a race to create the same secret on another node; its transaction runs again (transaction-retry.ts). */
class WriteRaceError extends Error {
  readonly code = '40001'
  constructor() {
    super('another transaction created the same secret')
  }
}

/**
 * Secrets and their versions. Every change writes a new immutable version encrypted under
 * the environment's primary data key and bound (AAD) to its workspace, project,
 * environment, secret id, version and field. Functions that change take the transaction
 * the pipeline opened, so the audit entry commits with them.
 */
export class SecretService {
  readonly #keys: DataKeys
  readonly #clock: Clock
  readonly #engine: Engine

  /** `clock` stamps versions and rows (the context's clock); `engine` says how a write locks the row it changes. */
  constructor(deps: { dataKeys: DataKeys; clock: Clock; engine: Engine }) {
    this.#keys = deps.dataKeys
    this.#clock = deps.clock
    this.#engine = deps.engine
  }

  #binding(scope: SecretScope, secretId: string, version: number, field: 'value' | 'comment'): Binding {
    return {
      workspaceId: scope.workspaceId,
      projectId: scope.projectId,
      environmentId: scope.environmentId,
      recordId: secretId,
      recordVersion: version,
      field,
    }
  }

  async #decrypt(
    db: Executor,
    scope: SecretScope,
    secretId: string,
    version: number,
    field: 'value' | 'comment',
    ct: Buffer | null,
  ): Promise<string | null> {
    if (ct === null) return null
    const dek = await this.#keys.byRef(db, keyRefOf(ct), scope)
    const plain = open(dek, ct, this.#binding(scope, secretId, version, field))
    const text = plain.toString('utf8')
    plain.fill(0)
    return text
  }

  /**
   * The row of a secret about to be written, with its current version, in one statement. It
   * stays locked until the transaction ends (PostgreSQL; SQLite has one writer): secret writes
   * do not take the workspace write lock, so two nodes writing one secret meet here, and the
   * second reads the version the first wrote.
   */
  async #findRow(db: Executor, scope: SecretScope, key: string): Promise<LockedRow | undefined> {
    const r = (
      await SecretService.#queries.forWrite[this.#engine === 'postgres' ? 1 : 0]!.run<LockedReadRow>(db, {
        ws: scope.workspaceId,
        project: scope.projectId,
        env: scope.environmentId,
        key,
      })
    ).rows[0]
    if (!r) return undefined
    const row: LockedRow = {
      id: r.id,
      key: r.key,
      current_version: r.current_version,
      deleted: r.deleted,
      created_at: r.created_at,
      updated_at: r.updated_at,
    }
    // @NOTE on PostgreSQL a row updated by another transaction while this one waited for its
    // lock is re-read, but the version joined to it may be the one from before: kept only when
    // it is the row's current version (otherwise #currentPlain reads it again).
    if (r.version === r.current_version) {
      const v = r as CurrentRow
      row.current = { ...v, deleted: v.v_deleted, created_at: v.v_created_at }
    }
    return row
  }

  async #version(db: Executor, scope: SecretScope, secretId: string, version: number): Promise<VersionRow | undefined> {
    return db
      .selectFrom('secret_versions')
      .select(['version', 'value_ct', 'comment_ct', 'tags', 'deleted', 'origin', 'origin_version', 'created_at', 'created_by'])
      .where('secret_id', '=', secretId)
      .where('version', '=', version)
      .where('workspace_id', '=', scope.workspaceId)
      .where('environment_id', '=', scope.environmentId)
      .executeTakeFirst()
  }

  async #view(db: Executor, scope: SecretScope, row: SecretRow, v: VersionRow, reveal: boolean): Promise<SecretView> {
    const view: SecretView = {
      id: row.id,
      key: row.key,
      version: row.current_version,
      deleted: row.deleted === 1,
      tags: JSON.parse(v.tags) as string[],
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    }
    if (reveal && !view.deleted) {
      view.value = (await this.#decrypt(db, scope, row.id, v.version, 'value', v.value_ct)) ?? ''
      view.comment = await this.#decrypt(db, scope, row.id, v.version, 'comment', v.comment_ct)
    }
    return view
  }

  /**
   * One secret of the scope, by key, with its current version's columns (CURRENT_COLUMNS). A
   * reveal joins the version; a write (`forWrite`) LEFT JOINs it — a row re-read after another
   * transaction changed it keeps its place even if the version joined to it is the older one —
   * and, for a 'locked write', takes the row `FOR UPDATE OF secrets` (PostgreSQL).
   */
  static #byKey(use: 'reveal' | 'write' | 'locked write') {
    return new QueryTemplate<'ws' | 'project' | 'env' | 'key'>((db, p) => {
      const secrets = db.selectFrom('secrets')
      const inner = secrets.innerJoin('secret_versions', onCurrentVersion)
      // The same join, LEFT: its version columns may be null (a write reads them as LockedReadRow).
      const joined = use === 'reveal' ? inner : (secrets.leftJoin('secret_versions', onCurrentVersion) as unknown as typeof inner)
      const q = joined
        .select(CURRENT_COLUMNS)
        .where('secrets.workspace_id', '=', p('ws'))
        .where('secrets.project_id', '=', p('project'))
        .where('secrets.environment_id', '=', p('env'))
        .where('secrets.key', '=', p('key'))
      return use === 'locked write' ? q.forUpdate('secrets') : q
    })
  }

  // @NOTE every reveal of one secret reads this: compiled once (see QueryTemplate).
  static readonly #queries = {
    one: SecretService.#byKey('reveal'),
    // Index: whether the row is locked (PostgreSQL; SQLite has one writer and no FOR UPDATE).
    forWrite: [SecretService.#byKey('write'), SecretService.#byKey('locked write')],
  }

  /**
   * The environment's secrets at their current version with only the columns a view needs
   * (LIST_COLUMNS order; the ciphertexts only when `reveal`), sorted by key; deleted ones
   * only with `includeDeleted`.
   */
  static #listed(includeDeleted: boolean, reveal: boolean) {
    return new QueryTemplate<'ws' | 'project' | 'env' | 'deleted'>((db, p) => {
      let q = db
        .selectFrom('secrets')
        .innerJoin('secret_versions', onCurrentVersion)
        .select(SECRET_COLUMNS)
        .select('secret_versions.tags')
        .where('secrets.workspace_id', '=', p('ws'))
        .where('secrets.project_id', '=', p('project'))
        .where('secrets.environment_id', '=', p('env'))
      if (!includeDeleted) q = q.where('secrets.deleted', '=', p('deleted'))
      return (reveal ? q.select(['secret_versions.value_ct', 'secret_versions.comment_ct']) : q).orderBy('secrets.key')
    })
  }

  // @NOTE what `run`, `export` and the secrets grid read: one query, compiled once, read as raw
  // rows (on SQLite straight from the prepared statement). Index: includeDeleted * 2 + reveal.
  static readonly #lists = [
    SecretService.#listed(false, false),
    SecretService.#listed(false, true),
    SecretService.#listed(true, false),
    SecretService.#listed(true, true),
  ] as const

  /**
   * Every secret of the environment (deleted ones only with `includeDeleted`), sorted by key.
   * Values are decrypted only when `reveal` is true — each data key looked up once for the
   * whole environment, not once per value (see BatchOpener).
   */
  async list(db: Executor, scope: SecretScope, opts: { reveal: boolean; includeDeleted?: boolean }): Promise<SecretView[]> {
    const template = SecretService.#lists[(opts.includeDeleted ? 2 : 0) + (opts.reveal ? 1 : 0)] as QueryTemplate<
      'ws' | 'project' | 'env' | 'deleted'
    >
    const rows = (await template.rows(db, {
      ws: scope.workspaceId,
      project: scope.projectId,
      env: scope.environmentId,
      deleted: 0,
    })) as ListRow[]
    const opener = opts.reveal ? await BatchOpener.of(this.#keys, db, scope, ciphertextsOf(rows)) : null
    const out = new Array<SecretView>(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const [id, key, version, deleted, createdAt, updatedAt, tags, valueCt, commentCt] = rows[i] as ListRow
      const view: SecretView = { id, key, version, deleted: deleted === 1, tags: tagsOf(tags), createdAt, updatedAt }
      if (opener && deleted !== 1) {
        view.value = opener.open(valueCt ?? null, id, version, 'value') ?? ''
        view.comment = opener.open(commentCt ?? null, id, version, 'comment')
      }
      out[i] = view
    }
    return out
  }

  /** One secret; NotFound when absent, or deleted unless `includeDeleted`. */
  async get(db: Executor, scope: SecretScope, key: string, opts: { reveal: boolean; includeDeleted?: boolean }): Promise<SecretView> {
    checkKey(key)
    const r = (
      await SecretService.#queries.one.run<CurrentRow>(db, {
        ws: scope.workspaceId,
        project: scope.projectId,
        env: scope.environmentId,
        key,
      })
    ).rows[0]
    if (!r || (r.deleted === 1 && !opts.includeDeleted)) throw new NotFoundError('secret')
    return this.#view(db, scope, r, { ...r, deleted: r.v_deleted, created_at: r.v_created_at }, opts.reveal)
  }

  /** Every version of a secret, newest first; values only when `reveal`. */
  async history(
    db: Executor,
    scope: SecretScope,
    key: string,
    opts: { reveal: boolean },
  ): Promise<{ secret: SecretView; versions: VersionView[] }> {
    const secret = await this.get(db, scope, key, { reveal: false, includeDeleted: true })
    const rows = await db
      .selectFrom('secret_versions')
      .select(['version', 'value_ct', 'comment_ct', 'tags', 'deleted', 'origin', 'origin_version', 'created_at', 'created_by'])
      .where('secret_id', '=', secret.id)
      .where('workspace_id', '=', scope.workspaceId)
      .orderBy('version', 'desc')
      .execute()
    const versions: VersionView[] = []
    for (const r of rows) {
      const v: VersionView = {
        version: r.version,
        origin: r.origin,
        originVersion: r.origin_version,
        deleted: r.deleted === 1,
        tags: JSON.parse(r.tags) as string[],
        createdAt: r.created_at,
        createdBy: r.created_by,
      }
      if (opts.reveal) {
        v.value = await this.#decrypt(db, scope, secret.id, r.version, 'value', r.value_ct)
        v.comment = await this.#decrypt(db, scope, secret.id, r.version, 'comment', r.comment_ct)
      }
      versions.push(v)
    }
    return { secret, versions }
  }

  /** Writes version n+1 of the row (creating the row at version 1), encrypted under the primary DEK. */
  async #write(
    tx: Executor,
    scope: SecretScope,
    actorId: string,
    key: string,
    existing: SecretRow | undefined,
    content: { value: string | null; comment: string | null; tags: string[] },
    origin: SecretVersionTable['origin'],
    originVersion: number | null,
  ): Promise<SecretView> {
    const now = this.#clock().toISOString()
    const id = existing?.id ?? randomUUID()
    const version = (existing?.current_version ?? 0) + 1
    const deleted = content.value === null ? 1 : 0
    if (existing) {
      await tx.updateTable('secrets').set({ current_version: version, deleted, updated_at: now }).where('id', '=', id).execute()
    } else {
      const created = await tx
        .insertInto('secrets')
        .values({
          id,
          workspace_id: scope.workspaceId,
          project_id: scope.projectId,
          environment_id: scope.environmentId,
          key,
          current_version: version,
          deleted,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) => oc.columns(['environment_id', 'key']).doNothing())
        .executeTakeFirst()
      // Another node created the key after this transaction looked: run again, as after a lost serialization race.
      if (Number(created.numInsertedOrUpdatedRows ?? 0n) === 0) throw new WriteRaceError()
    }
    let valueCt: Buffer | null = null
    let commentCt: Buffer | null = null
    let dekId: string | null = null
    let dekVersion: number | null = null
    let fingerprint: Buffer | null = null
    if (content.value !== null) {
      fingerprint = await this.fingerprint(tx, scope.workspaceId, content.value)
      const dek = await this.#keys.forWrite(tx, scope, content.comment !== null ? 2 : 1)
      valueCt = seal(dek, Buffer.from(content.value, 'utf8'), this.#binding(scope, id, version, 'value'))
      if (content.comment !== null)
        commentCt = seal(dek, Buffer.from(content.comment, 'utf8'), this.#binding(scope, id, version, 'comment'))
      dekId = dek.id
      dekVersion = dek.version
    }
    await tx
      .insertInto('secret_versions')
      .values({
        secret_id: id,
        version,
        workspace_id: scope.workspaceId,
        project_id: scope.projectId,
        environment_id: scope.environmentId,
        value_ct: valueCt,
        comment_ct: commentCt,
        tags: JSON.stringify(content.tags),
        deleted,
        origin,
        origin_version: originVersion,
        dek_id: dekId,
        dek_version: dekVersion,
        created_at: now,
        created_by: actorId,
        value_fingerprint: fingerprint,
      })
      .execute()
    return {
      id,
      key,
      version,
      deleted: deleted === 1,
      tags: content.tags,
      createdAt: existing?.created_at ?? now,
      updatedAt: now,
    }
  }

  async #currentPlain(tx: Executor, scope: SecretScope, row: LockedRow | undefined): Promise<PlainContent | null> {
    if (!row) return null
    const v = row.current ?? (await this.#version(tx, scope, row.id, row.current_version))
    if (!v) return null
    return {
      value: await this.#decrypt(tx, scope, row.id, v.version, 'value', v.value_ct),
      comment: await this.#decrypt(tx, scope, row.id, v.version, 'comment', v.comment_ct),
      tags: JSON.parse(v.tags) as string[],
    }
  }

  static #checkVersion(row: SecretRow | undefined, ifVersion: number | undefined): void {
    if (ifVersion === undefined) return
    const current = row?.current_version ?? 0
    if (current !== ifVersion) throw new VersionConflictError(current)
  }

  /**
   * Sets a secret's value (and comment and tags), creating it if needed. With `ifVersion`
   * the write happens only if the current version is that one (0: only if it does not exist).
   */
  async set(
    tx: Executor,
    scope: SecretScope,
    actorId: string,
    key: string,
    input: SecretInput & { ifVersion?: number | undefined },
  ): Promise<SecretChange> {
    checkKey(key)
    checkInput(input)
    const row = await this.#findRow(tx, scope, key)
    SecretService.#checkVersion(row, input.ifVersion)
    const before = row && row.deleted === 0 ? await this.#currentPlain(tx, scope, row) : null
    const secret = await this.#write(
      tx,
      scope,
      actorId,
      key,
      row,
      { value: input.value, comment: input.comment ?? null, tags: input.tags ?? [] },
      'set',
      null,
    )
    return { secret, previousVersion: row?.current_version ?? 0, before: before?.value ?? null, after: input.value }
  }

  /** Sets many secrets in one transaction: all of them or none. */
  async setMany(tx: Executor, scope: SecretScope, actorId: string, items: Array<SecretInput & { key: string }>): Promise<SecretChange[]> {
    const seen = new Set<string>()
    for (const it of items) {
      checkKey(it.key)
      checkInput(it)
      if (seen.has(it.key))
        throw new ValidationError(`The key ${it.key} appears twice.`, [{ path: 'secrets', message: `duplicate key ${it.key}` }])
      seen.add(it.key)
    }
    const out: SecretChange[] = []
    for (const it of items) out.push(await this.set(tx, scope, actorId, it.key, it))
    return out
  }

  /** Deletes a secret by writing a tombstone version; `restore` brings it back. */
  async delete(tx: Executor, scope: SecretScope, actorId: string, key: string, ifVersion?: number): Promise<SecretChange> {
    checkKey(key)
    const row = await this.#findRow(tx, scope, key)
    if (!row || row.deleted === 1) throw new NotFoundError('secret')
    SecretService.#checkVersion(row, ifVersion)
    const before = await this.#currentPlain(tx, scope, row)
    const secret = await this.#write(tx, scope, actorId, key, row, { value: null, comment: null, tags: before?.tags ?? [] }, 'delete', null)
    return { secret, previousVersion: row.current_version, before: before?.value ?? null, after: null }
  }

  /** Undeletes a secret: a new version equal to the last version before the deletion. */
  async restore(tx: Executor, scope: SecretScope, actorId: string, key: string): Promise<SecretChange> {
    checkKey(key)
    const row = await this.#findRow(tx, scope, key)
    if (!row || row.deleted === 0) throw new NotFoundError('deleted secret')
    const last = await tx
      .selectFrom('secret_versions')
      .select('version')
      .where('secret_id', '=', row.id)
      .where('workspace_id', '=', scope.workspaceId)
      .where('deleted', '=', 0)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst()
    if (!last) throw new NotFoundError('deleted secret')
    return this.#copy(tx, scope, actorId, row, last.version, 'restore')
  }

  /** Writes a new version equal to version `to`; history is never rewritten. */
  async rollback(tx: Executor, scope: SecretScope, actorId: string, key: string, to: number, ifVersion?: number): Promise<SecretChange> {
    checkKey(key)
    const row = await this.#findRow(tx, scope, key)
    if (!row) throw new NotFoundError('secret')
    SecretService.#checkVersion(row, ifVersion)
    return this.#copy(tx, scope, actorId, row, to, 'rollback')
  }

  async #copy(
    tx: Executor,
    scope: SecretScope,
    actorId: string,
    row: SecretRow,
    from: number,
    origin: 'rollback' | 'restore',
  ): Promise<SecretChange> {
    const v = await this.#version(tx, scope, row.id, from)
    if (!v) throw new NotFoundError('secret version')
    if (v.deleted === 1)
      throw new ValidationError('That version is a deletion; roll back to a version with a value.', [
        { path: 'version', message: 'is a deletion' },
      ])
    const before = row.deleted === 0 ? await this.#currentPlain(tx, scope, row) : null
    const value = await this.#decrypt(tx, scope, row.id, v.version, 'value', v.value_ct)
    const comment = await this.#decrypt(tx, scope, row.id, v.version, 'comment', v.comment_ct)
    const secret = await this.#write(
      tx,
      scope,
      actorId,
      row.key,
      row,
      { value: value ?? '', comment, tags: JSON.parse(v.tags) as string[] },
      origin,
      from,
    )
    return { secret, previousVersion: row.current_version, before: before?.value ?? null, after: value }
  }

  /** The keyed fingerprint of `value` in the workspace (HMAC-SHA256 under its value-fingerprint key). */
  async fingerprint(db: Executor, workspaceId: string, value: string): Promise<Buffer> {
    const key = await this.#keys.valueFingerprintKey(db, workspaceId)
    return createHmac('sha256', key).update(value, 'utf8').digest()
  }

  /** Every secret row of the scope (deleted ones too) with its current version's fingerprint. */
  async #states(db: Executor, scope: SecretScope): Promise<Map<string, StateRow>> {
    const rows = await db
      .selectFrom('secrets')
      .innerJoin('secret_versions', onCurrentVersion)
      .select([...SECRET_COLUMNS, 'secret_versions.value_fingerprint as fingerprint'])
      .where('secrets.workspace_id', '=', scope.workspaceId)
      .where('secrets.project_id', '=', scope.projectId)
      .where('secrets.environment_id', '=', scope.environmentId)
      .execute()
    return new Map(rows.map((r) => [r.key, r]))
  }

  /**
   * The environment's state: a digest of every secret's key, version and deletion, which
   * changes with any write to it. It says nothing of values.
   */
  static stateOf(rows: Iterable<Pick<SecretRow, 'key' | 'current_version' | 'deleted'>>): string {
    const lines = [...rows].map((r) => `${r.key}\t${r.current_version}\t${r.deleted}`).sort()
    return createHash('sha256').update(lines.join('\n')).digest('base64url')
  }

  /** The fingerprint of a live row's current value: stored, or (before migration 10) computed by decrypting it. */
  async #currentFingerprint(db: Executor, scope: SecretScope, row: StateRow): Promise<Buffer> {
    if (row.fingerprint) return Buffer.from(row.fingerprint)
    const v = await this.#version(db, scope, row.id, row.current_version)
    const value = v ? await this.#decrypt(db, scope, row.id, v.version, 'value', v.value_ct) : null
    return this.fingerprint(db, scope.workspaceId, value ?? '')
  }

  /**
   * Makes the environment hold `input.upserts` (and drop `input.deletes`, or with `replace`
   * every key not upserted): a value equal to the current one is left alone (no new version),
   * a changed one keeps its comment and tags. Compares by keyed fingerprints, so no stored
   * value is decrypted for it. With `dryRun` nothing is written; otherwise everything is
   * written in `tx` or nothing, and with `ifState` only if the environment is still in the
   * state the preview saw (EnvironmentChangedError otherwise).
   */
  async apply(tx: Executor, scope: SecretScope, actorId: string, input: ApplyInput): Promise<ApplyResult> {
    const seen = new Set<string>()
    for (const u of input.upserts) {
      checkKey(u.key)
      checkInput(u)
      if (seen.has(u.key))
        throw new ValidationError(`The key ${u.key} appears twice.`, [{ path: 'upserts', message: `duplicate key ${u.key}` }])
      seen.add(u.key)
    }
    for (const k of input.deletes ?? []) {
      checkKey(k)
      if (seen.has(k))
        throw new ValidationError(`The key ${k} is both set and deleted.`, [{ path: 'deletes', message: `${k} is also in upserts` }])
    }
    const rows = await this.#states(tx, scope)
    const state = SecretService.stateOf(rows.values())
    if (!input.dryRun && input.ifState !== undefined && input.ifState !== state) throw new EnvironmentChangedError(state)

    const result: ApplyResult = { state, newState: null, adds: [], changes: [], deletes: [], unchanged: [], written: [] }
    const toAdd: Array<{ key: string; value: string; row: StateRow | undefined }> = []
    const toChange: Array<{ key: string; value: string; row: StateRow }> = []
    for (const u of input.upserts) {
      const row = rows.get(u.key)
      if (!row || row.deleted === 1) {
        toAdd.push({ ...u, row })
        result.adds.push({ key: u.key, version: row?.current_version ?? 0, newVersion: null })
        continue
      }
      const same = (await this.fingerprint(tx, scope.workspaceId, u.value)).equals(await this.#currentFingerprint(tx, scope, row))
      if (same) result.unchanged.push({ key: u.key, version: row.current_version, newVersion: null })
      else {
        toChange.push({ ...u, row })
        result.changes.push({ key: u.key, version: row.current_version, newVersion: null })
      }
    }
    const deleting = new Set(input.deletes ?? [])
    if (input.replace) for (const [key, row] of rows) if (row.deleted === 0 && !seen.has(key)) deleting.add(key)
    const toDelete: StateRow[] = []
    for (const key of [...deleting].sort()) {
      const row = rows.get(key)
      // @NOTE deleting a key that is absent (or already deleted) is already done: nothing to write.
      if (!row || row.deleted === 1) continue
      toDelete.push(row)
      result.deletes.push({ key, version: row.current_version, newVersion: null })
    }
    if (input.dryRun) return result

    const after = new Map<string, Pick<SecretRow, 'key' | 'current_version' | 'deleted'>>(rows)
    for (const [i, a] of toAdd.entries()) {
      const secret = await this.#write(tx, scope, actorId, a.key, a.row, { value: a.value, comment: null, tags: [] }, 'set', null)
      result.adds[i]!.newVersion = secret.version
      result.written.push({
        kind: 'create',
        change: { secret, previousVersion: a.row?.current_version ?? 0, before: null, after: a.value },
      })
      after.set(a.key, { key: a.key, current_version: secret.version, deleted: 0 })
    }
    for (const [i, c] of toChange.entries()) {
      const before = await this.#currentPlain(tx, scope, c.row)
      const secret = await this.#write(
        tx,
        scope,
        actorId,
        c.key,
        c.row,
        { value: c.value, comment: before?.comment ?? null, tags: before?.tags ?? [] },
        'set',
        null,
      )
      result.changes[i]!.newVersion = secret.version
      result.written.push({
        kind: 'update',
        change: { secret, previousVersion: c.row.current_version, before: before?.value ?? null, after: c.value },
      })
      after.set(c.key, { key: c.key, current_version: secret.version, deleted: 0 })
    }
    for (const [i, row] of toDelete.entries()) {
      const before = await this.#currentPlain(tx, scope, row)
      const secret = await this.#write(
        tx,
        scope,
        actorId,
        row.key,
        row,
        { value: null, comment: null, tags: before?.tags ?? [] },
        'delete',
        null,
      )
      result.deletes[i]!.newVersion = secret.version
      result.written.push({
        kind: 'delete',
        change: { secret, previousVersion: row.current_version, before: before?.value ?? null, after: null },
      })
      after.set(row.key, { key: row.key, current_version: secret.version, deleted: 1 })
    }
    result.newState = SecretService.stateOf(after.values())
    return result
  }

  /**
   * Copies the live secrets `keys` of `from` (value, comment and tags) into `to`, in `tx`: all
   * or none. A key already holding the same value, comment and tags in `to` is left alone; a
   * different one is replaced only with `overwrite` (AlreadyExistsError otherwise, naming
   * the keys). A key missing in `from` is NotFound.
   */
  async copy(tx: Executor, from: SecretScope, to: SecretScope, actorId: string, keys: string[], overwrite: boolean): Promise<CopyResult> {
    const unique = [...new Set(keys)]
    for (const k of unique) checkKey(k)
    const targets = await this.#states(tx, to)
    const result: CopyResult = { adds: [], changes: [], unchanged: [], written: [] }
    const plan: Array<{
      key: string
      src: CurrentRow
      content: { value: string; comment: string | null; tags: string[] }
      row: StateRow | undefined
      /** The target's live value, decrypted once for the comparison and kept for the audit's "before". */
      before: PlainContent | null
    }> = []
    const conflicts: string[] = []
    for (const key of unique) {
      const src = (
        await SecretService.#queries.one.run<CurrentRow>(tx, {
          ws: from.workspaceId,
          project: from.projectId,
          env: from.environmentId,
          key,
        })
      ).rows[0]
      if (!src || src.deleted === 1) throw new NotFoundError(`secret ${key} in the source environment`)
      const content = {
        value: (await this.#decrypt(tx, from, src.id, src.version, 'value', src.value_ct)) ?? '',
        comment: await this.#decrypt(tx, from, src.id, src.version, 'comment', src.comment_ct),
        tags: JSON.parse(src.tags) as string[],
      }
      const row = targets.get(key)
      let current: PlainContent | null = null
      if (row && row.deleted === 0) {
        current = await this.#currentPlain(tx, to, row)
        const same =
          current !== null &&
          current.value === content.value &&
          current.comment === content.comment &&
          JSON.stringify(current.tags) === JSON.stringify(content.tags)
        if (same) {
          result.unchanged.push({ key, version: row.current_version, newVersion: null })
          continue
        }
        if (!overwrite) conflicts.push(key)
      }
      plan.push({ key, src, content, row, before: current })
    }
    if (conflicts.length)
      throw new AlreadyExistsError(`secret ${conflicts.join(', ')} in the target environment (send overwrite: true to replace it)`)
    for (const p of plan) {
      const live = p.row !== undefined && p.row.deleted === 0
      const before = p.before
      const secret = await this.#write(tx, to, actorId, p.key, p.row, p.content, 'set', null)
      const entry = { key: p.key, version: p.row?.current_version ?? 0, newVersion: secret.version }
      ;(live ? result.changes : result.adds).push(entry)
      result.written.push({
        kind: live ? 'update' : 'create',
        change: { secret, previousVersion: p.row?.current_version ?? 0, before: before?.value ?? null, after: p.content.value },
        from: { id: p.src.id, version: p.src.version },
      })
    }
    return result
  }

  /**
   * Compares the live keys of `from` and `to` (any two environments of one workspace): keys
   * missing in `to`, extra in `to`, and keys in both with different or equal values — by the
   * stored keyed fingerprints, decrypting only versions written before migration 10.
   */
  async diff(db: Executor, from: SecretScope, to: SecretScope): Promise<EnvironmentDiff> {
    const a = await this.#states(db, from)
    const b = await this.#states(db, to)
    const out: EnvironmentDiff = {
      fromState: SecretService.stateOf(a.values()),
      toState: SecretService.stateOf(b.values()),
      missing: [],
      extra: [],
      different: [],
      same: [],
    }
    const keys = [...new Set([...a.keys(), ...b.keys()])].sort()
    for (const key of keys) {
      const x = a.get(key)
      const y = b.get(key)
      const liveX = x !== undefined && x.deleted === 0
      const liveY = y !== undefined && y.deleted === 0
      const entry = { key, fromVersion: liveX ? x.current_version : 0, toVersion: liveY ? y.current_version : 0 }
      if (liveX && !liveY) out.missing.push(entry)
      else if (!liveX && liveY) out.extra.push(entry)
      else if (liveX && liveY) {
        const same = (await this.#currentFingerprint(db, from, x)).equals(await this.#currentFingerprint(db, to, y))
        ;(same ? out.same : out.different).push(entry)
      }
    }
    return out
  }

  /** The environment's live keys, sorted. */
  async liveKeys(db: Executor, scope: SecretScope): Promise<string[]> {
    return [...(await this.#states(db, scope)).values()]
      .filter((r) => r.deleted === 0)
      .map((r) => r.key)
      .sort()
  }

  /** The current version of each of `keys` (0: absent; a deleted key answers its tombstone's version). */
  async versionsOf(db: Executor, scope: SecretScope, keys: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.#states(db, scope)
    return new Map(keys.map((k) => [k, rows.get(k)?.current_version ?? 0]))
  }

  /** The environment's state (see `stateOf`). */
  async stateOfScope(db: Executor, scope: SecretScope): Promise<string> {
    return SecretService.stateOf((await this.#states(db, scope)).values())
  }

  /**
   * The state (see `stateOf`) of each of `environmentIds` in the workspace, in one query: what a
   * watch compares to notice a change in an environment that its values reference or import.
   */
  async statesOfEnvironments(db: Executor, workspaceId: string, environmentIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    if (environmentIds.length === 0) return out
    const rows = await db
      .selectFrom('secrets')
      .select(['environment_id', 'key', 'current_version', 'deleted'])
      .where('workspace_id', '=', workspaceId)
      .where('environment_id', 'in', environmentIds)
      .execute()
    for (const id of environmentIds) out.set(id, SecretService.stateOf(rows.filter((r) => r.environment_id === id)))
    return out
  }

  /** The decrypted current content of each live key of `keys`; a key absent or deleted is NotFound, naming it. */
  async contentsOf(db: Executor, scope: SecretScope, keys: readonly string[]): Promise<CurrentContent[]> {
    const out: CurrentContent[] = []
    for (const key of keys) {
      checkKey(key)
      const src = (
        await SecretService.#queries.one.run<CurrentRow>(db, {
          ws: scope.workspaceId,
          project: scope.projectId,
          env: scope.environmentId,
          key,
        })
      ).rows[0]
      if (!src || src.deleted === 1) throw new NotFoundError(`secret ${key} in the source environment`)
      out.push({
        key,
        version: src.version,
        value: (await this.#decrypt(db, scope, src.id, src.version, 'value', src.value_ct)) ?? '',
        comment: await this.#decrypt(db, scope, src.id, src.version, 'comment', src.comment_ct),
        tags: JSON.parse(src.tags) as string[],
      })
    }
    return out
  }

  /**
   * Promotes `keys` of `from` into `to`: their current value, comment and tags become new
   * versions in `to` (a key whose value is already equal there, by fingerprint, is left alone),
   * all in `tx` or none — a key missing in `from` is NotFound and nothing is written. With `ifState`, only if `to` is
   * still in that state (EnvironmentChangedError otherwise).
   */
  async promote(
    tx: Executor,
    from: SecretScope,
    to: SecretScope,
    actorId: string,
    keys: readonly string[],
    ifState?: string,
  ): Promise<CopyResult & { state: string }> {
    const d = await this.diff(tx, from, to)
    const state = d.toState
    if (ifState !== undefined && ifState !== state) throw new EnvironmentChangedError(state)
    // A key whose value is already the same in `to` (equal fingerprints) is left alone without
    // decrypting anything; the others are copied (value, comment and tags), all or none.
    const same = new Map(d.same.map((e) => [e.key, e.toVersion]))
    const unique = [...new Set(keys)]
    const rest = unique.filter((k) => !same.has(k))
    const r = rest.length ? await this.copy(tx, from, to, actorId, rest, true) : { adds: [], changes: [], unchanged: [], written: [] }
    const unchanged = [
      ...r.unchanged,
      ...unique.filter((k) => same.has(k)).map((key) => ({ key, version: same.get(key) ?? 0, newVersion: null })),
    ]
    unchanged.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    return { ...r, unchanged, state }
  }

  /**
   * Writes `content` as the new version of `key` only if the key is at `baseVersion` (0:
   * absent): what an approved change request does.
   */
  async setExact(
    tx: Executor,
    scope: SecretScope,
    actorId: string,
    key: string,
    content: { value: string; comment: string | null; tags: string[] },
    baseVersion: number,
  ): Promise<SecretChange> {
    return this.set(tx, scope, actorId, key, {
      value: content.value,
      ...(content.comment !== null ? { comment: content.comment } : {}),
      tags: content.tags,
      ifVersion: baseVersion,
    })
  }

  /**
   * The live keys of several environments of one project, with their versions and — for the
   * environments in `withFingerprints` — their values' fingerprints. One query; a value is
   * decrypted only for versions written before migration 10 (no stored fingerprint).
   */
  async matrix(
    db: Executor,
    project: { workspaceId: string; projectId: string },
    environmentIds: string[],
    withFingerprints: ReadonlySet<string>,
  ): Promise<Map<string, Map<string, MatrixCell>>> {
    const out = new Map<string, Map<string, MatrixCell>>(environmentIds.map((id) => [id, new Map()]))
    if (environmentIds.length === 0) return out
    const rows = await db
      .selectFrom('secrets')
      .innerJoin('secret_versions', onCurrentVersion)
      .select([
        'secrets.id',
        'secrets.key',
        'secrets.environment_id',
        'secrets.current_version',
        'secret_versions.value_fingerprint as fingerprint',
        // The ciphertext only where no fingerprint is stored (versions older than migration 10).
        (eb) =>
          eb
            .case()
            .when('secret_versions.value_fingerprint', 'is', null)
            .then(eb.ref('secret_versions.value_ct'))
            .else(null)
            .end()
            .as('legacy_ct'),
      ])
      .where('secrets.workspace_id', '=', project.workspaceId)
      .where('secrets.project_id', '=', project.projectId)
      .where('secrets.environment_id', 'in', environmentIds)
      .where('secrets.deleted', '=', 0)
      .execute()
    for (const r of rows) {
      let fingerprint: Buffer | null = null
      if (withFingerprints.has(r.environment_id)) {
        const scope = { ...project, environmentId: r.environment_id }
        fingerprint = r.fingerprint
          ? Buffer.from(r.fingerprint)
          : await this.fingerprint(
              db,
              project.workspaceId,
              (await this.#decrypt(db, scope, r.id, r.current_version, 'value', r.legacy_ct)) ?? '',
            )
      }
      out.get(r.environment_id)?.set(r.key, { version: r.current_version, fingerprint })
    }
    return out
  }
}
