import { EntryHasher, GENESIS_HASH, type AuditRecord } from './entry.js'
import { CompactRange } from './merkle.js'

/** An entry with the hashes stored beside it. */
export interface ChainedRecord extends AuditRecord {
  prevHash: Uint8Array
  hash: Uint8Array
}

export interface VerifyResult {
  ok: boolean
  /** Entries checked (up to and including the first bad one). */
  checked: number
  /** The last good hash, hex; the chain tip when ok. */
  head: string
  /** The first entry that breaks the chain, and why. */
  firstBad?: { seq: number; id: string; reason: string }
}

/** Byte equality of two hashes without copying either. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

/** Whether `stored` (bytes, or hex in either case) is the hash `computed`. */
function matches(computed: Uint8Array, stored: Uint8Array | string): boolean {
  if (typeof stored !== 'string') return stored instanceof Uint8Array && sameBytes(computed, stored)
  // The export writes lowercase hex; any other spelling is decoded and compared.
  return Buffer.from(computed.buffer, computed.byteOffset, computed.byteLength).toString('hex') === stored ||
    (stored.length === 2 * computed.length && /^[0-9a-fA-F]*$/.test(stored) && sameBytes(computed, Buffer.from(stored, 'hex')))
}

/**
 * Incremental verifier of one workspace's chain. Feed entries in order; it stops at the
 * first entry whose sequence, previous hash or hash (over its canonical bytes) is wrong and
 * names it. With `treeSize`, it also builds the RFC 9162 tree of the first treeSize entries
 * (`treeRoot()`), hashing each entry's bytes once for both.
 */
export class ChainVerifier {
  readonly #hasher = new EntryHasher()
  readonly #range = new CompactRange()
  readonly #treeSize: number
  #prev: Uint8Array
  #expectSeq: number
  #checked = 0
  #bad: VerifyResult['firstBad']

  /**
   * `start` verifies a run that begins mid-chain: the sequence number of its first entry and
   * the hash before it (a verifier of a whole chain starts at 1 after the genesis hash).
   */
  constructor(opts: { treeSize?: number; start?: { seq: number; prevHash: Uint8Array } } = {}) {
    this.#treeSize = opts.treeSize ?? 0
    this.#expectSeq = opts.start?.seq ?? 1
    this.#prev = opts.start?.prevHash ?? GENESIS_HASH
  }

  /**
   * Checks one entry; returns false once the chain is broken. Its stored hashes may be bytes or
   * hex (as exported): hex is compared without being decoded first.
   */
  push(r: AuditRecord & { prevHash: Uint8Array | string; hash: Uint8Array | string }): boolean {
    if (this.#bad) return false
    this.#checked++
    if (r.seq !== this.#expectSeq) {
      return this.#fail(r, r.seq > this.#expectSeq ? `entry ${this.#expectSeq} is missing` : `entry ${r.seq} is out of order`)
    }
    if (!matches(this.#prev, r.prevHash)) return this.#fail(r, 'its previous hash does not match the entry before it')
    let h: { chain: Buffer; leaf: Buffer | null }
    try {
      h = this.#hasher.hash(r, this.#prev, this.#range.size < this.#treeSize)
    } catch {
      return this.#fail(r, 'it cannot be serialised')
    }
    if (!matches(h.chain, r.hash)) return this.#fail(r, 'its content does not match its hash')
    if (h.leaf) this.#range.pushOwned(h.leaf)
    this.#prev = h.chain
    this.#expectSeq++
    return true
  }

  #fail(r: AuditRecord, reason: string): false {
    this.#bad = { seq: r.seq, id: r.id, reason }
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
  treePeaks(): ReturnType<CompactRange['peaks']> {
    return this.#range.peaks()
  }

  result(): VerifyResult {
    return { ok: !this.#bad, checked: this.#checked, head: Buffer.from(this.#prev).toString('hex'), ...(this.#bad ? { firstBad: this.#bad } : {}) }
  }
}

/** Verifies a whole chain given in order. */
export function verifyChain(records: Iterable<ChainedRecord>): VerifyResult {
  const v = new ChainVerifier()
  for (const r of records) if (!v.push(r)) break
  return v.result()
}
