import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  consistencyProof,
  consistencyProofFrom,
  inclusionProof,
  leafHash,
  rootFromInclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js'

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors')
const INCLUSION_DIR = join(VECTORS, 'merkle')
const CONSISTENCY_DIR = join(VECTORS, 'merkle-consistency')

// ---- fixed, published data (not derived from the vector files) ----------------------------------

/** Leaf data of the CT reference tree (RFC 6962 reference tests; transparency-dev/merkle testonly). */
const CT_LEAF_DATA_HEX = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']

/** Published MTH of the first k CT leaves, k = 0..8 (transparency-dev/merkle testonly.RootHashes()). */
const CT_ROOTS_HEX = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
]

/** Published consistency proofs for the CT tree (transparency-dev/merkle proof/verify_test.go). */
const CT_CONSISTENCY_PROOFS: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
]

/** Leaf hashes of the trees the consistency vectors are built from (see that folder's README). */
const TREES: Record<string, Uint8Array[]> = {
  ct: CT_LEAF_DATA_HEX.map((h) => leafHash(Buffer.from(h, 'hex'))),
  decimal: Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(String(i), 'utf8'))),
}

// ---- helpers ------------------------------------------------------------------------------------

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

function jsonFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .map((f) => join(dir, f))
    .sort()
}

/**
 * JSON.parse, except that the integer fields keep their exact value: the vectors contain
 * 2^64 - 1 (Go's uint64 underflow of 0 - 1), which a JS number cannot hold. Safe integers stay
 * numbers; larger ones become bigints.
 */
function parseVector(text: string, intFields: string[]): Record<string, unknown> {
  const re = new RegExp(`"(${intFields.join('|')})"\\s*:\\s*(-?\\d+)`, 'g')
  const parsed = JSON.parse(text.replace(re, '"$1": "$2"')) as Record<string, unknown>
  for (const field of intFields) {
    const raw = parsed[field]
    assert.equal(typeof raw, 'string', `${field} must be an integer`)
    const big = BigInt(raw as string)
    parsed[field] = big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= 0n ? Number(big) : big
  }
  return parsed
}

function hashList(value: unknown): Uint8Array[] {
  if (value === null) return [] // Go encodes a nil slice as null: an empty proof.
  assert.ok(Array.isArray(value), 'proof must be an array or null')
  return value.map((s: unknown) => {
    assert.equal(typeof s, 'string')
    return fromB64(s as string)
  })
}

// ---- tests --------------------------------------------------------------------------------------

test('CT reference tree: rootFromLeafHashes matches the published roots for sizes 0..8', () => {
  const leaves = TREES.ct as Uint8Array[]
  assert.equal(leaves.length, 8)
  for (let k = 0; k <= 8; k++) assert.equal(hex(rootFromLeafHashes(leaves.slice(0, k))), CT_ROOTS_HEX[k], `size ${k}`)
})

test('CT reference tree: published consistency proofs are generated and verify', () => {
  const leaves = TREES.ct as Uint8Array[]
  for (const [m, n, proofHex] of CT_CONSISTENCY_PROOFS) {
    const proof = proofHex.map(fromHex)
    assert.deepEqual(consistencyProof(m, n, leaves).map(hex), proofHex, `${m}-${n}`)
    assert.equal(verifyConsistency(m, n, proof, fromHex(CT_ROOTS_HEX[m] as string), fromHex(CT_ROOTS_HEX[n] as string)), true)
  }
})

test('inclusion vectors (transparency-dev/merkle): verifyInclusion returns exactly !wantErr', () => {
  const files = jsonFiles(INCLUSION_DIR)
  assert.ok(files.length >= 50, `expected at least 50 inclusion vectors in ${INCLUSION_DIR}, found ${files.length}`)
  const ctLeaves = TREES.ct as Uint8Array[]
  const failures: string[] = []
  let happy = 0
  for (const file of files) {
    const v = parseVector(readFileSync(file, 'utf8'), ['leafIdx', 'treeSize'])
    assert.equal(typeof v.wantErr, 'boolean', file)
    const leafIdx = v.leafIdx as number | bigint
    const treeSize = v.treeSize as number | bigint
    const root = fromB64(v.root as string)
    const leaf = fromB64(v.leafHash as string)
    const proof = hashList(v.proof)
    const got = verifyInclusion(leafIdx, treeSize, leaf, proof, root)
    if (got !== !v.wantErr) failures.push(`${relative(INCLUSION_DIR, file)}: got ${got}, wantErr ${String(v.wantErr)}`)
    // rootFromInclusionProof agrees with verifyInclusion on every vector.
    const computed = rootFromInclusionProof(leafIdx, treeSize, leaf, proof)
    if ((computed !== null && hex(computed) === hex(root)) !== got) failures.push(`${file}: rootFromInclusionProof disagrees`)
    if (!v.wantErr) {
      happy++
      // Happy paths over the CT tree must also be what this library generates.
      const size = Number(treeSize)
      const index = Number(leafIdx)
      if (size <= 8 && hex(leaf) === hex(ctLeaves[index] as Uint8Array) && hex(root) === CT_ROOTS_HEX[size]) {
        assert.deepEqual(inclusionProof(index, ctLeaves.slice(0, size)).map(hex), proof.map(hex), file)
      }
    }
  }
  assert.deepEqual(failures, [])
  assert.ok(happy >= 6, `expected several happy-path inclusion vectors, found ${happy}`)
})

test('consistency vectors: happy paths recomputed independently, every mutation rejected', () => {
  const files = jsonFiles(CONSISTENCY_DIR)
  assert.ok(files.length >= 500, `expected at least 500 consistency vectors in ${CONSISTENCY_DIR}, found ${files.length}`)
  const rootsByTree = new Map<string, string[]>()
  for (const [name, leaves] of Object.entries(TREES)) {
    rootsByTree.set(
      name,
      Array.from({ length: leaves.length + 1 }, (_, k) => hex(rootFromLeafHashes(leaves.slice(0, k)))),
    )
  }
  // The ct tree's roots must be the published ones before anything is cross-checked against them.
  assert.deepEqual(rootsByTree.get('ct'), CT_ROOTS_HEX)

  const failures: string[] = []
  const pairs = new Map<string, { happy: number; mutations: number }>()
  for (const file of files) {
    const rel = relative(CONSISTENCY_DIR, file)
    const [treeName, pairDir] = rel.split(sep)
    const leaves = TREES[treeName as string]
    assert.ok(leaves !== undefined && pairDir !== undefined, `unexpected vector path ${rel}`)
    const v = parseVector(readFileSync(file, 'utf8'), ['size1', 'size2'])
    assert.equal(typeof v.wantErr, 'boolean', rel)
    const size1 = v.size1 as number
    const size2 = v.size2 as number
    const root1 = fromB64(v.root1 as string)
    const root2 = fromB64(v.root2 as string)
    const proof = hashList(v.proof)
    const got = verifyConsistency(size1, size2, proof, root1, root2)
    if (got !== !v.wantErr) failures.push(`${rel}: got ${got}, wantErr ${String(v.wantErr)}`)

    const key = `${treeName}/${pairDir}`
    const counts = pairs.get(key) ?? { happy: 0, mutations: 0 }
    pairs.set(key, counts)
    if (v.wantErr) {
      counts.mutations++
      continue
    }
    counts.happy++
    // Independent cross-check of the happy path: its sizes match its folder, its roots are the MTHs
    // of the documented leaf data, and its proof is what both proof generators produce.
    const roots = rootsByTree.get(treeName as string) as string[]
    assert.equal(pairDir, `${size1}-${size2}`, rel)
    assert.equal(v.desc, 'happy path', rel)
    assert.equal(hex(root1), roots[size1], `${rel}: root1 is not MTH of the first ${size1} leaves`)
    assert.equal(hex(root2), roots[size2], `${rel}: root2 is not MTH of the first ${size2} leaves`)
    const expected = consistencyProof(size1, size2, leaves).map(hex)
    assert.deepEqual(proof.map(hex), expected, `${rel}: proof differs from consistencyProof`)
    const nodeAt = (level: number, index: number): Uint8Array =>
      rootFromLeafHashes(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level))
    assert.deepEqual(consistencyProofFrom(size1, size2, nodeAt).map(hex), expected, `${rel}: consistencyProofFrom differs`)
  }
  assert.deepEqual(failures, [])

  for (const [key, counts] of pairs) {
    assert.equal(counts.happy, 1, `${key} needs exactly one happy path`)
    assert.ok(counts.mutations >= 15, `${key} has only ${counts.mutations} mutations`)
  }
  // Coverage of the size classes the RFC algorithm branches on.
  const sizePairs = [...pairs.keys()].map((k) => (k.split('/')[1] as string).split('-').map(Number) as [number, number])
  const isPow2 = (x: number): boolean => (x & (x - 1)) === 0
  assert.ok(
    sizePairs.some(([m, n]) => m === n),
    'size1 = size2',
  )
  assert.ok(
    sizePairs.some(([m, n]) => m === 1 && n > 1),
    'size1 = 1',
  )
  assert.ok(
    sizePairs.some(([m, n]) => m > 1 && m < n && isPow2(m)),
    'size1 a power of two',
  )
  assert.ok(
    sizePairs.some(([m, n]) => m < n && !isPow2(m)),
    'size1 not a power of two',
  )
  assert.ok(
    sizePairs.some(([m, n]) => m < n && isPow2(n)),
    'size2 a power of two',
  )
  assert.ok(
    sizePairs.some(([m, n]) => m < n && !isPow2(n)),
    'size2 not a power of two',
  )

  // The published CT proofs are among the vectors, byte for byte.
  for (const [m, n, proofHex] of CT_CONSISTENCY_PROOFS) {
    const file = join(CONSISTENCY_DIR, 'ct', `${m}-${n}`, 'happy-path.json')
    const v = parseVector(readFileSync(file, 'utf8'), ['size1', 'size2'])
    assert.deepEqual(hashList(v.proof).map(hex), proofHex, file)
  }
})
