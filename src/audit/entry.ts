import { createHash } from 'node:crypto'
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
  if (!Number.isSafeInteger(r.seq)) throw new TypeError('seq must be a safe integer')
  const s = JSON.stringify
  const a = r.actor
  const t = r.target
  return Buffer.from(
    `{"action":${s(r.action)},"actor":{"id":${s(a.id)},"ip":${s(a.ip)},"type":${s(a.type)},"userAgent":${s(a.userAgent)}},` +
      `"details":${r.details},"id":${s(r.id)},"requestId":${s(r.requestId)},"seq":${r.seq},` +
      `"target":{"id":${s(t.id)},"type":${s(t.type)}},"time":${s(r.time)},"v":1,"workspace":${s(r.workspaceId)}}`,
    'utf8',
  )
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
  return createHash('sha256').update(CHAIN_DOMAIN).update(prevHash).update(bytes).digest()
}
