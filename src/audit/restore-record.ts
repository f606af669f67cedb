import { openNote, signNote, type SignerKeyInput, type VerifierKeyInput } from './checkpoint.js'

// A restore record: the signed statement, made by `coffer backup restore`, that a
// workspace's audit log was put back to an earlier point from a backup. A client that saw the
// newer (discarded) log accepts the shorter one only with such a record, signed by the same
// checkpoint key it pinned. The note's text has two lines, so no restore record can ever be
// read as a checkpoint (which needs at least three) and no checkpoint as a restore record.

/** The first line of every restore record's signed text. */
export const RESTORE_RECORD_HEADER = 'coffer/audit-restore/v1'

/** A tree head: size and RFC 9162 root (base64). */
export interface TreeHead {
  treeSize: number
  rootHash: string
}

/** What a restore record states about one workspace. */
export interface RestoreStatement {
  workspaceId: string
  /** The id of the backup restored (its manifest's `id`). */
  backupId: string
  backupCreatedAt: string
  restoredAt: string
  /** The workspace's audit tree as the backup holds it: the log now continues from here. */
  restoredTo: TreeHead
  /** The tree the restore discarded (null when the database held no such workspace). */
  replaced: TreeHead | null
  /**
   * Every signed checkpoint of the discarded log past `restoredTo`: a verifier that saw one of
   * them (and only such a verifier) learns that what it saw was replaced by this restore.
   */
  replacedCheckpoints: TreeHead[]
}

/** A restore record as stored and served: the statement and its signed note. */
export interface RestoreRecord extends RestoreStatement {
  note: string
}

function head(v: unknown): TreeHead | null {
  if (typeof v !== 'object' || v === null) return null
  const h = v as Record<string, unknown>
  if (!Number.isSafeInteger(h.treeSize) || (h.treeSize as number) < 0 || typeof h.rootHash !== 'string') return null
  return { treeSize: h.treeSize as number, rootHash: h.rootHash }
}

/** The statement in a note text, or null when the text is not a well-formed restore record. */
function parse(text: string): RestoreStatement | null {
  const lines = text.split('\n')
  if (lines.length !== 3 || lines[0] !== RESTORE_RECORD_HEADER || lines[2] !== '') return null
  let v: Record<string, unknown>
  try {
    v = JSON.parse(lines[1]!) as Record<string, unknown>
  } catch {
    return null
  }
  const restoredTo = head(v.restoredTo)
  const replaced = v.replaced === null ? null : head(v.replaced)
  const checkpoints = Array.isArray(v.replacedCheckpoints) ? v.replacedCheckpoints.map(head) : null
  if (
    typeof v.workspaceId !== 'string' ||
    typeof v.backupId !== 'string' ||
    typeof v.backupCreatedAt !== 'string' ||
    typeof v.restoredAt !== 'string' ||
    !restoredTo ||
    (v.replaced !== null && !replaced) ||
    !checkpoints ||
    checkpoints.some((c) => c === null)
  )
    return null
  return {
    workspaceId: v.workspaceId,
    backupId: v.backupId,
    backupCreatedAt: v.backupCreatedAt,
    restoredAt: v.restoredAt,
    restoredTo,
    replaced,
    replacedCheckpoints: checkpoints as TreeHead[],
  }
}

/** Signs a restore statement with the checkpoint signing key. */
export function signRestoreRecord(s: RestoreStatement, signer: SignerKeyInput): RestoreRecord {
  const body = JSON.stringify({
    workspaceId: s.workspaceId,
    backupId: s.backupId,
    backupCreatedAt: s.backupCreatedAt,
    restoredAt: s.restoredAt,
    restoredTo: { treeSize: s.restoredTo.treeSize, rootHash: s.restoredTo.rootHash },
    replaced: s.replaced ? { treeSize: s.replaced.treeSize, rootHash: s.replaced.rootHash } : null,
    replacedCheckpoints: s.replacedCheckpoints.map((c) => ({ treeSize: c.treeSize, rootHash: c.rootHash })),
  })
  return { ...s, note: signNote(`${RESTORE_RECORD_HEADER}\n${body}\n`, signer) }
}

/**
 * Whether `seen` — a tree head a verifier checked before — is part of the history this
 * restore replaced: one of the discarded log's signed checkpoints, or its final head.
 */
export function restoreCovers(s: RestoreStatement, seen: TreeHead): boolean {
  if (seen.treeSize < s.restoredTo.treeSize) return false
  const same = (h: TreeHead) => h.treeSize === seen.treeSize && h.rootHash === seen.rootHash
  return (s.replaced !== null && same(s.replaced)) || s.replacedCheckpoints.some(same)
}

/**
 * The statement a restore record's note signs, when the note is signed by `verifierKey` and
 * names `workspaceId`; null otherwise. Only the signed text counts: the unsigned fields served
 * beside a note are never trusted.
 */
export function openRestoreRecord(note: string, verifierKey: VerifierKeyInput, workspaceId: string): RestoreStatement | null {
  let text: string
  try {
    text = openNote(note, verifierKey).text
  } catch {
    return null
  }
  const s = parse(text)
  return s && s.workspaceId === workspaceId ? s : null
}
