import { createHash } from 'node:crypto'
import type { Transaction } from 'kysely'

// FROZEN COPY for migration 2 (002-audit-merkle-tree.ts). NEVER CHANGE THIS FILE.
//
// Migration 2 builds the RFC 9162 tree of every existing audit log from its v1 entries. It
// must do tomorrow exactly what it did when it was released, whatever src/audit becomes, so it
// uses this copy of the audit code of that time instead of the live code: rowToRecord
// (audit-log.ts), entryText/entryBytes (entry.ts), leafHash and CompactRange.append
// (merkle.ts), insertNodes and packPeaks (tree-store.ts), reduced to what the migration calls
// and written against node:crypto and kysely alone. test/storage/frozen-audit-v1.test.ts pins
// it to the live code's output; if the live code changes on purpose, that test changes, this
// file does not.

/** An audit_entries row of schema v1, the columns the v1 entry bytes cover. */
export interface AuditEntryRowV1 {
  workspace_id: string
  seq: number | string | bigint
  id: string
  time: string
  actor_type: string
  actor_id: string
  actor_ip: string
  actor_ua: string
  request_id: string
  action: string
  target_type: string
  target_id: string
  details: string
}

/** The audit tables as migration 2 found and left them. */
export interface AuditTablesV1 {
  audit_heads: { workspace_id: string; seq: number; hash: Buffer; peaks: Buffer }
  audit_entries: Omit<AuditEntryRowV1, 'seq'> & { seq: number; prev_hash: Buffer; hash: Buffer }
  audit_nodes: { workspace_id: string; level: number; idx: number; hash: Buffer }
}

/** A transaction over the v1 audit tables. */
export type AuditTxV1 = Transaction<AuditTablesV1>

/** The columns of AuditEntryRowV1, for the migration's SELECT. */
export const AUDIT_ENTRY_COLUMNS_V1 = [
  'workspace_id',
  'seq',
  'id',
  'time',
  'actor_type',
  'actor_id',
  'actor_ip',
  'actor_ua',
  'request_id',
  'action',
  'target_type',
  'target_id',
  'details',
] as const

/**
 * The v1 canonical bytes of a stored entry: canonical JSON of every field but the hashes, with
 * `v: 1`, `details` inserted as the canonical JSON text it is stored as.
 */
export function entryBytesV1(row: AuditEntryRowV1): Buffer {
  const seq = Number(row.seq)
  if (!Number.isSafeInteger(seq)) throw new TypeError('seq must be a safe integer')
  const s = JSON.stringify
  const text =
    `{"action":${s(row.action)},"actor":{"id":${s(row.actor_id)},"ip":${s(row.actor_ip)},"type":${s(row.actor_type)},"userAgent":${s(row.actor_ua)}},` +
    `"details":${row.details},"id":${s(row.id)},"requestId":${s(row.request_id)},"seq":${seq},` +
    `"target":{"id":${s(row.target_id)},"type":${s(row.target_type)}},"time":${s(row.time)},"v":1,"workspace":${s(row.workspace_id)}}`
  return Buffer.from(text, 'utf8')
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest()
}

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ entry). */
export function leafHashV1(entry: Uint8Array): Buffer {
  return sha256(Buffer.concat([Uint8Array.of(0x00), entry]))
}

/** RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
function nodeHashV1(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(Buffer.concat([Uint8Array.of(0x01), left, right]))
}

/** A perfect subtree of 2^level leaves starting at leaf index * 2^level. */
export interface TreeNodeV1 {
  readonly level: number
  readonly index: number
  readonly hash: Buffer
}

/** An append-only RFC 9162 tree kept as its right edge (one peak per set bit of its size). */
export class CompactRangeV1 {
  #size = 0
  readonly #peaks: Buffer[] = []

  /** Appends one 32-byte leaf hash; returns, bottom-up, the leaf and every node it completed. */
  append(leafHash: Uint8Array): TreeNodeV1[] {
    if (leafHash.length !== 32) throw new TypeError('leafHash must be a 32-byte Uint8Array')
    let hash: Buffer = Buffer.from(leafHash)
    let index = this.#size
    let level = 0
    const completed: TreeNodeV1[] = [{ level, index, hash }]
    while (index % 2 === 1) {
      hash = nodeHashV1(this.#peaks.pop() as Buffer, hash)
      level += 1
      index = (index - 1) / 2
      completed.push({ level, index, hash })
    }
    this.#peaks.push(hash)
    this.#size += 1
    return completed
  }

  /** The peak hashes concatenated, leftmost (largest subtree) first: audit_heads.peaks. */
  packPeaks(): Buffer {
    return Buffer.concat(this.#peaks)
  }
}

/** Inserts the nodes one append completed, in one statement. */
export async function insertNodesV1(tx: AuditTxV1, workspaceId: string, nodes: TreeNodeV1[]): Promise<void> {
  if (!nodes.length) return
  await tx
    .insertInto('audit_nodes')
    .values(nodes.map((n) => ({ workspace_id: workspaceId, level: n.level, idx: n.index, hash: Buffer.from(n.hash) })))
    .execute()
}
