// RFC 9162 (Certificate Transparency 2.0) Merkle trees over SHA-256, using only node:crypto.
//
// Conventions used throughout:
// - Every hash this module returns is a fresh, plain 32-byte Uint8Array (never a Buffer and never
//   shared with internal state), so callers may keep or mutate it freely.
// - Proof *generation* takes numbers (safe non-negative integers) and throws TypeError/RangeError
//   on misuse: a bad argument there is a programming error.
// - Proof *verification* takes numbers or bigints and arbitrary untrusted values, and never throws:
//   anything malformed simply fails to verify.
// - A "node" (level, index) is the perfect subtree of 2^level leaves that starts at leaf
//   index * 2^level. In a tree of size n it exists (is complete) iff (index + 1) * 2^level <= n.
//   Perfect subtrees never change once complete, so they are what a log stores.

import { timingSafeEqual } from 'node:crypto'
import { isUint8Array } from '../crypto/encoding.js'
import { sha256 as sha256Of } from '../crypto/sha256.js'

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32

const LEAF_PREFIX = Uint8Array.of(0x00)
const MAX_U64 = (1n << 64n) - 1n

/** SHA-256 as a fresh plain Uint8Array (see the conventions above). */
function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(sha256Of(data))
}

const EMPTY_ROOT_BYTES = sha256(new Uint8Array(0))

/**
 * MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1), the root of the empty tree:
 * e3b0c442…b855. This is a shared constant: do not mutate it (rootFromLeafHashes([]) returns a
 * fresh copy).
 */
export const EMPTY_ROOT: Uint8Array = EMPTY_ROOT_BYTES.slice()

// ---------------------------------------------------------------------------------------------
// Input checks

/** A private copy of value if it is a Uint8Array of exactly HASH_SIZE bytes, else undefined. */
function asHash(value: unknown): Uint8Array | undefined {
  if (!isUint8Array(value)) return undefined
  // Copying through the constructor uses the internal slots, not the (overridable) getters.
  const copy = new Uint8Array(value)
  return copy.length === HASH_SIZE ? copy : undefined
}

function requireHash(value: unknown, what: string): Uint8Array {
  const hash = asHash(value)
  if (hash === undefined) throw new TypeError(`${what} must be a ${HASH_SIZE}-byte Uint8Array`)
  return hash
}

/** value as a bigint if it is an integer in [0, 2^64 - 1] given exactly (safe number or bigint). */
function asU64(value: unknown): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined
  if (typeof value === 'bigint') return value >= 0n && value <= MAX_U64 ? value : undefined
  return undefined
}

/** Private copies of the proof's hashes if it is an array of exactly `length` valid hashes. */
function asProof(value: unknown, length: bigint): Uint8Array[] | undefined {
  if (!Array.isArray(value)) return undefined
  const n: unknown = value.length
  if (typeof n !== 'number' || BigInt(n) !== length) return undefined
  const out: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const hash = asHash(value[i])
    if (hash === undefined) return undefined
    out.push(hash)
  }
  return out
}

function requireCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer`)
  }
  return value
}

function requireLeaves(leaves: unknown): Uint8Array[] {
  if (!Array.isArray(leaves)) throw new TypeError('leaves must be an array of leaf hashes')
  return leaves.map((leaf, i) => requireHash(leaf, `leaves[${i}]`))
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

// ---------------------------------------------------------------------------------------------
// Hashing

/**
 * The leaf hash of a log entry: SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1). The 0x00 prefix keeps
 * leaf hashes and interior node hashes in separate domains (no second-preimage tricks).
 * Throws TypeError if entry is not a Uint8Array.
 */
export function leafHash(entry: Uint8Array): Uint8Array {
  if (!isUint8Array(entry)) throw new TypeError('entry must be a Uint8Array')
  return sha256(Buffer.concat([LEAF_PREFIX, entry]))
}

/**
 * The hash of an interior node: SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1).
 * Throws TypeError unless both children are 32-byte Uint8Arrays.
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return hashChildren(requireHash(left, 'left'), requireHash(right, 'right'))
}

// 0x01 ‖ left ‖ right, written into one buffer and hashed in one call (see crypto/sha256.ts).
const children = new Uint8Array(1 + 2 * HASH_SIZE)
children[0] = 0x01

function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  children.set(left, 1)
  children.set(right, 1 + HASH_SIZE)
  return sha256(children)
}

// ---------------------------------------------------------------------------------------------
// Reference (array-based) construction, written directly from the RFC's recursive definitions.

/** The largest power of two strictly smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** MTH(D[start:end]) by the RFC 9162 §2.1.1 recursion; leaves are already validated. */
function mth(leaves: readonly Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start
  if (n === 0) return EMPTY_ROOT_BYTES.slice()
  if (n === 1) return (leaves[start] as Uint8Array).slice()
  const k = splitPoint(n)
  return hashChildren(mth(leaves, start, start + k), mth(leaves, start + k, end))
}

/**
 * The Merkle Tree Hash MTH(D[n]) of a list of leaf hashes (RFC 9162 §2.1.1): EMPTY_ROOT for no
 * leaves, the leaf hash itself for one, and otherwise HASH(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])) with
 * k the largest power of two smaller than n. O(n) hashes.
 * Throws TypeError unless leaves is an array of 32-byte Uint8Arrays (leaf hashes, not entries).
 */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Uint8Array {
  const checked = requireLeaves(leaves)
  return mth(checked, 0, checked.length)
}

/**
 * The inclusion proof (audit path) PATH(leafIndex, D[n]) of RFC 9162 §2.1.3.1 for the tree whose
 * leaf hashes are `leaves` (n = leaves.length): sibling hashes ordered from the leaf upwards.
 * O(n) hashes. Throws RangeError unless 0 <= leafIndex < leaves.length, TypeError on bad leaves.
 */
export function inclusionProof(leafIndex: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  const checked = requireLeaves(leaves)
  const index = requireCount(leafIndex, 'leafIndex')
  if (index >= checked.length) throw new RangeError('leafIndex must be smaller than the tree size')
  const out: Uint8Array[] = []
  // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])     for m < k
  //              = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k;  PATH(0, {d}) = {}
  const path = (m: number, start: number, end: number): void => {
    const n = end - start
    if (n === 1) return
    const k = splitPoint(n)
    if (m < k) {
      path(m, start, start + k)
      out.push(mth(checked, start + k, end))
    } else {
      path(m - k, start + k, end)
      out.push(mth(checked, start, start + k))
    }
  }
  path(index, 0, checked.length)
  return out
}

/**
 * The consistency proof PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1 between the first size1 and
 * the first size2 of `leaves`: the empty list when size1 === size2. O(size2) hashes.
 * Throws RangeError unless 1 <= size1 <= size2 <= leaves.length (the RFC defines no proof from
 * the empty tree), TypeError on bad leaves.
 */
export function consistencyProof(size1: number, size2: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  const checked = requireLeaves(leaves)
  const m0 = requireCount(size1, 'size1')
  const n0 = requireCount(size2, 'size2')
  if (m0 < 1 || m0 > n0 || n0 > checked.length) {
    throw new RangeError('consistency proofs need 1 <= size1 <= size2 <= leaves.length')
  }
  const out: Uint8Array[] = []
  // SUBPROOF(m, D[m], true) = {};  SUBPROOF(m, D[m], false) = {MTH(D[m])}
  // m <= k: SUBPROOF(m, D[0:k], b) : MTH(D[k:n]);  m > k: SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
  const subproof = (m: number, start: number, end: number, b: boolean): void => {
    const n = end - start
    if (m === n) {
      if (!b) out.push(mth(checked, start, end))
      return
    }
    const k = splitPoint(n)
    if (m <= k) {
      subproof(m, start, start + k, b)
      out.push(mth(checked, start + k, end))
    } else {
      subproof(m - k, start + k, end, false)
      out.push(mth(checked, start, start + k))
    }
  }
  subproof(m0, 0, n0, true)
  return out
}

// ---------------------------------------------------------------------------------------------
// Storage-friendly construction from stored perfect-subtree hashes.

/**
 * Returns the stored hash of node (level, index): the MTH of the perfect subtree of 2^level
 * leaves starting at leaf index * 2^level (level 0 = the leaf hashes). Only ever asked for nodes
 * that are complete in the tree being proven, i.e. (index + 1) * 2^level <= treeSize.
 * It may throw (e.g. a missing row); the error propagates to the caller of the proof function.
 */
export type NodeAt = (level: number, index: number) => Uint8Array

function fetchNode(nodeAt: NodeAt, level: number, index: number): Uint8Array {
  const hash = asHash(nodeAt(level, index))
  if (hash === undefined) throw new TypeError(`nodeAt(${level}, ${index}) did not return a ${HASH_SIZE}-byte Uint8Array`)
  return hash
}

/**
 * MTH(D[start:end]) for a range whose start is a multiple of the largest power of two not above
 * its length (true of every node of an RFC 9162 tree, including the partial right-edge ones):
 * the perfect subtrees of the binary decomposition of the length, folded right to left.
 * O(log n) nodeAt calls.
 */
function rangeRoot(start: number, end: number, nodeAt: NodeAt): Uint8Array {
  if (start === end) return EMPTY_ROOT_BYTES.slice()
  const pieces: Uint8Array[] = []
  let position = start
  for (let level = Math.floor(Math.log2(end - start)) + 1; level >= 0; level--) {
    const width = 2 ** level
    if (position + width <= end) {
      pieces.push(fetchNode(nodeAt, level, position / width))
      position += width
    }
  }
  let hash = pieces.pop() as Uint8Array
  while (pieces.length > 0) hash = hashChildren(pieces.pop() as Uint8Array, hash)
  return hash
}

/**
 * Appends to `out` the siblings, bottom-up, of the path from the complete node (level, index) to
 * the root of the tree of `size` leaves: exactly the tail of an RFC 9162 inclusion proof.
 * At most one sibling (the partial right-edge one) needs more than one nodeAt call.
 */
function pathFrom(level: number, index: number, size: number, nodeAt: NodeAt, out: Uint8Array[]): void {
  let l = level
  let node = index
  let last = Math.floor((size - 1) / 2 ** level) // the node at this level containing leaf size-1
  while (last > 0) {
    if (node % 2 === 1) {
      out.push(fetchNode(nodeAt, l, node - 1))
    } else if (node < last) {
      const width = 2 ** l
      const start = (node + 1) * width
      out.push(start + width <= size ? fetchNode(nodeAt, l, node + 1) : rangeRoot(start, size, nodeAt))
    } // else: no right sibling at this level; the node is promoted unchanged.
    node = Math.floor(node / 2)
    last = Math.floor(last / 2)
    l += 1
  }
}

/**
 * The root MTH(D[treeSize]) computed from stored perfect subtrees (at most log2(n) + 1 nodeAt
 * calls); EMPTY_ROOT for treeSize 0. Throws RangeError unless treeSize is a non-negative safe
 * integer, TypeError if nodeAt returns something other than a 32-byte Uint8Array.
 */
export function rootFrom(treeSize: number, nodeAt: NodeAt): Uint8Array {
  return rangeRoot(0, requireCount(treeSize, 'treeSize'), nodeAt)
}

/**
 * The same inclusion proof as inclusionProof(leafIndex, leaves) (byte for byte, RFC 9162
 * §2.1.3.1) but computed from stored perfect-subtree hashes with O(log n) nodeAt calls.
 * Throws RangeError unless 0 <= leafIndex < treeSize (safe integers), TypeError if nodeAt
 * returns something other than a 32-byte Uint8Array.
 */
export function inclusionProofFrom(leafIndex: number, treeSize: number, nodeAt: NodeAt): Uint8Array[] {
  const index = requireCount(leafIndex, 'leafIndex')
  const size = requireCount(treeSize, 'treeSize')
  if (index >= size) throw new RangeError('leafIndex must be smaller than treeSize')
  const out: Uint8Array[] = []
  pathFrom(0, index, size, nodeAt, out)
  return out
}

/**
 * The same consistency proof as consistencyProof(size1, size2, leaves) (byte for byte, RFC 9162
 * §2.1.4.1) but computed from stored perfect-subtree hashes with O(log n) nodeAt calls.
 * The proof is the largest perfect subtree ending at size1 (omitted when size1 is a power of two,
 * since it is then the old root itself) followed by its inclusion path in the tree of size2.
 * Throws RangeError unless 1 <= size1 <= size2 (safe integers), TypeError on a bad nodeAt result.
 */
export function consistencyProofFrom(size1: number, size2: number, nodeAt: NodeAt): Uint8Array[] {
  const m = requireCount(size1, 'size1')
  const n = requireCount(size2, 'size2')
  if (m < 1 || m > n) throw new RangeError('consistency proofs need 1 <= size1 <= size2')
  if (m === n) return []
  let level = 0
  while ((m / 2 ** level) % 2 === 0) level += 1 // trailing zero bits of m
  const index = m / 2 ** level - 1
  const out: Uint8Array[] = index > 0 ? [fetchNode(nodeAt, level, index)] : []
  pathFrom(level, index, n, nodeAt, out)
  return out
}

/** A perfect subtree: its hash covers leaves [index * 2^level, (index + 1) * 2^level). */
export interface TreeNode {
  readonly level: number
  readonly index: number
  readonly hash: Uint8Array
}

/** The (level, index) of the perfect subtrees decomposing leaves [0, size), leftmost (largest) first. */
export function perfectSubtrees(size: number): { level: number; index: number }[] {
  const ids: { level: number; index: number }[] = []
  let position = 0
  for (let level = size > 0 ? Math.floor(Math.log2(size)) + 1 : 0; level >= 0; level--) {
    const width = 2 ** level
    if (position + width <= size) {
      ids.push({ level, index: position / width })
      position += width
    }
  }
  return ids
}

/**
 * An append-only tree kept as its right edge: the roots of the perfect subtrees that decompose
 * [0, size), largest (leftmost) first — one per set bit of size, so O(log n) memory.
 * append() and root() cost O(log n) hashes; append() reports every node that became complete, so
 * a log can persist exactly those and later serve proofs via the *From functions.
 */
export class CompactRange {
  #size = 0
  #peaks: Uint8Array[] = []

  /**
   * Restores the range for a tree of treeSize leaves from stored perfect subtrees (one nodeAt call
   * per set bit of treeSize). Throws like rootFrom on bad input.
   */
  static fromNodeAt(treeSize: number, nodeAt: NodeAt): CompactRange {
    const size = requireCount(treeSize, 'treeSize')
    const range = new CompactRange()
    range.#peaks = perfectSubtrees(size).map(({ level, index }) => fetchNode(nodeAt, level, index))
    range.#size = size
    return range
  }

  /** Number of leaves appended so far. */
  get size(): number {
    return this.#size
  }

  /** Copies of the current right-edge perfect subtrees, leftmost (largest) first. */
  peaks(): TreeNode[] {
    return perfectSubtrees(this.#size).map(({ level, index }, i) => ({
      level,
      index,
      hash: (this.#peaks[i] as Uint8Array).slice(),
    }))
  }

  /**
   * Appends one leaf hash (leaf number `size`) and returns, bottom-up, every node that became
   * complete: always the leaf itself (level 0), then each newly completed ancestor. Together the
   * results of all appends are exactly all complete nodes of the tree, each reported once.
   * Throws TypeError unless leafHash is 32 bytes, RangeError past 2^53 - 1 leaves.
   */
  append(leafHashValue: Uint8Array): TreeNode[] {
    const completed: TreeNode[] = []
    this.#add(leafHashValue, completed)
    return completed
  }

  /**
   * Appends one leaf hash like append(), without reporting the completed nodes: the cheaper
   * path for a verifier that only needs the root.
   */
  push(leafHashValue: Uint8Array): void {
    this.#add(leafHashValue)
  }

  /**
   * Appends a whole perfect subtree of 2^level leaves by its root hash (e.g. one computed
   * elsewhere over leaves size … size + 2^level - 1). Throws RangeError unless size is a
   * multiple of 2^level, TypeError unless hash is 32 bytes.
   */
  pushSubtree(level: number, hash: Uint8Array): void {
    if (!Number.isSafeInteger(level) || level < 0 || level > 52) throw new RangeError('level must be an integer in [0, 52]')
    const width = 2 ** level
    if (this.#size % width !== 0) throw new RangeError('the range does not end at a multiple of the subtree width')
    if (this.#size + width > Number.MAX_SAFE_INTEGER) throw new RangeError('tree is full')
    let h = requireHash(hash, 'hash')
    let index = this.#size / width
    while (index % 2 === 1) {
      h = hashChildren(this.#peaks.pop() as Uint8Array, h)
      index = (index - 1) / 2
    }
    this.#peaks.push(h)
    this.#size += width
  }

  #add(leafHashValue: Uint8Array, completed?: TreeNode[]): void {
    let hash = requireHash(leafHashValue, 'leafHash')
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('tree is full')
    let index = this.#size
    let level = 0
    completed?.push({ level, index, hash: hash.slice() })
    while (index % 2 === 1) {
      hash = hashChildren(this.#peaks.pop() as Uint8Array, hash)
      level += 1
      index = (index - 1) / 2
      completed?.push({ level, index, hash: hash.slice() })
    }
    this.#peaks.push(hash)
    this.#size += 1
  }

  /** MTH of the leaves appended so far (EMPTY_ROOT when none), in O(log n) hashes. */
  root(): Uint8Array {
    if (this.#peaks.length === 0) return EMPTY_ROOT_BYTES.slice()
    let hash = this.#peaks[this.#peaks.length - 1] as Uint8Array
    for (let i = this.#peaks.length - 2; i >= 0; i--) hash = hashChildren(this.#peaks[i] as Uint8Array, hash)
    return hash.slice()
  }
}

// ---------------------------------------------------------------------------------------------
// Verification (untrusted input; never throws)

function bitLength(x: bigint): bigint {
  return x === 0n ? 0n : BigInt(x.toString(2).length)
}

function popCount(x: bigint): bigint {
  let count = 0n
  for (const digit of x.toString(2)) if (digit === '1') count += 1n
  return count
}

function trailingZeros(x: bigint): bigint {
  let count = 0n
  while (x > 0n && (x & 1n) === 0n) {
    x >>= 1n
    count += 1n
  }
  return count
}

/**
 * The only proof length the RFC 9162 §2.1.3.2 loop can accept for (index, size): it walks
 * a fixed number of steps until sn reaches 0. Checking it first only rejects early.
 */
function inclusionProofLength(index: bigint, size: bigint): bigint {
  const inner = bitLength(index ^ (size - 1n))
  return inner + popCount(index >> inner)
}

/** Likewise for the §2.1.4.2 consistency loop, 0 < m < n. */
function consistencyProofLength(m: bigint, n: bigint): bigint {
  const inner = bitLength((m - 1n) ^ (n - 1n))
  const border = popCount((m - 1n) >> inner)
  const shift = trailingZeros(m)
  return inner - shift + border + (m === 1n << shift ? 0n : 1n)
}

/**
 * The root that an inclusion proof implies for leafHash at leafIndex in a tree of treeSize
 * leaves, computed exactly as RFC 9162 §2.1.3.2 steps 1–4; null when the inputs are malformed
 * (sizes not integers in [0, 2^64-1] given as safe numbers or bigints, leafIndex >= treeSize,
 * hashes not 32-byte Uint8Arrays, proof not an array of the one length the algorithm accepts).
 * Never throws. Only meaningful when compared against a trusted root: use verifyInclusion.
 */
export function rootFromInclusionProof(
  leafIndex: number | bigint,
  treeSize: number | bigint,
  leafHashValue: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array | null {
  try {
    const index = asU64(leafIndex)
    const size = asU64(treeSize)
    // Step 1: leaf_index >= tree_size fails.
    if (index === undefined || size === undefined || index >= size) return null
    const leaf = asHash(leafHashValue)
    const path = asProof(proof, inclusionProofLength(index, size))
    if (leaf === undefined || path === undefined) return null
    // Step 2: fn = leaf_index, sn = tree_size - 1. Step 3: r = hash.
    let fn = index
    let sn = size - 1n
    let r = leaf
    // Step 4.
    for (const p of path) {
      if (sn === 0n) return null // 4a
      if ((fn & 1n) === 1n || fn === sn) {
        r = hashChildren(p, r) // 4b i
        if ((fn & 1n) === 0n) {
          // 4b ii: shift until LSB(fn) is set or fn is 0.
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n
            sn >>= 1n
          }
        }
      } else {
        r = hashChildren(r, p)
      }
      fn >>= 1n // 4c
      sn >>= 1n
    }
    // Step 5 (first half): sn must be 0.
    return sn === 0n ? r : null
  } catch {
    return null
  }
}

/**
 * True iff `proof` proves that `leafHash` is the leaf at leafIndex of the tree of treeSize leaves
 * whose root is `root`, per RFC 9162 §2.1.3.2. Sizes are numbers (safe integers) or bigints in
 * [0, 2^64 - 1]; hashes must be 32-byte Uint8Arrays; proof must be an array (empty, not null,
 * for a one-leaf tree). Any malformed input gives false; never throws.
 */
export function verifyInclusion(
  leafIndex: number | bigint,
  treeSize: number | bigint,
  leafHashValue: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    const expected = asHash(root)
    if (expected === undefined) return false
    const computed = rootFromInclusionProof(leafIndex, treeSize, leafHashValue, proof)
    // Step 5: compare r against root_hash.
    return computed !== null && bytesEqual(computed, expected)
  } catch {
    return false
  }
}

/**
 * True iff `proof` proves that the tree of size2 leaves with root root2 extends the tree of size1
 * leaves with root root1, per RFC 9162 §2.1.4.2. Requires 1 <= size1 <= size2 (a proof from the
 * empty tree is undefined by the RFC, so size1 = 0 gives false); size1 === size2 holds only with
 * an empty proof and equal roots. Sizes are numbers (safe integers) or bigints in [0, 2^64 - 1];
 * hashes must be 32-byte Uint8Arrays; proof must be an array. Malformed input gives false; never
 * throws.
 */
export function verifyConsistency(
  size1: number | bigint,
  size2: number | bigint,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  try {
    const m = asU64(size1)
    const n = asU64(size2)
    if (m === undefined || n === undefined || m === 0n || m > n) return false
    const firstHash = asHash(root1)
    const secondHash = asHash(root2)
    if (firstHash === undefined || secondHash === undefined) return false
    if (m === n) return asProof(proof, 0n) !== undefined && bytesEqual(firstHash, secondHash)

    const path = asProof(proof, consistencyProofLength(m, n))
    if (path === undefined) return false
    // Step 1: an empty consistency_path fails.
    if (path.length === 0) return false
    // Step 2: if first is an exact power of 2, prepend first_hash.
    if ((m & (m - 1n)) === 0n) path.unshift(firstHash)
    // Step 3.
    let fn = m - 1n
    let sn = n - 1n
    // Step 4: if LSB(fn) is set, shift both until it is not.
    while ((fn & 1n) === 1n) {
      fn >>= 1n
      sn >>= 1n
    }
    // Step 5.
    let fr = path[0] as Uint8Array
    let sr = fr
    // Step 6.
    for (let i = 1; i < path.length; i++) {
      const c = path[i] as Uint8Array
      if (sn === 0n) return false // 6a
      if ((fn & 1n) === 1n || fn === sn) {
        fr = hashChildren(c, fr) // 6b i
        sr = hashChildren(c, sr) // 6b ii
        if ((fn & 1n) === 0n) {
          // 6b iii: shift until LSB(fn) is set or fn is 0.
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n
            sn >>= 1n
          }
        }
      } else {
        sr = hashChildren(sr, c)
      }
      fn >>= 1n // 6c
      sn >>= 1n
    }
    // Step 7.
    return sn === 0n && bytesEqual(fr, firstHash) && bytesEqual(sr, secondHash)
  } catch {
    return false
  }
}
