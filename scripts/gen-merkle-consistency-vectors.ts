// GENERATES test/vectors/merkle-consistency/ (every JSON file and the README.md there).
// Do not edit those files by hand; change this script and run:
//
//   node --import tsx scripts/gen-merkle-consistency-vectors.ts
//
// RFC 9162 §2.1.4 consistency-proof vectors in the style of the transparency-dev/merkle inclusion
// vectors (test/vectors/merkle/): for each (size1, size2) a happy path plus mutations. Proofs come
// from the library's array-based consistencyProof (the RFC's SUBPROOF recursion). Whether a
// mutated vector must be rejected is decided by an independent verifier in this file (a port of
// the transparency-dev/merkle algorithm, not the RFC loop the library uses); the script aborts if
// the library disagrees with it on any vector. Mutations that any correct verifier must accept
// (the mutated statement is indistinguishable from a valid one) are not written, only listed in
// the README. The test (test/audit/merkle-vectors.test.ts) recomputes the roots and proofs
// independently rather than trusting these files.

import { createHash } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { consistencyProof, leafHash, rootFromLeafHashes, verifyConsistency } from '../src/audit/merkle.js'

const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'vectors', 'merkle-consistency')

/** The leaf data of the CT reference tree (RFC 6962 reference tests, transparency-dev/merkle testonly). */
const CT_LEAF_DATA_HEX = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']
const DECIMAL_LEAVES = 40

interface TreeSpec {
  name: string
  leaves: Uint8Array[]
  pairs: [number, number][]
}

const allPairs = (max: number): [number, number][] => {
  const pairs: [number, number][] = []
  for (let m = 1; m <= max; m++) for (let n = m; n <= max; n++) pairs.push([m, n])
  return pairs
}

const TREES: TreeSpec[] = [
  {
    name: 'ct',
    leaves: CT_LEAF_DATA_HEX.map((h) => leafHash(Buffer.from(h, 'hex'))),
    pairs: allPairs(CT_LEAF_DATA_HEX.length),
  },
  {
    name: 'decimal',
    leaves: Array.from({ length: DECIMAL_LEAVES }, (_, i) => leafHash(Buffer.from(String(i), 'utf8'))),
    pairs: [
      [1, 40],
      [2, 3],
      [3, 7],
      [4, 5],
      [5, 33],
      [7, 8],
      [8, 9],
      [8, 40],
      [13, 27],
      [15, 16],
      [16, 17],
      [16, 32],
      [17, 40],
      [21, 21],
      [31, 32],
      [32, 33],
      [33, 40],
      [39, 40],
      [40, 40],
    ],
  },
]

// Same "random" hash the inclusion vectors use (abacaba…).
const SOME_HASH = Buffer.from('abacaba000000000000000000000000000000000000000000060061e00123456', 'hex')
const ZERO_HASH = new Uint8Array(32)

// ---- independent reference verifier (port of transparency-dev/merkle proof.VerifyConsistency,
// ---- except that size1 = 0 is rejected: RFC 9162 defines consistency proofs only for 0 < m)

const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}
const hashChildren = (l: Uint8Array, r: Uint8Array): Buffer => sha(Uint8Array.of(1), l, r)
const bitLen = (x: number): number => (x === 0 ? 0 : x.toString(2).length)
const ones = (x: number): number => [...x.toString(2)].filter((c) => c === '1').length
const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

function referenceVerify(size1: number, size2: number, proof: Uint8Array[], root1: Uint8Array, root2: Uint8Array): boolean {
  if (root1.length !== 32 || root2.length !== 32 || proof.some((p) => p.length !== 32)) return false
  if (size1 < 1 || size2 < size1) return false
  if (size1 === size2) return proof.length === 0 && eq(root1, root2)
  if (proof.length === 0) return false
  let inner = bitLen((size1 - 1) ^ (size2 - 1))
  const border = ones((size1 - 1) >>> inner)
  let shift = 0
  while (((size1 >>> shift) & 1) === 0) shift++
  inner -= shift
  let seed = proof[0] as Uint8Array
  let start = 1
  if (size1 === 1 << shift) {
    seed = root1
    start = 0
  }
  if (proof.length !== start + inner + border) return false
  const rest = proof.slice(start)
  const mask = (size1 - 1) >>> shift
  let h1 = seed
  let h2 = seed
  rest.slice(0, inner).forEach((h, i) => {
    if (((mask >>> i) & 1) === 1) h1 = hashChildren(h, h1)
    h2 = ((mask >>> i) & 1) === 0 ? hashChildren(h2, h) : hashChildren(h, h2)
  })
  for (const h of rest.slice(inner)) {
    h1 = hashChildren(h, h1)
    h2 = hashChildren(h, h2)
  }
  return eq(h1, root1) && eq(h2, root2)
}

// ---- vector construction

interface Vector {
  size1: number
  size2: number
  root1: Uint8Array
  root2: Uint8Array
  proof: Uint8Array[]
  desc: string
}

const flip = (h: Uint8Array, byte: number, bit: number): Uint8Array => {
  const c = Uint8Array.from(h)
  c[byte] = (c[byte] as number) ^ (1 << bit)
  return c
}

function mutations(v: Vector): Vector[] {
  const { size1: m, size2: n, root1: r1, root2: r2, proof: p } = v
  const out: Vector[] = []
  const add = (desc: string, change: Partial<Vector>): void => {
    out.push({ ...v, ...change, desc })
  }
  for (let i = 0; i < p.length; i++) add(`modified proof[${i}] bit @4`, { proof: p.map((h, j) => (j === i ? flip(h, 0, 4) : h)) })
  for (let i = 0; i < p.length; i++) add(`removed proof[${i}]`, { proof: p.filter((_, j) => j !== i) })
  for (let i = 0; i <= p.length; i++) add(`inserted component @${i}`, { proof: [...p.slice(0, i), SOME_HASH, ...p.slice(i)] })
  for (const [i, h] of p.entries()) add(`duplicated proof[${i}]`, { proof: [...p.slice(0, i + 1), h, ...p.slice(i + 1)] })
  add('size1 plus @1', { size1: m + 1 })
  add('size1 sub @1', { size1: m - 1 })
  add('size2 plus @1', { size2: n + 1 })
  add('size2 sub @1', { size2: n - 1 })
  add('size1 zero', { size1: 0 })
  add('size1 greater than size2', { size1: n + 1 })
  if (m !== n) add('sizes swapped', { size1: n, size2: m })
  if (!eq(r1, r2)) add('swapped roots', { root1: r2, root2: r1 })
  add('wrong root1', { root1: SOME_HASH })
  add('wrong root2', { root2: SOME_HASH })
  add('modified root1 bit @4', { root1: flip(r1, 0, 4) })
  add('modified root2 bit @4', { root2: flip(r2, 31, 4) })
  add('truncated root1', { root1: r1.slice(0, 31) })
  add('empty root2', { root2: new Uint8Array(0) })
  if (p.length > 0) add('empty proof', { proof: [] })
  add('trailing garbage', { proof: [...p, new Uint8Array(0)] })
  add('trailing zero hash', { proof: [...p, ZERO_HASH] })
  add('trailing root1', { proof: [...p, r1] })
  add('trailing root2', { proof: [...p, r2] })
  add('preceding garbage', { proof: [new Uint8Array(0), ...p] })
  add('preceding root1', { proof: [r1, ...p] })
  add('preceding root2', { proof: [r2, ...p] })
  if (p.length > 0) add('preceding proof[0]', { proof: [p[0] as Uint8Array, ...p] })
  return out
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const slug = (desc: string): string => desc.replaceAll(' ', '-')

function main(): void {
  rmSync(OUT_DIR, { recursive: true, force: true })
  let written = 0
  const omitted: string[] = []
  for (const tree of TREES) {
    const roots = Array.from({ length: tree.leaves.length + 1 }, (_, k) => rootFromLeafHashes(tree.leaves.slice(0, k)))
    for (const [m, n] of tree.pairs) {
      const happy: Vector = {
        size1: m,
        size2: n,
        root1: roots[m] as Uint8Array,
        root2: roots[n] as Uint8Array,
        proof: consistencyProof(m, n, tree.leaves),
        desc: 'happy path',
      }
      const dir = join(OUT_DIR, tree.name, `${m}-${n}`)
      mkdirSync(dir, { recursive: true })
      for (const v of [happy, ...mutations(happy)]) {
        const accept = referenceVerify(v.size1, v.size2, v.proof, v.root1, v.root2)
        const lib = verifyConsistency(v.size1, v.size2, v.proof, v.root1, v.root2)
        if (accept !== lib) throw new Error(`library and reference disagree on ${tree.name} ${m}-${n} ${v.desc}`)
        if (v === happy && !accept) throw new Error(`happy path rejected: ${tree.name} ${m}-${n}`)
        if (v !== happy && accept) {
          omitted.push(`${tree.name} ${m}-${n}: "${v.desc}" (verifies as size1=${v.size1}, size2=${v.size2})`)
          continue
        }
        const json = {
          size1: v.size1,
          size2: v.size2,
          root1: b64(v.root1),
          root2: b64(v.root2),
          proof: v.proof.map(b64),
          desc: v.desc,
          wantErr: v !== happy,
        }
        writeFileSync(join(dir, `${slug(v.desc)}.json`), `${JSON.stringify(json, null, 2)}\n`)
        written++
      }
    }
  }
  writeFileSync(join(OUT_DIR, 'README.md'), readme(written, omitted))
  console.log(`wrote ${written} vectors to ${OUT_DIR} (${omitted.length} indistinguishable mutations omitted)`)
}

function readme(count: number, omitted: string[]): string {
  const ctTable = CT_LEAF_DATA_HEX.map((h, i) => `| ${i} | \`${h === '' ? '(empty)' : h}\` |`).join('\n')
  return `# RFC 9162 Merkle consistency-proof vectors

Generated by \`scripts/gen-merkle-consistency-vectors.ts\` — do not edit by hand; change the script
and run \`node --import tsx scripts/gen-merkle-consistency-vectors.ts\`. ${count} vector files.

Layout: \`<tree>/<size1>-<size2>/<desc>.json\`, each file
\`{ size1, size2, root1, root2, proof, desc, wantErr }\`: root1 and root2 are the base64 Merkle Tree
Hashes of the first size1 and size2 leaves of \`<tree>\`, proof is an array of base64 node hashes
(RFC 9162 §2.1.4.1, \`[]\` when size1 = size2). \`happy-path.json\` (wantErr false) must verify;
every other file is a mutation of it that every RFC 9162 §2.1.4.2 verifier must reject
(wantErr true). Hashing: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right).
Consistency proofs need 1 ≤ size1 ≤ size2; size1 = size2 holds only with an empty proof and equal
roots; a proof from the empty tree (size1 = 0) is rejected.

## Leaf data

### \`ct\` — the 8-leaf tree of the RFC 6962 / Certificate Transparency reference tests

All pairs 1 ≤ size1 ≤ size2 ≤ 8. Leaf data (hex), as in transparency-dev/merkle
\`testonly.LeafInputs()\`; its roots for sizes 1..8 are published there (\`RootHashes()\`), e.g.
size 8 → \`5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328\`.

| index | data (hex) |
|---|---|
${ctTable}

### \`decimal\` — ${DECIMAL_LEAVES} leaves

Leaf i (0 ≤ i < ${DECIMAL_LEAVES}) is the ASCII decimal string of i: \`"0"\`, \`"1"\`, …, \`"${DECIMAL_LEAVES - 1}"\`
(no terminator). Pairs: ${TREES[1]?.pairs.map(([m, n]) => `${m}-${n}`).join(', ')}.

## Mutations

Each proof component bit-flipped, removed, duplicated; a foreign hash inserted at every position;
size1 ± 1, size2 ± 1, size1 = 0, size1 > size2, sizes swapped; roots swapped, replaced,
bit-flipped, truncated to 31 bytes or emptied; empty proof; garbage, zero hash, root1, root2 or
proof[0] appended or prepended.

Whether a mutation must be rejected is decided by an independent reference verifier in the
generator (a port of transparency-dev/merkle's algorithm). A changed size can produce a statement
that no verifier can tell from a valid one (the proof hashes are opaque, so e.g. the 2-3 proof
\`[leaf 2]\` is also a well-formed 2-4 proof whose right subtree hash happens to be that value);
those ${omitted.length} mutations are omitted rather than mislabelled:

${omitted.map((o) => `- ${o}`).join('\n')}
`
}

main()
