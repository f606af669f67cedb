import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { DekCache } from '../../src/crypto/dek-cache.js'

interface Entry {
  key: Buffer
  name: string
}

const entry = (name: string): Entry => ({ key: Buffer.alloc(32, name.length), name })

/** A cache on a clock the test moves by hand. */
function cacheWithClock(maxEntries: number, ttlMs: number) {
  const clock = { now: 1_000_000 }
  const cache = new DekCache<Entry>({ maxEntries, ttlMs, now: () => clock.now })
  return { cache, clock }
}

describe('DekCache', () => {
  test('holds at most maxEntries, evicting the least recently used', () => {
    const { cache } = cacheWithClock(3, 60_000)
    for (const id of ['a', 'b', 'c', 'd']) cache.set(id, entry(id))
    assert.equal(cache.size, 3)
    assert.equal(cache.get('a'), undefined)
    assert.deepEqual(
      ['b', 'c', 'd'].map((id) => cache.get(id)?.name),
      ['b', 'c', 'd'],
    )
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, entry(`k${i}`))
    assert.equal(cache.size, 3)
    assert.deepEqual(
      ['k97', 'k98', 'k99'].map((id) => cache.get(id)?.name),
      ['k97', 'k98', 'k99'],
    )
  })

  test('get refreshes recency', () => {
    const { cache } = cacheWithClock(3, 60_000)
    for (const id of ['a', 'b', 'c']) cache.set(id, entry(id))
    assert.equal(cache.get('a')?.name, 'a') // a is now the most recent; b the least
    cache.set('d', entry('d'))
    assert.equal(cache.get('b'), undefined)
    assert.equal(cache.get('a')?.name, 'a')
    assert.equal(cache.get('c')?.name, 'c')
    assert.equal(cache.get('d')?.name, 'd')
  })

  test('set of an existing id replaces it and refreshes recency', () => {
    const { cache } = cacheWithClock(2, 60_000)
    cache.set('a', entry('a'))
    cache.set('b', entry('b'))
    cache.set('a', entry('a2'))
    assert.equal(cache.size, 2)
    cache.set('c', entry('c'))
    assert.equal(cache.get('b'), undefined)
    assert.equal(cache.get('a')?.name, 'a2')
  })

  test('entries expire after the TTL', () => {
    const { cache, clock } = cacheWithClock(10, 5_000)
    cache.set('a', entry('a'))
    clock.now += 4_999
    assert.equal(cache.get('a')?.name, 'a')
    clock.now += 1
    assert.equal(cache.get('a'), undefined)
    assert.equal(cache.size, 0, 'an expired entry read is dropped')
  })

  test('get does not extend the TTL; set does', () => {
    const { cache, clock } = cacheWithClock(10, 5_000)
    cache.set('a', entry('a'))
    cache.set('b', entry('b'))
    clock.now += 4_000
    assert.equal(cache.get('a')?.name, 'a')
    cache.set('b', entry('b'))
    clock.now += 1_000
    assert.equal(cache.get('a'), undefined, 'a read extended the lifetime')
    assert.equal(cache.get('b')?.name, 'b')
    clock.now += 4_000
    assert.equal(cache.get('b'), undefined)
  })

  test('delete and clear drop entries', () => {
    const { cache } = cacheWithClock(10, 5_000)
    for (const id of ['a', 'b', 'c']) cache.set(id, entry(id))
    cache.delete('b')
    assert.equal(cache.get('b'), undefined)
    assert.equal(cache.size, 2)
    cache.delete('missing')
    cache.clear()
    assert.equal(cache.size, 0)
    assert.equal(cache.get('a'), undefined)
  })

  test('uses Date.now when no clock is given', () => {
    const cache = new DekCache<Entry>({ maxEntries: 1, ttlMs: 60_000 })
    cache.set('a', entry('a'))
    assert.equal(cache.get('a')?.name, 'a')
  })

  test('invalid options throw a TypeError', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new DekCache<Entry>({ maxEntries, ttlMs: 1000 }), TypeError, `maxEntries ${maxEntries}`)
    }
    for (const ttlMs of [0, -1, Number.NaN]) {
      assert.throws(() => new DekCache<Entry>({ maxEntries: 1, ttlMs }), TypeError, `ttlMs ${ttlMs}`)
    }
  })
})
