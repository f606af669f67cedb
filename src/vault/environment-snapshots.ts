import { type Binding, keyRefOf, open, seal } from '../crypto/envelope.js'
import { DecryptionError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { Metrics } from '../ops/metrics.js'
import type { Engine, Executor } from '../storage/database.js'
import { QueryTemplate } from '../storage/query-template.js'
import type { DataKeys } from './data-keys.js'
import { mayHoldReferences } from './references.js'
import type { SecretScope, SecretService, SecretView } from './secret-service.js'

// An environment fetch (`run`, `export`, a reveal of the list) answered from one ciphertext
// (migration 23). Opening a hundred values one by one costs a hundred AEAD set-ups and row
// reads per fetch; the snapshot holds the same revealed list — every live secret at its current
// version, as `SecretService.list(…, { reveal: true })` returns it — sealed once under the
// environment's data key, so a fetch reads one row and opens one ciphertext.
//
// - Derived, never the authority. The rows are: a snapshot is served only while its
//   `built_generation` equals the `generation` that the secrets tables' triggers bump (and drop
//   the ciphertext) in every change's own transaction. A fetch that finds none, or one that does
//   not open, answers from the rows as before and asks for a build.
// - Bound to its place like every ciphertext (DESIGN.md): the AAD names the workspace, project
//   and environment, the record (the environment) and its version (the generation), and the
//   field `snapshot`. A snapshot copied into another environment or tenant, or put back at
//   another generation, does not open, and the fetch answers from the rows.
// - Built off the request path, in a write transaction of its own that locks the snapshot's row
//   before it reads the rows (PostgreSQL): a writer's trigger waits for that lock, so no change
//   commits between the build's read of the rows and its commit without leaving the snapshot stale. One build per
//   environment at a time on each node; several nodes may each build, and the one that finds it
//   current does nothing.
// - Plaintext lives as long as the request's. Only ciphertext is kept. When nothing is to be
//   resolved (no import, no override, no `${`), the fetch sends the opened bytes as its answer
//   without turning the values into strings at all.

/** The least time between two builds of one environment's snapshot on one node. */
const MIN_BUILD_INTERVAL_MS = 200

/** The field a snapshot's AAD names (a secret's fields are `value` and `comment`). */
const FIELD = 'snapshot'

type SnapshotRow = { built_generation: number | string; body_ct: Buffer }

/** An opened snapshot: what a fetch needs without parsing the values. */
export interface Snapshot {
  /** The keys listed, in order (an environment fetch's audit entry names them). */
  readonly keys: string[]
  /** Whether some value may hold a reference (`${`): such a list is resolved, not sent as it is. */
  readonly references: boolean
  /** `{"secrets":[…]}`: the list answer's JSON, exactly as the route's compiled serializer writes it. */
  readonly answer: Buffer
  /** The list itself (parsed from `answer`). */
  views(): SecretView[]
}

// The plaintext: format byte 0x01, flags byte (bit 0: references), u32be length of the keys'
// JSON array, that array, then the answer's JSON. The views are SecretService.list's, whose
// properties come in the response schema's order, so JSON.stringify writes what the serializer
// would (test/server/env-fetch.test.ts holds the answer to JSON.stringify of itself).
const FORMAT = 0x01
const HEAD = 6

function encodeSnapshot(views: SecretView[]): Buffer {
  const keys = Buffer.from(JSON.stringify(views.map((v) => v.key)), 'utf8')
  const answer = Buffer.from(JSON.stringify({ secrets: views }), 'utf8')
  const out = Buffer.allocUnsafe(HEAD + keys.length + answer.length)
  out[0] = FORMAT
  out[1] = views.some((v) => v.value !== undefined && mayHoldReferences(v.value)) ? 1 : 0
  out.writeUInt32BE(keys.length, 2)
  keys.copy(out, HEAD)
  answer.copy(out, HEAD + keys.length)
  answer.fill(0)
  return out
}

function decodeSnapshot(plain: Buffer): Snapshot {
  if (plain[0] !== FORMAT || plain.length < HEAD) throw new Error('environment snapshot: unknown format')
  const keysEnd = HEAD + plain.readUInt32BE(2)
  const answer = plain.subarray(keysEnd)
  return {
    keys: JSON.parse(plain.toString('utf8', HEAD, keysEnd)) as string[],
    references: ((plain[1] as number) & 1) === 1,
    answer,
    views: () => (JSON.parse(answer.toString('utf8')) as { secrets: SecretView[] }).secrets,
  }
}

/** What a build needs besides the rows: where it writes, and what it counts. */
export interface EnvironmentSnapshotDeps {
  readonly dataKeys: DataKeys
  readonly secrets: SecretService
  readonly clock: Clock
  readonly engine: Engine
  /** Runs `work` in a durable write transaction in the workspace's scope (the group committer, row-locked partition). */
  readonly write: (workspaceId: string, work: (tx: Executor) => Promise<void>) => Promise<void>
  readonly metrics?: Metrics
}

export class EnvironmentSnapshots {
  readonly #deps: EnvironmentSnapshotDeps
  /** Environments with a build in flight on this node. */
  readonly #building = new Set<string>()
  /** When this node last started a build of each environment (bounded; see #schedule). */
  readonly #started = new Map<string, number>()
  readonly #builds = new Set<Promise<void>>()

  constructor(deps: EnvironmentSnapshotDeps) {
    this.#deps = deps
  }

  static readonly #current = new QueryTemplate<'ws' | 'env'>((db, p) =>
    db
      .selectFrom('environment_snapshots')
      .select(['built_generation', 'body_ct'])
      .where('workspace_id', '=', p('ws'))
      .where('environment_id', '=', p('env'))
      .whereRef('built_generation', '=', 'generation')
      .where('body_ct', 'is not', null),
  )

  static #binding(scope: SecretScope, generation: number): Binding {
    return {
      workspaceId: scope.workspaceId,
      projectId: scope.projectId,
      environmentId: scope.environmentId,
      recordId: scope.environmentId,
      recordVersion: generation,
      field: FIELD,
    }
  }

  /**
   * The environment's current snapshot, opened; null when it holds none that is current or its
   * snapshot does not open — then a build is started in the background and the caller reads the rows.
   */
  async read(db: Executor, scope: SecretScope): Promise<Snapshot | null> {
    const row = (await EnvironmentSnapshots.#current.run<SnapshotRow>(db, { ws: scope.workspaceId, env: scope.environmentId })).rows[0]
    const snapshot = row ? await this.#open(db, scope, row) : null
    this.#deps.metrics?.environmentSnapshotLookups.inc(1, { result: snapshot ? 'hit' : row ? 'rejected' : 'miss' })
    if (!snapshot) this.#schedule(scope)
    return snapshot
  }

  /**
   * The environment's revealed list — what `SecretService.list(db, scope, { reveal: true })`
   * answers — from its snapshot when it holds a current one, else from the rows.
   */
  async list(db: Executor, scope: SecretScope): Promise<SecretView[]> {
    const snapshot = await this.read(db, scope)
    return snapshot ? snapshot.views() : this.#deps.secrets.list(db, scope, { reveal: true })
  }

  /** The snapshot's contents, or null when it does not open (another place's ciphertext, a tampered one). */
  async #open(db: Executor, scope: SecretScope, row: SnapshotRow): Promise<Snapshot | null> {
    const ct = row.body_ct
    let plain: Buffer
    try {
      const dek = await this.#deps.dataKeys.byRef(db, keyRefOf(ct), scope)
      plain = open(dek, ct, EnvironmentSnapshots.#binding(scope, Number(row.built_generation)))
    } catch (err) {
      if (err instanceof DecryptionError) return null
      throw err
    }
    return decodeSnapshot(plain)
  }

  /**
   * Starts a build of the environment's snapshot unless one is in flight on this node or one
   * started less than `MIN_BUILD_INTERVAL_MS` ago: an environment written as often as it is read
   * would otherwise be rebuilt — every value opened and sealed again — after every write. Its
   * fetches between builds read the rows, as without snapshots.
   */
  #schedule(scope: SecretScope): void {
    const id = scope.environmentId
    // A monotonic clock: this spaces work out, it dates nothing.
    const now = performance.now()
    if (this.#building.has(id) || now - (this.#started.get(id) ?? Number.NEGATIVE_INFINITY) < MIN_BUILD_INTERVAL_MS) return
    if (this.#started.size >= 10_000)
      for (const [env, at] of this.#started) if (now - at >= MIN_BUILD_INTERVAL_MS) this.#started.delete(env)
    this.#started.set(id, now)
    this.#building.add(id)
    const p = this.#deps
      .write(scope.workspaceId, async (tx) => {
        await this.build(tx, scope)
      })
      .catch(() => this.#deps.metrics?.environmentSnapshotBuilds.inc(1, { result: 'failed' }))
      .finally(() => {
        this.#building.delete(id)
        this.#builds.delete(p)
      })
    this.#builds.add(p)
  }

  /**
   * Builds the environment's snapshot in `tx` (a write transaction in its workspace's scope),
   * unless the one it holds is current. Returns whether it built one.
   */
  async build(tx: Executor, scope: SecretScope): Promise<boolean> {
    const { engine, dataKeys, secrets, clock } = this.#deps
    const env = scope.environmentId
    const state = (lock: boolean) => {
      const q = tx
        .selectFrom('environment_snapshots')
        .select(['generation', 'built_generation'])
        .where('workspace_id', '=', scope.workspaceId)
        .where('environment_id', '=', env)
      return (lock && engine === 'postgres' ? q.forUpdate() : q).executeTakeFirst()
    }
    const current = (s: { generation: number; built_generation: number | null } | undefined) =>
      s !== undefined && s.built_generation !== null && Number(s.built_generation) === Number(s.generation)
    if (current(await state(false))) {
      this.#deps.metrics?.environmentSnapshotBuilds.inc(1, { result: 'current' })
      return false
    }
    // @NOTE in the lock order every secret write takes them in: the data key's row (its
    // encryption), then the snapshot's row (its triggers, at COMMIT on PostgreSQL); the rows
    // are read after both, so a writer that changed them first has committed by then.
    const dek = await dataKeys.forWrite(tx, scope, 1)
    await tx
      .insertInto('environment_snapshots')
      .values({ environment_id: env, workspace_id: scope.workspaceId, project_id: scope.projectId, generation: 0 })
      .onConflict((oc) => oc.column('environment_id').doNothing())
      .execute()
    const locked = await state(true)
    if (!locked || current(locked)) {
      this.#deps.metrics?.environmentSnapshotBuilds.inc(1, { result: 'current' })
      return false
    }
    const generation = Number(locked.generation)
    const plain = encodeSnapshot(await secrets.list(tx, scope, { reveal: true }))
    const ct = seal(dek, plain, EnvironmentSnapshots.#binding(scope, generation))
    plain.fill(0)
    await tx
      .updateTable('environment_snapshots')
      .set({ body_ct: ct, built_generation: generation, built_at: clock().toISOString() })
      .where('workspace_id', '=', scope.workspaceId)
      .where('environment_id', '=', env)
      .where('generation', '=', generation)
      .execute()
    this.#deps.metrics?.environmentSnapshotBuilds.inc(1, { result: 'built' })
    return true
  }

  /**
   * Makes the environment's snapshot stale and drops its ciphertext: the resealer does, in the
   * transaction that destroys the old key versions it may be sealed under.
   */
  static async drop(tx: Executor, scope: SecretScope): Promise<void> {
    await tx
      .updateTable('environment_snapshots')
      .set((eb) => ({ generation: eb('generation', '+', 1), built_generation: null, body_ct: null }))
      .where('workspace_id', '=', scope.workspaceId)
      .where('environment_id', '=', scope.environmentId)
      .execute()
  }

  /** Waits for the builds in flight (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.#builds.size) await Promise.allSettled([...this.#builds])
  }
}
