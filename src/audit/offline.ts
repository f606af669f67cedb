import { verifyCheckpoint } from './checkpoint.js'
import { entryBytes, type AuditRecord } from './entry.js'
import { leafHash, verifyConsistency, verifyInclusion } from './merkle.js'
import { ChainVerifier, type VerifyResult } from './verify.js'

// What a third party needs to check Coffer's audit log with no server: the export file and
// the inclusion-proof file, and the functions that verify them. Shared by the CLI and tests.

/** An entry as exported and served by the API: hashes in hex. */
export interface ExportedEntry extends AuditRecord {
  prevHash: string
  hash: string
}

export interface ExportedCheckpoint {
  treeSize: number
  rootHash: string
  note: string
}

/** `coffer audit export` output. */
export interface AuditExport {
  format: 'coffer-audit-export/v1'
  workspace: { id: string; slug: string }
  exportedAt: string
  publicKey: string
  checkpoint: ExportedCheckpoint
  entries: ExportedEntry[]
}

/** `coffer audit proof` output: one entry, its inclusion proof and the checkpoint it is proven against. */
export interface InclusionProofFile {
  format: 'coffer-audit-proof/v1'
  workspace: { id: string; slug: string }
  publicKey: string
  checkpoint: ExportedCheckpoint
  entry: ExportedEntry
  leafIndex: number
  treeSize: number
  proof: string[]
}

export interface OfflineResult {
  ok: boolean
  /** The checkpoint's signature verified with the key used. */
  signatureOk: boolean
  /** The key used was given by the verifier, not taken from the file itself. */
  keyPinned: boolean
  /** The root recomputed from the entries equals the signed root. */
  rootOk: boolean
  chain: VerifyResult
  treeSize: number
  problems: string[]
}

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'))

/** The checkpoint origin of a workspace; must match src/audit/audit-tree.ts. */
export function originOf(workspaceId: string): string {
  return `coffer/audit/${workspaceId}`
}

/** The unsigned treeSize and rootHash fields of a file say what its signed note says. */
function sameCheckpoint(stated: ExportedCheckpoint, signed: { treeSize: bigint; rootHash: Uint8Array }): boolean {
  return stated?.treeSize === Number(signed.treeSize) && stated?.rootHash === Buffer.from(signed.rootHash).toString('base64')
}

/** The leaf hash of an exported entry: SHA-256(0x00 ‖ canonical entry bytes). */
export function exportedLeafHash(e: AuditRecord): Uint8Array {
  return leafHash(entryBytes(e))
}

/**
 * Verifies an export with no server: the checkpoint's Ed25519 signature (with `trustedKey`
 * when given, else the key in the file — which proves consistency, not origin), the root of
 * the first treeSize entries against the signed root, and the hash chain of every entry.
 */
export function verifyExport(exp: AuditExport, trustedKey?: string): OfflineResult {
  const problems: string[] = []
  if (exp?.format !== 'coffer-audit-export/v1' || !Array.isArray(exp.entries)) {
    return {
      ok: false,
      signatureOk: false,
      keyPinned: false,
      rootOk: false,
      chain: { ok: false, checked: 0, head: '' },
      treeSize: 0,
      problems: ['not a coffer-audit-export/v1 file'],
    }
  }
  const key = trustedKey ?? exp.publicKey
  if (trustedKey && trustedKey !== exp.publicKey) problems.push('the file names another public key than the trusted one')
  let signed: ReturnType<typeof verifyCheckpoint> = null
  try {
    signed = verifyCheckpoint(exp.checkpoint.note, key, { origin: originOf(exp.workspace.id) })
  } catch {
    signed = null
  }
  if (!signed) problems.push('the checkpoint signature does not verify')
  else if (!sameCheckpoint(exp.checkpoint, signed)) problems.push("the checkpoint's treeSize or rootHash differs from the signed note")
  const treeSize = signed ? Number(signed.treeSize) : 0

  const verifier = new ChainVerifier({ treeSize })
  for (const e of exp.entries) {
    if (e.workspaceId !== exp.workspace.id) {
      problems.push(`entry ${e.seq} belongs to another workspace`)
      break
    }
    if (!verifier.push(e)) break
  }
  const chain = verifier.result()
  if (!chain.ok) problems.push(`the hash chain breaks at entry ${chain.firstBad!.seq}: ${chain.firstBad!.reason}`)
  let rootOk = false
  if (signed) {
    const root = verifier.treeRoot()
    if (!root) problems.push(`the checkpoint covers ${treeSize} entries but the file verifies only ${verifier.treeLeaves}`)
    else rootOk = Buffer.from(root).equals(Buffer.from(signed.rootHash))
    if (root && !rootOk) problems.push('the entries do not hash to the signed root')
  }
  return { ok: problems.length === 0, signatureOk: !!signed, keyPinned: !!trustedKey, rootOk, chain, treeSize, problems }
}

/**
 * Verifies an inclusion-proof file with no server: the entry's leaf hash, the RFC 9162
 * inclusion proof against the checkpoint's root, and the checkpoint's signature.
 */
export function verifyProofFile(p: InclusionProofFile, trustedKey?: string): { ok: boolean; problems: string[] } {
  const problems: string[] = []
  if (p?.format !== 'coffer-audit-proof/v1') return { ok: false, problems: ['not a coffer-audit-proof/v1 file'] }
  if (trustedKey && trustedKey !== p.publicKey) problems.push('the file names another public key than the trusted one')
  let signed: ReturnType<typeof verifyCheckpoint> = null
  try {
    signed = verifyCheckpoint(p.checkpoint.note, trustedKey ?? p.publicKey, { origin: originOf(p.workspace.id) })
  } catch {
    signed = null
  }
  if (!signed) problems.push('the checkpoint signature does not verify')
  else if (Number(signed.treeSize) !== p.treeSize) problems.push('the proof is for another tree size than the checkpoint')
  else if (!sameCheckpoint(p.checkpoint, signed)) problems.push("the checkpoint's treeSize or rootHash differs from the signed note")
  let leaf: Uint8Array | null = null
  try {
    leaf = exportedLeafHash(p.entry)
  } catch {
    problems.push('the entry cannot be serialised')
  }
  if (signed && leaf && !verifyInclusion(p.leafIndex, p.treeSize, leaf, (p.proof ?? []).map(fromB64), signed.rootHash)) {
    problems.push('the inclusion proof does not verify')
  }
  if (p.leafIndex !== p.entry?.seq - 1) problems.push("the leaf index is not the entry's position")
  return { ok: problems.length === 0, problems }
}

/** Checks that a newer signed tree head extends an older one the verifier saw before. */
export function extendsCheckpoint(
  older: { treeSize: number; rootHash: string },
  newer: { treeSize: number; rootHash: string },
  proof: string[],
): boolean {
  if (newer.treeSize < older.treeSize) return false
  return verifyConsistency(older.treeSize, newer.treeSize, proof.map(fromB64), fromB64(older.rootHash), fromB64(newer.rootHash))
}
