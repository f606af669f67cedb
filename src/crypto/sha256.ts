import * as crypto from 'node:crypto'

// SHA-256 of one buffer. Node ≥ 20.12 has the one-shot crypto.hash, which skips the Hash
// object and its stream machinery: about 2× faster for the few hundred bytes an audit entry
// or a tree node is (full verification hashes each entry two or three times).
type OneShot = (algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Buffer
const oneShot = (crypto as unknown as { hash?: OneShot }).hash

/** SHA-256 of `data`, as a new Buffer. */
export const sha256: (data: Uint8Array) => Buffer = oneShot
  ? (data) => oneShot('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest()
