// The read audit batcher on its own: a write takes its requests when it runs, so reads that
// finish while it waits for its turn join it — and nothing is ever answered as durable unless
// a write took it. The engines' real writes are exercised in test/server/read-audit-batch.test.ts;
// here the write is a function the test holds, to decide when it runs and how it ends.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { AuditedRequest, AuditEvent } from '../../src/audit/audit-log.js'
import { ReadAuditBatcher } from '../../src/audit/read-audit-batcher.js'

const WS = 'ws-1'
const actor = { type: 'system', id: 'test', ip: '127.0.0.1', userAgent: 'read-audit-batcher.test' } as const
const event: AuditEvent = { action: 'secret.reveal', target: { type: 'secret', id: 's' } }

/** A write whose run the test starts: `runs` lists each call's `take` and a way to end it. */
function heldWrites() {
  const runs: Array<{ take: () => readonly AuditedRequest[]; done: () => void; fail: (err: unknown) => void }> = []
  const write = (_ws: string, take: () => readonly AuditedRequest[]) =>
    new Promise<void>((resolve, reject) => runs.push({ take, done: resolve, fail: reject }))
  return { runs, write }
}

const settled = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    () => 'rejected',
  )

test('reads that finish while a write waits for its turn join it; after it has taken them, the next ones make a write of their own', async () => {
  const { runs, write } = heldWrites()
  const batcher = new ReadAuditBatcher(write)
  const first = batcher.append(WS, actor, 'r1', [event])
  await nextTurn()
  assert.equal(runs.length, 1, 'one write made')
  // Three more reads, in later turns of the event loop, while that write waits (its batch has not begun).
  const joined = [batcher.append(WS, actor, 'r2', [event])]
  await nextTurn()
  joined.push(batcher.append(WS, actor, 'r3', [event]), batcher.append(WS, actor, 'r4', [event]))
  await nextTurn()
  assert.equal(runs.length, 1, 'no new write: they joined the waiting one')
  const taken = runs[0]!.take()
  assert.deepEqual(
    taken.map((r) => r.requestId),
    ['r1', 'r2', 'r3', 'r4'],
  )
  // Taken: a read from now on is not part of it.
  const later = batcher.append(WS, actor, 'r5', [event])
  await nextTurn()
  assert.equal(runs.length, 2, 'the next read made a write of its own')
  assert.deepEqual(
    runs[0]!.take().map((r) => r.requestId),
    ['r1', 'r2', 'r3', 'r4'],
    'a write that runs again (a retry) takes the same requests',
  )
  runs[0]!.done()
  assert.deepEqual(await Promise.all([first, ...joined].map(settled)), Array(4).fill('resolved'))
  assert.equal(await Promise.race([settled(later), nextTurn().then(() => 'pending')]), 'pending', 'r5 waits for its own write')
  assert.deepEqual(
    runs[1]!.take().map((r) => r.requestId),
    ['r5'],
  )
  runs[1]!.done()
  assert.equal(await settled(later), 'resolved')
  assert.deepEqual(batcher.stats, { writes: 2, requests: 5 })
})

test('a write that fails before it runs takes nothing: its reads fail, and the next read is not left waiting on it', async () => {
  const { runs, write } = heldWrites()
  const batcher = new ReadAuditBatcher(write)
  const a = batcher.append(WS, actor, 'a', [event])
  await nextTurn()
  const dead = Object.assign(new Error('the connection was lost'), { code: 'ECONNRESET' })
  runs[0]!.fail(dead)
  await assert.rejects(a, /connection was lost/)
  const b = batcher.append(WS, actor, 'b', [event])
  await nextTurn()
  assert.equal(runs.length, 2, 'a new write for the next read')
  assert.deepEqual(
    runs[1]!.take().map((r) => r.requestId),
    ['b'],
  )
  runs[1]!.done()
  assert.equal(await settled(b), 'resolved')
})

test('a write that ends without taking its reads never answers them as durable', async () => {
  const batcher = new ReadAuditBatcher(async () => {})
  await assert.rejects(batcher.append(WS, actor, 'x', [event]), /without taking its requests/)
  const two = [batcher.append(WS, actor, 'y', [event]), batcher.append(WS, actor, 'z', [event])]
  assert.deepEqual(await Promise.all(two.map(settled)), ['rejected', 'rejected'])
})

test('workspaces never share a write', async () => {
  const { runs, write } = heldWrites()
  const batcher = new ReadAuditBatcher(write)
  const p = [batcher.append('ws-a', actor, 'a', [event]), batcher.append('ws-b', actor, 'b', [event])]
  await nextTurn()
  p.push(batcher.append('ws-b', actor, 'b2', [event]))
  assert.equal(runs.length, 2)
  assert.deepEqual(
    runs.map((r) => r.take().map((x) => x.requestId)),
    [['a'], ['b', 'b2']],
  )
  for (const r of runs) r.done()
  assert.deepEqual(await Promise.all(p.map(settled)), ['resolved', 'resolved', 'resolved'])
})
