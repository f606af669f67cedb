import { createHash, randomBytes } from 'node:crypto'
import { TOKEN_PREFIXES } from '../scrub.js'

// Tokens look like coffer_pat_<32 base62 chars>_<6 base62 chars>. The prefix lets secret
// scanners recognise a leaked token; the checksum (CRC-32 of prefix and body) lets them,
// and the server, reject a mistyped or made-up token without a database look-up.

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const BODY_LENGTH = 32
const CHECKSUM_LENGTH = 6

/** Token kinds and their prefixes (kept beside the scrubber in src/scrub.ts, which must know every one). */
export { TOKEN_PREFIXES }
export type TokenKind = keyof typeof TOKEN_PREFIXES

const TOKEN_RE = new RegExp(`^coffer_(${Object.keys(TOKEN_PREFIXES).join('|')})_([0-9A-Za-z]{32})_([0-9A-Za-z]{6})$`)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/** CRC-32 (IEEE) of a string's UTF-8 bytes. */
export function crc32(s: string): number {
  let c = 0xffffffff
  for (const b of Buffer.from(s, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function base62(n: number, width: number): string {
  let out = ''
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 62] + out
    n = Math.floor(n / 62)
  }
  return out
}

function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALPHABET[b % 62] // 248 = 4 × 62: no modulo bias
    }
  }
  return out
}

/** A new token of `kind` with about 190 bits of randomness. */
export function generateToken(kind: TokenKind): string {
  const head = TOKEN_PREFIXES[kind] + randomBase62(BODY_LENGTH)
  return `${head}_${base62(crc32(head), CHECKSUM_LENGTH)}`
}

/** True when `token` has the shape and a valid checksum (says nothing of whether it exists). */
export function isWellFormedToken(token: string): boolean {
  return tokenKind(token) !== null
}

/** The kind of a well-formed token (shape and checksum), or null. */
export function tokenKind(token: string): TokenKind | null {
  const m = TOKEN_RE.exec(token)
  if (!m) return null
  const head = `coffer_${m[1]}_${m[2]}`
  return base62(crc32(head), CHECKSUM_LENGTH) === m[3] ? (m[1] as TokenKind) : null
}

/** What is stored: SHA-256 of the token (its 190 random bits make a slow hash unnecessary). */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** A non-secret hint for listings: the prefix and the last four characters. */
export function displayToken(token: string): string {
  return `${token.slice(0, 11)}…${token.slice(-4)}`
}
