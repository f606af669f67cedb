import { sql } from 'kysely'
import { AuditTamperedError } from '../errors.js'
import type { Engine, Executor } from '../storage/database.js'
import { onSqliteConnection } from '../storage/statement-cache.js'
import type { AuditQueueTable } from '../storage/schema.js'
import type { AuditRecord, EntryHasher } from './entry.js'
import type { TreeNode } from './merkle.js'
import { packPeaks, sqliteInsertNodes, unpackPeaks } from './tree-store.js'

// One batch of sequencing: queued entries (audit_queue) become the next entries of their
// workspace's hash chain and leaves of its RFC 9162 tree, in one transaction that also deletes
// them from the queue. A crash at any point leaves either the whole batch integrated and gone
// from the queue, or none of it: every queued entry is integrated exactly once (audit_entries.id
// is unique besides).

/** The workspace has no audit chain (no audit_heads row). */
export class ChainMissingError extends Error {
  constructor() {
    super('audit chain missing for workspace')
  }
}

export interface IntegrateOptions {
  engine: Engine
  hasher: EntryHasher
  /** The time (ms) leases are measured against. */
  now: number
  /** At most this many entries. */
  limit: number
  /** Take or renew the workspace's sequencer lease for `holder` until now + `ms`; skip the batch when another holder has it. */
  lease?: { holder: string; ms: number }
}

export interface Integrated {
  /** Entries integrated by this batch. */
  count: number
  /** The chain's head after it. */
  seq: number
  /** The times (ISO) of the entries integrated, in order: their merge lag is measured from them. */
  times: string[]
}

const ROWS_PER_INSERT = 400

const SQLITE_ENTRY = `INSERT INTO audit_entries (workspace_id, seq, id, time, actor_type, actor_id, actor_ip, actor_ua,
  request_id, action, target_type, target_id, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
const SQLITE_QUEUED = 'SELECT * FROM audit_queue WHERE workspace_id = ? ORDER BY qid LIMIT ?'
// @NOTE a range, not the list: on SQLite nothing else writes while this transaction does, so
// the workspace's queued rows from the first qid read to the last are exactly the batch read.
// (PostgreSQL deletes the list: a row with a qid inside the range may commit meanwhile.)
const SQLITE_DEQUEUE = 'DELETE FROM audit_queue WHERE workspace_id = ? AND qid BETWEEN ? AND ?'
const SQLITE_ADVANCE = 'UPDATE audit_heads SET seq = ?, hash = ?, peaks = ? WHERE workspace_id = ?'

interface Head {
  seq: number
  hash: Buffer
  peaks: Buffer
}

/**
 * Locks the workspace's head (taking or renewing the lease when asked) and returns it; null
 * when the lease is another holder's. The lease and the lock are one statement: a holder whose
 * lease ran out and was taken cannot integrate, and two integrations never overlap.
 */
async function lockHead(tx: Executor, workspaceId: string, o: IntegrateOptions): Promise<Head | null> {
  if (o.lease) {
    const until = o.now + o.lease.ms
    const taken = await sql<Head>`UPDATE audit_heads SET sequencer = ${o.lease.holder}, sequencer_until = ${until}
      WHERE workspace_id = ${workspaceId} AND (sequencer = ${o.lease.holder} OR sequencer_until < ${o.now})
      RETURNING seq, hash, peaks`.execute(tx)
    if (taken.rows[0]) return taken.rows[0]
    const exists = await tx.selectFrom('audit_heads').select('seq').where('workspace_id', '=', workspaceId).executeTakeFirst()
    if (!exists) throw new ChainMissingError()
    return null
  }
  const head = await holdHead(tx, workspaceId, o.engine)
  if (!head) throw new ChainMissingError()
  return head
}

/**
 * The workspace's head, held until `tx` ends (on PostgreSQL; SQLite's transaction holds the
 * write lock already): no integration of the workspace commits meanwhile.
 */
export async function holdHead(tx: Executor, workspaceId: string, engine: Engine): Promise<Head | undefined> {
  let q = tx.selectFrom('audit_heads').select(['seq', 'hash', 'peaks']).where('workspace_id', '=', workspaceId)
  // @NOTE NO KEY UPDATE, not UPDATE: requests queuing entries hold KEY SHARE on the head (the
  // queue's foreign key) and must never wait for a batch.
  if (engine === 'postgres') q = q.forNoKeyUpdate()
  return await q.executeTakeFirst()
}

/** Integrates up to `o.limit` queued entries of the workspace, oldest queue position first, within `tx`. */
export async function integrateQueued(tx: Executor, workspaceId: string, o: IntegrateOptions): Promise<Integrated | null> {
  const head = await lockHead(tx, workspaceId, o)
  if (!head) return null
  let seq = Number(head.seq)
  let range: ReturnType<typeof unpackPeaks>
  try {
    range = unpackPeaks(seq, head.peaks)
  } catch {
    // Integration always writes a head whose edge fits its size: this one was written by hand.
    throw new AuditTamperedError("The audit log was tampered with: the recorded head's tree edge does not fit its size.")
  }
  const queued: Selected[] =
    o.engine === 'sqlite'
      ? await onSqliteConnection(tx, (c) => c.prepare(SQLITE_QUEUED).all(workspaceId, o.limit) as Selected[])
      : await tx.selectFrom('audit_queue').selectAll().where('workspace_id', '=', workspaceId).orderBy('qid').limit(o.limit).execute()
  if (queued.length === 0) return { count: 0, seq, times: [] }
  let prev: Buffer = Buffer.from(head.hash)
  const entries: Array<{ row: Selected; seq: number; prev: Buffer; hash: Buffer }> = []
  const nodes: TreeNode[] = []
  for (const row of queued) {
    seq++
    const { chain, leaf } = o.hasher.hash(recordOf(row, seq), prev, true)
    for (const n of range.append(leaf!)) nodes.push(n)
    entries.push({ row, seq, prev, hash: chain })
    prev = chain
  }
  const peaks = packPeaks(range)
  if (o.engine === 'sqlite') {
    // @NOTE prepared statements on the transaction's own connection: better-sqlite3 is
    // synchronous, and one statement per row is cheaper than building multi-row SQL.
    await onSqliteConnection(tx, (c) => {
      const insert = c.prepare(SQLITE_ENTRY)
      const dequeue = c.prepare(SQLITE_DEQUEUE)
      for (const e of entries) {
        const r = e.row
        insert.run(
          workspaceId,
          e.seq,
          r.id,
          r.time,
          r.actor_type,
          r.actor_id,
          r.actor_ip,
          r.actor_ua,
          r.request_id,
          r.action,
          r.target_type,
          r.target_id,
          r.details,
          e.prev,
          e.hash,
        )
      }
      // @NOTE without secure_delete for this statement: queued entries hold no secret (values
      // are fingerprinted) and the same bytes now sit in audit_entries, so zeroing their old
      // pages (what secure_delete does, for shredded keys) only costs writes.
      c.prepare('PRAGMA secure_delete = OFF').run()
      try {
        dequeue.run(workspaceId, entries[0]!.row.qid, entries[entries.length - 1]!.row.qid)
      } finally {
        c.prepare('PRAGMA secure_delete = ON').run()
      }
      const one = c.prepare(sqliteInsertNodes(1))
      for (const n of nodes) one.run(workspaceId, n.level, n.index, Buffer.from(n.hash))
      c.prepare(SQLITE_ADVANCE).run(seq, prev, peaks, workspaceId)
    })
  } else {
    for (let i = 0; i < entries.length; i += ROWS_PER_INSERT) {
      const chunk = entries.slice(i, i + ROWS_PER_INSERT)
      await tx
        .insertInto('audit_entries')
        .values(
          chunk.map(({ row: r, seq: s, prev: p, hash }) => ({
            workspace_id: workspaceId,
            seq: s,
            id: r.id,
            time: r.time,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            actor_ip: r.actor_ip,
            actor_ua: r.actor_ua,
            request_id: r.request_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            details: r.details,
            prev_hash: p,
            hash,
          })),
        )
        .execute()
      await tx
        .deleteFrom('audit_queue')
        .where(
          'qid',
          'in',
          chunk.map((e) => e.row.qid),
        )
        .execute()
    }
    for (let i = 0; i < nodes.length; i += 2 * ROWS_PER_INSERT) {
      await tx
        .insertInto('audit_nodes')
        .values(
          nodes
            .slice(i, i + 2 * ROWS_PER_INSERT)
            .map((n) => ({ workspace_id: workspaceId, level: n.level, idx: n.index, hash: Buffer.from(n.hash) })),
        )
        .execute()
    }
    await tx.updateTable('audit_heads').set({ seq, hash: prev, peaks }).where('workspace_id', '=', workspaceId).execute()
  }
  return { count: entries.length, seq, times: entries.map((e) => e.row.time) }
}

type Selected = { [K in keyof AuditQueueTable]: K extends 'qid' ? number : AuditQueueTable[K] }

/** An entry as queued: every field but its seq, which the sequencer assigns. */
export type QueuedRecord = Omit<AuditRecord, 'seq'>

/** A queue row as the entry it will be, without its seq. */
export function queuedRecordOf(r: Omit<Selected, 'qid'>): QueuedRecord {
  return {
    workspaceId: r.workspace_id,
    id: r.id,
    time: r.time,
    actor: { type: r.actor_type, id: r.actor_id, ip: r.actor_ip, userAgent: r.actor_ua },
    requestId: r.request_id,
    action: r.action,
    target: { type: r.target_type, id: r.target_id },
    details: r.details,
  }
}

function recordOf(r: Selected, seq: number): AuditRecord {
  return { ...queuedRecordOf(r), seq }
}

/** How many entries of a workspace wait in the queue, and the time of the oldest. */
export interface PendingStats {
  count: number
  oldest: string | null
}

export async function pendingStats(db: Executor, workspaceId: string): Promise<PendingStats> {
  const r = await db
    .selectFrom('audit_queue')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('time').as('oldest')])
    .where('workspace_id', '=', workspaceId)
    .executeTakeFirst()
  return { count: Number(r?.n ?? 0), oldest: (r?.oldest as string | null | undefined) ?? null }
}
