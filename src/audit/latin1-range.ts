import { sha256Latin1 } from '../crypto/sha256.js'
import { HASH_SIZE, perfectSubtrees, type TreeNode } from './merkle.js'

/**
 * The compact range (RFC 9162 tree's right edge) that full verification builds: CompactRange's
 * push/peaks/root over leaf hashes held as 32-character latin1 strings (character i is byte i).
 * A string digest is ~3× cheaper than a Buffer one on Node 20 (see crypto/sha256.ts), and
 * verification hashes about one tree node per entry. Peaks and root come out as bytes, equal to
 * CompactRange's for the same leaves (tested).
 */
export class Latin1Range {
  readonly #node = Buffer.alloc(1 + 2 * HASH_SIZE)
  readonly #peaks: string[] = []
  #size = 0

  constructor() {
    this.#node[0] = 0x01
  }

  /** Number of leaves pushed so far. */
  get size(): number {
    return this.#size
  }

  /** Appends leaf number `size`; throws TypeError unless it is a 32-character latin1 string. */
  push(leafHash: string): void {
    if (typeof leafHash !== 'string' || leafHash.length !== HASH_SIZE)
      throw new TypeError(`leafHash must be ${HASH_SIZE} latin1 characters`)
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('tree is full')
    let hash = leafHash
    for (let index = this.#size; index % 2 === 1; index = (index - 1) / 2) hash = this.#children(this.#peaks.pop()!, hash)
    this.#peaks.push(hash)
    this.#size++
  }

  /** SHA-256(0x01 ‖ left ‖ right), RFC 9162's interior node. */
  #children(left: string, right: string): string {
    this.#node.write(left, 1, HASH_SIZE, 'latin1')
    this.#node.write(right, 1 + HASH_SIZE, HASH_SIZE, 'latin1')
    return sha256Latin1(this.#node)
  }

  /** The right-edge perfect subtrees, leftmost (largest) first, as CompactRange.peaks() gives them. */
  peaks(): TreeNode[] {
    return perfectSubtrees(this.#size).map(({ level, index }, i) => ({ level, index, hash: bytesOf(this.#peaks[i]!) }))
  }

  /** MTH of the leaves pushed so far (SHA-256 of nothing when none). */
  root(): Uint8Array {
    if (this.#peaks.length === 0) return bytesOf(sha256Latin1(new Uint8Array(0)))
    let hash = this.#peaks[this.#peaks.length - 1]!
    for (let i = this.#peaks.length - 2; i >= 0; i--) hash = this.#children(this.#peaks[i]!, hash)
    return bytesOf(hash)
  }
}

/** A latin1 hash string as its own bytes (not a view of Buffer's shared pool: peaks cross threads). */
function bytesOf(latin1: string): Uint8Array {
  return new Uint8Array(Buffer.from(latin1, 'latin1'))
}
