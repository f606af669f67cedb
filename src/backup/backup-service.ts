import BetterSqlite3 from 'better-sqlite3'
import { randomUUID } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { Kysely, SqliteDialect, sql, type Transaction } from 'kysely'
import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import { SIGNER_AAD, VERIFIER_META, type AuditTree } from '../audit/audit-tree.js'
import { parseSignerKey } from '../audit/checkpoint.js'
import type { RestoreRecord, TreeHead } from '../audit/restore-record.js'
import type { KeyProvider } from '../crypto/key-provider.js'
import { BackupForeignError, BackupInvalidError, BackupSchemaMismatchError, BackupServerRunningError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { DatabaseConfig } from '../ops/config.js'
import { takeServingLockExclusively } from '../storage/advisory-lock.js'
import { openStore, type Store } from '../storage/database.js'
import { LATEST_SCHEMA_VERSION, migrate, migrateWithin } from '../storage/migrator.js'
import type { Database, Executor } from '../storage/schema.js'
import { setScope, SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import { VERSION } from '../version.js'
import { checkPart, checkParts, manifestSignatureValid, openBackupFile, writeBackupFile, type BackupManifest } from './backup-file.js'
import { loadRestoreRecords, recordRestore } from './restore-records.js'
import {
  columnsOf,
  DATA_PART,
  readSnapshotInfo,
  type SnapshotInfo,
  snapshotPostgres,
  snapshotSqlite,
  tablesInInsertOrder,
} from './snapshot.js'

/** File names of backups this code writes (and the only files pruning ever deletes). */
const BACKUP_NAME = /^coffer-backup-\d{8}T\d{6}Z-(manual|scheduled|pre-migration)-[0-9a-f]{8}\.cbk$/

export type BackupTrigger = BackupManifest['trigger']

/** What taking a backup needs: the live database, its checkpoint signer, a clock. */
export interface BackupSource {
  database: DatabaseConfig
  store: Store
  /** Initialised on `store`: it signs the manifest. */
  auditTree: AuditTree
  clock: Clock
  /** When given, each live workspace's log records the backup (`backup.create`). */
  audit?: AuditLog
}

/** The file name of a backup taken at `at`. */
function backupName(at: Date, trigger: BackupTrigger, id: string): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `coffer-backup-${stamp}-${trigger}-${id.slice(0, 8)}.cbk`
}

const BACKUP_ACTOR: AuditActor = { type: 'system', id: 'backup', ip: '', userAgent: 'coffer' }

/**
 * Takes a backup while servers keep running: a consistent snapshot (snapshot.ts), checked
 * against the running vault's checkpoint key, written with its signed manifest to `out`
 * (default: a new file in `dir`). Returns the file and its manifest.
 */
export async function createBackup(
  src: BackupSource,
  opts: { out?: string; dir?: string; trigger: BackupTrigger },
): Promise<{ path: string; manifest: BackupManifest }> {
  const id = randomUUID()
  const createdAt = src.clock()
  const out = opts.out ?? join(opts.dir ?? '.', backupName(createdAt, opts.trigger, id))
  mkdirSync(dirname(out), { recursive: true, mode: 0o700 })
  const work = mkdtempSync(join(dirname(out), '.coffer-backup-'))
  try {
    const part = join(work, DATA_PART[src.database.engine])
    // Queued audit entries are integrated first, so the heads the manifest records cover what
    // was queued until now (entries queued meanwhile are copied as queued, and integrated
    // after a restore).
    if (src.audit) await integrateQueues(src, src.audit)
    let info: SnapshotInfo
    if (src.database.engine === 'sqlite') info = await snapshotSqlite(src.database.path, part)
    else info = await snapshotPostgres(src.store, part)
    if (info.signer.publicKey !== src.auditTree.verifierKey)
      throw new Error('the snapshot holds another checkpoint key than the running vault')
    const manifest = writeBackupFile(
      out,
      [{ name: DATA_PART[src.database.engine], path: part }],
      (parts) => ({
        format: 'coffer-backup/v1',
        id,
        engine: src.database.engine,
        schemaVersion: info.schemaVersion,
        createdAt: createdAt.toISOString(),
        trigger: opts.trigger,
        cofferVersion: VERSION,
        parts,
        audit: info.audit,
        signer: info.signer,
      }),
      (sha) => src.auditTree.signBackupManifest(sha),
    )
    if (src.audit) await recordBackup(src, manifest)
    return { path: out, manifest }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Integrates every workspace's queued audit entries (the lease does not matter: the head's lock keeps integrations apart). */
async function integrateQueues(src: BackupSource, audit: AuditLog): Promise<void> {
  const queued = await writeInScope(src.store, src.store.db, SYSTEM_SCOPE, (tx) =>
    tx.selectFrom('audit_queue').select('workspace_id').distinct().execute(),
  )
  for (const { workspace_id: ws } of queued) await writeInScope(src.store, src.store.db, ws, (tx) => audit.integrateAll(tx, ws))
}

/** Appends `backup.create` to each live workspace's log (a backup reads every workspace's ciphertext). */
async function recordBackup(src: BackupSource, manifest: BackupManifest): Promise<void> {
  const audit = src.audit!
  const live = await writeInScope(src.store, src.store.db, SYSTEM_SCOPE, (tx) =>
    tx.selectFrom('workspaces').select('id').where('deleted_at', 'is', null).execute(),
  )
  for (const { id } of live) {
    const head = manifest.audit.find((a) => a.workspaceId === id)
    await writeInScope(src.store, src.store.db, id, async (tx) => {
      await audit.append(tx, id, BACKUP_ACTOR, `backup:${manifest.id}`, {
        action: 'backup.create',
        target: { type: 'backup', id: manifest.id },
        details: { trigger: manifest.trigger, treeSize: head?.treeSize ?? null, rootHash: head?.rootHash ?? null },
      })
    })
  }
}

/** Who may vouch for a backup: a public key given by the operator, or the root key. */
export interface BackupTrust {
  publicKey?: string
  provider?: KeyProvider
}

/**
 * Checks a backup file: its structure, the manifest's signature, every part's SHA-256, and
 * that it is this vault's — signed by the trusted public key, and (with the root key) its
 * checkpoint key unwraps with this vault's root key and is the one that signed. Throws
 * BackupInvalidError (corrupted) or BackupForeignError (another vault's).
 */
export async function verifyBackup(file: string, trust: BackupTrust): Promise<BackupManifest> {
  if (!trust.publicKey && !trust.provider) throw new TypeError('verifyBackup needs a public key or a key provider')
  const b = openBackupFile(file)
  const m = b.manifest
  if (!manifestSignatureValid(b, m.signer.publicKey)) throw new BackupInvalidError('its manifest signature does not verify')
  checkParts(b)
  if (trust.publicKey && trust.publicKey.trim() !== m.signer.publicKey)
    throw new BackupForeignError('it is signed by another audit key than the one given')
  if (trust.provider) {
    let signer: string
    try {
      signer = (await trust.provider.unwrap(Buffer.from(m.signer.wrappedKey, 'base64'), SIGNER_AAD)).toString('utf8')
    } catch {
      throw new BackupForeignError(
        'its keys do not open with this root key (another vault, or a backup from before a root-key rotation: restore it with the old key)',
      )
    }
    let vkey: string
    try {
      vkey = parseSignerKey(signer).verifierKey
    } catch {
      throw new BackupInvalidError('its checkpoint key is malformed')
    }
    if (vkey !== m.signer.publicKey) throw new BackupInvalidError('its manifest names another signer than its wrapped key')
  }
  return m
}

/** A backup found in a directory, as `coffer backup list` shows it (manifest read, not verified). */
export interface ListedBackup {
  file: string
  bytes: number
  manifest?: BackupManifest
  error?: string
}

/** The backups in `dir`, newest first (files this code named; unreadable ones carry `error`). */
export function listBackups(dir: string): ListedBackup[] {
  if (!existsSync(dir)) return []
  const out: ListedBackup[] = []
  for (const name of readdirSync(dir)) {
    if (!BACKUP_NAME.test(name)) continue
    const file = join(dir, name)
    const bytes = statSync(file).size
    try {
      out.push({ file, bytes, manifest: openBackupFile(file).manifest })
    } catch (err) {
      out.push({ file, bytes, error: (err as Error).message })
    }
  }
  const when = (b: ListedBackup) => b.manifest?.createdAt ?? ''
  return out.sort((a, b) => when(b).localeCompare(when(a)) || b.file.localeCompare(a.file))
}

/**
 * Deletes backups in `dir` beyond the newest `keep`, and every backup older than
 * `maxAgeDays` (the purge window: a deleted workspace leaves the backups within it).
 * Returns the files deleted.
 */
export function pruneBackups(dir: string, keep: number, maxAgeDays: number, now: Date): string[] {
  const cutoff = now.getTime() - maxAgeDays * 86_400_000
  const deleted: string[] = []
  listBackups(dir).forEach((b, i) => {
    const at = b.manifest ? Date.parse(b.manifest.createdAt) : Number.NaN
    if (i >= keep || (Number.isFinite(at) && at < cutoff)) {
      rmSync(b.file, { force: true })
      deleted.push(b.file)
    }
  })
  return deleted
}

/** What the database held before a restore: its audit heads, restore records and checkpoint key. */
interface Replaced {
  schemaVersion: number
  /** Per workspace: the head discarded, and every signed checkpoint of the log. */
  heads: Map<string, { head: TreeHead; checkpoints: TreeHead[] }>
  records: RestoreRecord[]
  publicKey?: string
}

async function readReplaced(db: Executor): Promise<Replaced> {
  let info: SnapshotInfo
  try {
    info = await readSnapshotInfo(db)
  } catch {
    return { schemaVersion: 0, heads: new Map(), records: [] }
  }
  const heads = new Map<string, { head: TreeHead; checkpoints: TreeHead[] }>()
  for (const a of info.audit) {
    const cps = await db
      .selectFrom('audit_checkpoints')
      .select(['tree_size', 'root_hash'])
      .where('workspace_id', '=', a.workspaceId)
      .orderBy('tree_size')
      .execute()
    heads.set(a.workspaceId, {
      head: { treeSize: a.treeSize, rootHash: a.rootHash },
      checkpoints: cps.map((c) => ({ treeSize: Number(c.tree_size), rootHash: Buffer.from(c.root_hash).toString('base64') })),
    })
  }
  const stored = await db.selectFrom('meta').select('value').where('key', '=', VERIFIER_META).executeTakeFirst()
  return {
    schemaVersion: info.schemaVersion,
    heads,
    records: await loadRestoreRecords(db),
    ...(stored ? { publicKey: Buffer.from(stored.value).toString('utf8') } : {}),
  }
}

export interface RestoreResult {
  manifest: BackupManifest
  /** Workspaces whose log now records the restore. */
  workspaces: number
  /** Audit entries the restore discarded, over all workspaces (entries newer than the backup). */
  discardedEntries: number
}

/**
 * Restores a backup into the configured database, all or nothing. Refuses a corrupted or
 * foreign backup, another engine's, and (BackupServerRunningError) a database a server is
 * using. SQLite: the database file is replaced by the backup's copy (the old one is kept
 * aside until the restore is recorded, and put back on failure). PostgreSQL: in one
 * transaction as the schema owner, every table is emptied and refilled (an empty database
 * first gets the schema at the backup's version); another schema version is refused. Then
 * the schema is brought up to date and each workspace's log records the restore with a
 * signed restore record.
 */
export async function restoreBackup(
  file: string,
  target: { database: DatabaseConfig; provider: KeyProvider; clock: Clock },
): Promise<RestoreResult> {
  // The checks that need no database first: a bad file changes nothing and waits for nothing.
  const manifest = await verifyBackup(file, { provider: target.provider })
  if (manifest.engine !== target.database.engine)
    throw new BackupSchemaMismatchError(`The backup is of a ${manifest.engine} database; this vault uses ${target.database.engine}.`)
  if (manifest.schemaVersion > LATEST_SCHEMA_VERSION)
    throw new BackupSchemaMismatchError(
      `The backup's schema is at version ${manifest.schemaVersion}; this Coffer knows only up to ${LATEST_SCHEMA_VERSION}. Upgrade Coffer.`,
    )
  const r =
    target.database.engine === 'sqlite'
      ? await restoreSqlite(file, manifest, target.database.path, target)
      : await restorePostgres(file, manifest, target.database.migrationUrl ?? target.database.url, target)
  return r
}

function discarded(replaced: Replaced, manifest: BackupManifest): number {
  let n = 0
  for (const [ws, { head }] of replaced.heads) {
    const at = manifest.audit.find((a) => a.workspaceId === ws)?.treeSize ?? 0
    if (head.treeSize > at) n += head.treeSize - at
  }
  return n
}

async function restoreSqlite(
  file: string,
  manifest: BackupManifest,
  path: string,
  target: { provider: KeyProvider; clock: Clock },
): Promise<RestoreResult> {
  let replaced: Replaced = { schemaVersion: 0, heads: new Map(), records: [] }
  if (existsSync(path)) {
    // Every open connection of a server holds a shared lock on the file: an exclusive lock is
    // granted only when no server (and no other Coffer command) has the database open.
    const probe = new BetterSqlite3(path, { timeout: 0 })
    try {
      probe.pragma('locking_mode = EXCLUSIVE')
      probe.exec('BEGIN EXCLUSIVE')
    } catch (err) {
      probe.close()
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw new BackupServerRunningError()
      throw err
    }
    const kdb = new Kysely<Database>({ dialect: new SqliteDialect({ database: probe }) })
    try {
      replaced = await readReplaced(kdb)
      probe.exec('COMMIT')
      probe.pragma('wal_checkpoint(TRUNCATE)')
    } finally {
      await kdb.destroy()
    }
    if (replaced.publicKey && replaced.publicKey !== manifest.signer.publicKey)
      throw new BackupForeignError("it is signed by another audit key than this database's")
  }
  const incoming = `${path}.restoring`
  const aside = `${path}.pre-restore`
  for (const f of [incoming, `${incoming}-wal`, `${incoming}-shm`]) rmSync(f, { force: true })
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  // @NOTE checked against the manifest whose signature was verified, not the file's own again:
  // a file swapped after the check is refused here, before anything is replaced.
  checkPart({ ...openBackupFile(file), manifest }, DATA_PART.sqlite, incoming)
  const hadOld = existsSync(path)
  if (hadOld) renameSync(path, aside)
  for (const f of [`${path}-wal`, `${path}-shm`]) rmSync(f, { force: true })
  renameSync(incoming, path)
  const putBack = () => {
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true })
    if (hadOld) renameSync(aside, path)
  }
  let made: RestoreRecord[]
  try {
    const store = openStore({ engine: 'sqlite', path })
    try {
      await migrate(store)
      made = await store.db
        .transaction()
        .execute((tx) => recordRestore(tx, 'sqlite', target.provider, target.clock, manifest, replaced.heads, replaced.records))
    } finally {
      await store.close()
    }
  } catch (err) {
    putBack()
    throw err
  }
  if (hadOld) rmSync(aside, { force: true })
  return { manifest, workspaces: made.length, discardedEntries: discarded(replaced, manifest) }
}

/** Inserts `rows` (JSON arrays, bytea in base64) into `table` in batches. */
async function insertRows(tx: Executor, table: string, columns: string[], bytea: string[], rows: unknown[][]): Promise<void> {
  if (!rows.length) return
  const isBytea = columns.map((c) => bytea.includes(c))
  const values = rows.map((r) => sql`(${sql.join(r.map((v, i) => (v !== null && isBytea[i] ? Buffer.from(v as string, 'base64') : v)))})`)
  await sql`INSERT INTO ${sql.id(table)} (${sql.join(columns.map((c) => sql.id(c)))}) VALUES ${sql.join(values)}`.execute(tx)
}

/** Reads the row dump and inserts it in order; checks its shape against the schema as it goes. */
async function loadRows(tx: Transaction<Database>, dump: string, tables: string[]): Promise<number> {
  const lines = createInterface({ input: createReadStream(dump, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY })
  let current: { table: string; columns: string[]; bytea: string[] } | undefined
  let batch: unknown[][] = []
  let total = 0
  let ended = false
  const flush = async () => {
    if (current) await insertRows(tx, current.table, current.columns, current.bytea, batch)
    batch = []
  }
  for await (const line of lines) {
    if (!line) continue
    if (ended) throw new BackupInvalidError('its row dump goes on after its end')
    const v = JSON.parse(line) as unknown
    if (Array.isArray(v)) {
      if (!current || v.length !== current.columns.length) throw new BackupInvalidError('its row dump is malformed')
      batch.push(v)
      total++
      if (batch.length * current.columns.length >= 30_000) await flush()
      continue
    }
    await flush()
    const h = v as { table?: string; columns?: string[]; bytea?: string[]; end?: boolean; rows?: number }
    if (h.end) {
      if (h.rows !== total) throw new BackupInvalidError('its row dump is incomplete')
      ended = true
      continue
    }
    if (typeof h.table !== 'string' || !tables.includes(h.table) || !Array.isArray(h.columns))
      throw new BackupSchemaMismatchError(`The backup holds a table (${String(h.table)}) this database's schema does not have.`)
    const live = await columnsOf(tx, h.table)
    if (live.columns.join(',') !== h.columns.join(','))
      throw new BackupSchemaMismatchError(`The backup's table ${h.table} has other columns than this database's.`)
    current = { table: h.table, columns: h.columns, bytea: live.bytea }
  }
  await flush()
  if (!ended) throw new BackupInvalidError('its row dump is incomplete')
  return total
}

/**
 * PostgreSQL: moves every identity column's sequence (audit_queue.qid) past the largest value
 * restored, so rows inserted after the restore take new numbers. SQLite's AUTOINCREMENT
 * follows explicit values by itself.
 */
async function advanceIdentities(tx: Executor): Promise<void> {
  const { rows } = await sql<{ t: string; c: string }>`SELECT table_name AS t, column_name AS c FROM information_schema.columns
    WHERE table_schema = current_schema() AND is_identity = 'YES'`.execute(tx)
  for (const { t, c } of rows)
    await sql`SELECT setval(pg_get_serial_sequence(${t}, ${c}), COALESCE((SELECT max(${sql.ref(c)}) FROM ${sql.table(t)}), 0) + 1, false)`.execute(
      tx,
    )
}

async function restorePostgres(
  file: string,
  manifest: BackupManifest,
  ownerUrl: string,
  target: { provider: KeyProvider; clock: Clock },
): Promise<RestoreResult> {
  const lock = await takeServingLockExclusively(ownerUrl)
  if (!lock) throw new BackupServerRunningError()
  const work = mkdtempSync(join(tmpdir(), 'coffer-restore-'))
  const store = openStore({ engine: 'postgres', url: ownerUrl })
  try {
    const dump = join(work, DATA_PART.postgres)
    checkPart({ ...openBackupFile(file), manifest }, DATA_PART.postgres, dump)
    const replaced = await store.db.transaction().execute(async (tx) => {
      const { rows } = await sql<{ t: string | null }>`SELECT to_regclass('coffer_schema')::text AS t`.execute(tx)
      if (!rows[0]?.t) return { schemaVersion: 0, heads: new Map(), records: [] } as Replaced
      await setScope(tx, 'postgres', SYSTEM_SCOPE)
      return readReplaced(tx)
    })
    if (replaced.publicKey && replaced.publicKey !== manifest.signer.publicKey)
      throw new BackupForeignError("it is signed by another audit key than this database's")
    if (replaced.schemaVersion !== 0 && replaced.schemaVersion !== manifest.schemaVersion)
      throw new BackupSchemaMismatchError(
        `This database's schema is at version ${replaced.schemaVersion} and the backup's at ${manifest.schemaVersion}: restore it into an empty database (docs/operations.md, Backups and restore).`,
      )
    const made = await store.db.transaction().execute(async (tx) => {
      await setScope(tx, 'postgres', SYSTEM_SCOPE)
      if (replaced.schemaVersion === 0) await migrateWithin(tx, 'postgres', 0, manifest.schemaVersion)
      const tables = await tablesInInsertOrder(tx)
      // The append-only triggers would refuse emptying the audit tables; they are off only
      // inside this transaction (ALTER TABLE is transactional), and foreign keys stay on.
      for (const t of tables) await sql`ALTER TABLE ${sql.id(t)} DISABLE TRIGGER USER`.execute(tx)
      await sql`TRUNCATE ${sql.join(tables.map((t) => sql.id(t)))}`.execute(tx)
      await loadRows(tx, dump, tables)
      for (const t of tables) await sql`ALTER TABLE ${sql.id(t)} ENABLE TRIGGER USER`.execute(tx)
      await advanceIdentities(tx)
      if (manifest.schemaVersion < LATEST_SCHEMA_VERSION) await migrateWithin(tx, 'postgres', manifest.schemaVersion, LATEST_SCHEMA_VERSION)
      return recordRestore(tx, 'postgres', target.provider, target.clock, manifest, replaced.heads, replaced.records)
    })
    return { manifest, workspaces: made.length, discardedEntries: discarded(replaced, manifest) }
  } finally {
    await store.close()
    await lock.release()
    rmSync(work, { recursive: true, force: true })
  }
}
