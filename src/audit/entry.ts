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
 */
export function entryBytes(r: AuditRecord): Buffer {
  const details = JSON.parse(r.details) as Json
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
    details,
  }
  return Buffer.from(canonicalJson(doc), 'utf8')
}

/** hash_n = SHA-256("coffer/audit/chain/v1" ‖ hash_{n-1} ‖ entry bytes). */
export function chainHash(prevHash: Uint8Array, bytes: Uint8Array): Buffer {
  return createHash('sha256').update(CHAIN_DOMAIN).update(prevHash).update(bytes).digest()
}
