import { randomBytes, randomUUID } from 'node:crypto'
import { CompiledQuery, sql } from 'kysely'
import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import type { DataKeys } from '../crypto/data-keys.js'
import { NONCE_LENGTH, open, seal, type DataKey } from '../crypto/envelope.js'
import { ResealItemError, type ResealItem, type ResealWorkers } from '../crypto/reseal-workers.js'
import type { DataKeyScope } from '../crypto/key-provider.js'
import type { Executor, Store } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import type { GroupCommitter } from '../storage/group-commit.js'
import type { KeyJobTable } from '../storage/schema.js'

/** What the resealer needs from the running Coffer. */
export interface ResealerDeps {
  /** Where jobs are looked for (a read connection is enough). */
  readonly store: Pick<Store, 'engine' | 'readDb'>
  readonly committer: GroupCommitter
  readonly dataKeys: DataKeys
  readonly audit: AuditLog
  readonly batchSize: number
  readonly leaseMs: number
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

const updates = new Map<number, string>()
function sqliteUpdate(n: number): string {
  let text = updates.get(n)
  if (!text) {
    text = `UPDATE secret_versions SET value_ct = v.column3, comment_ct = v.column4, dek_version = ?
      FROM (VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?)').join(', ')}) AS v
      WHERE secret_versions.secret_id = v.column1 AND secret_versions.version = v.column2
        AND +secret_versions.dek_id = ? AND +secret_versions.dek_version = v.column5`
    if (updates.size > 16) updates.clear()
    updates.set(n, text)
  }
  return text
}

/** The same work as ResealWorkers, on this thread (no workers configured). */
function resealInThread(items: ResealItem[], oldKeys: Map<number, DataKey>, next: DataKey): Buffer[] {
  const nonces = randomBytes(NONCE_LENGTH * items.length)
  return items.map((it, i) => {
    let plain: Buffer
    try {
      plain = open(oldKeys.get(it.oldVersion)!, it.ct, it.binding)
    } catch {
      throw new ResealItemError(i)
    }
    try {
      return seal(next, plain, it.binding, nonces.subarray(i * NONCE_LENGTH, (i + 1) * NONCE_LENGTH))
    } finally {
      plain.fill(0)
    }
  })
}

/** A reseal batch found the job no longer leased to this node. */
class LeaseLost extends Error {}

/** A stored version did not decrypt under the key its header names: the job stops, no key is destroyed. */
class UnreadableVersion extends Error {
  constructor(readonly secretId: string, readonly version: number) {
    super(`secret ${secretId} version ${version} does not decrypt under the key it names`)
  }
}

const SYSTEM: AuditActor = { type: 'system', id: 'resealer', ip: '', userAgent: '' }

interface Row {
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

/** Where the last batch read ended. */
interface Cursor {
  dekVersion: number
  secretId: string
  version: number
}

interface Resealed {
  secretId: string
  version: number
  oldVersion: number
  value: Buffer | null
  comment: Buffer | null
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
    })().catch(() => {}).finally(() => { this.#busy = null })
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
      try {
        if (await this.#work(job)) finished++
      } catch (err) {
        if (err instanceof LeaseLost) continue
        if (err instanceof UnreadableVersion) await this.#fail(job, err)
        for (const o of this.#observers) o.error?.(err, job.id)
        return finished
      }
    }
  }

  async #claim(): Promise<KeyJobTable | null> {
    const now = Date.now()
    // Jobs of every workspace: a system read (row-level security on PostgreSQL).
    const running = await readInScope(this.#d.store, SYSTEM_SCOPE, (db) => db.selectFrom('key_jobs').selectAll().where('state', '=', 'running').orderBy('created_at').limit(20).execute())
    const candidates = running.filter((j) => Number(j.lease_until) < now || j.lease_owner === this.#node)
    const held = running.filter((j) => !candidates.includes(j)).map((j) => Number(j.lease_until))
    // A job leased by a node that died comes free when its lease runs out: look again then.
    if (held.length && !this.#stopped) setTimeout(() => this.kick(), Math.max(0, Math.min(...held) - now) + 10).unref()
    for (const c of candidates) {
      const got = await this.#d.committer.run(async (tx) => {
        const r = await tx.updateTable('key_jobs').set({ lease_owner: this.#node, lease_until: Date.now() + this.#d.leaseMs })
          .where('id', '=', c.id).where('state', '=', 'running')
          .where((eb) => eb.or([eb('lease_until', '<', Date.now()), eb('lease_owner', '=', this.#node)]))
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
    // while batch n is written, batch n+1 is read (past a cursor, so it never re-reads rows
    // whose update has not committed yet) and re-encrypted.
    let cursor: Cursor | null = null
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
        if (batch.rows.length === 0) {
          await settle()
          const r = await this.#d.committer.run((tx) => this.#finish(tx, job, scope, batch.primary.version), job.workspace_id)
          if (r.finished) {
            for (const o of this.#observers) o.finished?.({ id: job.id, destroyedVersions: r.destroyed })
            return true
          }
          cursor = null // something is still under an old version: one more pass from the start
          continue
        }
        const readMs = performance.now() - t0
        const last: Row = batch.rows[batch.rows.length - 1]!
        cursor = { dekVersion: last.dek_version!, secretId: last.secret_id, version: last.version }
        const out = await this.#reseal(job, batch)
        await settle()
        const w0 = performance.now()
        writing = this.#d.committer.run((tx) => this.#apply(tx, job, scope, batch.primary, out), job.workspace_id)
          .then((r) => ({ ...r, resealed: out.length, writeMs: performance.now() - w0 }), (err: unknown) => ({ err }))
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
    const p = await db.selectFrom('data_keys').select(['id', 'version'])
      .where('id', '=', job.dek_id).where('workspace_id', '=', scope.workspaceId).where('state', '=', 'primary').executeTakeFirst()
    if (!p) throw new Error('the scope has no primary data key')
    const primary = await this.#d.dataKeys.byRef(db, p, scope)
    let q = db.selectFrom('secret_versions').select(['secret_id', 'version', 'value_ct', 'comment_ct', 'dek_version'])
      .where('dek_id', '=', job.dek_id).where('dek_version', '<', p.version)
      .where('workspace_id', '=', scope.workspaceId).where('environment_id', '=', scope.environmentId)
    if (after) q = q.where(sql<boolean>`(dek_version, secret_id, version) > (${after.dekVersion}, ${after.secretId}, ${after.version})`)
    const rows: Row[] = await q.orderBy('dek_version').orderBy('secret_id').orderBy('version').limit(this.#d.batchSize).execute()
    // The rows name their key version; open() checks each header against that exact key.
    const oldKeys = new Map<number, DataKey>()
    for (const r of rows) {
      if (!oldKeys.has(r.dek_version!)) oldKeys.set(r.dek_version!, await this.#d.dataKeys.byRef(db, { id: job.dek_id, version: r.dek_version! }, scope))
    }
    return { primary, rows, oldKeys }
  }

  /** Opens each ciphertext with its old key and seals it under the primary (same binding). */
  async #reseal(job: KeyJobTable, batch: { primary: DataKey; rows: Row[]; oldKeys: Map<number, DataKey> }): Promise<Resealed[]> {
    const scope = { workspaceId: job.workspace_id, projectId: job.project_id, environmentId: job.environment_id }
    const items: ResealItem[] = []
    const owners: Row[] = []
    for (const r of batch.rows) {
      for (const field of ['value', 'comment'] as const) {
        const ct = field === 'value' ? r.value_ct : r.comment_ct
        if (ct === null) continue
        items.push({ ct, binding: { ...scope, recordId: r.secret_id, recordVersion: r.version, field }, oldVersion: r.dek_version! })
        owners.push(r)
      }
    }
    let sealed: Buffer[]
    try {
      sealed = this.#d.workers ? await this.#d.workers.reseal(items, [...batch.oldKeys.values()], batch.primary) : resealInThread(items, batch.oldKeys, batch.primary)
    } catch (err) {
      if (err instanceof ResealItemError) throw new UnreadableVersion(owners[err.index]!.secret_id, owners[err.index]!.version)
      throw err
    }
    const byRow = new Map<Row, Resealed>()
    for (let i = 0; i < items.length; i++) {
      const r = owners[i]!
      let e = byRow.get(r)
      if (!e) {
        e = { secretId: r.secret_id, version: r.version, oldVersion: r.dek_version!, value: null, comment: null }
        byRow.set(r, e)
      }
      if (items[i]!.binding.field === 'value') e.value = sealed[i]!
      else e.comment = sealed[i]!
    }
    return [...byRow.values()]
  }

  /** One short transaction: renew the lease, write the batch, count its encryptions, advance the job. */
  async #apply(tx: Executor, job: KeyJobTable, scope: DataKeyScope, key: DataKey, out: Resealed[]): Promise<{ done: number; total: number }> {
    const lease = await tx.updateTable('key_jobs').set({ lease_until: Date.now() + this.#d.leaseMs })
      .where('id', '=', job.id).where('lease_owner', '=', this.#node).where('state', '=', 'running')
      .returning(['done', 'total']).executeTakeFirst()
    if (!lease) throw new LeaseLost()
    await this.#write(tx, job.dek_id, key.version, out)
    const cts = out.reduce((n, r) => n + (r.value ? 1 : 0) + (r.comment ? 1 : 0), 0)
    await this.#d.dataKeys.countEncryptions(tx, scope, key, cts)
    const done = Number(lease.done) + out.length
    await tx.updateTable('key_jobs').set({ done, updated_at: new Date().toISOString() }).where('id', '=', job.id).execute()
    return { done, total: Number(lease.total) }
  }

  /** Updates a batch of rows in one statement; a row no longer under `oldVersion` is left alone. */
  async #write(tx: Executor, dekId: string, version: number, rows: Resealed[]): Promise<void> {
    if (this.#d.store.engine === 'postgres') {
      await sql`UPDATE secret_versions AS s SET value_ct = v.val, comment_ct = v.com, dek_version = ${version}
        FROM unnest(${rows.map((r) => r.secretId)}::text[], ${rows.map((r) => r.version)}::int[], ${rows.map((r) => r.value)}::bytea[],
          ${rows.map((r) => r.comment)}::bytea[], ${rows.map((r) => r.oldVersion)}::int[]) AS v(sid, ver, val, com, old)
        WHERE s.secret_id = v.sid AND s.version = v.ver AND s.dek_id = ${dekId} AND s.dek_version = v.old`.execute(tx)
      return
    }
    // @NOTE one statement with placeholders built once per batch size (Kysely's sql.join is
    // slow for thousands of rows); `+` keeps SQLite from scanning the key's whole index and
    // makes it look each row up by primary key.
    const params: unknown[] = [version]
    for (const r of rows) params.push(r.secretId, r.version, r.value, r.comment, r.oldVersion)
    params.push(dekId)
    await tx.executeQuery(CompiledQuery.raw(sqliteUpdate(rows.length), params))
  }

  /** Marks the job failed (keeping every key) and audits it; an operator must look. */
  async #fail(job: KeyJobTable, err: UnreadableVersion): Promise<void> {
    await this.#d.committer.run(async (tx) => {
      await this.#d.audit.lock(tx, job.workspace_id)
      const now = new Date().toISOString()
      await tx.updateTable('key_jobs').set({ state: 'failed', error: err.message, updated_at: now, finished_at: now, lease_owner: null, lease_until: 0 })
        .where('id', '=', job.id).where('lease_owner', '=', this.#node).execute()
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
    try {
      await this.#d.audit.lock(tx, scope.workspaceId)
    } catch (err) {
      throw new Error('the audit log is unavailable', { cause: err })
    }
    const lease = await tx.updateTable('key_jobs').set({ lease_until: Date.now() + this.#d.leaseMs })
      .where('id', '=', job.id).where('lease_owner', '=', this.#node).where('state', '=', 'running')
      .returning(['done', 'total']).executeTakeFirst()
    if (!lease) throw new LeaseLost()
    const destroyed = await this.#d.dataKeys.destroyUnused(tx, scope, job.dek_id, primary)
    const left = await tx.selectFrom('data_keys').select('version').where('id', '=', job.dek_id).where('version', '<', primary)
      .where('workspace_id', '=', scope.workspaceId).where('state', '=', 'active').executeTakeFirst()
    if (left) return { finished: false, destroyed }
    const now = new Date().toISOString()
    const total = Number(lease.total)
    await tx.updateTable('key_jobs').set({ state: 'done', done: total, updated_at: now, finished_at: now, lease_owner: null, lease_until: 0 })
      .where('id', '=', job.id).execute()
    await this.#d.audit.append(tx, scope.workspaceId, SYSTEM, `reseal-${job.id}`, {
      action: 'key.resealed',
      target: { type: 'environment', id: scope.environmentId },
      details: { keyId: job.dek_id, version: primary, resealJob: job.id, resealed: Number(lease.done), destroyedVersions: destroyed },
    })
    return { finished: true, destroyed }
  }
}
