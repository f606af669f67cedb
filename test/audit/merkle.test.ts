import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  CompactRange,
  EMPTY_ROOT,
  HASH_SIZE,
  type NodeAt,
  consistencyProof,
  consistencyProofFrom,
  inclusionProof,
  inclusionProofFrom,
  leafHash,
  nodeHash,
  rootFrom,
  rootFromInclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js'

// ---- helpers ------------------------------------------------------------------------------------

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** Leaf hashes of a pseudo-random tree: shrinking reduces n and keeps trees reproducible. */
function makeLeaves(n: number, seed: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`${seed}/${i}`)))
}

function flipBit(h: Uint8Array, bit: number): Uint8Array {
  const c = Uint8Array.from(h)
  const byte = Math.floor(bit / 8) % c.length
  c[byte] = (c[byte] as number) ^ (1 << (bit % 8))
  return c
}

/** A node store filled from CompactRange.append, as a log would persist it. */
function storeFromAppends(leaves: Uint8Array[]): { nodes: Map<string, Uint8Array>; roots: Uint8Array[] } {
  const nodes = new Map<string, Uint8Array>()
  const range = new CompactRange()
  const roots = [range.root()]
  for (const leaf of leaves) {
    for (const node of range.append(leaf)) {
      const key = `${node.level}/${node.index}`
      assert.ok(!nodes.has(key), `node ${key} reported twice`)
      nodes.set(key, node.hash)
    }
    roots.push(range.root())
  }
  return { nodes, roots }
}

/**
 * nodeAt over a store that also checks the contract: only complete nodes of the tree being proven
 * are requested, and only O(log n) of them.
 */
function checkedNodeAt(nodes: Map<string, Uint8Array>, treeSize: number): { nodeAt: NodeAt; calls: () => number } {
  let calls = 0
  const nodeAt: NodeAt = (level, index) => {
    calls++
    assert.equal(Number.isSafeInteger(level) && level >= 0 && Number.isSafeInteger(index) && index >= 0, true)
    assert.ok((index + 1) * 2 ** level <= treeSize, `node ${level}/${index} is not complete in a tree of ${treeSize}`)
    const hash = nodes.get(`${level}/${index}`)
    assert.ok(hash !== undefined, `node ${level}/${index} missing`)
    return hash
  }
  return { nodeAt, calls: () => calls }
}

const log2Ceil = (n: number): number => (n <= 1 ? 0 : Math.ceil(Math.log2(n)))
const isPlainUint8Array = (x: unknown): boolean =>
  x instanceof Uint8Array && Object.getPrototypeOf(x) === Uint8Array.prototype && x.length === HASH_SIZE

/** A tree of up to ~300 leaves plus a seed for its leaf data. */
const treeArb = fc.record({ n: fc.integer({ min: 1, max: 300 }), seed: fc.integer() })

// ---- primitives ---------------------------------------------------------------------------------

test('hash primitives match RFC 9162 definitions and the CT reference values', () => {
  assert.equal(hex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  assert.equal(hex(rootFromLeafHashes([])), hex(EMPTY_ROOT))
  const l0 = leafHash(new Uint8Array(0))
  const l1 = leafHash(Uint8Array.of(0))
  assert.equal(hex(l0), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d')
  assert.equal(hex(l1), '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7')
  assert.equal(hex(nodeHash(l0, l1)), 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125')
  assert.equal(hex(leafHash(Buffer.from('x'))), hex(sha256(Uint8Array.of(0), Buffer.from('x'))))
  assert.equal(hex(nodeHash(l1, l0)), hex(sha256(Uint8Array.of(1), l1, l0)))
  for (const h of [l0, nodeHash(l0, l1), rootFromLeafHashes([l0]), rootFromLeafHashes([])]) assert.equal(isPlainUint8Array(h), true)
  // rootFromLeafHashes returns copies, never an input or the shared constant.
  const root = rootFromLeafHashes([l0])
  root[0] = 0
  assert.equal(hex(l0).slice(0, 2), '6e')
  const empty = rootFromLeafHashes([])
  empty[0] = 0
  assert.equal(hex(EMPTY_ROOT).slice(0, 2), 'e3')
  assert.throws(() => nodeHash(l0.slice(1), l1), TypeError)
  assert.throws(() => nodeHash(l0, new Uint8Array(33)), TypeError)
  assert.throws(() => leafHash('x' as unknown as Uint8Array), TypeError)
  assert.throws(() => rootFromLeafHashes([l0, new Uint8Array(31)]), TypeError)
})

test('proof generators reject bad arguments', () => {
  const leaves = makeLeaves(5, 1)
  const nodeAt: NodeAt = () => new Uint8Array(32)
  assert.throws(() => inclusionProof(5, leaves), RangeError)
  assert.throws(() => inclusionProof(-1, leaves), RangeError)
  assert.throws(() => inclusionProof(0.5, leaves), RangeError)
  assert.throws(() => inclusionProof(0, []), RangeError)
  assert.throws(() => consistencyProof(0, 3, leaves), RangeError)
  assert.throws(() => consistencyProof(4, 3, leaves), RangeError)
  assert.throws(() => consistencyProof(3, 6, leaves), RangeError)
  assert.throws(() => inclusionProofFrom(3, 3, nodeAt), RangeError)
  assert.throws(() => inclusionProofFrom(0, 2 ** 53, nodeAt), RangeError)
  assert.throws(() => consistencyProofFrom(0, 3, nodeAt), RangeError)
  assert.throws(() => consistencyProofFrom(3, 2, nodeAt), RangeError)
  assert.throws(() => rootFrom(-1, nodeAt), RangeError)
  assert.throws(() => inclusionProofFrom(0, 3, () => new Uint8Array(31)), TypeError)
  assert.throws(() => inclusionProofFrom(0, 3, () => 'x' as unknown as Uint8Array), TypeError)
  assert.deepEqual(consistencyProof(3, 3, leaves), [])
  assert.deepEqual(consistencyProofFrom(3, 3, nodeAt), [])
})

// ---- inclusion ----------------------------------------------------------------------------------

test('property: every inclusion proof of a random tree verifies, also via bigint and from storage', () => {
  fc.assert(
    fc.property(treeArb, ({ n, seed }) => {
      const leaves = makeLeaves(n, seed)
      const root = rootFromLeafHashes(leaves)
      const { nodes } = storeFromAppends(leaves)
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(i, leaves)
        const leaf = leaves[i] as Uint8Array
        assert.ok(verifyInclusion(i, n, leaf, proof, root), `leaf ${i} of ${n}`)
        assert.equal(verifyInclusion(BigInt(i), BigInt(n), leaf, proof, root), true)
        assert.equal(hex(rootFromInclusionProof(i, n, leaf, proof) as Uint8Array), hex(root))
        const { nodeAt, calls } = checkedNodeAt(nodes, n)
        assert.deepEqual(inclusionProofFrom(i, n, nodeAt), proof, `inclusionProofFrom(${i}, ${n})`)
        assert.ok(calls() <= 2 * log2Ceil(n) + 1, `${calls()} nodeAt calls for n=${n}`)
        assert.equal(proof.every(isPlainUint8Array), true)
      }
    }),
    { numRuns: 15 },
  )
})

test('property: flipping any single bit of the leaf hash, a proof node or the root breaks inclusion', () => {
  fc.assert(
    fc.property(treeArb, fc.nat(), fc.nat(), fc.nat({ max: 255 }), ({ n, seed }, iRaw, targetRaw, bit) => {
      const leaves = makeLeaves(n, seed)
      const i = iRaw % n
      const root = rootFromLeafHashes(leaves)
      const proof = inclusionProof(i, leaves)
      const leaf = leaves[i] as Uint8Array
      const target = targetRaw % (proof.length + 2) // 0: leaf, 1..len: proof, len+1: root
      if (target === 0) return !verifyInclusion(i, n, flipBit(leaf, bit), proof, root)
      if (target === proof.length + 1) return !verifyInclusion(i, n, leaf, proof, flipBit(root, bit))
      const bad = proof.map((p, j) => (j === target - 1 ? flipBit(p, bit) : p))
      return !verifyInclusion(i, n, leaf, bad, root) && rootFromInclusionProof(i, n, leaf, bad) !== null
    }),
    { numRuns: 300 },
  )
})

test('every one of the 256 bits of every input matters (CT tree, leaf 5 of 8)', () => {
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) =>
    leafHash(Buffer.from(h, 'hex')),
  )
  const root = rootFromLeafHashes(leaves)
  const proof = inclusionProof(5, leaves)
  const leaf = leaves[5] as Uint8Array
  assert.equal(verifyInclusion(5, 8, leaf, proof, root), true)
  for (let bit = 0; bit < 256; bit++) {
    assert.equal(verifyInclusion(5, 8, flipBit(leaf, bit), proof, root), false)
    assert.equal(verifyInclusion(5, 8, leaf, proof, flipBit(root, bit)), false)
    for (let j = 0; j < proof.length; j++) {
      assert.equal(
        verifyInclusion(
          5,
          8,
          leaf,
          proof.map((p, k) => (k === j ? flipBit(p, bit) : p)),
          root,
        ),
        false,
      )
    }
  }
})

test('property: structural mutations of inclusion proofs fail', () => {
  fc.assert(
    fc.property(treeArb, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 5 }), ({ n, seed }, iRaw, posRaw, kind) => {
      const leaves = makeLeaves(n, seed)
      const i = iRaw % n
      const root = rootFromLeafHashes(leaves)
      const proof = inclusionProof(i, leaves)
      const leaf = leaves[i] as Uint8Array
      const pos = posRaw % (proof.length + 1)
      const foreign = sha256(Buffer.from('foreign'))
      const mutated: [number, number, Uint8Array[]][] = [
        [i, n, [...proof.slice(0, pos), foreign, ...proof.slice(pos)]], // inserted
        [i, n, [...proof, root]], // trailing root
        [i, n, [new Uint8Array(0), ...proof]], // preceding garbage
        [n, n, proof], // index = size
        [i, 0, proof], // empty tree
        [(i + 1 + (posRaw % (n - 1 || 1))) % n, n, proof], // another index of the same tree
      ]
      if (proof.length > 0) {
        mutated.push([i, n, proof.filter((_, j) => j !== pos % proof.length)]) // removed
        mutated.push([i, n, [...proof.slice(0, pos), proof[pos % proof.length] as Uint8Array, ...proof.slice(pos)]])
      }
      const [mi, mn, mp] = mutated[kind % mutated.length] as [number, number, Uint8Array[]]
      if (mi === i && mn === n && mp === proof) return true // "another index" degenerates when n = 1
      return !verifyInclusion(mi, mn, leaf, mp, root)
    }),
    { numRuns: 300 },
  )
})

// ---- consistency --------------------------------------------------------------------------------

test('property: every consistency proof 1 <= m <= n of a random tree verifies, also from storage', () => {
  fc.assert(
    fc.property(treeArb, ({ n, seed }) => {
      const leaves = makeLeaves(n, seed)
      const { nodes, roots } = storeFromAppends(leaves)
      const rootN = roots[n] as Uint8Array
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(m, n, leaves)
        const rootM = roots[m] as Uint8Array
        assert.ok(verifyConsistency(m, n, proof, rootM, rootN), `consistency ${m}-${n}`)
        assert.equal(verifyConsistency(BigInt(m), BigInt(n), proof, rootM, rootN), true)
        const { nodeAt, calls } = checkedNodeAt(nodes, n)
        assert.deepEqual(consistencyProofFrom(m, n, nodeAt), proof, `consistencyProofFrom(${m}, ${n})`)
        assert.ok(calls() <= 2 * log2Ceil(n) + 2, `${calls()} nodeAt calls for ${m}-${n}`)
        if (m === n) assert.deepEqual(proof, [])
      }
    }),
    { numRuns: 15 },
  )
})

test('property: bit flips and structural mutations of consistency proofs fail', () => {
  const foreign = sha256(Buffer.from('foreign'))
  fc.assert(
    fc.property(
      treeArb,
      fc.nat(),
      fc.nat(),
      fc.nat({ max: 255 }),
      fc.integer({ min: 0, max: 11 }),
      ({ n, seed }, mRaw, posRaw, bit, kind) => {
        const m = 1 + (mRaw % n)
        const leaves = makeLeaves(n, seed)
        const proof = consistencyProof(m, n, leaves)
        const r1 = rootFromLeafHashes(leaves.slice(0, m))
        const r2 = rootFromLeafHashes(leaves)
        const pos = posRaw % (proof.length + 1)
        const at = proof.length > 0 ? pos % proof.length : 0
        const cases: [number, number, Uint8Array[], Uint8Array, Uint8Array][] = [
          [m, n, proof, flipBit(r1, bit), r2],
          [m, n, proof, r1, flipBit(r2, bit)],
          [m, n, [...proof.slice(0, pos), foreign, ...proof.slice(pos)], r1, r2], // inserted
          [0, n, proof, r1, r2], // size1 = 0
          [n + 1, n, proof, r1, r2], // size1 > size2
          [m, n, [...proof, new Uint8Array(32)], r1, r2], // garbage appended
          [m, n, [foreign, ...proof], r1, r2], // garbage prepended
          [m, n, [...proof, r2], r1, r2],
        ]
        if (proof.length > 0) {
          cases.push([m, n, proof.map((p, j) => (j === at ? flipBit(p, bit) : p)), r1, r2]) // flipped
          cases.push([m, n, proof.filter((_, j) => j !== at), r1, r2]) // removed
          cases.push([m, n, [...proof.slice(0, at + 1), proof[at] as Uint8Array, ...proof.slice(at + 1)], r1, r2])
          cases.push([m, n, [], r1, r2]) // empty proof
        }
        const [s1, s2, p, a, b] = cases[kind % cases.length] as (typeof cases)[number]
        return !verifyConsistency(s1, s2, p, a, b)
      },
    ),
    { numRuns: 400 },
  )
})

test('size1 = size2 holds only with an empty proof and equal roots', () => {
  const leaves = makeLeaves(7, 3)
  const root = rootFromLeafHashes(leaves)
  assert.equal(verifyConsistency(7, 7, [], root, root), true)
  assert.equal(verifyConsistency(7n, 7, [], root, Uint8Array.from(root)), true)
  assert.equal(verifyConsistency(7, 7, [root], root, root), false)
  assert.equal(verifyConsistency(7, 7, [], root, flipBit(root, 0)), false)
  assert.equal(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT), false)
  assert.equal(verifyConsistency(0, 7, [], EMPTY_ROOT, root), false)
})

test('RFC-exact: a consistency proof does not bind size2 on its own (take size and root from one signed head)', () => {
  // PROOF(2, D[3]) = [leaf 2]; the same list is a well-formed PROOF(2, D[4]) whose right subtree
  // hash happens to equal leaf 2, so every RFC 9162 verifier accepts both statements.
  const leaves = makeLeaves(3, 9)
  const proof = consistencyProof(2, 3, leaves)
  const r2 = rootFromLeafHashes(leaves.slice(0, 2))
  const r3 = rootFromLeafHashes(leaves)
  assert.equal(verifyConsistency(2, 3, proof, r2, r3), true)
  assert.equal(verifyConsistency(2, 4, proof, r2, r3), true)
})

// ---- storage-friendly construction and the compact range ----------------------------------------

test('property: compact range root equals rootFromLeafHashes after every append; nodes are exact', () => {
  fc.assert(
    fc.property(treeArb, fc.nat(), ({ n, seed }, restoreRaw) => {
      const leaves = makeLeaves(n, seed)
      const range = new CompactRange()
      const nodes = new Map<string, Uint8Array>()
      assert.equal(hex(range.root()), hex(EMPTY_ROOT))
      const restoreAt = restoreRaw % (n + 1)
      let restored: CompactRange | undefined
      for (let k = 0; k < n; k++) {
        if (k === restoreAt) restored = CompactRange.fromNodeAt(k, checkedNodeAt(nodes, k).nodeAt)
        const completed = range.append(leaves[k] as Uint8Array)
        restored?.append(leaves[k] as Uint8Array)
        assert.equal(range.size, k + 1)
        assert.deepEqual(completed[0], { level: 0, index: k, hash: leaves[k] })
        completed.forEach((node, j) => {
          assert.equal(node.level, j)
          const width = 2 ** node.level
          assert.equal((node.index + 1) * width, k + 1, 'each completed node ends at the new leaf')
          const expected = rootFromLeafHashes(leaves.slice(node.index * width, (node.index + 1) * width))
          assert.deepEqual(node.hash, expected)
          nodes.set(`${node.level}/${node.index}`, node.hash)
        })
        const root = rootFromLeafHashes(leaves.slice(0, k + 1))
        assert.deepEqual(range.root(), root, `root after ${k + 1} appends`)
        assert.deepEqual(rootFrom(k + 1, checkedNodeAt(nodes, k + 1).nodeAt), root)
        if (restored !== undefined) assert.deepEqual(restored.root(), root, 'restored range diverged')
        const peaks = range.peaks()
        assert.equal(peaks.length, (k + 1).toString(2).replaceAll('0', '').length)
        for (const p of peaks) assert.deepEqual(p.hash, nodes.get(`${p.level}/${p.index}`))
      }
      // Every complete node of the tree was reported exactly once.
      let complete = 0
      for (let level = 0; 2 ** level <= n; level++) complete += Math.floor(n / 2 ** level)
      assert.equal(nodes.size, complete)
    }),
    { numRuns: 15 },
  )
})

test('compact range reproduces the published CT node hashes and compact trees', () => {
  // transparency-dev/merkle testonly.NodeHashes() and CompactTrees().
  const NODE_HASHES = [
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
      '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
    ],
    [
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    ],
    [
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
    ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
  ]
  const nh = (level: number, index: number): string => NODE_HASHES[level]?.[index] as string
  const COMPACT_TREES = [
    [],
    [nh(0, 0)],
    [nh(1, 0)],
    [nh(1, 0), nh(0, 2)],
    [nh(2, 0)],
    [nh(2, 0), nh(0, 4)],
    [nh(2, 0), nh(1, 2)],
    [nh(2, 0), nh(1, 2), nh(0, 6)],
    [nh(3, 0)],
  ]
  const range = new CompactRange()
  assert.deepEqual(range.peaks(), [])
  NODE_HASHES[0]?.forEach((leaf, k) => {
    for (const node of range.append(fromHex(leaf))) assert.equal(hex(node.hash), nh(node.level, node.index))
    assert.deepEqual(
      range.peaks().map((p) => hex(p.hash)),
      COMPACT_TREES[k + 1],
    )
  })
  const nodeAt: NodeAt = (level, index) => fromHex(nh(level, index))
  assert.equal(hex(inclusionProofFrom(5, 8, nodeAt)[2] as Uint8Array), nh(2, 0))
  assert.equal(hex(rootFrom(7, nodeAt)), 'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c')
})

test('property: storage-based proofs equal array-based proofs for arbitrary (i, m, n) in one store', () => {
  // One store of 300 leaves serves proofs for every smaller tree: only complete nodes are used.
  const leaves = makeLeaves(300, 42)
  const { nodes, roots } = storeFromAppends(leaves)
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), (n, iRaw, mRaw) => {
      const i = iRaw % n
      const m = 1 + (mRaw % n)
      const prefix = leaves.slice(0, n)
      assert.deepEqual(inclusionProofFrom(i, n, checkedNodeAt(nodes, n).nodeAt), inclusionProof(i, prefix))
      assert.deepEqual(consistencyProofFrom(m, n, checkedNodeAt(nodes, n).nodeAt), consistencyProof(m, n, prefix))
      assert.deepEqual(rootFrom(n, checkedNodeAt(nodes, n).nodeAt), roots[n])
    }),
    { numRuns: 300 },
  )
})

// ---- large trees (exact arithmetic up to 2^53 - 1 and, for verification, 2^64 - 1) --------------

/**
 * A consistent virtual tree of any size: leaves alternate A, B, so every node at level >= 1 has
 * the same hash Z(level). nodeAt is O(level), and anything the proofs get wrong about positions
 * at level 0, levels, or sizes shows up as a wrong root.
 */
const A = leafHash(Buffer.from('A'))
const B = leafHash(Buffer.from('B'))
const Z: Uint8Array[] = [A, nodeHash(A, B)]
for (let l = 2; l <= 64; l++) Z.push(nodeHash(Z[l - 1] as Uint8Array, Z[l - 1] as Uint8Array))
const virtualNodeAt =
  (size: number): NodeAt =>
  (level, index) => {
    assert.ok((index + 1) * 2 ** level <= size, `node ${level}/${index} not complete in ${size}`)
    return level === 0 ? (index % 2 === 0 ? A : B) : (Z[level] as Uint8Array)
  }

test('property: huge trees up to 2^53 - 1 leaves prove and verify with numbers and bigints', () => {
  const sizeArb = fc.oneof(
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: Number.MAX_SAFE_INTEGER - 1000, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: 0, max: 52 }).map((k) => 2 ** k),
  )
  fc.assert(
    fc.property(sizeArb, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (n, a, b) => {
      const i = Math.min(n - 1, Math.floor(a * n))
      const m = Math.max(1, Math.min(n, Math.ceil(b * n)))
      const nodeAt = virtualNodeAt(n)
      const root = rootFrom(n, nodeAt)
      const leaf = i % 2 === 0 ? A : B
      const proof = inclusionProofFrom(i, n, nodeAt)
      assert.equal(proof.length <= 53, true)
      assert.ok(verifyInclusion(i, n, leaf, proof, root), `inclusion ${i}/${n}`)
      assert.equal(verifyInclusion(BigInt(i), BigInt(n), leaf, proof, root), true)
      assert.equal(verifyInclusion(i, n, i % 2 === 0 ? B : A, proof, root), false)
      const rootM = rootFrom(m, virtualNodeAt(m))
      const cproof = consistencyProofFrom(m, n, nodeAt)
      assert.ok(verifyConsistency(m, n, cproof, rootM, root), `consistency ${m}-${n}`)
      assert.equal(verifyConsistency(BigInt(m), BigInt(n), cproof, rootM, root), true)
      const range = CompactRange.fromNodeAt(n, nodeAt)
      assert.deepEqual(range.root(), root)
    }),
    { numRuns: 200 },
  )
})

test('verification supports the full uint64 range with bigints and rejects beyond it', () => {
  const size = 2n ** 64n - 1n
  const siblings = Array.from({ length: 64 }, (_, k) => sha256(Buffer.from(`sibling ${k}`)))
  // Leaf 2^64 - 2 is the last leaf (index = size - 1): its path is 63 left siblings, one per set bit.
  const index = size - 1n
  const root = rootFromInclusionProof(index, size, B, siblings.slice(0, 63))
  assert.ok(root !== null, 'a 63-hash path must be accepted')
  assert.equal(verifyInclusion(index, size, B, siblings.slice(0, 63), root), true)
  assert.equal(rootFromInclusionProof(index, size, B, siblings.slice(0, 62)), null)
  assert.equal(rootFromInclusionProof(index, size, B, siblings.slice(0, 64)), null)
  assert.equal(verifyInclusion(index, size, A, siblings.slice(0, 63), root), false)
  assert.equal(verifyInclusion(index - 1n, size, B, siblings.slice(0, 63), root), false)
  assert.equal(verifyInclusion(index, size + 1n, B, siblings.slice(0, 63), root), false) // 2^64: out of range
  assert.equal(verifyInclusion(index + 1n, size, B, siblings.slice(0, 63), root), false) // index = size
  assert.equal(verifyInclusion(Number(index), Number(size), B, siblings.slice(0, 63), root), false) // not safe integers
  // MTH(D[2^64 - 1]) = HASH(0x01 || MTH(D[0:2^63]) || MTH(D[2^63:])): the proof from 2^63 is one hash.
  const first = sha256(Buffer.from('first'))
  const rest = sha256(Buffer.from('rest'))
  const second = nodeHash(first, rest)
  assert.equal(verifyConsistency(2n ** 63n, size, [rest], first, second), true)
  assert.equal(verifyConsistency(2n ** 63n, size + 1n, [rest], first, second), false)
  assert.equal(verifyConsistency(2n ** 63n, size, [rest], first, nodeHash(rest, first)), false)
  assert.equal(verifyConsistency(2 ** 63, size, [rest], first, second), false)
})

// ---- malformed input ----------------------------------------------------------------------------

const BAD_NUMBERS: unknown[] = [
  Number.NaN,
  -1,
  -0.5,
  0.5,
  1.5,
  2 ** 53,
  2 ** 64,
  Infinity,
  -Infinity,
  Number.MAX_VALUE,
  -1n,
  2n ** 64n,
  2n ** 100n,
  '3',
  '0',
  null,
  undefined,
  true,
  {},
  [],
  [1],
  Object(3),
  Symbol('n'),
  () => 1,
]
const BAD_HASHES: unknown[] = [
  new Uint8Array(31),
  new Uint8Array(33),
  new Uint8Array(0),
  new Uint8Array(64),
  Buffer.alloc(31),
  new Uint8ClampedArray(32),
  new Int8Array(32),
  new Uint16Array(16),
  new DataView(new ArrayBuffer(32)),
  new ArrayBuffer(32),
  Array(32).fill(0),
  { length: 32 },
  'a'.repeat(32),
  'a'.repeat(64),
  null,
  undefined,
  0,
  32n,
  Object.create(Uint8Array.prototype),
]
class LyingUint8Array extends Uint8Array {
  override get length(): number {
    return 32
  }
}
BAD_HASHES.push(new LyingUint8Array(31))

function badProofs(good: Uint8Array[]): unknown[] {
  const throwing = new Proxy(good, {
    get(target, prop, receiver) {
      if (prop === '0') throw new Error('boom')
      return Reflect.get(target, prop, receiver) as unknown
    },
  })
  const getter = [...good]
  Object.defineProperty(getter, 0, {
    get() {
      throw new Error('boom')
    },
  })
  const huge: unknown[] = []
  huge.length = 2 ** 32 - 1
  return [
    null,
    undefined,
    'proof',
    42,
    {},
    { length: good.length },
    new Set(good),
    good.map((h) => Buffer.from(h).toString('hex')),
    [...good, null],
    [null, ...good],
    [...good.slice(1), new Uint8Array(31)],
    [...good.slice(0, -1), [...(good[0] ?? [])]],
    good.length > 0 ? [...good.slice(1), 'x'] : ['x'],
    good.length > 0 ? throwing : [throwing],
    good.length > 0 ? getter : [getter],
    huge,
    Array(good.length + 1),
  ]
}

test('malformed inputs to verifyInclusion / rootFromInclusionProof return false / null and never throw', () => {
  const leaves = makeLeaves(13, 5)
  const root = rootFromLeafHashes(leaves)
  const i = 6
  const proof = inclusionProof(i, leaves)
  const leaf = leaves[i] as Uint8Array
  const good: unknown[] = [i, 13, leaf, proof, root]
  assert.equal(verifyInclusion(i, 13, leaf, proof, root), true)
  const replacements: [number, unknown[]][] = [
    [0, BAD_NUMBERS],
    [1, BAD_NUMBERS],
    [2, BAD_HASHES],
    [3, badProofs(proof)],
    [4, BAD_HASHES],
  ]
  for (const [position, values] of replacements) {
    values.forEach((value, k) => {
      const args = [...good]
      args[position] = value
      const call = verifyInclusion as (...a: unknown[]) => unknown
      assert.equal(call(...args), false, `argument ${position}, bad value #${k}`)
      if (position < 4) assert.equal((rootFromInclusionProof as (...a: unknown[]) => unknown)(...args.slice(0, 4)), null)
    })
  }
  // A Buffer is a Uint8Array: accepted.
  assert.equal(
    verifyInclusion(
      i,
      13,
      Buffer.from(leaf),
      proof.map((p) => Buffer.from(p)),
      Buffer.from(root),
    ),
    true,
  )
})

test('malformed inputs to verifyConsistency return false and never throw', () => {
  const leaves = makeLeaves(13, 6)
  const proof = consistencyProof(6, 13, leaves)
  const r1 = rootFromLeafHashes(leaves.slice(0, 6))
  const r2 = rootFromLeafHashes(leaves)
  const good: unknown[] = [6, 13, proof, r1, r2]
  assert.equal(verifyConsistency(6, 13, proof, r1, r2), true)
  const replacements: [number, unknown[]][] = [
    [0, BAD_NUMBERS],
    [1, BAD_NUMBERS],
    [2, badProofs(proof)],
    [3, BAD_HASHES],
    [4, BAD_HASHES],
  ]
  for (const [position, values] of replacements) {
    values.forEach((value, k) => {
      const args = [...good]
      args[position] = value
      assert.equal((verifyConsistency as (...a: unknown[]) => unknown)(...args), false, `argument ${position}, bad value #${k}`)
    })
  }
  // size1 = size2 with malformed proofs or roots.
  // (badProofs([]) includes [] itself — the hex-string mapping of an empty proof — which is valid here.)
  for (const p of badProofs([]).filter((x) => !(Array.isArray(x) && x.length === 0))) {
    assert.equal((verifyConsistency as (...a: unknown[]) => unknown)(13, 13, p, r2, r2), false)
  }
  for (const h of BAD_HASHES) {
    assert.equal((verifyConsistency as (...a: unknown[]) => unknown)(13, 13, [], h, h), false)
  }
})

/** Anything that is not a valid value for the position (so a replacement must fail). */
const notU64 = (v: unknown): boolean =>
  !((typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n && v < 2n ** 64n))
const notHash = (v: unknown): boolean => !(v instanceof Uint8Array && v.length === 32)
const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
})

test('property: arbitrary values in any argument position give false, never an exception', () => {
  const leaves = makeLeaves(11, 7)
  const root = rootFromLeafHashes(leaves)
  const proof = inclusionProof(4, leaves)
  const cproof = consistencyProof(5, 11, leaves)
  const r5 = rootFromLeafHashes(leaves.slice(0, 5))
  const incl: unknown[] = [4, 11, leaves[4], proof, root]
  const cons: unknown[] = [5, 11, cproof, r5, root]
  const inclValid = [notU64, notU64, notHash, (v: unknown) => !Array.isArray(v) || v.length !== proof.length, notHash]
  const consValid = [notU64, notU64, (v: unknown) => !Array.isArray(v) || v.length !== cproof.length, notHash, notHash]
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4 }), anything, (position, value) => {
      const a = [...incl]
      a[position] = value
      const b = [...cons]
      b[position] = value
      const okA = !(inclValid[position] as (v: unknown) => boolean)(value) || !(verifyInclusion as (...x: unknown[]) => boolean)(...a)
      const okB = !(consValid[position] as (v: unknown) => boolean)(value) || !(verifyConsistency as (...x: unknown[]) => boolean)(...b)
      return okA && okB
    }),
    { numRuns: 1000 },
  )
})
