// An environment's write lock (src/storage/advisory-lock.ts, commit-partition.ts): batches of
// one-key secret writes hold it shared, so several nodes' batches run at once; batches of
// several keys hold it exclusively; and a key rotation takes it exclusively, waiting for the
// shared batches in flight and holding back new ones — so no batch, which counts its
// encryptions only at its end, is between choosing the old key and its COMMIT when a rotation
// commits, and a steady stream of writes cannot starve a rotation.
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Transaction } from 'kysely'
import { after, before, test } from 'node:test'
import { startWriteBatch, takeEnvironmentWriteLock } from '../../src/storage/advisory-lock.js'
import { partitionOf, environmentPartition } from '../../src/storage/commit-partition.js'
import { openStore, type Store } from '../../src/storage/database.js'
import type { Database } from '../../src/storage/schema.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'

const WS = '6b1f0a52-3c1e-4a55-9d0e-0a1b2c3d4e5f'
const ENV = '0c4d3b2a-1e0f-4a9b-8c7d-6e5f4a3b2c1d'

test('partitions: one-key writes share the environment lock, others hold it exclusively', () => {
  assert.deepEqual(partitionOf(environmentPartition(WS, ENV, true)), { workspaceId: WS, lock: { environment: ENV, shared: true } })
  assert.deepEqual(partitionOf(environmentPartition(WS, ENV)), { workspaceId: WS, lock: { environment: ENV } })
  assert.notEqual(environmentPartition(WS, ENV, true), environmentPartition(WS, ENV))
  // Anything that is not an id names no lock and no workspace (the system scope).
  assert.deepEqual(partitionOf(`${WS}:env-shared:not-an-id`), { workspaceId: null, lock: null })
  assert.deepEqual(partitionOf(`x'); --:env-shared:${ENV}`), { workspaceId: null, lock: null })
})

describePostgres('the environment write lock across transactions', () => {
  let store: Store
  let drop: () => Promise<void>
  before(async () => {
    const db = await createTestDatabase()
    drop = db.drop
    store = openStore({ engine: 'postgres', url: db.url })
  })
  after(async () => {
    await store?.close()
    await drop?.()
  })

  type Held = { taken: Promise<void>; isTaken: () => boolean; release: () => void; done: Promise<void> }
  function open(take: (tx: Transaction<Database>) => Promise<void>): Held {
    let release!: () => void
    const released = new Promise<void>((r) => {
      release = r
    })
    let taken = false
    let markTaken!: () => void
    const takenP = new Promise<void>((r) => {
      markTaken = r
    })
    const done = store.db.transaction().execute(async (tx) => {
      await take(tx)
      taken = true
      markTaken()
      await released
    })
    return { taken: takenP, isTaken: () => taken, release, done }
  }
  const shared = (tx: Transaction<Database>) => startWriteBatch(tx, 'postgres', WS, { environment: ENV, shared: true })
  const exclusive = (tx: Transaction<Database>) => startWriteBatch(tx, 'postgres', WS, { environment: ENV })
  const rotation = (tx: Transaction<Database>) => takeEnvironmentWriteLock(tx, 'postgres', ENV)

  test('two batches of one-key writes hold it at once; a batch of several keys waits for both', async () => {
    const a = open(shared)
    const b = open(shared)
    await Promise.all([a.taken, b.taken])
    const bulk = open(exclusive)
    await sleep(200)
    assert.equal(bulk.isTaken(), false, 'the exclusive batch waits')
    a.release()
    await a.done
    await sleep(100)
    assert.equal(bulk.isTaken(), false, 'still one shared holder')
    b.release()
    await bulk.taken
    bulk.release()
    await Promise.all([b.done, bulk.done])
  })

  test('a rotation waits for the shared batches in flight, and new shared batches queue behind it', async () => {
    const inFlight = open(shared)
    await inFlight.taken
    const rotate = open(rotation)
    await sleep(150)
    assert.equal(rotate.isTaken(), false, 'the rotation waits for the batch in flight')
    // A batch that starts now would run beside the one in flight — but the rotation is waiting.
    const later = open(shared)
    await sleep(150)
    assert.equal(later.isTaken(), false, 'a new shared batch does not overtake the waiting rotation')
    inFlight.release()
    await rotate.taken
    assert.equal(later.isTaken(), false, 'nor run beside the rotation')
    rotate.release()
    await later.taken
    later.release()
    await Promise.all([inFlight.done, rotate.done, later.done])
  })

  test('under a steady stream of overlapping shared batches, a rotation gets its turn', async () => {
    let stop = false
    let batches = 0
    const writer = async () => {
      while (!stop) {
        await store.db.transaction().execute(async (tx) => {
          await shared(tx)
          await sleep(20)
        })
        batches++
      }
    }
    const writers = [writer(), writer(), writer()]
    await sleep(100)
    const started = Date.now()
    await store.db.transaction().execute((tx) => rotation(tx))
    const waited = Date.now() - started
    stop = true
    await Promise.all(writers)
    assert.ok(batches > 5, `writes ran (${batches} batches)`)
    assert.ok(waited < 1_000, `the rotation waited ${waited} ms, about one batch`)
  })
})
