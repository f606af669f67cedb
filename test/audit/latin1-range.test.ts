// The string-based compact range full verification builds gives exactly CompactRange's peaks
// and roots, and refuses what is not a leaf hash.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { Latin1Range } from '../../src/audit/latin1-range.js'
import { CompactRange, EMPTY_ROOT, leafHash, rootFromLeafHashes } from '../../src/audit/merkle.js'

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1')

test("Latin1Range has CompactRange's root and peaks after every push", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 200 }), fc.integer(), (n, seed) => {
      const leaves = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`${seed}/${i}`)))
      const fast = new Latin1Range()
      const reference = new CompactRange()
      assert.deepEqual(Buffer.from(fast.root()), Buffer.from(EMPTY_ROOT))
      for (const leaf of leaves) {
        fast.push(latin1(leaf))
        reference.push(leaf)
        assert.equal(fast.size, reference.size)
        assert.deepEqual(Buffer.from(fast.root()), Buffer.from(reference.root()))
        assert.deepEqual(
          fast.peaks().map((p) => [p.level, p.index, latin1(p.hash)]),
          reference.peaks().map((p) => [p.level, p.index, latin1(p.hash)]),
        )
      }
      assert.deepEqual(Buffer.from(fast.root()), Buffer.from(rootFromLeafHashes(leaves)))
    }),
    { numRuns: 60 },
  )
})

test('Latin1Range: bytes 0x80–0xff survive (latin1, not UTF-8), and the root is not a shared view', () => {
  const high = new Uint8Array(32).fill(0xff)
  const low = createHash('sha256').update('x').digest()
  const r = new Latin1Range()
  r.push(latin1(high))
  r.push(latin1(low))
  const expected = createHash('sha256').update(Uint8Array.of(1)).update(high).update(low).digest()
  const root = r.root()
  assert.deepEqual(Buffer.from(root), expected)
  assert.equal(root.byteOffset, 0)
  assert.equal(root.buffer.byteLength, 32, 'its own 32 bytes, safe to post to another thread')
})

test('Latin1Range refuses what is not a 32-character leaf hash', () => {
  const r = new Latin1Range()
  for (const bad of ['', 'a'.repeat(31), 'a'.repeat(33), 42, null, new Uint8Array(32)]) {
    assert.throws(() => r.push(bad as unknown as string), TypeError)
  }
  assert.equal(r.size, 0)
})
