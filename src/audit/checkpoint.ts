// Signed tree heads for the audit log: C2SP signed notes (https://c2sp.org/signed-note) carrying
// C2SP checkpoints (https://c2sp.org/tlog-checkpoint), signed with Ed25519 note keys in the
// format of Go's golang.org/x/mod/sumdb/note. Pure: no database, no network, only node:crypto.
//
// A signed checkpoint looks like this (the body, a blank line, then signature lines):
//
//   <origin>\n
//   <tree size, decimal>\n
//   <root hash, standard padded base64>\n
//   [<extension line>\n ...]
//   \n
//   — <key name> <base64(4-byte key ID ‖ signature)>\n   (one or more; U+2014, then a space)
//
// Conventions used throughout:
// - Bad *arguments* (a malformed key string, an invalid origin, a tree size out of range) are
//   programming or configuration errors: they throw TypeError naming the argument, early, before
//   anything is signed or verified. Messages never contain signer key material.
// - A bad *note* is untrusted input: opening one throws CheckpointError (code
//   ERR_CHECKPOINT_INVALID) whatever is wrong — bad syntax, a bad or missing signature, a size
//   over the limit — and the error does not say which, so it cannot be used as an oracle.
// - Parsing is strict: every field must be in the one canonical form a conforming signer emits
//   (decimal without leading zeros, padded standard base64 with zero padding bits). So the bytes
//   of an accepted note are the only encoding of their content, and changing any byte of a note
//   that carries a single signature makes it fail to open.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { isUint8Array } from '../crypto/encoding.js'

/** The stable code of every CheckpointError. */
export const CHECKPOINT_INVALID = 'ERR_CHECKPOINT_INVALID'

/** Largest signed note, in UTF-8 bytes, that is opened (and that signNote produces): 1 MiB. */
export const NOTE_MAX_BYTES = 1024 * 1024

/**
 * Most signature lines a note may carry (the signed-note spec requires accepting at least 16;
 * Go's sumdb/note allows 100). A note with more is rejected before any signature is checked.
 */
export const NOTE_MAX_SIGNATURES = 100

/** Length in bytes of a checkpoint's root hash (SHA-256, RFC 9162). */
export const ROOT_HASH_SIZE = 32

/**
 * A signed note or checkpoint could not be opened: it is malformed, too large, not signed by the
 * given key, or a signature by that key does not verify. Deliberately says nothing about which.
 */
export class CheckpointError extends Error {
  readonly code: typeof CHECKPOINT_INVALID = CHECKPOINT_INVALID
  constructor() {
    super('The signed checkpoint is invalid.')
    this.name = 'CheckpointError'
  }
}

/** An Ed25519 note verifier key, as returned by parseVerifierKey (frozen; holds no secret). */
export interface NoteVerifierKey {
  /** The key name (non-empty; no Unicode spaces, no '+', no control characters). */
  readonly name: string
  /** The key ID: first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). */
  readonly keyId: number
  /** The raw 32-byte Ed25519 public key (a copy; changing it changes nothing). */
  readonly publicKey: Uint8Array
  /** The canonical verifier key string `<name>+<8 lowercase hex>+<base64(0x01 ‖ public key)>`. */
  readonly verifierKey: string
}

/**
 * An Ed25519 note signer, as returned by parseSignerKey. Frozen, and it holds no key material:
 * the private key stays inside this module, so logging the object reveals nothing secret.
 */
export interface NoteSignerKey {
  /** The key name. */
  readonly name: string
  /** The key ID of the matching verifier key. */
  readonly keyId: number
  /** The raw 32-byte Ed25519 public key (a copy). */
  readonly publicKey: Uint8Array
  /** The verifier key string of the matching public key (safe to publish). */
  readonly verifierKey: string
}

/** A freshly generated note key pair. */
export interface NoteKeyPair {
  /** `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ 32-byte seed)>` — secret: store it as one. */
  readonly signerKey: string
  /** `<name>+<hex key ID>+<base64(0x01 ‖ 32-byte public key)>` — publish it to verifiers. */
  readonly verifierKey: string
}

/** What formatCheckpoint puts in a checkpoint body. */
export interface CheckpointFields {
  /** The log's origin line: non-empty, well-formed, no newline or other control character. */
  readonly origin: string
  /** Number of leaves: a safe non-negative integer or a bigint in [0, 2^64 - 1]. */
  readonly treeSize: bigint | number
  /** The RFC 9162 root hash at treeSize: exactly 32 bytes. */
  readonly rootHash: Uint8Array
  /** Extension lines (each non-empty, same rules as origin). Coffer emits none. */
  readonly extensions?: readonly string[]
}

/** A checkpoint whose body was verified against a trusted verifier key. */
export interface Checkpoint {
  readonly origin: string
  readonly treeSize: bigint
  /** The 32-byte root hash (a fresh copy). */
  readonly rootHash: Uint8Array
  /** Extension lines after the root hash, in order (usually none). */
  readonly extensions: readonly string[]
  /** The signed note text, i.e. the checkpoint body including its final newline. */
  readonly body: string
}

/** A signed note whose text was verified against a trusted verifier key. */
export interface OpenedNote {
  /** The note text (including its final newline, without the blank line). */
  readonly text: string
}

/** Options for openCheckpoint and verifyCheckpoint. */
export interface OpenCheckpointOptions {
  /** If set, the checkpoint's origin line must equal this exactly, or the note is rejected. */
  readonly origin?: string
}

/** A verifier key: a vkey string, or an object returned by parseVerifierKey. */
export type VerifierKeyInput = string | NoteVerifierKey
/** A signer key: a `PRIVATE+KEY+…` string, or an object returned by parseSignerKey. */
export type SignerKeyInput = string | NoteSignerKey

// ---------------------------------------------------------------------------------------------
// Encoding helpers

const ALG_ED25519 = 0x01
const ED25519_KEY_SIZE = 32
const ED25519_SIGNATURE_SIZE = 64
const MAX_U64 = (1n << 64n) - 1n
const SIG_PREFIX = '\u2014 '
const SIGNER_PREFIX = 'PRIVATE+KEY+'
// DER framing of a raw Ed25519 key (RFC 8410): PKCS#8 around a 32-byte seed, SPKI around a
// 32-byte public key.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** ASCII control characters other than newline: forbidden anywhere in a signed note. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find (and refuse) control characters
const CONTROL = /[\x00-\x09\x0B-\x1F]/
/** A lone surrogate: a string containing one has no UTF-8 encoding. */
const LONE_SURROGATE = /\p{Cs}/u
/** Unicode White_Space, the property Go's unicode.IsSpace tests (forbidden in key names). */
const WHITE_SPACE = /\p{White_Space}/u
const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/
const HEX8 = /^[0-9a-fA-F]{8}$/
/** Padded standard base64 of exactly 32 bytes (the padding bits are checked separately). */
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The bytes of s if it is the canonical standard base64 encoding of them (alphabet A–Z a–z 0–9
 * + /, '=' padding present, zero padding bits, no whitespace), else undefined. Buffer's decoder
 * is lenient, so canonicity is checked by re-encoding.
 */
function decodeBase64(s: string): Buffer | undefined {
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined
  const bytes = Buffer.from(s, 'base64')
  return bytes.toString('base64') === s ? bytes : undefined
}

/** True if s is acceptable inside a signed note line: well-formed, no control characters. */
function isCleanLine(s: string): boolean {
  return !s.includes('\n') && !CONTROL.test(s) && !LONE_SURROGATE.test(s)
}

/** Key names: non-empty, well-formed, no Unicode spaces, no '+' (signed-note spec), no controls. */
function isValidKeyName(name: string): boolean {
  return name.length > 0 && !name.includes('+') && !WHITE_SPACE.test(name) && isCleanLine(name)
}

/** First 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). */
function computeKeyId(name: string, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(Buffer.from(name, 'utf8')).update(Uint8Array.of(0x0a, ALG_ED25519)).update(publicKey).digest()
  return digest.readUInt32BE(0)
}

function hex8(keyId: number): string {
  return keyId.toString(16).padStart(8, '0')
}

function formatVerifierKey(name: string, keyId: number, publicKey: Uint8Array): string {
  const data = Buffer.concat([Uint8Array.of(ALG_ED25519), publicKey]).toString('base64')
  return `${name}+${hex8(keyId)}+${data}`
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' })
}

function privateKeyObject(seed: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed])
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}

/** The 32 key bytes after a fixed DER prefix (node:crypto's own export, so a mismatch is a bug). */
function unframe(der: Buffer, prefix: Buffer, what: string): Uint8Array {
  if (der.length !== prefix.length + ED25519_KEY_SIZE || !der.subarray(0, prefix.length).equals(prefix)) {
    throw new Error(`unexpected Ed25519 ${what} encoding`)
  }
  return new Uint8Array(der.subarray(prefix.length))
}

/** The raw 32-byte public key inside an Ed25519 KeyObject (public or private). */
function rawPublicKey(key: KeyObject): Uint8Array {
  const der = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' })
  return unframe(der, SPKI_ED25519_PREFIX, 'public key')
}

/** The raw 32-byte seed inside an Ed25519 private KeyObject. */
function rawSeed(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'pkcs8' })
  try {
    return unframe(der, PKCS8_ED25519_PREFIX, 'private key')
  } finally {
    der.fill(0)
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

// Objects made by the parse functions, mapped to the KeyObject they stand for. Only these
// objects are accepted in place of key strings, so a hand-made look-alike cannot pair one name
// with another key.
const verifierKeys = new WeakMap<object, KeyObject>()
const signerKeys = new WeakMap<object, KeyObject>()

function requireKeyName(name: unknown, what: string): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string`)
  if (!isValidKeyName(name)) {
    throw new TypeError(`${what} must be non-empty, with no spaces, '+' or control characters`)
  }
  return name
}

/**
 * Generates a new Ed25519 note key pair for `name` (RECOMMENDED by the spec: a schema-less URL
 * such as `coffer.example/audit/ws_123`, usually the checkpoint origin). The key strings are in
 * the format of Go's sumdb/note GenerateKey, so Go tooling reads them too.
 * Throws TypeError if name is not a valid key name (empty, or has spaces, '+' or controls).
 */
export function generateNoteKey(name: string): NoteKeyPair {
  requireKeyName(name, 'name')
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const pub = rawPublicKey(publicKey)
  const seed = rawSeed(privateKey)
  const keyId = computeKeyId(name, pub)
  const data = Buffer.concat([Uint8Array.of(ALG_ED25519), seed])
  const signerKey = `${SIGNER_PREFIX}${name}+${hex8(keyId)}+${data.toString('base64')}`
  data.fill(0)
  seed.fill(0)
  return Object.freeze({ signerKey, verifierKey: formatVerifierKey(name, keyId, pub) })
}

/** Splits `<name>+<hash>+<data>`; the data may itself contain '+' (base64), names cannot. */
function splitKey(s: string): [string, string, string] | undefined {
  const a = s.indexOf('+')
  if (a < 0) return undefined
  const b = s.indexOf('+', a + 1)
  if (b < 0) return undefined
  return [s.slice(0, a), s.slice(a + 1, b), s.slice(b + 1)]
}

/** The 32 key bytes of `data` = base64(0x01 ‖ 32 bytes), or a TypeError saying what is wrong. */
function decodeKeyData(data: string, what: string, kind: string): Uint8Array {
  const bytes = decodeBase64(data)
  if (bytes === undefined) throw new TypeError(`${what}: the key data is not canonical standard base64`)
  try {
    if (bytes[0] !== ALG_ED25519) throw new TypeError(`${what}: unsupported key algorithm (only Ed25519, 0x01)`)
    if (bytes.length !== 1 + ED25519_KEY_SIZE) {
      throw new TypeError(`${what}: an Ed25519 ${kind} must be ${ED25519_KEY_SIZE} bytes`)
    }
    return new Uint8Array(bytes.subarray(1))
  } finally {
    bytes.fill(0)
  }
}

function parseVerifierKeyAs(vkey: unknown, what: string): NoteVerifierKey {
  if (typeof vkey !== 'string') throw new TypeError(`${what} must be a string`)
  if (vkey.startsWith(SIGNER_PREFIX)) {
    throw new TypeError(`${what} is a signer (private) key, not a verifier key: keep it secret`)
  }
  const parts = splitKey(vkey)
  if (parts === undefined) throw new TypeError(`${what} must have the form <name>+<key ID hex>+<base64 key>`)
  const [name, hash, data] = parts
  if (!isValidKeyName(name)) throw new TypeError(`${what}: invalid key name`)
  if (!HEX8.test(hash)) throw new TypeError(`${what}: the key ID must be 8 hex digits`)
  const publicKey = decodeKeyData(data, what, 'public key')
  const keyId = computeKeyId(name, publicKey)
  if (keyId !== Number.parseInt(hash, 16)) throw new TypeError(`${what}: the key ID does not match the name and public key`)
  let keyObject: KeyObject
  try {
    keyObject = publicKeyObject(publicKey)
  } catch {
    throw new TypeError(`${what}: the public key is not a valid Ed25519 key`)
  }
  const parsed: NoteVerifierKey = keyView(name, keyId, publicKey)
  verifierKeys.set(parsed, keyObject)
  return parsed
}

/**
 * Parses a verifier key `<name>+<8 hex digits>+<base64(0x01 ‖ 32-byte Ed25519 public key)>`
 * (Go's sumdb/note vkey; hex digits of either case, as Go accepts). Guarantees: the name is
 * valid, the key is Ed25519 and the key ID equals SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4].
 * Throws TypeError naming the problem otherwise.
 */
export function parseVerifierKey(vkey: string): NoteVerifierKey {
  return parseVerifierKeyAs(vkey, 'verifierKey')
}

/** The public, frozen face of a parsed key: name, key ID, a copy of the public key, its vkey. */
function keyView(name: string, keyId: number, publicKey: Uint8Array): NoteVerifierKey {
  return Object.freeze({
    name,
    keyId,
    get publicKey() {
      return publicKey.slice()
    },
    verifierKey: formatVerifierKey(name, keyId, publicKey),
  })
}

function parseSignerKeyAs(skey: unknown, what: string): NoteSignerKey {
  if (typeof skey !== 'string') throw new TypeError(`${what} must be a string`)
  if (!skey.startsWith(SIGNER_PREFIX)) throw new TypeError(`${what} must start with ${SIGNER_PREFIX}`)
  const parts = splitKey(skey.slice(SIGNER_PREFIX.length))
  if (parts === undefined) throw new TypeError(`${what} must have the form PRIVATE+KEY+<name>+<key ID hex>+<base64 key>`)
  const [name, hash, data] = parts
  if (!isValidKeyName(name)) throw new TypeError(`${what}: invalid key name`)
  if (!HEX8.test(hash)) throw new TypeError(`${what}: the key ID must be 8 hex digits`)
  const seed = decodeKeyData(data, what, 'seed')
  let privateKey: KeyObject
  try {
    privateKey = privateKeyObject(seed)
  } catch {
    throw new TypeError(`${what}: the seed is not a valid Ed25519 seed`)
  } finally {
    seed.fill(0)
  }
  const publicKey = rawPublicKey(privateKey)
  const keyId = computeKeyId(name, publicKey)
  // The key ID is of the *public* key, so it can only be checked once that is derived.
  if (keyId !== Number.parseInt(hash, 16)) throw new TypeError(`${what}: the key ID does not match the name and key`)
  const parsed: NoteSignerKey = keyView(name, keyId, publicKey)
  signerKeys.set(parsed, privateKey)
  return parsed
}

/**
 * Parses a signer key `PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x01 ‖ 32-byte seed)>` (Go's
 * sumdb/note format). Guarantees the same as parseVerifierKey for the derived public key; the
 * returned object exposes no key material. Throws TypeError naming the problem otherwise; the
 * message never contains the key.
 */
export function parseSignerKey(skey: string): NoteSignerKey {
  return parseSignerKeyAs(skey, 'signerKey')
}

function resolveVerifier(key: unknown, what: string): { key: NoteVerifierKey; object: KeyObject } {
  if (typeof key === 'string') key = parseVerifierKeyAs(key, what)
  const object = typeof key === 'object' && key !== null ? verifierKeys.get(key) : undefined
  if (object === undefined) throw new TypeError(`${what} must be a verifier key string or a key returned by parseVerifierKey`)
  return { key: key as NoteVerifierKey, object }
}

function resolveSigner(key: unknown, what: string): { key: NoteSignerKey; object: KeyObject } {
  if (typeof key === 'string') key = parseSignerKeyAs(key, what)
  const object = typeof key === 'object' && key !== null ? signerKeys.get(key) : undefined
  if (object === undefined) throw new TypeError(`${what} must be a signer key string or a key returned by parseSignerKey`)
  return { key: key as NoteSignerKey, object }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint bodies

function requireLine(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`)
  if (value.length === 0) throw new TypeError(`${what} must not be empty`)
  if (!isCleanLine(value)) throw new TypeError(`${what} must be one line of well-formed text without control characters`)
  return value
}

function requireTreeSize(value: unknown): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  if (typeof value === 'bigint' && value >= 0n && value <= MAX_U64) return value
  throw new TypeError('treeSize must be a safe non-negative integer or a bigint in [0, 2^64 - 1]')
}

/**
 * The checkpoint body (note text) for the fields: origin, tree size in decimal, root hash in
 * padded standard base64, then any extension lines, each ending in a newline. The result is
 * exactly what openCheckpoint accepts and returns as `body`.
 * Throws TypeError naming the field if origin, treeSize, rootHash or extensions is invalid.
 */
export function formatCheckpoint(fields: CheckpointFields): string {
  if (typeof fields !== 'object' || fields === null) throw new TypeError('fields must be an object')
  const origin = requireLine(fields.origin, 'origin')
  const treeSize = requireTreeSize(fields.treeSize)
  const rootHash: unknown = fields.rootHash
  if (!isUint8Array(rootHash) || new Uint8Array(rootHash).length !== ROOT_HASH_SIZE) {
    throw new TypeError(`rootHash must be a ${ROOT_HASH_SIZE}-byte Uint8Array`)
  }
  const extensionsIn: unknown = fields.extensions ?? []
  if (!Array.isArray(extensionsIn)) throw new TypeError('extensions must be an array of strings')
  const extensions = extensionsIn.map((line: unknown, i) => requireLine(line, `extensions[${i}]`))
  const lines = [origin, treeSize.toString(10), Buffer.from(new Uint8Array(rootHash)).toString('base64'), ...extensions]
  return lines.map((line) => `${line}\n`).join('')
}

/** The checkpoint in a verified note text, or undefined if the text is not a checkpoint. */
function parseCheckpointBody(body: string): Checkpoint | undefined {
  if (!body.endsWith('\n')) return undefined
  const lines = body.slice(0, -1).split('\n')
  if (lines.length < 3 || lines.some((line) => line.length === 0)) return undefined
  const [origin, size, root] = lines as [string, string, string, ...string[]]
  if (!DECIMAL.test(size)) return undefined
  const treeSize = BigInt(size)
  if (treeSize > MAX_U64) return undefined
  if (!BASE64_32.test(root)) return undefined
  const rootHash = decodeBase64(root)
  if (rootHash === undefined || rootHash.length !== ROOT_HASH_SIZE) return undefined
  return Object.freeze({
    origin,
    treeSize,
    rootHash: new Uint8Array(rootHash),
    extensions: Object.freeze(lines.slice(3)),
    body,
  })
}

// ---------------------------------------------------------------------------------------------
// Signed notes

/** The well-formed text of a note body to sign, or a TypeError. */
function requireNoteText(body: unknown): string {
  if (typeof body !== 'string') throw new TypeError('body must be a string')
  if (body.length === 0 || !body.endsWith('\n')) throw new TypeError('body must be non-empty and end with a newline')
  if (CONTROL.test(body) || LONE_SURROGATE.test(body)) {
    throw new TypeError('body must be well-formed text without control characters other than newline')
  }
  return body
}

/**
 * Signs a note text with one or more signer keys (in that order) and returns the signed note:
 * the text, a blank line, then one signature line `— <name> <base64(key ID ‖ Ed25519 sig)>` per
 * key. The signatures cover the text including its final newline; Ed25519 is deterministic, so
 * the same text and key always give the same note (byte for byte what Go's note.Sign gives).
 * Throws TypeError if body is not a non-empty well-formed text ending in a newline without
 * control characters other than newline, if a key is invalid or given twice, or if the signed
 * note would exceed NOTE_MAX_BYTES.
 */
export function signNote(body: string, signers: SignerKeyInput | readonly SignerKeyInput[]): string {
  const text = requireNoteText(body)
  const list: unknown[] = Array.isArray(signers) ? signers : [signers]
  if (list.length === 0) throw new TypeError('signers must name at least one signer key')
  const resolved = list.map((s, i) => resolveSigner(s, Array.isArray(signers) ? `signers[${i}]` : 'signerKey'))
  const seen = new Set<string>()
  for (const { key } of resolved) {
    const id = `${key.name}+${hex8(key.keyId)}`
    if (seen.has(id)) throw new TypeError(`signers: the key ${id} is given twice`)
    seen.add(id)
  }
  const message = Buffer.from(text, 'utf8')
  let note = `${text}\n`
  for (const { key, object } of resolved) {
    const id = Buffer.alloc(4)
    id.writeUInt32BE(key.keyId, 0)
    const signature = sign(null, message, object)
    note += `${SIG_PREFIX}${key.name} ${Buffer.concat([id, signature]).toString('base64')}\n`
  }
  if (Buffer.byteLength(note, 'utf8') > NOTE_MAX_BYTES) {
    throw new TypeError(`body is too large: a signed note may have at most ${NOTE_MAX_BYTES} bytes`)
  }
  return note
}

/**
 * The verified text of a signed note, or undefined. Rules (c2sp.org/signed-note, as Go's
 * note.Open): at most NOTE_MAX_BYTES of valid UTF-8 without control characters other than
 * newline; the text is everything up to and including the newline before the *last* blank line;
 * after it come 1..NOTE_MAX_SIGNATURES lines `— <key name> <canonical base64 of ≥ 5 bytes>\n`.
 * A line whose name and key ID both match the verifier key must carry a valid Ed25519 signature
 * of the text — every such line, duplicates included; lines of other keys are ignored; and at
 * least one line must be by the verifier key.
 */
function openNoteText(note: unknown, verifier: NoteVerifierKey, keyObject: KeyObject): string | undefined {
  let s: string
  if (typeof note === 'string') {
    if (note.length > NOTE_MAX_BYTES || LONE_SURROGATE.test(note)) return undefined
    if (Buffer.byteLength(note, 'utf8') > NOTE_MAX_BYTES) return undefined
    s = note
  } else if (isUint8Array(note)) {
    if (note.length > NOTE_MAX_BYTES) return undefined
    try {
      s = utf8Decoder.decode(note)
    } catch {
      return undefined
    }
  } else {
    return undefined
  }
  if (CONTROL.test(s)) return undefined

  const split = s.lastIndexOf('\n\n')
  if (split < 0) return undefined
  const text = s.slice(0, split + 1)
  const block = s.slice(split + 2)
  if (block.length === 0 || !block.endsWith('\n')) return undefined
  const lines = block.slice(0, -1).split('\n')
  if (lines.length > NOTE_MAX_SIGNATURES) return undefined

  // Parse every line before checking any signature, so a malformed note costs no crypto.
  const mine: Buffer[] = []
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) return undefined
    const rest = line.slice(SIG_PREFIX.length)
    const space = rest.indexOf(' ')
    if (space < 0) return undefined
    const name = rest.slice(0, space)
    const raw = decodeBase64(rest.slice(space + 1))
    if (!isValidKeyName(name) || raw === undefined || raw.length < 5) return undefined
    if (name === verifier.name && raw.readUInt32BE(0) === verifier.keyId) {
      const signature = raw.subarray(4)
      if (signature.length !== ED25519_SIGNATURE_SIZE) return undefined
      mine.push(signature)
    }
  }
  if (mine.length === 0) return undefined
  const message = Buffer.from(text, 'utf8')
  for (const signature of mine) {
    let ok = false
    try {
      ok = verify(null, message, keyObject, signature)
    } catch {
      ok = false
    }
    if (!ok) return undefined
  }
  return text
}

/**
 * Opens a signed note (any text, not only checkpoints) with a trusted verifier key and returns
 * its text. `note` is the note as a string or as UTF-8 bytes. Throws CheckpointError
 * (ERR_CHECKPOINT_INVALID) for any malformed note or missing/bad signature — the same rules as
 * openCheckpoint, without the checkpoint body checks; TypeError if verifierKey is invalid.
 */
export function openNote(note: string | Uint8Array, verifierKey: VerifierKeyInput): OpenedNote {
  const { key, object } = resolveVerifier(verifierKey, 'verifierKey')
  const text = openNoteText(note, key, object)
  if (text === undefined) throw new CheckpointError()
  return Object.freeze({ text })
}

function requireOptions(options: unknown): string | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const origin: unknown = (options as { origin?: unknown }).origin
  if (origin === undefined) return undefined
  return requireLine(origin, 'options.origin')
}

function open(note: unknown, verifierKey: unknown, options: unknown): Checkpoint | undefined {
  const { key, object } = resolveVerifier(verifierKey, 'verifierKey')
  const expectedOrigin = requireOptions(options)
  const text = openNoteText(note, key, object)
  if (text === undefined) return undefined
  const checkpoint = parseCheckpointBody(text)
  if (checkpoint === undefined) return undefined
  if (expectedOrigin !== undefined && checkpoint.origin !== expectedOrigin) return undefined
  return checkpoint
}

/**
 * Opens a signed checkpoint with a trusted verifier key. `note` is the note as a string or as
 * UTF-8 bytes. On success, guarantees: the note is well-formed (c2sp.org/signed-note), at least
 * one signature line is by the verifier key (same name and key ID), every line by that key
 * verifies over the body, signatures by other keys were ignored, and the body is a canonical
 * checkpoint (c2sp.org/tlog-checkpoint): a non-empty origin (equal to options.origin if given),
 * a decimal tree size without leading zeros that fits in 64 bits, a root hash of exactly 32
 * bytes in padded standard base64, and non-empty extension lines.
 * Throws CheckpointError (code ERR_CHECKPOINT_INVALID) otherwise, without saying what is wrong;
 * throws TypeError naming the argument if verifierKey or options is invalid.
 */
export function openCheckpoint(note: string | Uint8Array, verifierKey: VerifierKeyInput, options?: OpenCheckpointOptions): Checkpoint {
  const checkpoint = open(note, verifierKey, options)
  if (checkpoint === undefined) throw new CheckpointError()
  return checkpoint
}

/**
 * As openCheckpoint, but returns null instead of throwing CheckpointError when the note does
 * not open. Still throws TypeError if verifierKey or options is invalid (a programming or
 * configuration error, not a property of the note).
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  verifierKey: VerifierKeyInput,
  options?: OpenCheckpointOptions,
): Checkpoint | null {
  return open(note, verifierKey, options) ?? null
}
