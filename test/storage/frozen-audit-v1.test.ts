// The frozen copy of the v1 audit code that migration 2 uses (src/storage/migrations/frozen/
// audit-v1.ts) gives the same bytes as the live audit code did when it was frozen: entry
// bytes, leaf hashes, the nodes each append completes, the packed peaks and the stored rows.
// If the live code changes on purpose, this test changes with it; the frozen copy does not.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { rowToRecord } from '../../src/audit/audit-log.js'
import { entryBytes } from '../../src/audit/entry.js'
import { CompactRange, leafHash } from '../../src/audit/merkle.js'
import { insertNodes, packPeaks } from '../../src/audit/tree-store.js'
import { openStore } from '../../src/storage/database.js'
import {
  CompactRangeV1,
  entryBytesV1,
  insertNodesV1,
  leafHashV1,
  type AuditEntryRowV1,
} from '../../src/storage/migrations/frozen/audit-v1.js'
import { migrate } from '../../src/storage/migrator.js'

/** Deterministic bytes, so a failure names the same row every run. */
function bytes(label: string, n = 32): Buffer {
  return createHash('sha256').update(label).digest().subarray(0, n)
}

const ACTORS = [
  { type: 'user', id: 'u-1', ip: '127.0.0.1', ua: 'coffer-cli/1.0' },
  { type: 'system', id: 'bootstrap', ip: '', ua: 'coffer' },
  { type: 'anonymous', id: 'ösé@例え.test', ip: '::1', ua: 'Mozilla/5.0 "quoted" \\ back\u2028slash' },
]
const DETAILS = [
  '{}',
  '{"key":"K1","toVersion":2}',
  '{"after":"hmac-sha256:abc","before":null,"nested":{"a":[1,2,{"b":"\\u0000"}]}}',
  '{"emoji":"🔑","line":"a\\nb"}',
]

/** The n-th sample row of a v1 log, as the database returns it. */
function sampleRow(workspaceId: string, seq: number): AuditEntryRowV1 & { seq: number; prev_hash: Buffer; hash: Buffer } {
  const a = ACTORS[seq % ACTORS.length]!
  return {
    workspace_id: workspaceId,
    seq,
    id: `0190${String(seq).padStart(4, '0')}-0000-7000-8000-000000000000`,
    time: new Date(Date.UTC(2024, 0, 1, 0, 0, seq)).toISOString(),
    actor_type: a.type,
    actor_id: a.id,
    actor_ip: a.ip,
    actor_ua: a.ua,
    request_id: `req-${seq}`,
    action: seq % 2 ? 'secret.update' : 'made.up_action-from-v1',
    target_type: 'secret',
    target_id: `s-${seq % 5}`,
    details: DETAILS[seq % DETAILS.length]!,
    prev_hash: bytes(`prev ${seq}`),
    hash: bytes(`hash ${seq}`),
  }
}

const nodesOf = (nodes: ReadonlyArray<{ level: number; index: number; hash: Uint8Array }>) =>
  nodes.map((n) => ({ level: n.level, index: n.index, hash: Buffer.from(n.hash).toString('hex') }))

test('entry bytes, leaf hashes, completed nodes and peaks equal the live audit code', () => {
  for (const seqAsString of [false, true]) {
    const live = new CompactRange()
    const frozen = new CompactRangeV1()
    for (let seq = 1; seq <= 70; seq++) {
      const row = sampleRow('ws-Ω', seq)
      const liveBytes = entryBytes(rowToRecord(row))
      // PostgreSQL returns a BIGINT seq as a string; both read it with Number().
      const frozenBytes = entryBytesV1(seqAsString ? { ...row, seq: String(seq) } : row)
      assert.deepEqual(frozenBytes, liveBytes, `entry bytes of seq ${seq}`)
      const liveLeaf = leafHash(liveBytes)
      const frozenLeaf = leafHashV1(frozenBytes)
      assert.equal(Buffer.from(frozenLeaf).toString('hex'), Buffer.from(liveLeaf).toString('hex'), `leaf hash of seq ${seq}`)
      assert.deepEqual(nodesOf(frozen.append(frozenLeaf)), nodesOf(live.append(liveLeaf)), `nodes completed by seq ${seq}`)
      assert.deepEqual(frozen.packPeaks(), packPeaks(live), `peaks after seq ${seq}`)
    }
  }
})

test('bad input fails as the live code failed', () => {
  const row = sampleRow('w', 1)
  assert.throws(() => entryBytesV1({ ...row, seq: 2 ** 53 }), TypeError)
  assert.throws(() => entryBytes(rowToRecord({ ...row, seq: 2 ** 53 })), TypeError)
  assert.throws(() => new CompactRangeV1().append(new Uint8Array(31)), TypeError)
  assert.throws(() => new CompactRange().append(new Uint8Array(31)), TypeError)
})

test('insertNodesV1 stores the rows insertNodes stores', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-frozen-'))
  const store = openStore({ engine: 'sqlite', path: join(dir, 'coffer.db') })
  try {
    await migrate(store)
    const range = new CompactRange()
    await store.db.transaction().execute(async (tx) => {
      for (let seq = 1; seq <= 21; seq++) {
        const nodes = range.append(leafHash(entryBytes(rowToRecord(sampleRow('w', seq)))))
        await insertNodes(tx, 'live', nodes)
        await insertNodesV1(
          tx,
          'frozen',
          nodes.map((n) => ({ level: n.level, index: n.index, hash: Buffer.from(n.hash) })),
        )
      }
    })
    const rowsOf = async (ws: string) =>
      (
        await store.db
          .selectFrom('audit_nodes')
          .select(['level', 'idx', 'hash'])
          .where('workspace_id', '=', ws)
          .orderBy('level')
          .orderBy('idx')
          .execute()
      ).map((r) => ({ level: r.level, idx: Number(r.idx), hash: Buffer.from(r.hash).toString('hex') }))
    const live = await rowsOf('live')
    assert.equal(live.length, 21 + 10 + 5 + 2 + 1)
    assert.deepEqual(await rowsOf('frozen'), live)
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
})
