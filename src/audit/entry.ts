import { sha256, sha256Hex, sha256Latin1 } from '../crypto/sha256.js'
import { canonicalJson, type Json } from './canonical-json.js'

/** The genesis previous hash of every workspace's chain. */
export const GENESIS_HASH = Buffer.alloc(32)
const CHAIN_DOMAIN = Buffer.from('coffer/audit/chain/v1', 'utf8')

/** An audit entry as stored and exported; `details` is canonical JSON text. */
export interface AuditRecord {
  workspaceId: string
  seq: number
  id: string
  time: string
  actor: { type: string; id: string; ip: string; userAgent: string }
  requestId: string
  action: string
  target: { type: string; id: string }
  details: string
}

/**
 * The entry's canonical bytes (documented in src/audit/DESIGN.md): canonical JSON of every
 * field but the hashes, with `v: 1`. These bytes are what the chain (and the Merkle tree)
 * commits to.
 *
 * @NOTE written out field by field in canonical key order, with `details` inserted as the
 * canonical JSON text it is stored as: the same bytes as canonicalJson() of the parsed
 * entry (a test pins the equivalence), about 5× faster, which full verification needs. A
 * stored `details` altered in any way — even into an equivalent JSON form — changes these
 * bytes and so fails the hash check.
 */
export function entryBytes(r: AuditRecord): Buffer {
  return Buffer.from(entryText(r), 'utf8')
}

/** The entry's canonical bytes as a string (UTF-8 encoded, they are entryBytes). */
export function entryText(r: AuditRecord): string {
  if (!Number.isSafeInteger(r.seq)) throw new TypeError('seq must be a safe integer')
  const s = JSON.stringify
  const a = r.actor
  const t = r.target
  return (
    `{"action":${s(r.action)},"actor":{"id":${s(a.id)},"ip":${s(a.ip)},"type":${s(a.type)},"userAgent":${s(a.userAgent)}},` +
    `"details":${r.details},"id":${s(r.id)},"requestId":${s(r.requestId)},"seq":${r.seq},` +
    `"target":{"id":${s(t.id)},"type":${s(t.type)}},"time":${s(r.time)},"v":1,"workspace":${s(r.workspaceId)}}`
  )
}

// entryText's layout as data: the text before each field, the audit_entries column it comes
// from, and how it is written (a JSON string, details as stored, the integer seq).
const TEXT_LAYOUT: ReadonlyArray<readonly [before: string, column: string, kind: 'string' | 'raw' | 'int']> = [
  ['{"action":', 'action', 'string'],
  [',"actor":{"id":', 'actor_id', 'string'],
  [',"ip":', 'actor_ip', 'string'],
  [',"type":', 'actor_type', 'string'],
  [',"userAgent":', 'actor_ua', 'string'],
  ['},"details":', 'details', 'raw'],
  [',"id":', 'id', 'string'],
  [',"requestId":', 'request_id', 'string'],
  [',"seq":', 'seq', 'int'],
  [',"target":{"id":', 'target_id', 'string'],
  [',"type":', 'target_type', 'string'],
  ['},"time":', 'time', 'string'],
  [',"v":1,"workspace":', 'workspace_id', 'string'],
]

/**
 * A SQL expression over an audit_entries row that the database evaluates to entryText of the
 * row (tested on both engines against entryText), or NULL when a column has a type entryText
 * could not have been computed over. Full verification's threads read it instead of the
 * columns: the database builds the text in C, so the thread has one string per row to hash.
 *
 * @NOTE this is sound without trusting the database's JSON encoder: a row passes only if
 * SHA-256(domain ‖ prev ‖ text) is its stored hash, i.e. the text is the very bytes hashed at
 * append. Those are a JSON document, and a JSON string decodes to one value, so each column
 * holds the value that was hashed. An encoder that differed from JSON.stringify on some value
 * could only fail a good row, and every failure is checked again by the one-thread path.
 */
export function entryTextSql(engine: 'sqlite' | 'postgres'): string {
  const lit = (text: string) => `'${text.replaceAll("'", "''")}'`
  const field = (column: string, kind: 'string' | 'raw' | 'int') =>
    kind === 'raw'
      ? column
      : kind === 'int'
        ? engine === 'sqlite'
          ? column
          : `${column}::text`
        : engine === 'sqlite'
          ? `json_quote(${column})`
          : `to_json(${column})::text`
  const text = [...TEXT_LAYOUT.map(([before, column, kind]) => `${lit(before)} || ${field(column, kind)}`), lit('}')].join(' || ')
  // SQLite's columns take any type: only text details and an integer seq are what entryText saw.
  return engine === 'sqlite' ? `CASE WHEN typeof(details) = 'text' AND typeof(seq) = 'integer' THEN ${text} END` : `(${text})`
}

/** The same bytes by the general canonicalJson (the reference entryBytes is tested against). */
export function entryBytesReference(r: AuditRecord): Buffer {
  const doc: Json = {
    v: 1,
    workspace: r.workspaceId,
    seq: r.seq,
    id: r.id,
    time: r.time,
    actor: { type: r.actor.type, id: r.actor.id, ip: r.actor.ip, userAgent: r.actor.userAgent },
    requestId: r.requestId,
    action: r.action,
    target: { type: r.target.type, id: r.target.id },
    details: JSON.parse(r.details) as Json,
  }
  return Buffer.from(canonicalJson(doc), 'utf8')
}

/** hash_n = SHA-256("coffer/audit/chain/v1" ‖ hash_{n-1} ‖ entry bytes). */
export function chainHash(prevHash: Uint8Array, bytes: Uint8Array): Buffer {
  return sha256(Buffer.concat([CHAIN_DOMAIN, prevHash, bytes]))
}

const HASH_LENGTH = 32
const BYTES_AT = CHAIN_DOMAIN.length + HASH_LENGTH

/**
 * An entry's chain hash and RFC 9162 leaf hash, computed from one scratch buffer: the entry's
 * bytes are written once, right after the chain domain and the previous hash, so the chain
 * hash is one SHA-256 over a contiguous slice; then the byte before them becomes 0x00 and the
 * leaf hash SHA-256(0x00 ‖ bytes) is another. Appends use `hash` (bytes); full verification
 * uses `chainHexOfText` and `leafLatin1`, whose string digests cost a third of a Buffer's (see
 * crypto/sha256.ts). Not reentrant: one instance per thread, used synchronously.
 */
export class EntryHasher {
  #buf = Buffer.allocUnsafe(16 * 1024)
  #end = 0
  #leafReady = false

  /** hash_n for `r` after `prevHash`, and its leaf hash when `withLeaf`. Throws like entryBytes. */
  hash(r: AuditRecord, prevHash: Uint8Array, withLeaf: boolean): { chain: Buffer; leaf: Buffer | null } {
    if (prevHash.length !== HASH_LENGTH) throw new TypeError('the previous hash must be 32 bytes')
    this.#load(entryText(r))
    this.#buf.set(prevHash, CHAIN_DOMAIN.length)
    const chain = sha256(this.#buf.subarray(0, this.#end))
    if (!withLeaf) return { chain, leaf: null }
    this.#buf[BYTES_AT - 1] = 0x00
    return { chain, leaf: sha256(this.#buf.subarray(BYTES_AT - 1, this.#end)) }
  }

  /**
   * hash_n, as 64 lowercase hex digits, of the entry whose canonical text is `text` (entryText,
   * or entryTextSql's value) after the hash `prevHex` (64 hex digits). Throws TypeError if
   * prevHex is not a hash in hex.
   */
  chainHexOfText(text: string, prevHex: string): string {
    this.#leafReady = false
    this.#load(text)
    if (prevHex.length !== 2 * HASH_LENGTH || this.#buf.write(prevHex, CHAIN_DOMAIN.length, 'hex') !== HASH_LENGTH) {
      throw new TypeError('the previous hash must be 64 hex digits')
    }
    const chain = sha256Hex(this.#buf.subarray(0, this.#end))
    this.#leafReady = true
    return chain
  }

  /** The leaf hash of the entry chainHexOfText just hashed, as a latin1 string (character i is byte i). */
  leafLatin1(): string {
    if (!this.#leafReady) throw new Error('leafLatin1 follows chainHexOfText')
    this.#leafReady = false
    this.#buf[BYTES_AT - 1] = 0x00
    return sha256Latin1(this.#buf.subarray(BYTES_AT - 1, this.#end))
  }

  /** Writes the chain domain and an entry's text as UTF-8 into the scratch buffer, leaving room for the previous hash. */
  #load(text: string): void {
    this.#leafReady = false
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (BYTES_AT + 3 * text.length > this.#buf.length) this.#buf = Buffer.allocUnsafe(BYTES_AT + 3 * text.length)
    CHAIN_DOMAIN.copy(this.#buf, 0)
    this.#end = BYTES_AT + this.#buf.write(text, BYTES_AT, 'utf8')
  }
}
