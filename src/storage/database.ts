import BetterSqlite3 from 'better-sqlite3'
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { Kysely, PostgresAdapter, PostgresDialect, SqliteDialect, sql } from 'kysely'
import { createRequire } from 'node:module'
import type PgModule from 'pg'
import { type DatabaseConfig, DEFAULT_POOL_SIZE } from '../ops/config.js'
import type { Database } from './schema.js'
import { pgClientClass } from './pg-client.js'
import { cachingDatabase } from './statement-cache.js'
import type { RetryObserver } from './transaction-retry.js'
import { LockWaitingSqliteDialect } from './write-lock-wait.js'

export type Engine = 'sqlite' | 'postgres'
export type { Executor } from './schema.js'

/** An open database: the Kysely handle and the engine behind it. */
export interface Store {
  readonly db: Kysely<Database>
  /**
   * For reads outside a transaction. On SQLite a second connection, so that requests that
   * only read never wait behind a group-commit transaction on the writer's connection (WAL
   * lets them read the last committed state); on PostgreSQL the same pool.
   */
  readonly readDb: Kysely<Database>
  readonly engine: Engine
  /** Told of every transaction run again after a conflict or a connection lost before commit (metrics). */
  readonly onRetry?: RetryObserver
  close(): Promise<void>
}

const INT8_OID = 20

/** How long a SQLite connection waits for a lock another connection holds (ms). */
const BUSY_TIMEOUT_MS = 5_000

// @NOTE the PostgreSQL driver is loaded only when a PostgreSQL database is opened: a node on
// SQLite (the default) does not carry it in memory.
const requireModule = createRequire(import.meta.url)
/** The engine an executor (a store's handle, a transaction, a connection) talks to. */
export function engineOf(db: Pick<Kysely<Database>, 'getExecutor'>): Engine {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite'
}

/** The pg module, loaded on first use. */
export function loadPg(): typeof PgModule {
  return requireModule('pg') as typeof PgModule
}

/**
 * Opens the configured database. SQLite runs in WAL mode with synchronous=FULL (every commit
 * is durable) and foreign keys on; PostgreSQL returns int8 as numbers (Coffer's counters stay
 * far below 2^53).
 */
export function openStore(config: DatabaseConfig, options: { onRetry?: RetryObserver; readerConnection?: boolean } = {}): Store {
  if (config.engine === 'sqlite') {
    mkdirSync(dirname(config.path), { recursive: true, mode: 0o700 })
    // The database holds only ciphertext, but its metadata (names, audit) is private too.
    // @NOTE only when missing: closing any descriptor of the file drops every POSIX lock this
    // process holds on it, the open connections' included (a second store in the process, as
    // the audit thread's, would let `coffer backup restore` take a file a server is using).
    if (!existsSync(config.path)) {
      try {
        closeSync(openSync(config.path, 'wx', 0o600))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
    }
    const sqlite = new BetterSqlite3(config.path)
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('synchronous = FULL')
    sqlite.pragma('foreign_keys = ON')
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    // @NOTE crypto-shredding: overwritten and deleted content (a workspace's wrapped keys) is
    // zeroed in the file instead of lingering in free space.
    sqlite.pragma('secure_delete = ON')
    // Transactions wait for the write lock between turns of the event loop (write-lock-wait.ts).
    const db = new Kysely<Database>({
      dialect: new LockWaitingSqliteDialect({ database: cachingDatabase(sqlite) }, BUSY_TIMEOUT_MS),
    })
    // A thread that only writes (the audit thread) reads on its one connection.
    if (options.readerConnection === false) return { db, readDb: db, engine: 'sqlite', onRetry: options.onRetry, close: () => db.destroy() }
    const reader = new BetterSqlite3(config.path)
    reader.pragma('foreign_keys = ON')
    reader.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    reader.pragma('query_only = ON')
    const readDb = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingDatabase(reader) }) })
    return {
      db,
      readDb,
      engine: 'sqlite',
      onRetry: options.onRetry,
      close: async () => {
        await readDb.destroy()
        await db.destroy()
      },
    }
  }
  const pg = loadPg()
  const pool = new pg.Pool({
    connectionString: config.url,
    // Named statements, and BEGIN sent with the transaction's first statement (pg-client.ts).
    Client: pgClientClass(pg),
    max: config.poolSize ?? DEFAULT_POOL_SIZE,
    // A connection attempt into a network that drops packets would otherwise wait forever:
    // fail it (503, and a start-up retry) after 5 s; keepalives find a dead peer of an idle one.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  })
  // @NOTE a connection that the server ends or the network cuts (restart, failover,
  // pg_terminate_backend, a proxy) makes its client emit 'error' — the pool's when idle, the
  // client's own while checked out in a query or transaction. Unheard, either event crashes
  // the process. The query in flight fails on its own (and answers 503); the pool drops the
  // broken client and opens a new one on demand.
  pool.on('error', () => {})
  pool.on('connect', (client) => {
    client.on('error', () => {})
  })
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  return { db, readDb: db, engine: 'postgres', onRetry: options.onRetry, close: () => db.destroy() }
}

/**
 * Whether PostgreSQL runs autovacuum (null on SQLite). Coffer's audit queue and data-key
 * counters leave dead row versions at the rate of requests; without vacuum every scan of them
 * grows slower (docs/operations.md, "Scaling out").
 */
export async function autovacuumOn(store: Pick<Store, 'engine' | 'db'>): Promise<boolean | null> {
  if (store.engine !== 'postgres') return null
  const { rows } = await sql<{ autovacuum: string }>`SHOW autovacuum`.execute(store.db)
  return rows[0]?.autovacuum === 'on'
}

/**
 * Whether the database answers and holds Coffer's schema (a cheap query for readiness checks).
 * On the reading connection: on SQLite the writing one may be waiting for the write lock
 * (write-lock-wait.ts), which says nothing about whether this node can serve.
 */
export async function pingDatabase(store: Pick<Store, 'readDb'>): Promise<void> {
  await store.readDb.selectFrom('coffer_schema').select('version').limit(1).execute()
}
