import { createHash } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { openNote } from '../audit/checkpoint.js'
import { BACKUP_MANIFEST_HEADER } from '../audit/audit-tree.js'
import { BackupInvalidError } from '../errors.js'

// The backup file: one file, written once, read strictly. After a 16-byte magic come
// sections, each `u16be name length ‖ name ‖ u64be byte length ‖ bytes`: first the data
// parts (the SQLite online-backup copy, or the PostgreSQL row dump), then `manifest.json`,
// then `manifest.sig` — a signed note over the manifest's SHA-256, by the vault's audit
// checkpoint key. The manifest lists every part's size and SHA-256, so one signature covers
// every byte. Nothing here holds a plaintext key: the data is ciphertext and wrapped keys.

/** The first bytes of every backup file. */
export const BACKUP_MAGIC = Buffer.from('COFFER-BACKUP/1\n', 'latin1')
export const MANIFEST_PART = 'manifest.json'
export const SIGNATURE_PART = 'manifest.sig'
/** A manifest or signature larger than this is refused before it is parsed. */
const MAX_META_BYTES = 16 * 1024 * 1024
const MAX_PARTS = 16

/** One workspace's audit log at the moment of the backup. */
export interface ManifestAuditHead {
  workspaceId: string
  /** Entries in the chain (= the Merkle tree's size). */
  seq: number
  /** The chain head's hash, hex. */
  hash: string
  treeSize: number
  /** The RFC 9162 root of the tree, base64. */
  rootHash: string
}

/** What a backup holds and how to check it. */
export interface BackupManifest {
  format: 'coffer-backup/v1'
  id: string
  engine: 'sqlite' | 'postgres'
  schemaVersion: number
  createdAt: string
  trigger: 'manual' | 'scheduled' | 'pre-migration'
  cofferVersion: string
  parts: Array<{ name: string; bytes: number; sha256: string }>
  audit: ManifestAuditHead[]
  /**
   * The checkpoint key: its public (verifier) key, and its private key as the database holds
   * it, wrapped by the root key — so only a holder of this vault's root key can prove the
   * backup is this vault's without being told the public key.
   */
  signer: { publicKey: string; wrappedKey: string }
}

/** An opened backup: its manifest (signature not yet checked) and where each part lies. */
export interface OpenedBackup {
  path: string
  manifest: BackupManifest
  manifestSha256: string
  signature: string
  parts: Map<string, { offset: number; bytes: number }>
}

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}

/**
 * Writes a backup file at `out` atomically (a temporary file renamed over it, mode 0600):
 * the parts, read from their files, then the manifest `makeManifest` builds from their
 * checksums, then `sign(sha256 of the manifest)`.
 */
export function writeBackupFile(
  out: string,
  parts: Array<{ name: string; path: string }>,
  makeManifest: (parts: BackupManifest['parts']) => BackupManifest,
  sign: (manifestSha256: string) => string,
): BackupManifest {
  const tmp = `${out}.partial`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, BACKUP_MAGIC)
    const sums: BackupManifest['parts'] = []
    const buf = Buffer.alloc(1024 * 1024)
    for (const p of parts) {
      const src = openSync(p.path, 'r')
      try {
        const bytes = fstatSync(src).size
        writeHeader(fd, p.name, bytes)
        const h = createHash('sha256')
        let done = 0
        while (done < bytes) {
          const n = readSync(src, buf, 0, Math.min(buf.length, bytes - done), done)
          if (n === 0) throw new Error(`${p.name} shrank while it was written`)
          h.update(buf.subarray(0, n))
          writeSync(fd, buf, 0, n)
          done += n
        }
        sums.push({ name: p.name, bytes, sha256: h.digest('hex') })
      } finally {
        closeSync(src)
      }
    }
    const manifest = makeManifest(sums)
    const m = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8')
    writeHeader(fd, MANIFEST_PART, m.length)
    writeSync(fd, m)
    const sig = Buffer.from(sign(sha256Hex(m)), 'utf8')
    writeHeader(fd, SIGNATURE_PART, sig.length)
    writeSync(fd, sig)
    fsyncSync(fd)
    closeSync(fd)
    renameSync(tmp, out)
    syncDir(dirname(out))
    return manifest
  } catch (err) {
    try {
      closeSync(fd)
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true })
    throw err
  }
}

function syncDir(dir: string): void {
  try {
    const d = openSync(dir, 'r')
    try {
      fsyncSync(d)
    } finally {
      closeSync(d)
    }
  } catch {
    /* not every platform can fsync a directory */
  }
}

function writeHeader(fd: number, name: string, bytes: number): void {
  const n = Buffer.from(name, 'utf8')
  const h = Buffer.alloc(2 + n.length + 8)
  h.writeUInt16BE(n.length, 0)
  n.copy(h, 2)
  h.writeBigUInt64BE(BigInt(bytes), 2 + n.length)
  writeSync(fd, h)
}

function readExactly(fd: number, at: number, length: number, size: number): Buffer {
  if (at + length > size) throw new BackupInvalidError('it is truncated')
  const b = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const n = readSync(fd, b, done, length - done, at + done)
    if (n === 0) throw new BackupInvalidError('it is truncated')
    done += n
  }
  return b
}

const isHex64 = (s: unknown) => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s)

/** The manifest's fields have the types and shapes this code relies on. */
function checkManifest(v: unknown): BackupManifest {
  const m = v as BackupManifest
  const ok =
    typeof m === 'object' &&
    m !== null &&
    m.format === 'coffer-backup/v1' &&
    typeof m.id === 'string' &&
    (m.engine === 'sqlite' || m.engine === 'postgres') &&
    Number.isSafeInteger(m.schemaVersion) &&
    m.schemaVersion > 0 &&
    typeof m.createdAt === 'string' &&
    typeof m.trigger === 'string' &&
    Array.isArray(m.parts) &&
    m.parts.every((p) => typeof p?.name === 'string' && Number.isSafeInteger(p.bytes) && p.bytes >= 0 && isHex64(p.sha256)) &&
    Array.isArray(m.audit) &&
    m.audit.every(
      (a) =>
        typeof a?.workspaceId === 'string' &&
        Number.isSafeInteger(a.seq) &&
        Number.isSafeInteger(a.treeSize) &&
        typeof a.rootHash === 'string' &&
        typeof a.hash === 'string',
    ) &&
    typeof m.signer?.publicKey === 'string' &&
    typeof m.signer?.wrappedKey === 'string'
  if (!ok) throw new BackupInvalidError('its manifest is malformed or of an unknown format')
  return m
}

/**
 * Opens a backup file and reads its structure and manifest. Throws BackupInvalidError when it
 * is not a backup, is truncated or malformed. Checks no checksum or signature (see
 * checkParts and openManifestSignature).
 */
export function openBackupFile(path: string): OpenedBackup {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw new BackupInvalidError(`it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  try {
    const size = fstatSync(fd).size
    if (size < BACKUP_MAGIC.length || !readExactly(fd, 0, BACKUP_MAGIC.length, size).equals(BACKUP_MAGIC))
      throw new BackupInvalidError('it is not a Coffer backup file')
    let at = BACKUP_MAGIC.length
    const sections: Array<{ name: string; offset: number; bytes: number }> = []
    while (at < size) {
      if (sections.length > MAX_PARTS + 2) throw new BackupInvalidError('it has too many sections')
      const nameLen = readExactly(fd, at, 2, size).readUInt16BE(0)
      const name = readExactly(fd, at + 2, nameLen, size).toString('utf8')
      const len = readExactly(fd, at + 2 + nameLen, 8, size).readBigUInt64BE(0)
      const offset = at + 2 + nameLen + 8
      if (len > BigInt(size - offset)) throw new BackupInvalidError('it is truncated')
      sections.push({ name, offset, bytes: Number(len) })
      at = offset + Number(len)
    }
    const sig = sections.pop()
    const man = sections.pop()
    if (man?.name !== MANIFEST_PART || sig?.name !== SIGNATURE_PART)
      throw new BackupInvalidError('its manifest or signature is missing (is the file truncated?)')
    if (man.bytes > MAX_META_BYTES || sig.bytes > MAX_META_BYTES) throw new BackupInvalidError('its manifest is too large')
    const manifestBytes = readExactly(fd, man.offset, man.bytes, size)
    let parsed: unknown
    try {
      parsed = JSON.parse(manifestBytes.toString('utf8'))
    } catch {
      throw new BackupInvalidError('its manifest is not JSON')
    }
    const manifest = checkManifest(parsed)
    const parts = new Map<string, { offset: number; bytes: number }>()
    for (const s of sections) {
      if (parts.has(s.name)) throw new BackupInvalidError(`it holds ${s.name} twice`)
      parts.set(s.name, { offset: s.offset, bytes: s.bytes })
    }
    const listed = manifest.parts.map((p) => p.name)
    if (listed.length !== parts.size || listed.some((n) => parts.get(n)?.bytes !== manifest.parts.find((p) => p.name === n)!.bytes))
      throw new BackupInvalidError('its parts do not match the manifest')
    return {
      path,
      manifest,
      manifestSha256: sha256Hex(manifestBytes),
      signature: readExactly(fd, sig.offset, sig.bytes, size).toString('utf8'),
      parts,
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Whether the manifest's signature verifies with `publicKey` (a note verifier key). Only the
 * SHA-256 the note signs is trusted, and it must be that of the manifest read.
 */
export function manifestSignatureValid(b: OpenedBackup, publicKey: string): boolean {
  let text: string
  try {
    text = openNote(b.signature, publicKey).text
  } catch {
    return false
  }
  return text === `${BACKUP_MANIFEST_HEADER}\nsha256:${b.manifestSha256}\n`
}

/** Streams one part through SHA-256 (and into `dest`, when given); throws BackupInvalidError on a mismatch. */
export function checkPart(b: OpenedBackup, name: string, dest?: string): void {
  const at = b.parts.get(name)
  const want = b.manifest.parts.find((p) => p.name === name)
  if (!at || !want) throw new BackupInvalidError(`it has no ${name}`)
  const fd = openSync(b.path, 'r')
  const out = dest ? openSync(dest, 'w', 0o600) : undefined
  try {
    const h = createHash('sha256')
    const buf = Buffer.alloc(1024 * 1024)
    let done = 0
    while (done < at.bytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, at.bytes - done), at.offset + done)
      if (n === 0) throw new BackupInvalidError('it is truncated')
      h.update(buf.subarray(0, n))
      if (out !== undefined) writeSync(out, buf, 0, n)
      done += n
    }
    if (h.digest('hex') !== want.sha256) throw new BackupInvalidError(`the checksum of ${name} does not match its manifest`)
    if (out !== undefined) fsyncSync(out)
  } finally {
    closeSync(fd)
    if (out !== undefined) closeSync(out)
  }
}

/** Checks every part's SHA-256 against the manifest. */
export function checkParts(b: OpenedBackup): void {
  for (const p of b.manifest.parts) checkPart(b, p.name)
}
