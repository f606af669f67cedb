import { chainHash, entryBytes, GENESIS_HASH, type AuditRecord } from './entry.js'

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

/**
 * Incremental verifier of one workspace's chain. Feed entries in order; it stops at the
 * first entry whose sequence, previous hash or hash (over its canonical bytes) is wrong and names it.
 */
export class ChainVerifier {
  readonly #onEntry: ((bytes: Buffer, r: ChainedRecord) => void) | undefined
  #prev: Buffer = GENESIS_HASH
  #expectSeq = 1
  #checked = 0
  #bad: VerifyResult['firstBad']

  /** `onEntry` sees each verified entry's canonical bytes (e.g. to build its Merkle tree without serialising twice). */
  constructor(onEntry?: (bytes: Buffer, r: ChainedRecord) => void) {
    this.#onEntry = onEntry
  }

  /** Checks one entry; returns false once the chain is broken. */
  push(r: ChainedRecord): boolean {
    if (this.#bad) return false
    this.#checked++
    const fail = (reason: string) => {
      this.#bad = { seq: r.seq, id: r.id, reason }
      return false
    }
    if (r.seq !== this.#expectSeq) {
      return fail(r.seq > this.#expectSeq ? `entry ${this.#expectSeq} is missing` : `entry ${r.seq} is out of order`)
    }
    if (!Buffer.from(r.prevHash).equals(this.#prev)) return fail('its previous hash does not match the entry before it')
    let bytes: Buffer
    try {
      bytes = entryBytes(r)
    } catch {
      return fail('it cannot be serialised')
    }
    const h = chainHash(this.#prev, bytes)
    if (!h.equals(Buffer.from(r.hash))) return fail('its content does not match its hash')
    this.#prev = h
    this.#expectSeq++
    this.#onEntry?.(bytes, r)
    return true
  }

  result(): VerifyResult {
    return { ok: !this.#bad, checked: this.#checked, head: this.#prev.toString('hex'), ...(this.#bad ? { firstBad: this.#bad } : {}) }
  }
}

/** Verifies a whole chain given in order. */
export function verifyChain(records: Iterable<ChainedRecord>): VerifyResult {
  const v = new ChainVerifier()
  for (const r of records) if (!v.push(r)) break
  return v.result()
}
