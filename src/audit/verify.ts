import { EntryHasher, entryText, GENESIS_HASH, type AuditRecord } from './entry.js'
import { Latin1Range } from './latin1-range.js'
import type { TreeNode } from './merkle.js'

/** An entry with the hashes stored beside it. */
export interface ChainedRecord extends AuditRecord {
  prevHash: Uint8Array
  hash: Uint8Array
}

/**
 * What is wrong with a log, as a stable code (the API's `firstBad.problem`; `reason` says it in
 * words). Every one of them is tampering or damage, never an unavailable log:
 * - `entry-missing`, `entry-out-of-order`, `prev-hash-mismatch`, `unserialisable`,
 *   `hash-mismatch`: an entry inside the chain was deleted, moved or changed;
 * - `tail-missing`: the newest entries up to the recorded head are gone;
 * - `head-mismatch`: the chain does not end at the recorded head's hash;
 * - `entries-past-head`: entries lie beyond the recorded head (forged, or the head rewound);
 * - `tree-past-head`: the stored Merkle tree holds leaves beyond the recorded head (entries
 *   removed and the head rewound to match);
 * - `tree-mismatch`: the head's right edge (peaks) is not the stored tree's;
 * - `below-checkpoint`: the log is shorter than a signed checkpoint (truncated below it);
 * - `checkpoint-mismatch`: the entries do not hash to the signed checkpoint's root.
 */
export const VERIFY_PROBLEMS = [
  'entry-missing',
  'entry-out-of-order',
  'prev-hash-mismatch',
  'unserialisable',
  'hash-mismatch',
  'tail-missing',
  'head-mismatch',
  'entries-past-head',
  'tree-past-head',
  'tree-mismatch',
  'below-checkpoint',
  'checkpoint-mismatch',
] as const
export type VerifyProblem = (typeof VERIFY_PROBLEMS)[number]

export interface VerifyResult {
  ok: boolean
  /** Entries checked (up to and including the first bad one). */
  checked: number
  /** The last good hash, hex; the chain tip when ok. */
  head: string
  /** The first entry that breaks the chain, and why (`problem`: the stable code). */
  firstBad?: { seq: number; id: string; reason: string; problem: VerifyProblem }
}

/** Byte equality of two hashes without copying either. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

/** Whether `stored` (bytes, or hex in either case) is the hash `computedHex` (lowercase hex). */
function matches(computedHex: string, stored: Uint8Array | string): boolean {
  if (typeof stored === 'string')
    return stored === computedHex || (stored.length === computedHex.length && stored.toLowerCase() === computedHex)
  return (
    stored instanceof Uint8Array &&
    stored.length === HASH_BYTES &&
    Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).toString('hex') === computedHex
  )
}

const HASH_BYTES = 32
const HEX_HASH = /^[0-9a-fA-F]{64}$/

/** A hash given as bytes or hex, as lowercase hex; null unless it is 32 bytes. */
function hexOf(hash: Uint8Array | string): string | null {
  if (typeof hash === 'string') return HEX_HASH.test(hash) ? hash.toLowerCase() : null
  return hash instanceof Uint8Array && hash.length === HASH_BYTES
    ? Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex')
    : null
}

/**
 * Incremental verifier of one workspace's chain. Feed entries in order; it stops at the
 * first entry whose sequence, previous hash or hash (over its canonical bytes) is wrong and
 * names it. With `treeSize`, it also builds the RFC 9162 tree of the first treeSize entries
 * (`treeRoot()`), hashing each entry's bytes once for both.
 */
export class ChainVerifier {
  readonly #hasher = new EntryHasher()
  readonly #range = new Latin1Range()
  readonly #treeSize: number
  /** The previous entry's hash, lowercase hex (see crypto/sha256.ts for why a string). */
  #prev: string
  #expectSeq: number
  #checked = 0
  #bad: VerifyResult['firstBad']
  /** The start hash given is not a hash: the first entry fails. */
  #startBroken = false

  /**
   * `start` verifies a run that begins mid-chain: the sequence number of its first entry and
   * the hash before it, as bytes or hex (a verifier of a whole chain starts at 1 after the
   * genesis hash). A start hash that is not 32 bytes fails the run's first entry.
   */
  constructor(opts: { treeSize?: number; start?: { seq: number; prevHash: Uint8Array | string } } = {}) {
    this.#treeSize = opts.treeSize ?? 0
    this.#expectSeq = opts.start?.seq ?? 1
    const prev = hexOf(opts.start?.prevHash ?? GENESIS_HASH)
    this.#prev = prev ?? ''
    if (prev === null) this.#startBroken = true
  }

  /**
   * Checks one entry; returns false once the chain is broken. Its stored hashes may be bytes or
   * hex (as exported): hex is compared without being decoded first.
   */
  push(r: AuditRecord & { prevHash: Uint8Array | string; hash: Uint8Array | string }): boolean {
    return this.#check(r.seq, r.id, r, null, r.prevHash, r.hash)
  }

  /**
   * push() for an entry given as its canonical text (entryTextSql's value; null when the row
   * could not be serialised) and its stored hashes. A failure names the entry by seq only.
   */
  pushText(seq: number, text: string | null, prevHash: Uint8Array | string, hash: Uint8Array | string): boolean {
    return this.#check(seq, '', null, text, prevHash, hash)
  }

  #check(
    seq: number,
    id: string,
    r: AuditRecord | null,
    text: string | null,
    prevHash: Uint8Array | string,
    hash: Uint8Array | string,
  ): boolean {
    if (this.#bad) return false
    this.#checked++
    if (seq !== this.#expectSeq) {
      return seq > this.#expectSeq
        ? this.#fail(seq, id, `entry ${this.#expectSeq} is missing`, 'entry-missing')
        : this.#fail(seq, id, `entry ${seq} is out of order`, 'entry-out-of-order')
    }
    if (this.#startBroken || !matches(this.#prev, prevHash))
      return this.#fail(seq, id, 'its previous hash does not match the entry before it', 'prev-hash-mismatch')
    let chain: string
    try {
      const t = r ? entryText(r) : text
      if (t === null) throw new TypeError('no text')
      chain = this.#hasher.chainHexOfText(t, this.#prev)
    } catch {
      return this.#fail(seq, id, 'it cannot be serialised', 'unserialisable')
    }
    if (!matches(chain, hash)) return this.#fail(seq, id, 'its content does not match its hash', 'hash-mismatch')
    if (this.#range.size < this.#treeSize) this.#range.push(this.#hasher.leafLatin1())
    this.#prev = chain
    this.#expectSeq++
    return true
  }

  #fail(seq: number, id: string, reason: string, problem: VerifyProblem): false {
    this.#bad = { seq, id, reason, problem }
    return false
  }

  /** Entries verified so far that belong to the tree (at most treeSize). */
  get treeLeaves(): number {
    return this.#range.size
  }

  /** The root of the first treeSize entries once all of them verified; null before. */
  treeRoot(): Uint8Array | null {
    return this.#range.size === this.#treeSize ? this.#range.root() : null
  }

  /** The tree's right edge so far (perfect subtrees, leftmost first). */
  treePeaks(): TreeNode[] {
    return this.#range.peaks()
  }

  result(): VerifyResult {
    return { ok: !this.#bad, checked: this.#checked, head: this.#prev, ...(this.#bad ? { firstBad: this.#bad } : {}) }
  }
}

/** Verifies a whole chain given in order. */
export function verifyChain(records: Iterable<ChainedRecord>): VerifyResult {
  const v = new ChainVerifier()
  for (const r of records) if (!v.push(r)) break
  return v.result()
}
