import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import { TargetCache } from './access/target-cache.js'
import { AuditSequencer, type Sequencing } from './audit/sequencer.js'
import { AuditThreadClient } from './audit/audit-thread-client.js'
import { ReadAuditBatcher } from './audit/read-audit-batcher.js'
import { partitionOf, rowLockedPartition } from './storage/commit-partition.js'
import { AuditLog } from './audit/audit-log.js'
import { AuditTree } from './audit/audit-tree.js'
import { verifySourceOf, VerifyWorkers } from './audit/verify-workers.js'
import { createKeyProvider } from './crypto/create-key-provider.js'
import { type Clock, systemClock } from './ops/clock.js'
import type { ServerConfig } from './ops/config.js'
import { type ErrorReporter, startErrorReports } from './ops/error-reports.js'
import { Metrics } from './ops/metrics.js'
import type { ServerSecrets } from './ops/secrets.js'
import { openStore, type Store } from './storage/database.js'
import { createMailer, type Mailer } from './identity/mailer.js'
import { OidcService } from './identity/oidc.js'
import { PrincipalCache } from './identity/principal-cache.js'
import { listenForNotifications } from './storage/notify-listener.js'
import { ADVISORY_LOCKS, startWriteBatch, takeAdvisoryLock } from './storage/advisory-lock.js'
import { GroupCommitter } from './storage/group-commit.js'
import type { RetryReason } from './storage/transaction-retry.js'
import { grantToAppRole, type MigrateHooks, migrate } from './storage/migrator.js'
import { MIGRATIONS } from './storage/migrations.js'
import { createBackup } from './backup/backup-service.js'
import type { KeyProvider } from './crypto/key-provider.js'
import { ConfigError } from './errors.js'
import { readInScope, SYSTEM_SCOPE, writeInScope } from './storage/tenant-scope.js'
import { ResealWorkers } from './crypto/reseal-workers.js'
import { DataKeys } from './vault/data-keys.js'
import { EnvironmentSnapshots } from './vault/environment-snapshots.js'
import { Resealer } from './vault/resealer.js'
import { PersonalOverrides } from './vault/personal-overrides.js'
import { SecretChanges } from './vault/secret-changes.js'
import { SecretService } from './vault/secret-service.js'
import { createWorkspace } from './access/workspace-creation.js'
import { VERSION } from './version.js'
import { AddressPolicy } from './ops/address-policy.js'
import { OutboundClient } from './ops/outbound.js'
import { OidcIssuerKeys } from './identity/oidc-issuer-keys.js'
import { WebhookDelivery } from './webhooks/delivery.js'
import { WebhookWorker } from './webhooks/worker.js'
import { DbRoleDropper } from './dynamic/dropper.js'
import { ConnectionRefresher } from './connections/refresher.js'
import { type RoleAssumer, StsRoleAssumer } from './dynamic/aws-sts.js'

/** Every service of a running Coffer, built once by createContext. */
export interface AppContext {
  readonly config: ServerConfig
  readonly store: Store
  readonly committer: GroupCommitter
  readonly dataKeys: DataKeys
  readonly audit: AuditLog
  /** Integrates queued audit entries into their chains (started with the server). */
  readonly sequencer: Sequencing
  /** Queues the audit entries of reads finishing together in one unit of the committer (audit/read-audit-batcher.ts). */
  readonly readAudits: ReadAuditBatcher
  /** Checkpoints and proofs over the audit logs' Merkle trees. */
  readonly auditTree: AuditTree
  readonly secrets: SecretService
  /** Environment fetches answered from one ciphertext per environment (vault/environment-snapshots.ts). */
  readonly snapshots: EnvironmentSnapshots
  /** Members' personal overrides (issue 16 §2): each member reads and writes only their own. */
  readonly overrides: PersonalOverrides
  /** The time every service stamps and decides by (injectable for tests); see ops/clock.ts. */
  readonly clock: Clock
  /** Re-encrypts versions under older data keys after a rotation (started by the server). */
  readonly resealer: Resealer
  /** Sends verification and reset mails (disabled without COFFER_SMTP_URL). */
  readonly mailer: Mailer
  /** Sign-in with OpenID Connect, when COFFER_OIDC_ISSUER is set. */
  readonly oidc: OidcService | null
  /** The Prometheus metrics this process exports at /metrics (one registry per context). */
  readonly metrics: Metrics
  /** Where unexpected errors (5xx answers, failed jobs) are reported: COFFER_SENTRY_DSN, or nowhere. */
  readonly errorReports: ErrorReporter
  /** Authenticated credentials of this node, checked against the database's epochs on each use (identity/principal-cache.ts). */
  readonly principals: PrincipalCache
  /** Resolved targets of requests answered from the principal cache (src/access/target-cache.ts). */
  readonly targets: TargetCache
  /** The one client for HTTP requests to addresses users give (webhooks, OAuth providers): SSRF-guarded (ops/outbound.ts). */
  readonly outbound: OutboundClient
  /** The signing keys of the OIDC issuers machine identities trust, fetched through `outbound` and cached (identity/oidc-issuer-keys.ts). */
  readonly oidcIssuerKeys: OidcIssuerKeys
  /** Turns integrated audit entries into webhook messages and sends them (started with the server). */
  readonly webhooks: WebhookWorker
  /** Drops expired dynamic database login roles (a job the server runs). */
  readonly dbDropper: DbRoleDropper
  /** Refreshes OAuth connection tokens ahead of their expiry (a job the server runs). */
  readonly connectionRefresher: ConnectionRefresher
  /** Assumes customers' IAM roles with AWS STS (Coffer's own AWS credentials from the SDK's default chain). */
  readonly awsSts: RoleAssumer
  /** The watchers of environments on this node (`coffer run --watch`) and the hints that wake them (vault/secret-changes.ts). */
  readonly secretChanges: SecretChanges
  /** Stops accepting work, waits for queued commits, closes the database and the key provider. */
  close(): Promise<void>
}

/** Test and embedding hooks; production uses none. */
export interface ContextOverrides {
  store?: Store
  /** Another mailer (default: SMTP from COFFER_SMTP_URL, or disabled). */
  mailer?: Mailer
  /** Another clock for every time-bound decision and timestamp; default: the system clock. */
  clock?: Clock
}

/**
 * Opens storage, applies migrations, starts the key provider, checks that the root key
 * opens this database, and builds the services.
 */
export async function createContext(
  config: ServerConfig,
  secrets: ServerSecrets,
  overrides: ContextOverrides = {},
): Promise<AppContext & { createdKeyFile: boolean }> {
  const clock = overrides.clock ?? systemClock
  const metrics = new Metrics()
  const onRetry = (reason: RetryReason) => metrics.transactionRetries.inc(1, { reason })
  const { provider, createdKeyFile } = await createKeyProvider(config.keyProvider, secrets)
  const store = overrides.store ?? openStore(config.database, { onRetry })
  try {
    await migrateStore(config, store, { provider, clock, metrics })
    const dataKeys = new DataKeys(provider, config.dekCache, clock)
    await writeInScope(store, store.db, SYSTEM_SCOPE, (tx) => dataKeys.checkRootKey(tx))
    const audit = new AuditLog(store.engine, (db, ws) => dataKeys.fingerprintKey(db, ws), clock)
    // Long logs are verified on threads that read the configured database themselves.
    const verifyWorkers = new VerifyWorkers(undefined, { background: true })
    if (!overrides.store) audit.useWorkers(verifyWorkers, verifySourceOf(config.database))
    const auditTree = new AuditTree(provider, clock)
    await auditTree.init(store.db)
    const committer = new GroupCommitter(store.db, { onRetry, engine: store.engine })
    // Each batch runs in its workspace's row-level security scope; units submitted without
    // a workspace (bootstrap, jobs, bookkeeping partitions that name no workspace) are system work.
    // @NOTE no batch takes its workspace's audit chain: entries are queued, and only the
    // sequencer locks the head. A batch of a workspace's serialised writes takes the workspace
    // write lock before any row (docs/architecture.md, "Lock order"; commit-partition.ts).
    committer.onBatchStart(async (tx, partition) => {
      const { workspaceId, lock } = partitionOf(partition)
      await startWriteBatch(tx, store.engine, workspaceId ?? SYSTEM_SCOPE, lock)
      // One-key secret writes, beside other nodes' batches: encryptions are counted at the end.
      if (lock && 'shared' in lock) dataKeys.countAtEnd(tx)
    })
    committer.onBatchEnd((tx) => dataKeys.flushCounts(tx))
    // On a SQLite file the sequencer and the queuing of reads' entries run on the audit thread
    // (audit/audit-thread-client.ts); a store or clock given by a test keeps them here.
    const db = config.database
    const auditThread =
      db.engine === 'sqlite' && !overrides.store && !overrides.clock
        ? new AuditThreadClient({
            path: db.path,
            mergeDelayMs: config.audit.mergeDelayMs,
            leaseMs: config.audit.sequencerLeaseMs,
            hasQueued: async () => (await store.readDb.selectFrom('audit_queue').select('qid').limit(1).execute()).length > 0,
            metrics,
          })
        : null
    const sequencer: Sequencing =
      auditThread ??
      new AuditSequencer({
        store,
        committer,
        audit,
        clock,
        mergeDelayMs: config.audit.mergeDelayMs,
        leaseMs: config.audit.sequencerLeaseMs,
        metrics,
      })
    const readAudits = new ReadAuditBatcher(
      auditThread
        ? async (ws, take) => auditThread.queue(await audit.records(store.readDb, ws, take()))
        : (ws, take) => committer.run((tx) => audit.appendMany(tx, ws, take()), rowLockedPartition(ws)),
    )
    const secretService = new SecretService({ dataKeys, clock, engine: store.engine })
    const personalOverrides = new PersonalOverrides({ dataKeys, clock })
    const snapshots = new EnvironmentSnapshots({
      dataKeys,
      secrets: secretService,
      clock,
      engine: store.engine,
      write: (workspaceId, work) => committer.run(work, rowLockedPartition(workspaceId, 'snapshots')),
      metrics,
    })
    // Threads start only when a reseal first runs.
    const resealWorkers = new ResealWorkers()
    const resealer = new Resealer({
      store,
      committer,
      dataKeys,
      audit,
      batchSize: config.keys.resealBatch,
      leaseMs: config.keys.resealLeaseMs,
      clock,
      workers: resealWorkers,
    })
    const mailer = overrides.mailer ?? createMailer(secrets.smtpUrl, config.auth.mail.from)
    const oidc = config.auth.oidc ? new OidcService(config.auth.oidc, secrets.oidcClientSecret, config.auth.publicUrl) : null
    const errorReports = await startErrorReports(secrets.errorReportsDsn, { release: VERSION })
    // On PostgreSQL the cache is used only while this node hears the triggers' notifications
    // (migration 12); on SQLite (one node) the epochs read by each request are enough.
    const principals = new PrincipalCache({
      max: config.principalCache.maxEntries,
      ttlMs: config.principalCache.ttlMs,
      enabled: db.engine !== 'postgres',
      metrics,
    })
    // Used only by requests whose principal came from `principals` (they read the workspace's
    // epoch in their own transaction), so bounded by the same setting and off with it.
    const targets = new TargetCache({ max: config.principalCache.ttlMs > 0 ? config.principalCache.maxEntries : 0, metrics })
    // Watchers of environments hear every change while this node hears the notifications of
    // migration 15 (on SQLite, one node, the writes of this process); otherwise they poll.
    const secretChanges = new SecretChanges({ live: db.engine !== 'postgres' })
    // One LISTEN connection per node for both channels: `coffer_auth` (migration 12) empties
    // cached principals and ends the streams of a revoked credential; `coffer_secrets`
    // (migration 15) wakes the watchers of a changed environment.
    const notifications =
      db.engine === 'postgres'
        ? listenForNotifications(db.url, ['coffer_auth', 'coffer_secrets'], {
            onNotify: (payload, channel) => {
              if (channel === 'coffer_secrets') {
                secretChanges.secretChanged(payload)
                return
              }
              principals.invalidateScope(payload)
              secretChanges.authChanged(payload)
            },
            onUp: () => {
              principals.setEnabled(true)
              secretChanges.setLive(true)
            },
            onDown: () => {
              principals.setEnabled(false)
              secretChanges.setLive(false)
            },
          })
        : null
    const outbound = new OutboundClient({
      policy: new AddressPolicy(config.outbound.allow),
      onOutcome: (outcome) => metrics.outboundRequests.inc(1, { outcome }),
    })
    return {
      config,
      store,
      committer,
      dataKeys,
      audit,
      sequencer,
      readAudits,
      auditTree,
      secrets: secretService,
      snapshots,
      overrides: personalOverrides,
      resealer,
      createdKeyFile,
      clock,
      mailer,
      oidc,
      metrics,
      errorReports,
      principals,
      targets,
      outbound,
      oidcIssuerKeys: new OidcIssuerKeys({ outbound, clock }),
      dbDropper: new DbRoleDropper({ store, keys: dataKeys, outbound, audit, clock }),
      connectionRefresher: new ConnectionRefresher({ store, keys: dataKeys, outbound, audit, clock }),
      awsSts: new StsRoleAssumer(config.aws),
      webhooks: new WebhookWorker({
        store,
        clock,
        delivery: new WebhookDelivery({
          store,
          keys: dataKeys,
          outbound,
          audit,
          clock,
          config: config.webhooks,
          node: `node-${randomUUID()}`,
          userAgent: `Coffer-Webhooks/${VERSION}`,
          onAttempt: (outcome) => metrics.webhookAttempts.inc(1, { outcome }),
        }),
        onError: (err) => errorReports.capture(err, { job: 'webhooks' }),
      }),
      secretChanges,
      async close() {
        secretChanges.closeAll()
        await notifications?.close()
        mailer.close()
        await resealer.stop()
        await snapshots.settled()
        await sequencer.stop()
        await auditThread?.close()
        await resealWorkers.close()
        await verifyWorkers.close()
        await committer.close()
        await store.close()
        await provider.close()
        await errorReports.close()
      },
    }
  } catch (err) {
    await store.close().catch(() => {})
    await provider.close().catch(() => {})
    throw err
  }
}

/**
 * Applies pending migrations. With a separate schema owner (COFFER_MIGRATION_DATABASE_URL)
 * they run on the owner's connection, which then lets the application's role read and
 * write rows; the application's role owns nothing.
 */
async function migrateStore(config: ServerConfig, store: Store, pre: PreMigration): Promise<void> {
  if (config.database.engine !== 'postgres' || !config.database.migrationUrl) {
    await migrate(store, MIGRATIONS, preMigrationHooks(config, store, pre))
    return
  }
  const owner = openStore({ engine: 'postgres', url: config.database.migrationUrl })
  try {
    await migrate(owner, MIGRATIONS, preMigrationHooks(config, owner, pre))
    const { rows } = await sql<{ role: string }>`SELECT current_user AS role`.execute(store.db)
    await grantToAppRole(owner, rows[0]!.role)
  } finally {
    await owner.close()
  }
}

interface PreMigration {
  provider: KeyProvider
  clock: Clock
  metrics: Metrics
}

/**
 * With COFFER_BACKUP_DIR set: a backup of the database as it is, taken before the first
 * migration step that changes a schema holding data (by the node that applies it). If the
 * backup fails, nothing is migrated.
 */
function preMigrationHooks(config: ServerConfig, store: Store, pre: PreMigration): MigrateHooks {
  const dir = config.backup.dir
  if (!dir) return {}
  return {
    async beforeChange(from) {
      try {
        const auditTree = new AuditTree(pre.provider, pre.clock)
        await auditTree.init(store.db)
        await createBackup({ database: config.database, store, auditTree, clock: pre.clock }, { dir, trigger: 'pre-migration' })
        pre.metrics.backupLastSuccess.set(Math.floor(pre.clock().getTime() / 1000))
      } catch (err) {
        pre.metrics.backupFailures.inc(1, { trigger: 'pre-migration' })
        throw new ConfigError(
          'COFFER_BACKUP_DIR',
          `the backup before migrating the schema from version ${from} failed (${(err as Error).message}); nothing was migrated. Fix it, or unset COFFER_BACKUP_DIR to migrate without a backup`,
        )
      }
    },
  }
}

/** Whether any workspace exists yet. */
export async function hasWorkspaces(ctx: AppContext): Promise<boolean> {
  const row = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => db.selectFrom('workspaces').select('id').limit(1).executeTakeFirst())
  return row !== undefined
}

/**
 * Creates the first workspace and its Owner unless a workspace exists — in one transaction,
 * under an advisory lock on PostgreSQL, so that of several nodes started at once on an empty
 * database exactly one creates it. Null when the database already had a workspace.
 */
export function bootstrapFirstWorkspace(ctx: AppContext, input: { name: string; ownerEmail: string }) {
  return ctx.committer.run(async (tx) => {
    await takeAdvisoryLock(tx, ctx.store.engine, ADVISORY_LOCKS.bootstrap)
    if (await tx.selectFrom('workspaces').select('id').limit(1).executeTakeFirst()) return null
    return createWorkspace(
      tx,
      { dataKeys: ctx.dataKeys, audit: ctx.audit },
      { name: input.name, ownerEmail: input.ownerEmail },
      ctx.clock(),
    )
  })
}

/** Creates a workspace and its Owner through the committer (bootstrap and `coffer init`). */
export function bootstrapWorkspace(ctx: AppContext, input: { name: string; ownerEmail: string }) {
  return ctx.committer.run((tx) =>
    createWorkspace(tx, { dataKeys: ctx.dataKeys, audit: ctx.audit }, { name: input.name, ownerEmail: input.ownerEmail }, ctx.clock()),
  )
}
