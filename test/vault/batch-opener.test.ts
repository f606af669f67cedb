import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import { type DataKey, type KeyRef, open, seal } from '../../src/crypto/envelope.js'
import { DecryptionError } from '../../src/errors.js'
import type { Executor } from '../../src/storage/database.js'
import { BatchOpener } from '../../src/vault/batch-opener.js'

const scope = { workspaceId: randomUUID(), projectId: randomUUID(), environmentId: randomUUID() }
const keyId = randomUUID()
const v1: DataKey = { id: keyId, version: 1, key: randomBytes(32) }
const v2: DataKey = { id: keyId, version: 2, key: randomBytes(32) }
const db = {} as Executor

/** DataKeys.byRef over two versions of one key, counting lookups. */
function keys(held: DataKey[] = [v1, v2]) {
  const lookups: KeyRef[] = []
  return {
    lookups,
    byRef: async (_db: Executor, ref: KeyRef) => {
      lookups.push(ref)
      const k = held.find((d) => d.id === ref.id && d.version === ref.version)
      if (!k) throw new DecryptionError()
      return k
    },
  }
}

const binding = (recordId: string, recordVersion: number, field: string) => ({ ...scope, recordId, recordVersion, field })

describe('BatchOpener', () => {
  // 60 values, the first half under version 1 (not yet resealed), the rest under version 2.
  const items = Array.from({ length: 60 }, (_, i) => {
    const id = randomUUID()
    const value = `value ${i} ${'é✓🔑'.repeat(i)}`
    const ct = seal(i < 30 ? v1 : v2, Buffer.from(value, 'utf8'), binding(id, i + 1, 'value'))
    return { id, version: i + 1, value, ct }
  })

  test('opens each value as `open` does, looking each key version up once for the whole batch', async () => {
    const k = keys()
    const o = await BatchOpener.of(k, db, scope, [...items.map((i) => i.ct), null])
    assert.deepEqual(
      k.lookups.map((r) => r.version),
      [1, 2],
      'one lookup per key version, not per value',
    )
    for (const it of items) {
      const got = o.open(it.ct, it.id, it.version, 'value')
      assert.ok(got === it.value, `item ${it.version} opens to its value`)
      const key = it.version <= 30 ? v1 : v2
      assert.ok(got === open(key, it.ct, binding(it.id, it.version, 'value')).toString('utf8'), 'same as open()')
    }
    assert.equal(o.open(null, items[0]!.id, 1, 'comment'), null)
  })

  test('a ciphertext opened for another record, version or field fails with the one DecryptionError', async () => {
    const o = await BatchOpener.of(
      keys(),
      db,
      scope,
      items.map((i) => i.ct),
    )
    const [a, b] = items
    assert.throws(() => o.open(a!.ct, b!.id, a!.version, 'value'), DecryptionError)
    assert.throws(() => o.open(a!.ct, a!.id, a!.version + 1, 'value'), DecryptionError)
    assert.throws(() => o.open(a!.ct, a!.id, a!.version, 'comment'), DecryptionError)
    const flipped = Buffer.from(a!.ct)
    flipped[flipped.length - 20]! ^= 1
    assert.throws(() => o.open(flipped, a!.id, a!.version, 'value'), DecryptionError)
    // A ciphertext under a key the opener never looked up (not among those it was made for).
    const other: DataKey = { id: randomUUID(), version: 1, key: randomBytes(32) }
    assert.throws(() => o.open(seal(other, Buffer.from('x'), binding(a!.id, 1, 'value')), a!.id, 1, 'value'), DecryptionError)
  })

  test('a key the scope does not hold, or bytes that are no ciphertext, fail before anything opens', async () => {
    await assert.rejects(
      BatchOpener.of(
        keys([v1]),
        db,
        scope,
        items.map((i) => i.ct),
      ),
      DecryptionError,
    )
    await assert.rejects(
      BatchOpener.of(keys(), db, scope, [Buffer.from('not a ciphertext at all, long enough to pass the length')]),
      DecryptionError,
    )
  })

  test('an empty environment looks no key up', async () => {
    const k = keys()
    await BatchOpener.of(k, db, scope, [])
    assert.equal(k.lookups.length, 0)
  })
})
