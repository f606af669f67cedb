// Backup commands that run on the server host: they read the same settings as `coffer
// server` and open the database and the root-key provider themselves. `create` works while
// servers run; `restore` refuses until every server on the data is stopped.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../audit/audit-log.js'
import { AuditTree } from '../../audit/audit-tree.js'
import { createBackup, listBackups, restoreBackup, verifyBackup } from '../../backup/backup-service.js'
import { createKeyProvider } from '../../crypto/create-key-provider.js'
import type { KeyProvider } from '../../crypto/key-provider.js'
import { ROOT_KEY_FILE } from '../../crypto/local-file-key-provider.js'
import { CofferError, RootKeyMismatchError } from '../../errors.js'
import { systemClock } from '../../ops/clock.js'
import { buildConfig, type ServerConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { buildSecrets } from '../../ops/secrets.js'
import { openStore } from '../../storage/database.js'
import { DataKeys } from '../../vault/data-keys.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'

interface HostOpts {
  dataDir?: string
  json?: boolean
}

function settings(opts: HostOpts): { config: ServerConfig; env: ReturnType<typeof readEnv> } {
  const env = readEnv()
  return { config: buildConfig(env, { dataDir: opts.dataDir }), env }
}

/** The configured root-key provider — never a new key: a backup command that made one would open nothing. */
async function openKeyProvider(config: ServerConfig, env: ReturnType<typeof readEnv>): Promise<KeyProvider> {
  const secrets = buildSecrets(env)
  const k = config.keyProvider
  if (k.provider === 'local' && !secrets.rootKey && !existsSync(join(k.keyFileDir, ROOT_KEY_FILE)))
    throw new ExitError(
      `No root key: neither COFFER_ROOT_KEY nor ${join(k.keyFileDir, ROOT_KEY_FILE)}. Give the vault's root key (it is never inside a backup).`,
    )
  return (await createKeyProvider(k, secrets)).provider
}

/** Where backups go when no --out is given, and what `list` lists: COFFER_BACKUP_DIR, else <data dir>/backups. */
function backupDir(config: ServerConfig): string {
  return config.backup.dir ?? join(config.dataDir, 'backups')
}

/** Runs a backup step; a refusal prints its stable code on the line, as the server's errors do (`coffer: <message> (<code>)`). */
async function coded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof CofferError) throw new ExitError(`${err.message} (${err.code})`, { code: err.code })
    throw err
  }
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`

/** `coffer backup create [--out FILE]`: a consistent, signed backup of the running (or stopped) vault. */
export async function backupCreate(opts: HostOpts & { out?: string }): Promise<void> {
  const { config, env } = settings(opts)
  if (config.database.engine === 'sqlite' && !existsSync(config.database.path))
    throw new ExitError(`No database at ${config.database.path}: nothing to back up.`)
  const provider = await openKeyProvider(config, env)
  try {
    const store = openStore(config.database)
    try {
      const auditTree = new AuditTree(provider, systemClock)
      await auditTree.init(store.db).catch(() => {
        throw new RootKeyMismatchError()
      })
      const dataKeys = new DataKeys(provider, config.dekCache, systemClock)
      const audit = new AuditLog(store.engine, (db, ws) => dataKeys.fingerprintKey(db, ws), systemClock)
      const r = await createBackup(
        { database: config.database, store, auditTree, clock: systemClock, audit },
        { ...(opts.out ? { out: opts.out } : { dir: backupDir(config) }), trigger: 'manual' },
      )
      if (opts.json) return printJson({ file: r.path, manifest: r.manifest })
      info(
        `Backup ${r.manifest.id} written to ${r.path}: ${r.manifest.engine}, schema ${r.manifest.schemaVersion}, ${r.manifest.audit.length} workspace logs, signed by ${r.manifest.signer.publicKey.split('+')[0]}.`,
      )
      info('It holds ciphertext and wrapped keys only: restoring it needs this vault’s root key, which is not inside it.')
    } finally {
      await store.close()
    }
  } finally {
    await provider.close()
  }
}

/** `coffer backup list`: the backups in COFFER_BACKUP_DIR (or <data dir>/backups), newest first. */
export async function backupList(opts: HostOpts): Promise<void> {
  const { config } = settings(opts)
  const dir = backupDir(config)
  const list = listBackups(dir)
  if (opts.json)
    return printJson({
      dir,
      backups: list.map((b) => ({
        file: b.file,
        bytes: b.bytes,
        ...(b.manifest
          ? {
              id: b.manifest.id,
              createdAt: b.manifest.createdAt,
              trigger: b.manifest.trigger,
              engine: b.manifest.engine,
              schemaVersion: b.manifest.schemaVersion,
            }
          : { error: b.error }),
      })),
    })
  if (!list.length) return info(`No backups in ${dir}.`)
  for (const b of list) {
    if (!b.manifest) info(`${b.file}  UNREADABLE: ${b.error}`)
    else
      info(
        `${b.manifest.createdAt}  ${b.manifest.trigger.padEnd(13)} ${b.manifest.engine.padEnd(8)} schema ${b.manifest.schemaVersion}  ${mib(b.bytes).padStart(10)}  ${b.file}`,
      )
  }
}

/**
 * `coffer backup verify FILE [--public-key KEY]`: checks the structure, every checksum and the
 * manifest's signature, and that the backup is this vault's — by the root key (its checkpoint
 * key unwraps with it), or with --public-key by the audit public key alone (no root key needed).
 */
export async function backupVerify(file: string, opts: HostOpts & { publicKey?: string }): Promise<void> {
  let manifest: Awaited<ReturnType<typeof verifyBackup>>
  let by: string
  if (opts.publicKey) {
    manifest = await coded(() => verifyBackup(file, { publicKey: opts.publicKey }))
    by = 'the audit public key given'
  } else {
    const { config, env } = settings(opts)
    const provider = await openKeyProvider(config, env)
    try {
      manifest = await coded(() => verifyBackup(file, { provider }))
    } finally {
      await provider.close()
    }
    by = 'this vault’s root key'
  }
  if (opts.json) return printJson({ ok: true, file, manifest })
  info(
    `${file} verifies: ${manifest.engine} backup ${manifest.id} of ${manifest.createdAt} (schema ${manifest.schemaVersion}); every checksum matches and the manifest is signed by ${manifest.signer.publicKey.split('+')[0]}, vouched for by ${by}.`,
  )
}

/** `coffer backup restore FILE`: replaces the database's contents with the backup's (stop every server first). */
export async function backupRestore(file: string, opts: HostOpts): Promise<void> {
  const { config, env } = settings(opts)
  const provider = await openKeyProvider(config, env)
  try {
    const r = await coded(() => restoreBackup(file, { database: config.database, provider, clock: systemClock }))
    if (opts.json) return printJson({ restored: r.manifest.id, createdAt: r.manifest.createdAt, ...r, manifest: undefined })
    info(
      `Restored backup ${r.manifest.id} of ${r.manifest.createdAt} into ${config.database.engine === 'sqlite' ? config.database.path : 'the PostgreSQL database'}.`,
    )
    info(
      `${r.workspaces} workspace logs record the restore with a signed restore record${r.discardedEntries ? `; ${r.discardedEntries} newer audit entries were discarded with the newer data` : ''}.`,
    )
    info('Clients that verified the newer log see the restore named by `coffer audit verify`. Start the servers again.')
  } finally {
    await provider.close()
  }
}
