import { resealProposals } from './change-request-seal.js'
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../ops/clock.js'
import type { DataKey } from '../crypto/envelope.js'
import { FIELD_COMMENT, FIELD_VALUE, ResealBatchBuilder, ResealItemError, resealBatch, type ResealBatch } from '../crypto/reseal-batch.js'
import type { ResealWorkers } from '../crypto/reseal-workers.js'
import type { DataKeyScope } from '../crypto/key-provider.js'
import type { Executor, Store } from '../storage/database.js'
import { isConnectionError } from '../storage/connection-errors.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { conflictReason } from '../storage/transaction-retry.js'
import type { GroupCommitter } from '../storage/group-commit.js'
import { onSqliteConnection } from '../storage/statement-cache.js'
import type { KeyJobTable } from '../storage/schema.js'
import type { DataKeys } from './data-keys.js'
import { EnvironmentSnapshots } from './environment-snapshots.js'
import { PersonalOverrides } from './personal-overrides.js'

/** What the resealer needs from the running Coffer. */
export interface ResealerDeps {
  /** Where jobs are looked for (a read connection is enough). */
  readonly store: Pick<Store, 'engine' | 'readDb'>
  readonly committer: GroupCommitter
  readonly dataKeys: DataKeys
  readonly audit: AuditLog
  readonly batchSize: number
  readonly leaseMs: number
  /** The time of leases and of the job's timestamps (the context's clock). */
  readonly clock: Clock
  /** Worker threads for the AES work; without them it runs on the event loop. */
  readonly workers?: ResealWorkers
  /**
   * After each batch, pause this many times the time the batch held the event loop and the
   * write lock (reading and writing): 1 leaves requests at least half of both. 0 for a
   * reseal with nothing else to serve (benchmarks, tools). Default 1.
   */
  readonly pauseRatio?: number
}

/** Hooks for metrics and logs; never given a value or a key. */
export interface ResealObserver {
  progress?(job: { id: string; resealed: number; done: number; total: number }): void
  finished?(job: { id: string; destroyedVersions: number[] }): void
  error?(err: unknown, jobId: string): void
}

// @NOTE one prepared statement run per row, on the writer's connection inside the batch's
// transaction: SQLite finds the row by rowid (read in the walk; `+` keeps it from choosing
// an index) and checks it is still the same version under the same key. Measured on 300k
// rows, update and commit: ~8 µs per row, against ~9.5 µs for one `UPDATE … FROM (VALUES …)`
// per batch by primary key and ~10.5 µs for that form by rowid.
const SQLITE_UPDATE = `UPDATE secret_versions SET value_ct = ?, comment_ct = ?, dek_version = ?
  WHERE rowid = ? AND +secret_id = ? AND +version = ? AND +dek_id = ? AND +dek_version = ?`

/** A reseal batch found the job no longer leased to this node. */
class LeaseLost extends Error {}

/** A stored version did not decrypt under the key its header names: the job stops, no key is destroyed. */
class UnreadableVersion extends Error {
  constructor(
    readonly secretId: string,
    readonly version: number,
  ) {
    super(`secret ${secretId} version ${version} does not decrypt under the key it names`)
  }
}

/** The row whose ciphertext is item `index` of the batch built from `rows` (value before comment). */
function rowOfItem(rows: Row[], index: number): Row {
  let i = 0
  for (const r of rows) {
    if (r.value_ct !== null && i++ === index) return r
    if (r.comment_ct !== null && i++ === index) return r
  }
  throw new RangeError('no such item in the batch')
}

const SYSTEM: AuditActor = { type: 'system', id: 'resealer', ip: '', userAgent: '' }

interface Row {
  /** SQLite's rowid (0 on PostgreSQL). */
  rid: number
  secret_id: string
  version: number
  value_ct: Buffer | null
  comment_ct: Buffer | null
  dek_version: number | null
}

/** A batch as read: the primary key, the rows, the old keys they name. */
interface ReadBatch {
  primary: DataKey
  rows: Row[]
  oldKeys: Map<number, DataKey>
}

/** A batch resealed: its rows, and their new ciphertexts in `out` at the packed batch's offsets (value before comment). */
interface Resealed {
  rows: Row[]
  batch: ResealBatch
  out: Uint8Array
}

/** A batch read and handed to the reseal, not written yet. */
interface InFlight {
  batch: ReadBatch
  resealed: Promise<Resealed>
}

/** Where the last batch read ended. */
interface Cursor {
  dekVersion: number
  secretId: string
  version: number
}

/**
 * Re-encrypts every secret version still under an older data-key version with the scope's
 * primary key, in batches, then destroys the old versions. Crash-safe: each batch is one
 * transaction that also advances the job, so a process killed at any point leaves every
 * version readable under the key its header names, and the next run carries on. Safe with
 * several nodes: a job is worked by the node holding its lease (renewed by every batch), and
 * each row is updated only if it still names the key it was read under.
 */
export class Resealer {
  readonly #d: ResealerDeps
  readonly #node = randomUUID()
  #busy: Promise<void> | null = null
  #again = false
  #stopped = false
  #timer: NodeJS.Timeout | null = null
  #observers: ResealObserver[] = []
  #lastWriteMs = 0
  #retryMs = 1000

  constructor(deps: ResealerDeps) {
    this.#d = deps
  }

  /** Adds hooks called on progress, completion and failure. */
  observe(o: ResealObserver): void {
    this.#observers.push(o)
  }

  /** Looks for work every `intervalMs` (timer does not keep the process alive). */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return
    this.#timer = setInterval(() => this.kick(), intervalMs)
    this.#timer.unref()
    this.kick()
  }

  /** Starts working now if idle; otherwise makes the running pass look again when done. */
  kick(): void {
    if (this.#stopped) return
    if (this.#busy) {
      this.#again = true
      return
    }
    this.#busy = (async () => {
      do {
        this.#again = false
        await this.runPending()
      } while (this.#again && !this.#stopped)
    })()
      .catch((err: unknown) => this.#afterFailure(err))
      .finally(() => {
        this.#busy = null
      })
  }

  /**
   * A pass stopped on the database (unreachable, or conflicts after every retry): look again
   * soon — 1 s, doubling to 30 s while it stays away — instead of at the next check interval,
   * so a reseal cut by an outage resumes within seconds of the database coming back.
   */
  #afterFailure(err: unknown): void {
    if (this.#stopped || !(isConnectionError(err) || conflictReason(err))) return
    const delay = this.#retryMs
    this.#retryMs = Math.min(30_000, this.#retryMs * 2)
    setTimeout(() => this.kick(), delay).unref()
  }

  /** Stops after the current batch. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    await this.#busy
  }

  /** Works every job this node can lease until none is left; returns how many it finished. */
  async runPending(): Promise<number> {
    let finished = 0
    for (;;) {
      if (this.#stopped) return finished
      const job = await this.#claim()
      if (!job) return finished
      this.#retryMs = 1000
      try {
        if (await this.#work(job)) finished++
      } catch (err) {
        if (err instanceof LeaseLost) continue
        if (err instanceof UnreadableVersion) await this.#fail(job, err)
        for (const o of this.#observers) o.error?.(err, job.id)
        this.#afterFailure(err)
        return finished
      }
    }
  }

  async #claim(): Promise<KeyJobTable | null> {
    const now = this.#d.clock().getTime()
    // Jobs of every workspace: a system read (row-level security on PostgreSQL).
    const running = await readInScope(this.#d.store, SYSTEM_SCOPE, (db) =>
      db.selectFrom('key_jobs').selectAll().where('state', '=', 'running').orderBy('created_at').limit(20).execute(),
    )
    const candidates = running.filter((j) => Number(j.lease_until) < now || j.lease_owner === this.#node)
    const held = running.filter((j) => !candidates.includes(j)).map((j) => Number(j.lease_until))
    // A job leased by a node that died comes free when its lease runs out: look again then.
    if (held.length && !this.#stopped) setTimeout(() => this.kick(), Math.max(0, Math.min(...held) - now) + 10).unref()
    for (const c of candidates) {
      const got = await this.#d.committer.run(async (tx) => {
        const r = await tx
          .updateTable('key_jobs')
          .set({ lease_owner: this.#node, lease_until: this.#d.clock().getTime() + this.#d.leaseMs })
          .where('id', '=', c.id)
          .where('state', '=', 'running')
          .where((eb) => eb.or([eb('lease_until', '<', this.#d.clock().getTime()), eb('lease_owner', '=', this.#node)]))
          .executeTakeFirst()
        return Number(r.numUpdatedRows) === 1
      }, c.workspace_id)
      if (got) return c
    }
    return null
  }

  /** Runs batches of `job` until it is done; true when this node finished it. */
  async #work(job: KeyJobTable): Promise<boolean> {
    const scope: DataKeyScope = { workspaceId: job.workspace_id, projectId: job.project_id, environmentId: job.environment_id }
    // @NOTE the reads and the AES work run outside any transaction (the AES work on worker
    // threads): the write lock is held only for each batch's short update, so requests' own
    // writes and audit entries do not queue behind a batch's crypto. Batches are pipelined:
    // batch n+1 is read (past a cursor, so it never re-reads rows whose update has not
    // committed yet) and handed to the workers before batch n's write starts, so the workers
    // re-encrypt n+1 while this thread writes n.
    let cursor: Cursor | null = null
    let inFlight: InFlight | null = null
    let writing: Promise<{ done: number; total: number; resealed: number; writeMs: number } | { err: unknown }> | null = null
    const settle = async () => {
      if (!writing) return
      const r = await writing
      writing = null
      if ('err' in r) throw r.err
      this.#lastWriteMs = r.writeMs
      for (const o of this.#observers) o.progress?.({ id: job.id, resealed: r.resealed, done: r.done, total: r.total })
    }
    try {
      for (;;) {
        if (this.#stopped) return false
        const c: Cursor | null = cursor
        const t0 = performance.now()
        const batch: ReadBatch = await readInScope(this.#d.store, job.workspace_id, (db) => this.#read(db, job, scope, c))
        const readMs = performance.now() - t0
        let next: InFlight | null = null
        if (batch.rows.length) {
          const last: Row = batch.rows[batch.rows.length - 1]!
          cursor = { dekVersion: last.dek_version!, secretId: last.secret_id, version: last.version }
          next = { batch, resealed: this.#reseal(job, batch) }
          // Awaited below, or dropped when an earlier batch fails: never an unhandled rejection.
          next.resealed.catch(() => {})
        }
        if (inFlight) {
          const { primary } = inFlight.batch
          const out = await inFlight.resealed
          await settle()
          const w0 = performance.now()
          writing = this.#d.committer
            .run((tx) => this.#apply(tx, job, scope, primary, out), job.workspace_id)
            .then(
              (r) => ({ ...r, resealed: out.rows.length, writeMs: performance.now() - w0 }),
              (err: unknown) => ({ err }),
            )
        }
        inFlight = next
        if (!inFlight) {
          await settle()
          const r = await this.#d.committer.run((tx) => this.#finish(tx, job, scope, batch.primary.version), job.workspace_id)
          if (r.finished) {
            for (const o of this.#observers) o.finished?.({ id: job.id, destroyedVersions: r.destroyed })
            return true
          }
          cursor = null // something is still under an old version: one more pass from the start
          continue
        }
        // Let requests interleave with a long reseal: yield, and pause in proportion to the
        // time this batch held the loop and the write lock (the previous write's, measured).
        const pause = (this.#d.pauseRatio ?? 1) * (readMs + this.#lastWriteMs)
        await new Promise((resolve) => (pause >= 1 ? setTimeout(resolve, pause) : setImmediate(resolve)))
      }
    } finally {
      await writing
    }
  }

  /**
   * The primary key, and up to batchSize versions still under older key versions after
   * `after` (in key-version, secret, version order), with their keys.
   */
  async #read(db: Executor, job: KeyJobTable, scope: DataKeyScope, after: Cursor | null): Promise<ReadBatch> {
    const p = await db
      .selectFrom('data_keys')
      .select(['id', 'version'])
      .where('id', '=', job.dek_id)
      .where('workspace_id', '=', scope.workspaceId)
      .where('state', '=', 'primary')
      .executeTakeFirst()
    if (!p) throw new Error('the scope has no primary data key')
    const primary = await this.#d.dataKeys.byRef(db, p, scope)
    // SQLite's rowid lets the update find each row without its primary-key index.
    const rid = this.#d.store.engine === 'sqlite' ? sql<number>`rowid` : sql<number>`0`
    let q = db
      .selectFrom('secret_versions')
      .select(['secret_id', 'version', 'value_ct', 'comment_ct', 'dek_version', rid.as('rid')])
      .where('dek_id', '=', job.dek_id)
      .where('dek_version', '<', p.version)
      .where('workspace_id', '=', scope.workspaceId)
      .where('environment_id', '=', scope.environmentId)
    if (after) q = q.where(sql<boolean>`(dek_version, secret_id, version) > (${after.dekVersion}, ${after.secretId}, ${after.version})`)
    const rows: Row[] = await q.orderBy('dek_version').orderBy('secret_id').orderBy('version').limit(this.#d.batchSize).execute()
    // The rows name their key version; open() checks each header against that exact key.
    const oldKeys = new Map<number, DataKey>()
    for (const r of rows) {
      if (!oldKeys.has(r.dek_version!))
        oldKeys.set(r.dek_version!, await this.#d.dataKeys.byRef(db, { id: job.dek_id, version: r.dek_version! }, scope))
    }
    return { primary, rows, oldKeys }
  }

  /**
   * Opens each ciphertext with its old key and seals it under the primary (same binding): the
   * rows go into one packed batch (value before comment, in row order), resealed on the worker
   * threads or, without them, here.
   */
  async #reseal(job: KeyJobTable, batch: ReadBatch): Promise<Resealed> {
    const { rows } = batch
    let items = 0
    let bytes = 0
    for (const r of rows) {
      if (r.value_ct !== null) {
        items++
        bytes += r.value_ct.length
      }
      if (r.comment_ct !== null) {
        items++
        bytes += r.comment_ct.length
      }
    }
    const b = new ResealBatchBuilder(
      { workspaceId: job.workspace_id, projectId: job.project_id, environmentId: job.environment_id },
      items,
      bytes,
    )
    for (const r of rows) {
      if (r.value_ct !== null) b.add(r.value_ct, r.secret_id, r.version, FIELD_VALUE, r.dek_version!)
      if (r.comment_ct !== null) b.add(r.comment_ct, r.secret_id, r.version, FIELD_COMMENT, r.dek_version!)
    }
    const packed = b.build()
    let out: Uint8Array
    try {
      if (this.#d.workers) {
        out = await this.#d.workers.reseal(packed, [...batch.oldKeys.values()], batch.primary)
      } else {
        out = new Uint8Array(packed.cts.length)
        resealBatch(packed, batch.oldKeys, batch.primary, out)
      }
    } catch (err) {
      if (err instanceof ResealItemError) {
        const r = rowOfItem(rows, err.index)
        throw new UnreadableVersion(r.secret_id, r.version)
      }
      throw err
    }
    return { rows, batch: packed, out }
  }

  /** One short transaction: renew the lease, write the batch, count its encryptions, advance the job. */
  async #apply(tx: Executor, job: KeyJobTable, scope: DataKeyScope, key: DataKey, r: Resealed): Promise<{ done: number; total: number }> {
    const lease = await tx
      .updateTable('key_jobs')
      .set({ lease_until: this.#d.clock().getTime() + this.#d.leaseMs })
      .where('id', '=', job.id)
      .where('lease_owner', '=', this.#node)
      .where('state', '=', 'running')
      .returning(['done', 'total'])
      .executeTakeFirst()
    if (!lease) throw new LeaseLost()
    await this.#write(tx, job.dek_id, key.version, r)
    await this.#d.dataKeys.countEncryptions(tx, scope, key, r.batch.count)
    const done = Number(lease.done) + r.rows.length
    await tx.updateTable('key_jobs').set({ done, updated_at: this.#d.clock().toISOString() }).where('id', '=', job.id).execute()
    return { done, total: Number(lease.total) }
  }

  /** Updates the batch's rows; a row no longer under the version it was read under is left alone. */
  async #write(tx: Executor, dekId: string, version: number, { rows, batch, out }: Resealed): Promise<void> {
    // Views of the new ciphertexts, row by row (items are in row order, value before comment).
    let item = 0
    const next = (ct: Buffer | null): Buffer | null => {
      if (ct === null) return null
      const view = Buffer.from(out.buffer, out.byteOffset + batch.offsets[item]!, batch.offsets[item + 1]! - batch.offsets[item]!)
      item++
      return view
    }
    if (this.#d.store.engine === 'postgres') {
      const values: Array<Buffer | null> = []
      const comments: Array<Buffer | null> = []
      for (const r of rows) {
        values.push(next(r.value_ct))
        comments.push(next(r.comment_ct))
      }
      await sql`UPDATE secret_versions AS s SET value_ct = v.val, comment_ct = v.com, dek_version = ${version}
        FROM unnest(${rows.map((r) => r.secret_id)}::text[], ${rows.map((r) => r.version)}::int[], ${values}::bytea[],
          ${comments}::bytea[], ${rows.map((r) => r.dek_version)}::int[]) AS v(sid, ver, val, com, old)
        WHERE s.secret_id = v.sid AND s.version = v.ver AND s.dek_id = ${dekId} AND s.dek_version = v.old`.execute(tx)
      return
    }
    await onSqliteConnection(tx, (conn) => {
      const update = conn.prepare(SQLITE_UPDATE)
      for (const r of rows) {
        const value = next(r.value_ct)
        const comment = next(r.comment_ct)
        update.run(value, comment, version, r.rid, r.secret_id, r.version, dekId, r.dek_version)
      }
    })
  }

  /** Marks the job failed (keeping every key) and audits it; an operator must look. */
  async #fail(job: KeyJobTable, err: UnreadableVersion): Promise<void> {
    await this.#d.committer.run(async (tx) => {
      const now = this.#d.clock().toISOString()
      await tx
        .updateTable('key_jobs')
        .set({ state: 'failed', error: err.message, updated_at: now, finished_at: now, lease_owner: null, lease_until: 0 })
        .where('id', '=', job.id)
        .where('lease_owner', '=', this.#node)
        .execute()
      await this.#d.audit.append(tx, job.workspace_id, SYSTEM, `reseal-${job.id}`, {
        action: 'key.reseal_failed',
        target: { type: 'environment', id: job.environment_id },
        details: { keyId: job.dek_id, resealJob: job.id, secretId: err.secretId, version: err.version },
      })
    }, job.workspace_id)
  }

  /**
   * Nothing was left under an old version: destroy those versions, close the job, audit it.
   * Not finished (and nothing written) if the lease moved or a version is still in use.
   */
  async #finish(tx: Executor, job: KeyJobTable, scope: DataKeyScope, primary: number): Promise<{ finished: boolean; destroyed: number[] }> {
    const lease = await tx
      .updateTable('key_jobs')
      .set({ lease_until: this.#d.clock().getTime() + this.#d.leaseMs })
      .where('id', '=', job.id)
      .where('lease_owner', '=', this.#node)
      .where('state', '=', 'running')
      .returning(['done', 'total'])
      .executeTakeFirst()
    if (!lease) throw new LeaseLost()
    // Personal overrides (migration 13) live beside the versions: few per environment, resealed here at once.
    await PersonalOverrides.reseal(tx, this.#d.dataKeys, scope, job.dek_id, primary)
    // Pending change requests' sealed proposals move to the primary key too (change-request-seal.ts).
    await resealProposals(tx, this.#d.dataKeys, scope, job.dek_id, primary)
    const destroyed = await this.#d.dataKeys.destroyUnused(tx, scope, job.dek_id, primary)
    // A snapshot built before the rotation is sealed under an old version: it goes with the
    // version, in this transaction (after the data keys, in the lock order).
    if (destroyed.length) await EnvironmentSnapshots.drop(tx, scope)
    const left = await tx
      .selectFrom('data_keys')
      .select('version')
      .where('id', '=', job.dek_id)
      .where('version', '<', primary)
      .where('workspace_id', '=', scope.workspaceId)
      .where('state', '=', 'active')
      .executeTakeFirst()
    if (left) return { finished: false, destroyed }
    const now = this.#d.clock().toISOString()
    const total = Number(lease.total)
    await tx
      .updateTable('key_jobs')
      .set({ state: 'done', done: total, updated_at: now, finished_at: now, lease_owner: null, lease_until: 0 })
      .where('id', '=', job.id)
      .execute()
    await this.#d.audit.append(tx, scope.workspaceId, SYSTEM, `reseal-${job.id}`, {
      action: 'key.resealed',
      target: { type: 'environment', id: scope.environmentId },
      details: { keyId: job.dek_id, version: primary, resealJob: job.id, resealed: Number(lease.done), destroyedVersions: destroyed },
    })
    return { finished: true, destroyed }
  }
}
