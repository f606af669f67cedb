import { AuditLog } from './audit/audit-log.js'
import { AuditTree } from './audit/audit-tree.js'
import { createKeyProvider } from './crypto/create-key-provider.js'
import { DataKeys } from './crypto/data-keys.js'
import type { ServerConfig } from './ops/config.js'
import type { ServerSecrets } from './ops/secrets.js'
import { openStore, type Store } from './storage/database.js'
import { GroupCommitter } from './storage/group-commit.js'
import { migrate } from './storage/migrator.js'
import { SecretService } from './vault/secret-service.js'
import { createWorkspace } from './vault/workspace-service.js'

/** Every service of a running Coffer, built once by createContext. */
export interface AppContext {
  readonly config: ServerConfig
  readonly store: Store
  readonly committer: GroupCommitter
  readonly dataKeys: DataKeys
  readonly audit: AuditLog
  /** Checkpoints and proofs over the audit logs' Merkle trees. */
  readonly auditTree: AuditTree
  readonly secrets: SecretService
  /** Stops accepting work, waits for queued commits, closes the database and the key provider. */
  close(): Promise<void>
}

/** Test and embedding hooks; production uses none. */
export interface ContextOverrides {
  store?: Store
}

/**
 * Opens storage, applies migrations, starts the key provider, checks that the root key
 * opens this database, and builds the services.
 */
export async function createContext(config: ServerConfig, secrets: ServerSecrets, overrides: ContextOverrides = {}): Promise<AppContext & { createdKeyFile: boolean }> {
  const { provider, createdKeyFile } = await createKeyProvider(config.keyProvider, secrets)
  const store = overrides.store ?? openStore(config.database)
  try {
    await migrate(store)
    const dataKeys = new DataKeys(provider, config.dekCache)
    await dataKeys.checkRootKey(store.db)
    const audit = new AuditLog(store.engine, (db, ws) => dataKeys.fingerprintKey(db, ws))
    const auditTree = new AuditTree(provider)
    await auditTree.init(store.db)
    const committer = new GroupCommitter(store.db)
    committer.onUnitRollback((tx) => audit.forget(tx))
    const secretService = new SecretService({ dataKeys })
    return {
      config, store, committer, dataKeys, audit, auditTree, secrets: secretService, createdKeyFile,
      async close() {
        await committer.close()
        await store.close()
        await provider.close()
      },
    }
  } catch (err) {
    await store.close().catch(() => {})
    await provider.close().catch(() => {})
    throw err
  }
}

/** Whether any workspace exists yet. */
export async function hasWorkspaces(ctx: AppContext): Promise<boolean> {
  return (await ctx.store.db.selectFrom('workspaces').select('id').limit(1).executeTakeFirst()) !== undefined
}

/** Creates a workspace and its Owner through the committer (bootstrap and `coffer init`). */
export function bootstrapWorkspace(ctx: AppContext, input: { name: string; ownerEmail: string }) {
  return ctx.committer.run((tx) => createWorkspace(tx, { dataKeys: ctx.dataKeys, audit: ctx.audit }, { name: input.name, ownerEmail: input.ownerEmail }))
}
