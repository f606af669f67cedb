import { createHmac } from 'node:crypto'
import { CompiledQuery } from 'kysely'
import type { Clock } from '../ops/clock.js'
import type { Engine, Executor } from '../storage/database.js'
import { QueryTemplate } from '../storage/query-template.js'
import { onSqliteConnection } from '../storage/statement-cache.js'
import type { AuditEntryTable } from '../storage/schema.js'
import type { AuditAction } from './actions.js'
import { canonicalJson, type Json } from './canonical-json.js'
import { EntryHasher, GENESIS_HASH } from './entry.js'
import { newEntryId } from './entry-id.js'
import { CompactRange } from './merkle.js'
import { packPeaks, withStoredNodes } from './tree-store.js'
import {
  ChainMissingError,
  type Integrated,
  type IntegrateOptions,
  holdHead,
  integrateQueued,
  type PendingStats,
  pendingStats,
  type QueuedRecord,
  queuedRecordOf,
} from './sequence-batch.js'
import { ChainVerifier, sameBytes, type ChainedRecord, type VerifyResult } from './verify.js'
import { joinRuns, type VerifySource, type VerifyWorkers } from './verify-workers.js'

/**
 * A sensitive value headed for the audit log. The log never stores it: it stores a keyed
 * fingerprint, HMAC-SHA256 under the workspace's fingerprint key, so two entries can show
 * that a value changed (or did not) without revealing it.
 */
export class Sensitive {
  readonly #value: Buffer
  constructor(value: string | Buffer) {
    this.#value = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8')
  }
  fingerprint(key: Buffer): string {
    return `hmac-sha256:${createHmac('sha256', key).update(this.#value).digest('base64url')}`
  }
  toJSON(): string {
    return '[Sensitive]'
  }
}

/** What may appear in an event's details: JSON, with Sensitive values to be fingerprinted. */
export type AuditDetail = null | boolean | number | string | Sensitive | AuditDetail[] | { [key: string]: AuditDetail }

/** What happened, as a route describes it; the pipeline adds the actor and the request. */
export interface AuditEvent {
  action: AuditAction
  target: { type: string; id: string }
  details?: { [key: string]: AuditDetail }
}

/** audit_queue's columns as an INSERT names them, in queueRow's order. */
const QUEUE_COLUMNS =
  'workspace_id, id, time, actor_type, actor_id, actor_ip, actor_ua, request_id, action, target_type, target_id, details'
const SQLITE_QUEUE_ENTRY = `INSERT INTO audit_queue (${QUEUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

/** One request's events, as the batched append takes them. */
export interface AuditedRequest {
  readonly actor: AuditActor
  readonly requestId: string
  readonly events: readonly AuditEvent[]
}

export type { QueuedRecord }

/** The audit_queue values of a record, in QUEUE_COLUMNS' order. */
function queueRow(r: QueuedRecord): unknown[] {
  return [
    r.workspaceId,
    r.id,
    r.time,
    r.actor.type,
    r.actor.id,
    r.actor.ip,
    r.actor.userAgent,
    r.requestId,
    r.action,
    r.target.type,
    r.target.id,
    r.details,
  ]
}

// Rows per INSERT on PostgreSQL (one statement for a whole batch of reads): 12 parameters each,
// far below the protocol's 65,535.
const PG_QUEUE_ROWS = 500
const pgQueueInserts = new Map<number, string>()

/** `INSERT INTO audit_queue (…) VALUES ($1, …, $12), …` for `rows` rows (its text cached per count). */
function pgQueueInsert(rows: number): string {
  let text = pgQueueInserts.get(rows)
  if (!text) {
    const values = Array.from({ length: rows }, (_, r) => `(${Array.from({ length: 12 }, (_, c) => `$${r * 12 + c + 1}`).join(', ')})`)
    text = `INSERT INTO audit_queue (${QUEUE_COLUMNS}) VALUES ${values.join(', ')}`
    pgQueueInserts.set(rows, text)
  }
  return text
}

/** Full verification on worker threads (AuditLog.useWorkers). */
interface ParallelVerify {
  pool: VerifyWorkers
  source: VerifySource
  chunk: number
  threshold: number
}

/** Who did it and through which request. */
export interface AuditActor {
  /**
   * `anonymous`: nobody proven, e.g. a failed sign-in (the id then names the account tried).
   * `machine`, `service`: a workspace integration (machine identity or service token id).
   */
  type: 'user' | 'system' | 'anonymous' | 'machine' | 'service'
  id: string
  ip: string
  userAgent: string
}

function hasSensitive(d: AuditDetail): boolean {
  if (d instanceof Sensitive) return true
  if (Array.isArray(d)) return d.some(hasSensitive)
  if (d !== null && typeof d === 'object') return Object.values(d).some(hasSensitive)
  return false
}

function resolveDetails(d: AuditDetail, key: Buffer): Json {
  if (d instanceof Sensitive) return d.fingerprint(key)
  if (Array.isArray(d)) return d.map((x) => resolveDetails(x, key))
  if (d !== null && typeof d === 'object') {
    const out: { [k: string]: Json } = {}
    for (const [k, v] of Object.entries(d)) out[k] = resolveDetails(v, key)
    return out
  }
  return d
}

/** Reads a stored row into the chained record the verifier takes. */
export function rowToRecord(row: AuditEntryTable): ChainedRecord {
  return {
    workspaceId: row.workspace_id,
    seq: Number(row.seq),
    id: row.id,
    time: row.time,
    actor: { type: row.actor_type, id: row.actor_id, ip: row.actor_ip, userAgent: row.actor_ua },
    requestId: row.request_id,
    action: row.action,
    target: { type: row.target_type, id: row.target_id },
    details: row.details,
    prevHash: Buffer.from(row.prev_hash),
    hash: Buffer.from(row.hash),
  }
}

/**
 * The append-only, hash-chained audit log of every workspace. `append` queues an entry inside
 * the caller's transaction, so the entry commits together with the change it records — or
 * neither does — without taking the workspace's chain head; `integrate` (run by the
 * sequencer, src/audit/sequencer.ts) gives queued entries their place in the chain and the
 * Merkle tree.
 */
export class AuditLog {
  readonly #engine: Engine
  readonly #fingerprintKey: (db: Executor, workspaceId: string) => Promise<Buffer>
  readonly #clock: Clock
  readonly #hasher = new EntryHasher()
  readonly #q = {
    headRead: new QueryTemplate<'ws'>((db, p) => db.selectFrom('audit_heads').select(['seq', 'hash']).where('workspace_id', '=', p('ws'))),
  }

  #workers: ParallelVerify | undefined

  /** `clock` gives each entry its time and the time part of its id. */
  constructor(engine: Engine, fingerprintKey: (db: Executor, workspaceId: string) => Promise<Buffer>, clock: Clock) {
    this.#engine = engine
    this.#fingerprintKey = fingerprintKey
    this.#clock = clock
  }

  /**
   * Verifies logs of at least `threshold` entries (default 2 chunks) on `pool`'s threads,
   * reading `source`, in runs of `chunk` entries (a power of two; default 16,384).
   */
  useWorkers(pool: VerifyWorkers, source: VerifySource, opts: { chunk?: number; threshold?: number } = {}): void {
    const chunk = opts.chunk ?? 16_384
    if (!Number.isSafeInteger(chunk) || chunk < 1 || (chunk & (chunk - 1)) !== 0) throw new RangeError('chunk must be a power of two')
    this.#workers = { pool, source, chunk, threshold: opts.threshold ?? 2 * chunk }
  }

  /** Starts a workspace's chain; call in the transaction that creates the workspace. */
  async initWorkspace(tx: Executor, workspaceId: string): Promise<void> {
    await tx
      .insertInto('audit_heads')
      .values({ workspace_id: workspaceId, seq: 0, hash: GENESIS_HASH, peaks: Buffer.alloc(0) })
      .execute()
  }

  /**
   * Queues one entry for the workspace's chain within `tx` and returns it (without its seq,
   * which the sequencer assigns). Takes no lock: appenders of one workspace on every node run
   * side by side; the entry is durable when `tx` commits, and integrated into the chain and
   * the tree within the merge delay (src/audit/sequencer.ts).
   */
  async append(tx: Executor, workspaceId: string, actor: AuditActor, requestId: string, event: AuditEvent): Promise<QueuedRecord> {
    const record = await this.#record(tx, workspaceId, actor, requestId, event)
    await this.queue(tx, [record])
    return record
  }

  /**
   * Queues the entries of several requests of one workspace within `tx`, as `append` does each
   * — in one multi-row INSERT on PostgreSQL (one round trip, where one unit per request costs
   * three). What the read path's batcher uses (src/audit/read-audit-batcher.ts).
   */
  async appendMany(tx: Executor, workspaceId: string, requests: readonly AuditedRequest[]): Promise<void> {
    await this.queue(tx, await this.records(tx, workspaceId, requests))
  }

  /**
   * The records `appendMany` would queue, without queuing them: for the audit thread, which
   * queues them on its own connection (audit-thread-client.ts). `db` is read only for the
   * workspace's fingerprint key, and only when an event carries a Sensitive value.
   */
  async records(db: Executor, workspaceId: string, requests: readonly AuditedRequest[]): Promise<QueuedRecord[]> {
    const records: QueuedRecord[] = []
    for (const r of requests) for (const e of r.events) records.push(await this.#record(db, workspaceId, r.actor, r.requestId, e))
    return records
  }

  /** The queued record of one event: its details resolved (fingerprinted) and canonical, its id and time. */
  async #record(tx: Executor, workspaceId: string, actor: AuditActor, requestId: string, event: AuditEvent): Promise<QueuedRecord> {
    // Only events that carry a Sensitive value need the workspace's fingerprint key.
    const key = event.details && hasSensitive(event.details) ? await this.#fingerprintKey(tx, workspaceId) : Buffer.alloc(0)
    const details = canonicalJson(event.details ? resolveDetails(event.details, key) : {})
    const now = this.#clock().getTime()
    return {
      workspaceId,
      id: newEntryId(now),
      time: new Date(now).toISOString(),
      actor: { type: actor.type, id: actor.id, ip: actor.ip, userAgent: actor.userAgent.slice(0, 512) },
      requestId,
      action: event.action,
      target: event.target,
      details,
    }
  }

  /** Inserts `records` (made by `records` or `append`) into audit_queue within `tx`. */
  async queue(tx: Executor, records: readonly QueuedRecord[]): Promise<void> {
    if (records.length === 0) return
    if (this.#engine === 'sqlite') {
      // @NOTE one prepared statement per row on the transaction's own connection: better-sqlite3
      // is synchronous, and Kysely's per-query promise and plugin pipeline cost more than the insert.
      await onSqliteConnection(tx, (c) => {
        const insert = c.prepare(SQLITE_QUEUE_ENTRY)
        for (const r of records) insert.run(queueRow(r))
      })
      return
    }
    for (let i = 0; i < records.length; i += PG_QUEUE_ROWS) {
      const chunk = records.slice(i, i + PG_QUEUE_ROWS)
      await tx.executeQuery(CompiledQuery.raw(pgQueueInsert(chunk.length), chunk.flatMap(queueRow)))
    }
  }

  /**
   * Integrates up to `limit` queued entries of the workspace into its chain and tree, in queue
   * order, within `tx` (see sequence-batch.ts). With `lease`, only while the lease is free or
   * this holder's (it is taken or renewed in the same statement that locks the head); null
   * when another holder has it. Without, the head's row lock alone keeps integrations apart.
   */
  integrate(tx: Executor, workspaceId: string, opts: Omit<IntegrateOptions, 'engine' | 'hasher' | 'now'>): Promise<Integrated | null> {
    return integrateQueued(tx, workspaceId, { ...opts, engine: this.#engine, hasher: this.#hasher, now: this.#clock().getTime() })
  }

  /** Up to `limit` entries of the workspace that wait in the queue, in queue order. */
  async pendingEntries(db: Executor, workspaceId: string, limit: number): Promise<QueuedRecord[]> {
    const rows = await db
      .selectFrom('audit_queue')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .orderBy('qid')
      .limit(limit)
      .execute()
    return rows.map(queuedRecordOf)
  }

  /**
   * Integrates every entry of the workspace queued so far, within `tx`, under the head's lock
   * alone (whoever holds the lease): signing a checkpoint, a deletion's receipt, a backup.
   */
  async integrateAll(tx: Executor, workspaceId: string): Promise<void> {
    for (;;) {
      const r = await this.integrate(tx, workspaceId, { limit: 10_000 })
      if (!r || r.count < 10_000) return
    }
  }

  /** How many entries of the workspace wait in the queue, and the time of the oldest (null when none). */
  pending(db: Executor, workspaceId: string): Promise<PendingStats> {
    return pendingStats(db, workspaceId)
  }

  /** Entries of a workspace in order, from `afterSeq` (exclusive), at most `limit`, none past `upTo`. */
  async list(db: Executor, workspaceId: string, afterSeq: number, limit: number, upTo = Number.MAX_SAFE_INTEGER): Promise<ChainedRecord[]> {
    const rows = await db
      .selectFrom('audit_entries')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('seq', '>', afterSeq)
      .where('seq', '<=', upTo)
      .orderBy('seq')
      .limit(limit)
      .execute()
    return rows.map(rowToRecord)
  }

  /**
   * Recomputes a workspace's chain from the stored rows, up to the head recorded when it
   * starts (entries appended meanwhile are left for the next run); with `checkpoint`, also
   * recomputes the Merkle root of its first treeSize entries and compares it with the signed
   * one. Names the first bad entry. A long log is verified on worker threads when the log was
   * given some (`useWorkers`); any problem they find is verified again on this thread, which
   * names it.
   */
  async verify(db: Executor, workspaceId: string, checkpoint?: { treeSize: number; rootHash: Uint8Array }): Promise<VerifyResult> {
    const head = await this.#q.headRead.run<{ seq: number; hash: Buffer }>(db, { ws: workspaceId }).then((r) => r.rows[0])
    if (!head) throw new ChainMissingError()
    const tip = { seq: Number(head.seq), hash: Buffer.from(head.hash) }
    const w = this.#workers
    if (w && tip.seq >= w.threshold) {
      const fast = await this.#verifyOnWorkers(w, workspaceId, tip, checkpoint).catch(() => null)
      if (fast) return this.#tailCheck(db, workspaceId, fast)
    }
    return this.#tailCheck(db, workspaceId, await this.#verifyHere(db, workspaceId, tip, checkpoint))
  }

  /** Starts the verification threads, if any, ahead of a first verification. */
  async warmWorkers(): Promise<void> {
    await this.#workers?.pool.ready()
  }

  /** Verifies on worker threads; the result when the whole log is good, else null. */
  async #verifyOnWorkers(
    w: ParallelVerify,
    workspaceId: string,
    tip: { seq: number; hash: Buffer },
    checkpoint?: { treeSize: number; rootHash: Uint8Array },
  ): Promise<VerifyResult | null> {
    const treeSize = checkpoint?.treeSize ?? 0
    if (treeSize > tip.seq) return null
    const tasks = []
    for (let from = 1; from <= tip.seq; from += w.chunk) {
      const to = Math.min(tip.seq, from + w.chunk - 1)
      tasks.push({ source: w.source, workspaceId, fromSeq: from, toSeq: to, treeLeaves: Math.max(0, Math.min(to, treeSize) - (from - 1)) })
    }
    const joined = joinRuns(await w.pool.run(tasks))
    if (!joined || !sameBytes(joined.last, tip.hash)) return null
    if (checkpoint && (joined.range.size !== treeSize || !sameBytes(joined.range.root(), checkpoint.rootHash))) return null
    return { ok: true, checked: tip.seq, head: Buffer.from(joined.last).toString('hex') }
  }

  /** Verifies on this thread, naming the first bad entry. */
  async #verifyHere(
    db: Executor,
    workspaceId: string,
    tip: { seq: number; hash: Buffer },
    checkpoint?: { treeSize: number; rootHash: Uint8Array },
  ): Promise<VerifyResult> {
    const treeSize = checkpoint?.treeSize ?? 0
    const verifier = new ChainVerifier({ treeSize })
    let after = 0
    let last: ChainedRecord | undefined
    for (;;) {
      const page = await this.list(db, workspaceId, after, 5000, tip.seq)
      for (const r of page) {
        if (!verifier.push(r)) return verifier.result()
        last = r
        if (checkpoint && r.seq === treeSize && !sameBytes(verifier.treeRoot()!, checkpoint.rootHash)) {
          return {
            ...verifier.result(),
            ok: false,
            firstBad: {
              seq: r.seq,
              id: r.id,
              reason: `the entries up to ${r.seq} do not hash to the signed checkpoint root`,
              problem: 'checkpoint-mismatch',
            },
          }
        }
      }
      if (page.length < 5000) break
      after = page[page.length - 1]!.seq
    }
    if (checkpoint && verifier.treeLeaves < treeSize) {
      return {
        ...verifier.result(),
        ok: false,
        firstBad: {
          seq: verifier.treeLeaves + 1,
          id: '',
          reason: `the signed checkpoint covers ${treeSize} entries but only ${verifier.treeLeaves} exist: the log was truncated below it`,
          problem: 'below-checkpoint',
        },
      }
    }
    // The chain alone cannot show that its newest entries were cut off; the recorded head can
    // (an attacker who also rewrites audit_heads is caught by the signed checkpoints).
    const tipSeq = last?.seq ?? 0
    if (tipSeq !== tip.seq || !sameBytes(tip.hash, last?.hash ?? GENESIS_HASH)) {
      const r = verifier.result()
      return {
        ...r,
        ok: false,
        firstBad: {
          seq: tipSeq + 1,
          id: '',
          reason: tip.seq > tipSeq ? `entries ${tipSeq + 1} to ${tip.seq} are missing` : 'the chain does not end at the recorded head',
          problem: tip.seq > tipSeq ? 'tail-missing' : 'head-mismatch',
        },
      }
    }
    return verifier.result()
  }

  /**
   * Entries past the head are not the log's: no append writes one without moving the head in
   * the same transaction. Nor are leaves of the stored tree past the head (entries deleted and
   * the head rewound to match leave them behind), and the head's right edge must be the stored
   * tree's. The newest entry and leaf are read before the head, so an append that commits in
   * between only moves the head further.
   */
  async #tailCheck(db: Executor, workspaceId: string, r: VerifyResult): Promise<VerifyResult> {
    if (!r.ok) return r
    const problem = await this.integrity(db, workspaceId)
    return problem ? { ...r, ok: false, firstBad: problem } : r
  }

  /**
   * Locks the workspace's head in `tx` as the sequencer does (PostgreSQL; a SQLite transaction
   * already holds the write lock), so no integration commits while `tx` reads the head, its
   * entries and its tree one statement at a time.
   */
  async holdHead(tx: Executor, workspaceId: string): Promise<void> {
    if (this.#engine === 'postgres') await holdHead(tx, workspaceId, this.#engine)
  }

  /**
   * Whether the recorded head agrees with the stored entries, tree and checkpoints: no signed
   * checkpoint beyond it, its newest entries there, nothing past it, and its right edge the
   * stored tree's. Cheap (a few indexed reads); null when they agree. Used by
   * verification and before a checkpoint is signed, which must never cover a tampered log.
   */
  async integrity(db: Executor, workspaceId: string): Promise<NonNullable<VerifyResult['firstBad']> | null> {
    const newest = await db
      .selectFrom('audit_entries')
      .select('seq')
      .where('workspace_id', '=', workspaceId)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst()
    const leaf = await db
      .selectFrom('audit_nodes')
      .select('idx')
      .where('workspace_id', '=', workspaceId)
      .where('level', '=', 0)
      .orderBy('idx', 'desc')
      .limit(1)
      .executeTakeFirst()
    const head = await db.selectFrom('audit_heads').select(['seq', 'peaks']).where('workspace_id', '=', workspaceId).executeTakeFirst()
    if (!head) return null
    const size = Number(head.seq)
    const signed = await db
      .selectFrom('audit_checkpoints')
      .select('tree_size')
      .where('workspace_id', '=', workspaceId)
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst()
    if (signed && Number(signed.tree_size) > size)
      return {
        seq: size + 1,
        id: '',
        reason: `a signed checkpoint covers ${Number(signed.tree_size)} entries but the recorded head only ${size}: the log was truncated below it`,
        problem: 'below-checkpoint',
      }
    if (Number(newest?.seq ?? 0) < size)
      return {
        seq: Number(newest?.seq ?? 0) + 1,
        id: '',
        reason: `entries ${Number(newest?.seq ?? 0) + 1} to ${size} are missing`,
        problem: 'tail-missing',
      }
    if (newest && Number(newest.seq) > size)
      return {
        seq: size + 1,
        id: '',
        reason: 'the chain does not end at the recorded head: entries lie past it',
        problem: 'entries-past-head',
      }
    if (leaf && Number(leaf.idx) >= size)
      return {
        seq: size + 1,
        id: '',
        reason: `the Merkle tree holds ${Number(leaf.idx) + 1} entries but the recorded head only ${size}: entries after ${size} were removed and the head rewound`,
        problem: 'tree-past-head',
      }
    let edge: Buffer | null
    try {
      edge = packPeaks(await withStoredNodes(db, workspaceId, (nodeAt) => CompactRange.fromNodeAt(size, nodeAt)))
    } catch {
      edge = null
    }
    if (!edge?.equals(Buffer.from(head.peaks)))
      return { seq: size, id: '', reason: "the recorded head's tree edge is not the stored tree's", problem: 'tree-mismatch' }
    return null
  }
}
