import { readFileSync, writeFileSync } from 'node:fs'
import { verifyCheckpoint } from '../../audit/checkpoint.js'
import {
  extendsCheckpoint,
  originOf,
  verifyProofFile,
  type AuditExport,
  type ExportedEntry,
  type InclusionProofFile,
  type OfflineResult,
} from '../../audit/offline.js'
import { ChainVerifier } from '../../audit/verify.js'
import { verifyExportFile, writeExportFile } from '../../audit/export-file.js'
import { VerifyWorkers } from '../../audit/verify-workers.js'
import { openRestoreRecord, restoreCovers, type RestoreStatement } from '../../audit/restore-record.js'
import { loadSeen, saveSeen, type SeenCheckpoint } from '../audit-state.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'
import { connect, resolveWorkspace, type ScopeOptions } from '../session.js'
import { CofferApiError, type CofferClient } from '../../client/client.js'
import type { PendingAudit } from '../../api/audit.js'

type Opts = ScopeOptions & { json?: boolean }

function broken(message: string): ExitError {
  // The code is part of the line, as for the server's errors (`coffer: <message> (<code>)`).
  return new ExitError(`${message} (ERR_AUDIT_CHAIN_BROKEN)`, { exitCode: 2, code: 'ERR_AUDIT_CHAIN_BROKEN' })
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T
  } catch (err) {
    throw new ExitError(`Cannot read ${file} as JSON (${(err as NodeJS.ErrnoException).code ?? 'invalid JSON'}).`)
  }
}

function trustedKeyOf(opts: { publicKey?: string }): string | undefined {
  if (!opts.publicKey) return undefined
  // Either the key itself or a file holding it.
  return opts.publicKey.includes('+') ? opts.publicKey.trim() : readFileSync(opts.publicKey, 'utf8').trim()
}

/**
 * The one place the CLI decides whether the log is shorter than it must be: shorter than the
 * signed checkpoint it checks against, or than the checkpoint this machine verified last time.
 * Either is tampering (entries deleted), never an unavailable log. Returns the message, or
 * null when the length is as signed. (A log legitimately shortened — a restore from backup —
 * would be told apart here.)
 */
export function truncation(
  entries: number,
  checkpoint: { treeSize: number } | null,
  seen: { treeSize: number; seenAt: string } | undefined,
): string | null {
  if (checkpoint && entries < checkpoint.treeSize)
    return `The log was truncated: the signed checkpoint covers ${checkpoint.treeSize} entries but the server returned only ${entries}.`
  if (seen && entries < seen.treeSize)
    return `The log shrank: this machine verified ${seen.treeSize} entries on ${seen.seenAt}, the server now returns ${entries}: entries were deleted.`
  if (seen && checkpoint && checkpoint.treeSize < seen.treeSize)
    return `The log shrank: this machine saw ${seen.treeSize} entries, the newest checkpoint has ${checkpoint.treeSize}.`
  return null
}

/**
 * A fresh checkpoint, so the signed root covers the log as it is now. A server that refuses to
 * sign because the log was tampered with (ERR_AUDIT_TAMPERED) is tampering; one that cannot
 * write its audit entry right now (ERR_AUDIT_UNAVAILABLE) leaves the newest checkpoint to check
 * against — the error is reported only if the log itself then verifies.
 */
async function freshCheckpoint(
  client: CofferClient,
  slug: string,
): Promise<{ issued?: Awaited<ReturnType<CofferClient['issueAuditCheckpoint']>>; unavailable?: CofferApiError }> {
  try {
    return { issued: await client.issueAuditCheckpoint(slug) }
  } catch (err) {
    if (!(err instanceof CofferApiError)) throw err
    if (err.code === 'ERR_AUDIT_TAMPERED') throw broken(`The server refuses to sign a checkpoint: ${err.message}`)
    if (err.code === 'ERR_AUDIT_UNAVAILABLE') return { unavailable: err }
    throw err
  }
}

/** What still waits to enter the chain: durable on the server, not yet covered by the chain or a checkpoint. */
function pendingLine(p: PendingAudit): string {
  if (p.count === 0) return 'Queue: every audit entry is in the chain (merge lag 0).'
  const age = p.oldest ? Math.max(0, (Date.now() - Date.parse(p.oldest)) / 1000) : 0
  return `Queue: ${p.count} audit ${p.count === 1 ? 'entry waits' : 'entries wait'} to enter the chain (merge lag ${age.toFixed(1)} s): recorded, not yet covered by the chain or a checkpoint.`
}

/**
 * `coffer audit verify`: downloads the workspace's audit log and checks it on this machine —
 * the hash chain, the newest checkpoint's signature (with the key pinned on first use), the
 * Merkle root it signs, that the log is as long as what was signed and seen, and that it
 * extends the checkpoint this machine saw last time. Any failure is tampering: exit 2 with
 * ERR_AUDIT_CHAIN_BROKEN. With `--file`, checks an export instead, with no server.
 */
export async function auditVerify(opts: Opts & { file?: string; publicKey?: string }): Promise<void> {
  if (opts.file) return verifyFile(opts.file, trustedKeyOf(opts), !!opts.json)
  const client = await connect(opts)
  const ws = await client.workspace(await resolveWorkspace(client, opts))
  const seen = loadSeen(client.url, ws.id)
  const fresh = await freshCheckpoint(client, ws.slug)
  const { checkpoint, publicKey } = fresh.issued ?? (await client.auditCheckpoint(ws.slug))
  const v = new ChainVerifier({ treeSize: checkpoint?.treeSize ?? 0 })
  let entries = 0
  let pending: PendingAudit = { count: 0, oldest: null }
  for await (const e of client.allAuditEntries(ws.slug, (p) => {
    pending = { count: p.count, oldest: p.oldest }
  })) {
    if (!v.push(e)) break
    entries++
  }
  const r = v.result()
  if (!r.ok) {
    if (opts.json) printJson(r)
    const bad = r.firstBad!
    throw broken(`Audit chain BROKEN at entry ${bad.seq} (${bad.id}): ${bad.reason}. ${r.checked - 1} entries before it verify.`)
  }
  // Fewer entries than a signed checkpoint covers is tampering, always; fewer than this machine
  // saw is tampering unless a signed restore record covers it (checked below).
  const short = truncation(entries, checkpoint, undefined)
  if (short) throw broken(short)
  const shrinkage = truncation(entries, checkpoint, seen)
  if (seen && seen.publicKey !== publicKey)
    throw broken(`The server's audit signing key changed since this machine last verified (was ${seen.publicKey}, now ${publicKey}).`)
  if (!checkpoint) {
    // No checkpoint yet, and none could be signed now: the chain verified, the outage stands.
    if (fresh.unavailable) throw fresh.unavailable
    throw broken('The server has no signed checkpoint of this log.')
  }
  const signed = verifyCheckpoint(checkpoint.note, seen?.publicKey ?? publicKey, { origin: originOf(ws.id) })
  if (!signed) throw broken('The newest audit checkpoint is not validly signed.')
  // What is remembered and compared below must be what was signed, not the unsigned fields beside it.
  if (Number(signed.treeSize) !== checkpoint.treeSize || Buffer.from(signed.rootHash).toString('base64') !== checkpoint.rootHash)
    throw broken("The checkpoint's tree size or root differs from its signed note.")
  const root = v.treeRoot()
  if (!root) throw broken(`The checkpoint covers ${checkpoint.treeSize} entries but the server returned only ${v.treeLeaves}.`)
  if (!Buffer.from(root).equals(Buffer.from(signed.rootHash)))
    throw broken('The audit entries do not hash to the root the checkpoint signs: history was rewritten.')
  let extended = 'first verification on this machine: checkpoint remembered'
  let restored: RestoreStatement | null = null
  if (seen) {
    const shrank = shrinkage !== null
    const proof = shrank
      ? { proof: [] }
      : checkpoint.treeSize === seen.treeSize
        ? { proof: [] }
        : await client.consistencyProof(ws.slug, seen.treeSize, checkpoint.treeSize)
    if (shrank || !extendsCheckpoint(seen, checkpoint, proof.proof)) {
      // A legitimate restore from a backup shortens the log too; it is accepted only with a
      // restore record signed by the pinned checkpoint key that covers what this machine saw.
      restored = await coveringRestore(client, ws, seen, checkpoint)
      if (!restored && shrinkage) throw broken(shrinkage)
      if (!restored)
        throw broken(
          `The log does not extend the checkpoint of ${seen.treeSize} entries this machine verified on ${seen.seenAt}: history was rewritten.`,
        )
      extended = `RESTORED from backup ${restored.backupId} (taken ${restored.backupCreatedAt}) on ${restored.restoredAt}: the log continues from its ${restored.restoredTo.treeSize} entries; the ${seen.treeSize} this machine saw on ${seen.seenAt} were replaced`
    } else {
      extended = `extends the checkpoint of ${seen.treeSize} entries seen ${seen.seenAt}`
    }
  }
  // The log verifies up to the newest checkpoint, but the server could not sign a fresh one.
  if (fresh.unavailable) throw fresh.unavailable
  saveSeen(client.url, ws.id, {
    publicKey: seen?.publicKey ?? publicKey,
    treeSize: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
    seenAt: new Date().toISOString(),
  })
  if (opts.json)
    return printJson({
      ...r,
      pending,
      checkpoint: { treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash },
      publicKey,
      extended,
      ...(restored ? { restore: restored } : {}),
    })
  if (restored)
    info(
      `WARNING: the audit log of ${ws.slug} was restored from backup ${restored.backupId} on ${restored.restoredAt} (signed restore record): entries after ${restored.restoredTo.treeSize} that this machine saw before are no longer in the log.`,
    )
  info(`Audit chain OK: ${r.checked} entries of ${ws.slug} verify; head ${r.head}.`)
  info(`Checkpoint OK: ${checkpoint.treeSize} entries, root ${checkpoint.rootHash}, signed by ${publicKey.split('+')[0]}; ${extended}.`)
  info(pendingLine(pending))
}

/**
 * The newest restore record that explains why the log no longer extends what this machine
 * saw: signed by the pinned key, for this workspace, naming what was seen among the signed
 * heads of the history it replaced, and restoring to a point the log as it is now extends.
 * Null when none does.
 */
async function coveringRestore(
  client: Awaited<ReturnType<typeof connect>>,
  ws: { id: string; slug: string },
  seen: SeenCheckpoint,
  now: { treeSize: number; rootHash: string },
): Promise<RestoreStatement | null> {
  const { restores } = await client.auditRestores(ws.slug)
  for (const rec of [...restores].reverse()) {
    const s = openRestoreRecord(rec.note, seen.publicKey, ws.id)
    if (!s || !restoreCovers(s, seen)) continue
    const to = s.restoredTo
    if (to.treeSize > now.treeSize) continue
    if (to.treeSize > 0) {
      const proof = to.treeSize === now.treeSize ? { proof: [] } : await client.consistencyProof(ws.slug, to.treeSize, now.treeSize)
      if (!extendsCheckpoint(to, now, proof.proof)) continue
    }
    return s
  }
  return null
}

async function verifyFile(file: string, trustedKey: string | undefined, json: boolean): Promise<void> {
  // A long export is parsed and checked on worker threads (src/audit/export-file.ts) that
  // read the file only: no database driver is loaded.
  const pool = new VerifyWorkers(undefined, { exportFilesOnly: true })
  let r: OfflineResult
  try {
    r = await verifyExportFile(file, trustedKey, pool)
  } catch (err) {
    throw new ExitError(`Cannot read ${file} as JSON (${(err as NodeJS.ErrnoException).code ?? 'invalid JSON'}).`)
  } finally {
    await pool.close()
  }
  if (json) printJson(r)
  if (!r.ok) throw broken(`${file} does NOT verify: ${r.problems.join('; ')}.`)
  if (!json) {
    info(`${file} verifies: ${r.chain.checked} entries chained; checkpoint of ${r.treeSize} entries signed and its root recomputed.`)
    if (!r.keyPinned)
      info(
        'The signature was checked with the key inside the file; pass --public-key (from /v1/audit/public-key, obtained separately) to also prove who signed it.',
      )
  }
}

/** `coffer audit export --out FILE`: entries, a fresh signed checkpoint and the public key, for offline checking. */
export async function auditExport(opts: Opts & { out: string }): Promise<void> {
  const client = await connect(opts)
  const ws = await client.workspace(await resolveWorkspace(client, opts))
  const { checkpoint, publicKey } = await client.issueAuditCheckpoint(ws.slug)
  const entries: ExportedEntry[] = []
  for await (const e of client.allAuditEntries(ws.slug)) entries.push(e)
  const exp: AuditExport = {
    format: 'coffer-audit-export/v1',
    workspace: { id: ws.id, slug: ws.slug },
    exportedAt: new Date().toISOString(),
    publicKey,
    checkpoint: { treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, note: checkpoint.note },
    entries,
  }
  writeExportFile(opts.out, exp)
  if (opts.json) return printJson({ out: opts.out, entries: entries.length, checkpoint: exp.checkpoint, publicKey })
  info(
    `Exported ${entries.length} audit entries of ${ws.slug} and a checkpoint of ${checkpoint.treeSize} to ${opts.out}. Check it anywhere with: coffer audit verify --file ${opts.out} --public-key '${publicKey}'`,
  )
}

/** `coffer audit proof ENTRY`: an inclusion proof (by entry id or seq) that a third party can check offline. */
export async function auditProof(ref: string, opts: Opts & { out?: string }): Promise<void> {
  const client = await connect(opts)
  const ws = await client.workspace(await resolveWorkspace(client, opts))
  const { checkpoint, publicKey } = await client.issueAuditCheckpoint(ws.slug)
  const byId = /^[0-9a-f-]{36}$/.test(ref)
  if (!byId && !/^\d+$/.test(ref)) throw new ExitError('Give an audit entry id (UUID) or sequence number.')
  const p = await client.inclusionProof(ws.slug, byId ? { id: ref } : { seq: Number(ref) }, checkpoint.treeSize)
  const file: InclusionProofFile = {
    format: 'coffer-audit-proof/v1',
    workspace: { id: ws.id, slug: ws.slug },
    publicKey,
    checkpoint: { treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, note: checkpoint.note },
    entry: p.entry,
    leafIndex: p.leafIndex,
    treeSize: p.treeSize,
    proof: p.proof,
  }
  const text = `${JSON.stringify(file, null, 2)}\n`
  if (opts.out) {
    writeFileSync(opts.out, text)
    info(
      `Inclusion proof of entry ${p.entry.seq} in the signed tree of ${p.treeSize} entries written to ${opts.out}; check it with: coffer audit verify-proof ${opts.out}`,
    )
  } else {
    process.stdout.write(text)
  }
}

/** `coffer audit verify-proof FILE`: checks an inclusion-proof file with no server. */
export async function auditVerifyProof(file: string, opts: { publicKey?: string; json?: boolean }): Promise<void> {
  const r = verifyProofFile(readJson<InclusionProofFile>(file), trustedKeyOf(opts))
  if (opts.json) printJson(r)
  if (!r.ok) throw broken(`${file} does NOT verify: ${r.problems.join('; ')}.`)
  if (!opts.json) info(`${file} verifies: the entry is in the signed log.`)
}
