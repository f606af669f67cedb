import type { Executor } from '../storage/database.js'
import { QueryTemplate } from '../storage/query-template.js'
import { CompactRange, HASH_SIZE, type NodeAt, type TreeNode } from './merkle.js'

// The stored form of each workspace's RFC 9162 tree: every complete (perfect) subtree hash in
// audit_nodes (level 0 = leaf hashes), and the right edge ("peaks") beside the chain head in
// audit_heads, so an append costs O(log n) hashing and one insert, and any proof for any
// tree size up to the head costs O(log n) node reads in a single query.

/** Concatenates peak hashes, leftmost first, for audit_heads.peaks. */
export function packPeaks(range: CompactRange): Buffer {
  return Buffer.concat(range.peaks().map((p) => p.hash))
}

/** Restores the compact range of a tree of `size` leaves from audit_heads.peaks. */
export function unpackPeaks(size: number, packed: Uint8Array): CompactRange {
  const bits = size
    .toString(2)
    .split('')
    .filter((b) => b === '1').length
  if (packed.length !== bits * HASH_SIZE) throw new Error('audit_heads.peaks does not match the tree size')
  let i = 0
  // fromNodeAt asks for the peaks leftmost first, one call per set bit of size.
  return CompactRange.fromNodeAt(size, () => packed.subarray(HASH_SIZE * i, HASH_SIZE * ++i))
}

// One compiled INSERT per row count (an append completes 1 to log2(n)+1 nodes).
const insertTemplates = new Map<number, QueryTemplate<string>>()

function insertTemplate(count: number): QueryTemplate<string> {
  let t = insertTemplates.get(count)
  if (!t) {
    t = new QueryTemplate<string>((db, p) =>
      db
        .insertInto('audit_nodes')
        .values(Array.from({ length: count }, (_, i) => ({ workspace_id: p('ws'), level: p(`l${i}`), idx: p(`i${i}`), hash: p(`h${i}`) }))),
    )
    insertTemplates.set(count, t)
  }
  return t
}

/** The same INSERT of `n` rows as raw SQLite text, for an append on the connection itself (audit-log.ts). */
const sqliteInserts: string[] = []
export function sqliteInsertNodes(n: number): string {
  let sql = sqliteInserts[n]
  if (sql === undefined) {
    sql = `INSERT INTO audit_nodes (workspace_id, level, idx, hash) VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?)').join(', ')}`
    sqliteInserts[n] = sql
  }
  return sql
}

/** Inserts the nodes an append completed. */
export async function insertNodes(db: Executor, workspaceId: string, nodes: TreeNode[]): Promise<void> {
  if (!nodes.length) return
  const values: Record<string, unknown> = { ws: workspaceId }
  nodes.forEach((n, i) => {
    values[`l${i}`] = n.level
    values[`i${i}`] = n.index
    values[`h${i}`] = Buffer.from(n.hash)
  })
  await insertTemplate(nodes.length).run(db, values)
}

/**
 * Runs a proof function against the stored nodes. The nodes a proof needs depend only on the
 * sizes and indexes, not on hash values, so a first dry run records which nodes `compute`
 * asks for; one query fetches them all; the second run computes with the real hashes.
 */
export async function withStoredNodes<T>(db: Executor, workspaceId: string, compute: (nodeAt: NodeAt) => T): Promise<T> {
  const wanted = new Map<string, { level: number; index: number }>()
  const dummy = new Uint8Array(HASH_SIZE)
  compute((level, index) => {
    wanted.set(`${level}:${index}`, { level, index })
    return dummy
  })
  const found = new Map<string, Uint8Array>()
  const ids = [...wanted.values()]
  for (let i = 0; i < ids.length; i += 200) {
    const chunk = ids.slice(i, i + 200)
    // @NOTE workspace_id goes inside every OR term: with it outside, SQLite (no ANALYZE stats)
    // searches the index on workspace_id alone and scans the workspace's whole tree, O(n).
    const rows = await db
      .selectFrom('audit_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) =>
        eb.or(chunk.map((n) => eb.and([eb('workspace_id', '=', workspaceId), eb('level', '=', n.level), eb('idx', '=', n.index)]))),
      )
      .execute()
    for (const r of rows) found.set(`${r.level}:${Number(r.idx)}`, new Uint8Array(r.hash))
  }
  return compute((level, index) => {
    const h = found.get(`${level}:${index}`)
    if (!h) throw new Error(`audit tree node ${level}/${index} is missing`)
    return h
  })
}
