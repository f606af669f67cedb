// Audit entry ids: RFC 9562 UUIDv7, unique, and in creation order within a process (so the
// unique index on audit_entries.id grows at its right edge).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { z } from 'zod'
import { newEntryId } from '../../src/audit/entry-id.js'

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('UUIDv7 carrying the time, unique and ordered even within one millisecond', () => {
  const before = Date.now()
  const ids = Array.from({ length: 20_000 }, () => newEntryId(Date.now()))
  const after = Date.now()
  for (const id of ids) assert.match(id, V7)
  assert.ok(
    ids.every((id) => z.uuid().safeParse(id).success),
    'the API accepts them as UUIDs',
  )
  assert.equal(new Set(ids).size, ids.length, 'unique')
  assert.deepEqual([...ids].sort(), ids, 'sorted order is creation order')
  const ms = parseInt(ids[0]!.replaceAll('-', '').slice(0, 12), 16)
  assert.ok(ms >= before && ms <= after + 5, 'the first 48 bits are the Unix time in ms')
})

test('a clock that goes back, or more than 4,096 ids in one millisecond, keeps the order', () => {
  const t = Date.now() + 60_000
  const a = newEntryId(t)
  const b = newEntryId(t - 5_000)
  const burst = Array.from({ length: 5_000 }, () => newEntryId(t))
  const all = [a, b, ...burst]
  assert.deepEqual([...all].sort(), all)
  assert.equal(new Set(all).size, all.length)
  for (const id of all) assert.match(id, V7)
})
