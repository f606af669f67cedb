import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { DecryptionError } from '../errors.js'
import { u64be, uuidToBytes, bytesToUuid } from './encoding.js'

// Ciphertext format v1 (see src/crypto/DESIGN.md):
//   0      1 byte   format version = 0x01
//   1      1 byte   algorithm      = 0x01 (AES-256-GCM)
//   2     16 bytes  DEK id (UUID bytes)
//   18     4 bytes  DEK version, unsigned big-endian
//   22    12 bytes  nonce (random)
//   34     n bytes  ciphertext
//   34+n  16 bytes  GCM tag
// AAD = "coffer/v1" ‖ bytes 0..21 ‖ lp(workspace) ‖ lp(project) ‖ lp(environment)
//       ‖ lp(record id) ‖ u64be(record version) ‖ lp(field name)

export const FORMAT_V1 = 0x01
export const ALG_AES_256_GCM = 0x01
export const HEADER_LENGTH = 22
export const NONCE_LENGTH = 12
export const TAG_LENGTH = 16
export const OVERHEAD = HEADER_LENGTH + NONCE_LENGTH + TAG_LENGTH
const AAD_PREFIX = Buffer.from('coffer/v1', 'utf8')

/** A plaintext data key together with the id and version its ciphertexts name. */
export interface DataKey {
  readonly id: string
  readonly version: number
  readonly key: Buffer
}

/**
 * Where a ciphertext lives. Every part is bound into the AAD, so a ciphertext copied into
 * another workspace, project, environment, record, version or field fails to decrypt.
 */
export interface Binding {
  readonly workspaceId: string
  readonly projectId: string
  readonly environmentId: string
  readonly recordId: string
  readonly recordVersion: number | bigint
  readonly field: string
}

/** The DEK a ciphertext's header names. */
export interface KeyRef {
  readonly id: string
  readonly version: number
}

// @NOTE a key's header bytes are computed once per key object (keys live in the DEK cache),
// and the AAD is written into one buffer: the reseal benchmark spent most of its time on
// the many small allocations the naive form makes.
const headers = new WeakMap<DataKey, Buffer>()

function headerOf(dek: DataKey): Buffer {
  let h = headers.get(dek)
  if (!h) {
    h = header(dek.id, dek.version)
    headers.set(dek, h)
  }
  return h
}

function header(keyId: string, version: number): Buffer {
  if (!Number.isInteger(version) || version < 1 || version > 0xffffffff) {
    throw new TypeError('dek version must be an integer in 1..2^32-1')
  }
  const h = Buffer.alloc(HEADER_LENGTH)
  h[0] = FORMAT_V1
  h[1] = ALG_AES_256_GCM
  uuidToBytes(keyId).copy(h, 2)
  h.writeUInt32BE(version, 18)
  return h
}

/** The associated data for a header and a binding. Exported for the known-answer vectors. */
export function associatedData(headerBytes: Buffer, b: Binding): Buffer {
  const fields = [b.workspaceId, b.projectId, b.environmentId, b.recordId]
  let length = AAD_PREFIX.length + headerBytes.length + 8 + 2 + Buffer.byteLength(b.field, 'utf8')
  for (const f of fields) length += 2 + Buffer.byteLength(f, 'utf8')
  const out = Buffer.allocUnsafe(length)
  let o = AAD_PREFIX.copy(out, 0)
  o += headerBytes.copy(out, o)
  const writeLp = (f: string) => {
    const n = out.write(f, o + 2, 'utf8')
    if (n > 0xffff) throw new TypeError('length-prefixed field too long')
    out.writeUInt16BE(n, o)
    o += 2 + n
  }
  for (const f of fields) writeLp(f)
  u64be(b.recordVersion).copy(out, o)
  o += 8
  writeLp(b.field)
  return out
}

/**
 * Encrypts `plaintext` under `dek` for the place `binding` names, with a fresh random nonce.
 * `nonce` may be given only by known-answer tests.
 */
export function seal(dek: DataKey, plaintext: Uint8Array, binding: Binding, nonce: Buffer = randomBytes(NONCE_LENGTH)): Buffer {
  if (dek.key.length !== 32) throw new TypeError('dek key must be 32 bytes')
  if (nonce.length !== NONCE_LENGTH) throw new TypeError('nonce must be 12 bytes')
  const h = headerOf(dek)
  const cipher = createCipheriv('aes-256-gcm', dek.key, nonce, { authTagLength: TAG_LENGTH })
  cipher.setAAD(associatedData(h, binding))
  const body = cipher.update(plaintext)
  const rest = cipher.final() // empty for GCM; kept for correctness
  const out = Buffer.allocUnsafe(OVERHEAD + body.length + rest.length)
  h.copy(out, 0)
  nonce.copy(out, HEADER_LENGTH)
  body.copy(out, HEADER_LENGTH + NONCE_LENGTH)
  rest.copy(out, HEADER_LENGTH + NONCE_LENGTH + body.length)
  cipher.getAuthTag().copy(out, out.length - TAG_LENGTH)
  return out
}

/**
 * Reads the DEK id and version a ciphertext names, or throws DecryptionError if the bytes
 * are not a v1 ciphertext. The header is not trusted until `open` checks the tag.
 */
export function keyRefOf(ciphertext: Uint8Array): KeyRef {
  if (ciphertext.length < OVERHEAD || ciphertext[0] !== FORMAT_V1 || ciphertext[1] !== ALG_AES_256_GCM) {
    throw new DecryptionError()
  }
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength)
  return { id: bytesToUuid(buf.subarray(2, 18)), version: buf.readUInt32BE(18) }
}

/** The scope ids every record of a batch shares (the first three parts of a binding). */
export interface ScopeIds {
  readonly workspaceId: string
  readonly projectId: string
  readonly environmentId: string
}

const TWO_32 = 2 ** 32
const TWO_64 = 2 ** 64

/**
 * Writes the associated data of many records of one scope under one key: the part they share,
 * "coffer/v1" ‖ header ‖ lp(workspace) ‖ lp(project) ‖ lp(environment), is written once, and
 * each record adds only lp(record id) ‖ u64be(version) ‖ lp(field) after it, in one reused
 * buffer. Byte for byte what `associatedData` returns for the same header and binding (tested);
 * the batch reseal would otherwise rebuild the whole AAD twice per ciphertext.
 */
export class AadWriter {
  #buf: Buffer
  readonly #base: number

  /** For ciphertexts under `key` (its header is part of the AAD) in `scope`. */
  constructor(key: DataKey, scope: ScopeIds) {
    const h = headerOf(key)
    const parts = [scope.workspaceId, scope.projectId, scope.environmentId]
    let base = AAD_PREFIX.length + h.length
    for (const part of parts) base += 2 + Buffer.byteLength(part, 'utf8')
    this.#buf = Buffer.alloc(base + 256)
    let o = AAD_PREFIX.copy(this.#buf, 0)
    o += h.copy(this.#buf, o)
    for (const part of parts) o = writeLp(this.#buf, part, o)
    this.#base = o
  }

  /**
   * The AAD for one record of the scope: a view of the writer's buffer, valid until the next
   * call. Throws TypeError (RangeError for a fractional version) where `associatedData` throws.
   */
  of(recordId: string, recordVersion: number | bigint, field: string): Buffer {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: with this much room no write is truncated.
    const room = this.#base + 2 + 3 * recordId.length + 8 + 2 + 3 * field.length
    if (room > this.#buf.length) {
      const bigger = Buffer.alloc(room + 256)
      this.#buf.copy(bigger, 0, 0, this.#base)
      this.#buf = bigger
    }
    const b = this.#buf
    let o = writeLp(b, recordId, this.#base)
    if (typeof recordVersion === 'bigint') {
      if (recordVersion < 0n || recordVersion > 0xffffffffffffffffn) throw new TypeError('u64 out of range')
      b.writeBigUInt64BE(recordVersion, o)
    } else {
      if (!Number.isInteger(recordVersion)) throw new RangeError('a record version must be an integer')
      if (recordVersion < 0 || recordVersion >= TWO_64) throw new TypeError('u64 out of range')
      const hi = Math.floor(recordVersion / TWO_32)
      b.writeUInt32BE(hi, o)
      b.writeUInt32BE(recordVersion - hi * TWO_32, o + 4)
    }
    o = writeLp(b, field, o + 8)
    return b.subarray(0, o)
  }
}

/** Writes lp(s) at `o` (the caller made room); returns the offset after it. */
function writeLp(buf: Buffer, s: string, o: number): number {
  const n = buf.write(s, o + 2, 'utf8')
  if (n > 0xffff) throw new TypeError('length-prefixed field too long')
  buf.writeUInt16BE(n, o)
  return o + 2 + n
}

/** True when `bytes` holds the header `h` at `at`. */
function startsWith(bytes: Uint8Array, h: Buffer, at: number): boolean {
  if (bytes.length < at + HEADER_LENGTH) return false
  for (let i = 0; i < HEADER_LENGTH; i++) if (bytes[at + i] !== h[i]) return false
  return true
}

/**
 * True when `ciphertext`'s header names exactly `dek` (format, algorithm, key id and version):
 * a 22-byte comparison, for callers that open many ciphertexts and look each key up once.
 * Says nothing about whether the ciphertext opens.
 */
export function isSealedUnder(ciphertext: Uint8Array, dek: DataKey): boolean {
  return startsWith(ciphertext, headerOf(dek), 0)
}

/** True when `aad` is v1 associated data for the header `h`. */
function aadNames(aad: Uint8Array, h: Buffer): boolean {
  for (let i = 0; i < AAD_PREFIX.length; i++) if (aad[i] !== AAD_PREFIX[i]) return false
  return startsWith(aad, h, AAD_PREFIX.length)
}

/**
 * `seal` for batches: encrypts under `dek` with `aad`, the associated data an `AadWriter` for
 * this key wrote for the record, and writes the ciphertext (OVERHEAD + plaintext length bytes)
 * into `out` at `offset` instead of allocating it. Returns the number of bytes written.
 * Throws TypeError if `aad` does not carry this key's header (it would never open).
 */
export function sealInto(dek: DataKey, aad: Uint8Array, plaintext: Uint8Array, nonce: Uint8Array, out: Uint8Array, offset: number): number {
  if (dek.key.length !== 32) throw new TypeError('dek key must be 32 bytes')
  if (nonce.length !== NONCE_LENGTH) throw new TypeError('nonce must be 12 bytes')
  const h = headerOf(dek)
  if (!aadNames(aad, h)) throw new TypeError('the associated data names another key')
  const length = OVERHEAD + plaintext.length
  if (!Number.isInteger(offset) || offset < 0 || offset + length > out.length)
    throw new RangeError('the ciphertext does not fit in the output')
  const cipher = createCipheriv('aes-256-gcm', dek.key, nonce, { authTagLength: TAG_LENGTH })
  cipher.setAAD(aad)
  const body = cipher.update(plaintext)
  const rest = cipher.final() // empty for GCM; kept for correctness
  if (body.length + rest.length !== plaintext.length) throw new Error('AES-GCM changed the length')
  h.copy(out, offset)
  out.set(nonce, offset + HEADER_LENGTH)
  out.set(body, offset + HEADER_LENGTH + NONCE_LENGTH)
  if (rest.length) out.set(rest, offset + HEADER_LENGTH + NONCE_LENGTH + body.length)
  out.set(cipher.getAuthTag(), offset + length - TAG_LENGTH)
  return length
}

/**
 * `open` for batches: decrypts `ciphertext` with `dek` and `aad`, the associated data an
 * `AadWriter` for this key wrote for the record. The same checks and the same one
 * DecryptionError as `open`. The caller zeroes the returned plaintext after use.
 */
export function openWithAad(dek: DataKey, ciphertext: Uint8Array, aad: Uint8Array): Buffer {
  const h = headerOf(dek)
  if (ciphertext.length < OVERHEAD || !startsWith(ciphertext, h, 0) || !aadNames(aad, h)) throw new DecryptionError()
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek.key, ciphertext.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH), {
      authTagLength: TAG_LENGTH,
    })
    decipher.setAAD(aad)
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LENGTH))
    const plain = decipher.update(ciphertext.subarray(HEADER_LENGTH + NONCE_LENGTH, ciphertext.length - TAG_LENGTH))
    const rest = decipher.final()
    if (!rest.length) return plain
    const all = Buffer.concat([plain, rest])
    plain.fill(0)
    return all
  } catch {
    throw new DecryptionError()
  }
}

/**
 * Decrypts with the one key the header names. Decrypt never says why it failed: a wrong
 * key, a moved row and a flipped bit all throw the same DecryptionError.
 */
export function open(dek: DataKey, ciphertext: Uint8Array, binding: Binding): Buffer {
  if (ciphertext.length < OVERHEAD) throw new DecryptionError()
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength)
  const h = buf.subarray(0, HEADER_LENGTH)
  // The header must name exactly this key (format, algorithm, id and version).
  if (!h.equals(headerOf(dek))) throw new DecryptionError()
  const nonce = buf.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH)
  const body = buf.subarray(HEADER_LENGTH + NONCE_LENGTH, buf.length - TAG_LENGTH)
  const tag = buf.subarray(buf.length - TAG_LENGTH)
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek.key, nonce, { authTagLength: TAG_LENGTH })
    decipher.setAAD(associatedData(h, binding))
    decipher.setAuthTag(tag)
    const plain = decipher.update(body)
    const rest = decipher.final()
    return rest.length ? Buffer.concat([plain, rest]) : plain
  } catch {
    throw new DecryptionError()
  }
}
