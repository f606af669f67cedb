import type { KeyProvider } from '../crypto/key-provider.js'
import { NotFoundError, ValidationError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { Executor } from '../storage/database.js'
import { formatCheckpoint, generateNoteKey, signNote } from './checkpoint.js'
import { entryBytes } from './entry.js'
import { rowToRecord } from './audit-log.js'
import { consistencyProofFrom, inclusionProofFrom, leafHash, rootFrom } from './merkle.js'
import { signRestoreRecord, type RestoreRecord, type RestoreStatement } from './restore-record.js'
import { unpackPeaks, withStoredNodes } from './tree-store.js'

/** The meta row holding the checkpoint signing key, wrapped by the root key with SIGNER_AAD. */
export const SIGNER_META = 'audit_signer_key'
export const VERIFIER_META = 'audit_verifier_key'
export const SIGNER_AAD = Buffer.from('coffer/audit-signer-key/v1', 'utf8')
export const NOTE_KEY_NAME = 'coffer-audit'
/** The first line of the signed text over a backup manifest's SHA-256. */
export const BACKUP_MANIFEST_HEADER = 'coffer/backup-manifest/v1'

/** The origin line of a workspace's checkpoints. */
export function checkpointOrigin(workspaceId: string): string {
  return `coffer/audit/${workspaceId}`
}

export interface Checkpoint {
  treeSize: number
  rootHash: string
  note: string
  createdAt: string
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')

/**
 * Signed tree heads and proofs over each workspace's audit tree. The Ed25519 signing key is
 * made once per installation and stored wrapped by the root key; its public (verifier) key
 * is published so anyone holding an export can check checkpoints offline.
 */
export class AuditTree {
  readonly #provider: KeyProvider
  readonly #clock: Clock
  #signer: string | undefined
  #verifier: string | undefined

  /** `clock` stamps each checkpoint's creation. */
  constructor(provider: KeyProvider, clock: Clock) {
    this.#provider = provider
    this.#clock = clock
  }

  /** Loads the note key, creating it on first start (race-safe across nodes). */
  async init(db: Executor): Promise<void> {
    let rows = await db.selectFrom('meta').select(['key', 'value']).where('key', 'in', [SIGNER_META, VERIFIER_META]).execute()
    if (rows.length < 2) {
      const k = generateNoteKey(NOTE_KEY_NAME)
      const wrapped = await this.#provider.wrap(Buffer.from(k.signerKey, 'utf8'), SIGNER_AAD)
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('meta')
          .values({ key: SIGNER_META, value: wrapped })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute()
        await tx
          .insertInto('meta')
          .values({ key: VERIFIER_META, value: Buffer.from(k.verifierKey, 'utf8') })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute()
      })
      rows = await db.selectFrom('meta').select(['key', 'value']).where('key', 'in', [SIGNER_META, VERIFIER_META]).execute()
    }
    const signer = rows.find((r) => r.key === SIGNER_META)!
    const verifier = rows.find((r) => r.key === VERIFIER_META)!
    this.#signer = (await this.#provider.unwrap(Buffer.from(signer.value), SIGNER_AAD)).toString('utf8')
    this.#verifier = Buffer.from(verifier.value).toString('utf8')
  }

  /** The verifier key (C2SP note vkey) that checks every checkpoint of this installation. */
  get verifierKey(): string {
    if (!this.#verifier) throw new Error('audit tree not initialised')
    return this.#verifier
  }

  /** The workspace's current tree head (size and root), read from its chain head; null for no such workspace. */
  async head(db: Executor, workspaceId: string): Promise<{ treeSize: number; rootHash: string; hash: string } | null> {
    const row = await db
      .selectFrom('audit_heads')
      .select(['seq', 'hash', 'peaks'])
      .where('workspace_id', '=', workspaceId)
      .executeTakeFirst()
    if (!row) return null
    const size = Number(row.seq)
    return { treeSize: size, rootHash: b64(unpackPeaks(size, row.peaks).root()), hash: Buffer.from(row.hash).toString('hex') }
  }

  /** Signs a restore record (src/audit/restore-record.ts) with the checkpoint key. */
  signRestore(s: RestoreStatement): RestoreRecord {
    if (!this.#signer) throw new Error('audit tree not initialised')
    return signRestoreRecord(s, this.#signer)
  }

  /**
   * Signs the SHA-256 (hex) of a backup manifest with the checkpoint key. The note text has
   * two lines, so it can never be read as a checkpoint or a restore record.
   */
  signBackupManifest(sha256Hex: string): string {
    if (!this.#signer) throw new Error('audit tree not initialised')
    if (!/^[0-9a-f]{64}$/.test(sha256Hex)) throw new TypeError('sha256Hex must be 64 lowercase hex digits')
    return signNote(`${BACKUP_MANIFEST_HEADER}\nsha256:${sha256Hex}\n`, this.#signer)
  }

  /** The newest checkpoint of a workspace, or null before the first. */
  async latest(db: Executor, workspaceId: string): Promise<Checkpoint | null> {
    const row = await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst()
    return row ? { treeSize: Number(row.tree_size), rootHash: b64(row.root_hash), note: row.note, createdAt: row.created_at } : null
  }

  /**
   * Signs the workspace's current tree head, unless the newest checkpoint already covers it.
   * Returns the newest checkpoint either way.
   */
  async issue(db: Executor, workspaceId: string): Promise<Checkpoint> {
    if (!this.#signer) throw new Error('audit tree not initialised')
    const head = await db.selectFrom('audit_heads').select(['seq', 'peaks']).where('workspace_id', '=', workspaceId).executeTakeFirst()
    if (!head) throw new NotFoundError('workspace')
    const size = Number(head.seq)
    const latest = await this.latest(db, workspaceId)
    if (latest && latest.treeSize >= size) return latest
    const root = unpackPeaks(size, head.peaks).root()
    const note = signNote(formatCheckpoint({ origin: checkpointOrigin(workspaceId), treeSize: size, rootHash: root }), this.#signer)
    const createdAt = this.#clock().toISOString()
    await db
      .insertInto('audit_checkpoints')
      .values({ workspace_id: workspaceId, tree_size: size, root_hash: Buffer.from(root), note, created_at: createdAt })
      .onConflict((oc) => oc.columns(['workspace_id', 'tree_size']).doNothing())
      .execute()
    return (await this.latest(db, workspaceId))!
  }

  async #size(db: Executor, workspaceId: string): Promise<number> {
    const head = await db.selectFrom('audit_heads').select('seq').where('workspace_id', '=', workspaceId).executeTakeFirst()
    if (!head) throw new NotFoundError('workspace')
    return Number(head.seq)
  }

  /** The root of the workspace's tree at `treeSize` (≤ its current size). */
  async rootAt(db: Executor, workspaceId: string, treeSize: number): Promise<Uint8Array> {
    const size = await this.#size(db, workspaceId)
    if (treeSize > size) throw new ValidationError(`The log has only ${size} entries.`, [{ path: 'treeSize', message: 'beyond the log' }])
    return withStoredNodes(db, workspaceId, (nodeAt) => rootFrom(treeSize, nodeAt))
  }

  /**
   * An RFC 9162 inclusion proof for the entry `seq` (leaf index seq − 1) in the tree of
   * `treeSize` entries (default: the newest checkpoint, else the current size).
   */
  async inclusion(db: Executor, workspaceId: string, seq: number, treeSize?: number) {
    const size = treeSize ?? (await this.latest(db, workspaceId))?.treeSize ?? (await this.#size(db, workspaceId))
    if (size > (await this.#size(db, workspaceId)))
      throw new ValidationError('treeSize is beyond the log.', [{ path: 'treeSize', message: 'beyond the log' }])
    if (seq < 1 || seq > size)
      throw new ValidationError(`Entry ${seq} is not in the tree of ${size} entries.`, [{ path: 'seq', message: 'not in the tree' }])
    const row = await db
      .selectFrom('audit_entries')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('seq', '=', seq)
      .executeTakeFirst()
    if (!row) throw new NotFoundError('audit entry')
    const { proof, root } = await withStoredNodes(db, workspaceId, (nodeAt) => ({
      proof: inclusionProofFrom(seq - 1, size, nodeAt),
      root: rootFrom(size, nodeAt),
    }))
    return {
      entry: rowToRecord(row),
      leafIndex: seq - 1,
      treeSize: size,
      leafHash: b64(leafHash(entryBytes(rowToRecord(row)))),
      proof: proof.map(b64),
      rootHash: b64(root),
    }
  }

  /** An RFC 9162 consistency proof from the tree of `from` entries to the tree of `to` (default: current). */
  async consistency(db: Executor, workspaceId: string, from: number, to?: number) {
    const current = await this.#size(db, workspaceId)
    const size2 = to ?? current
    if (from < 1 || from > size2 || size2 > current) {
      throw new ValidationError('Need 1 ≤ from ≤ to ≤ the size of the log.', [{ path: 'from', message: 'out of range' }])
    }
    const r = await withStoredNodes(db, workspaceId, (nodeAt) => ({
      proof: consistencyProofFrom(from, size2, nodeAt),
      root1: rootFrom(from, nodeAt),
      root2: rootFrom(size2, nodeAt),
    }))
    return { from, to: size2, proof: r.proof.map(b64), fromRoot: b64(r.root1), toRoot: b64(r.root2) }
  }
}
