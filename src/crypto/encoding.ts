// Byte encodings shared by the envelope, the key wrapping and the audit log.

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** u16be(byte length) ‖ UTF-8 bytes; throws for strings longer than 65535 bytes. */
export function lp(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8')
  if (bytes.length > 0xffff) throw new TypeError('length-prefixed field too long')
  const out = Buffer.alloc(2 + bytes.length)
  out.writeUInt16BE(bytes.length, 0)
  bytes.copy(out, 2)
  return out
}

/** Unsigned 64-bit big-endian; throws for negative or too large values. */
export function u64be(n: number | bigint): Buffer {
  const v = typeof n === 'bigint' ? n : BigInt(n)
  if (v < 0n || v > 0xffffffffffffffffn) throw new TypeError('u64 out of range')
  const out = Buffer.alloc(8)
  out.writeBigUInt64BE(v)
  return out
}

/** The 16 bytes of a lowercase canonical UUID string. */
export function uuidToBytes(id: string): Buffer {
  if (!UUID_RE.test(id)) throw new TypeError('not a canonical lowercase UUID')
  return Buffer.from(id.replaceAll('-', ''), 'hex')
}

/** The canonical lowercase string of 16 UUID bytes. */
export function bytesToUuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** True when `s` is a canonical lowercase UUID. */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s)
}

// %TypedArray%.prototype[@@toStringTag] reads the internal [[TypedArrayName]] slot, so this
// recognises Buffers and Uint8Arrays from other realms, and cannot be fooled by a subclass or an
// object that overrides `length` or Symbol.toStringTag.
const typedArrayTag: ((this: unknown) => unknown) | undefined = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype) as object,
  Symbol.toStringTag,
)?.get

/** True for a real Uint8Array (or Buffer), from any realm; false for look-alikes. */
export function isUint8Array(value: unknown): value is Uint8Array {
  return typedArrayTag !== undefined ? typedArrayTag.call(value) === 'Uint8Array' : value instanceof Uint8Array
}
