// The audit log's own costs, in-process (no HTTP), on SQLite and PostgreSQL, each beside a
// baseline measured in the same run.
//
//   node --import tsx bench/audit.ts [--parts abc] [--engines sqlite,postgres] [--duration 5]
//                                    [--appenders 64,256] [--verify-entries 200000] [--repeat 3]
//                                    [--proof-entries 1000000] [--proofs 1000] [--tmpdir DIR]
//                                    [--json FILE] [--wait-idle SECONDS]
//
// (a) durable audited appends/s: N concurrent appenders each looping
//     `committer.run((tx) => audit.append(tx, …))` — the GroupCommitter and AuditLog of
//     createContext, as the request pipeline uses them — for --duration seconds; baselines:
//     one appender, and raw 4 KiB write+fsync on the same filesystem.
// (b) full verification speed over a log of --verify-entries entries, bulk-loaded with the
//     chain hashes and tree nodes computed exactly as AuditLog.append computes them:
//     AuditLog.verify (chain; chain + checkpoint root), verifyExport on the export in memory,
//     the root alone; baseline: raw SHA-256 of the same entry bytes.
// (c) proof latency on a tree of --proof-entries leaves (synthetic leaf hashes, except the
//     sampled entries, whose rows are real): AuditTree.inclusion / consistency for --proofs
//     random entries and sizes, p50/p99 and SQL reads per proof; baseline: one indexed point
//     read of one node through the same Kysely handle.
//
// Temp dirs and throw-away PostgreSQL databases are removed on every way out (normal exit,
// exception, Ctrl-C, the script's own deadline). Exits 1 if any append fails, a chain does not
// verify, or a proof does not verify.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { rmSync, writeFileSync, mkdtempSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import {
  sql,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely'
import pg from 'pg'
import { type rowToRecord, Sensitive, type AuditActor, type AuditEvent } from '../src/audit/audit-log.js'
import { formatCheckpoint, generateNoteKey, signNote } from '../src/audit/checkpoint.js'
import { chainHash, entryBytes, type AuditRecord } from '../src/audit/entry.js'
import { CompactRange, HASH_SIZE, leafHash, rootFrom, verifyConsistency, verifyInclusion } from '../src/audit/merkle.js'
import { verifyExportFile, writeExportFile } from '../src/audit/export-file.js'
import { originOf, verifyExport, type AuditExport, type ExportedEntry } from '../src/audit/offline.js'
import { VerifyWorkers } from '../src/audit/verify-workers.js'
import { packPeaks, unpackPeaks } from '../src/audit/tree-store.js'
import { bootstrapWorkspace, createContext, type AppContext } from '../src/context.js'
import { buildConfig } from '../src/ops/config.js'
import { readEnv } from '../src/ops/env.js'
import { buildSecrets } from '../src/ops/secrets.js'
import { createTestDatabase, pgAvailable } from '../test/helpers/pg.js'
import { args, fsType, percentile, printTable, ratio, waitForIdle, type Cell } from './lib/harness.js'
import { fsyncBaseline } from './lib/fsync.js'

type EngineName = 'sqlite' | 'postgres'

const A = args()
const PARTS = A.get('parts') ?? 'abc'
const DURATION = Number(A.get('duration') ?? 5)
const APPENDERS = (A.get('appenders') ?? '64,256').split(',').map(Number)
const VERIFY_N = Number(A.get('verify-entries') ?? 200_000)
const PROOF_N = Number(A.get('proof-entries') ?? 1_000_000)
const PROOFS = Number(A.get('proofs') ?? 1000)
const REPEAT = Number(A.get('repeat') ?? 3)
const TMP_PARENT = A.get('tmpdir') ?? tmpdir()
const JSON_OUT = A.get('json')
let ENGINES = (A.get('engines') ?? 'sqlite,postgres').split(',') as EngineName[]
if (
  !(DURATION > 0 && DURATION <= 60) ||
  APPENDERS.some((n) => !(n >= 1 && n <= 4096)) ||
  !(VERIFY_N >= 10 && VERIFY_N <= 5_000_000) ||
  !(PROOF_N >= 1000 && PROOF_N <= 20_000_000) ||
  !(PROOFS >= 1 && PROOFS <= 100_000) ||
  !(REPEAT >= 1 && REPEAT <= 20) ||
  ENGINES.some((e) => e !== 'sqlite' && e !== 'postgres')
) {
  throw new Error(
    '--duration in (0, 60], --appenders in [1, 4096], --verify-entries in [10, 5e6], --proof-entries in [1000, 2e7], --proofs in [1, 1e5], --repeat in [1, 20], --engines sqlite,postgres',
  )
}
const TARGETS = { appendsPerSec: 10_000, verifyPerSec: 200_000 }

// ------------------------------------------------------------------------------------------
// Cleanup on every way out. Dropping a database is async, so signals and the deadline run the
// async cleanups before exiting; 'exit' removes what is left of the temp dirs synchronously.

const tempDirs = new Set<string>()
const cleanups = new Set<() => Promise<void>>()
/** Set by a signal or the deadline: load loops stop, nothing new is opened. */
let stopping = false
let cleaning: Promise<void> | undefined
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of [...cleanups].reverse())
      await c().catch((err: unknown) => process.stderr.write(`bench: cleanup: ${(err as Error).message}\n`))
    cleanups.clear()
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
    tempDirs.clear()
  })()
  return cleaning
}
process.on('exit', () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
})
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}, cleaning up\n`)
    stopping = true
    void cleanupAll().finally(() => process.exit(130))
  })
}
const deadlineSec = 900 + Number(A.get('wait-idle') ?? 0)
setTimeout(() => {
  process.stderr.write(`bench: over the ${deadlineSec}s limit, stopping\n`)
  stopping = true
  void cleanupAll().finally(() => process.exit(2))
}, deadlineSec * 1000).unref()

function makeTempDir(prefix: string): string {
  const d = mkdtempSync(join(TMP_PARENT, prefix))
  tempDirs.add(d)
  return d
}

// ------------------------------------------------------------------------------------------
// Engines: a context (createContext: migrations, key provider, GroupCommitter, AuditLog,
// AuditTree) on a fresh database, and one workspace made by bootstrapWorkspace.

interface Env {
  engine: EngineName
  ctx: AppContext
  ws: string
  dataDir: string
  sqlitePath?: string
  pgUrl?: string
  close(): Promise<void>
}

async function openEnv(engine: EngineName): Promise<Env> {
  if (stopping) throw new Error('stopping')
  const dataDir = makeTempDir(`coffer-bench-audit-${engine}-`)
  const raw: Record<string, string> = {
    COFFER_DATA_DIR: dataDir,
    COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
    COFFER_LOG_LEVEL: 'silent',
  }
  let drop: (() => Promise<void>) | undefined
  if (engine === 'postgres') {
    const db = await createTestDatabase()
    raw.DATABASE_URL = db.url
    drop = db.drop
    cleanups.add(drop)
  }
  const e = readEnv(raw)
  const config = buildConfig(e)
  const ctx = await createContext(config, buildSecrets(e))
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    // When stopping on a signal, do not wait long for in-flight work: the database is dropped anyway.
    await (stopping ? Promise.race([ctx.close(), new Promise((r) => setTimeout(r, 3000))]) : ctx.close())
    if (drop) {
      await drop()
      cleanups.delete(drop)
    }
    rmSync(dataDir, { recursive: true, force: true })
    tempDirs.delete(dataDir)
  }
  cleanups.add(close)
  const w = await bootstrapWorkspace(ctx, { name: `Bench ${randomBytes(3).toString('hex')}`, ownerEmail: 'bench@localhost' })
  return {
    engine,
    ctx,
    ws: w.workspace.id,
    dataDir,
    ...(config.database.engine === 'sqlite' ? { sqlitePath: config.database.path } : { pgUrl: config.database.url }),
    close,
  }
}

/** A seeded PRNG (mulberry32): the same random entries and sizes every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const fmt = (n: number, digits = 2) => Number(n.toFixed(digits))
const failures: string[] = []
const report: Record<string, unknown> = {}

// ------------------------------------------------------------------------------------------
// (a) Durable audited appends through GroupCommitter + AuditLog.append.

interface AppendRun {
  engine: EngineName
  appenders: number
  appends: number
  seconds: number
  perSec: number
  commits: number
  perCommit: number
  p50: number
  p99: number
  cpu: number
  errors: number
}

const ACTOR: AuditActor = { type: 'user', id: randomUUID(), ip: '127.0.0.1', userAgent: 'coffer-bench/1.0' }

/** A secret.update event shaped like the one the PUT route returns (two fingerprinted values). */
function updateEvent(n: number): AuditEvent {
  return {
    action: 'secret.update',
    target: { type: 'secret', id: randomUUID() },
    details: {
      key: `BENCH_SECRET_${n % 100}`,
      fromVersion: n,
      toVersion: n + 1,
      before: new Sensitive(`old-${n}`),
      after: new Sensitive(`new-${n}`),
    },
  }
}

async function appendRun(env: Env, appenders: number, seconds: number): Promise<AppendRun> {
  const { ctx } = env
  const before = { ...ctx.committer.stats }
  const lat: number[] = []
  let errors = 0
  let firstError = ''
  let n = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  const worker = async () => {
    while (!stopping && performance.now() < end) {
      const i = n++
      const t = performance.now()
      try {
        await ctx.committer.run((tx) => ctx.audit.append(tx, env.ws, ACTOR, `bench-${i}`, updateEvent(i)))
        lat.push(performance.now() - t)
      } catch (err) {
        errors++
        firstError ||= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: appenders }, worker))
  const wall = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const commits = ctx.committer.stats.batches - before.batches
  const units = ctx.committer.stats.units - before.units
  if (errors) failures.push(`(a) ${env.engine}, ${appenders} appenders: ${errors} appends failed (${firstError})`)
  lat.sort((a, b) => a - b)
  return {
    engine: env.engine,
    appenders,
    appends: lat.length,
    seconds: wall,
    perSec: lat.length / wall,
    commits,
    perCommit: commits ? units / commits : 0,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    cpu: (cpu.user + cpu.system) / 1e6 / wall,
    errors,
  }
}

async function partA(): Promise<void> {
  const fsDir = makeTempDir('coffer-bench-fsync-')
  const fsync = fsyncBaseline(fsDir, 2)
  const fsName = fsType(fsDir)
  const runs: AppendRun[] = []
  const chains: Cell[][] = []
  for (const engine of ENGINES) {
    const env = await openEnv(engine)
    try {
      // Warm-up: statement caches, the DEK cache (fingerprint key), JIT.
      await appendRun(env, 16, 0.5)
      for (const c of [1, ...APPENDERS]) {
        process.stderr.write(`bench: (a) ${engine}, ${c} appender${c > 1 ? 's' : ''}, ${DURATION}s\n`)
        runs.push(await appendRun(env, c, DURATION))
      }
      const t = performance.now()
      const v = await env.ctx.audit.verify(env.ctx.store.readDb, env.ws)
      const head = await env.ctx.store.db
        .selectFrom('audit_heads')
        .select('seq')
        .where('workspace_id', '=', env.ws)
        .executeTakeFirstOrThrow()
      chains.push([engine, String(v.ok), v.checked, Number(head.seq), Math.round(performance.now() - t)])
      if (!v.ok || v.checked !== Number(head.seq)) failures.push(`(a) ${engine}: chain after the appends: ${JSON.stringify(v)}`)
    } finally {
      await env.close()
    }
  }
  const single = (e: EngineName) => runs.find((r) => r.engine === e && r.appenders === 1)?.perSec ?? NaN
  printTable(
    `(a) Durable audited appends/s: GroupCommitter.run(tx => AuditLog.append(tx, …)), ${DURATION}s per row, in-process (latency in ms)`,
    [
      'engine',
      'appenders',
      'appends',
      'appends/s',
      'target',
      '',
      'COMMITs',
      'entries per COMMIT',
      'p50',
      'p99',
      'bench CPU (cores)',
      'vs 1 appender',
      'vs fsync/s',
      'errors',
    ],
    [
      ...runs.map((r): Cell[] => [
        r.engine,
        r.appenders,
        r.appends,
        Math.round(r.perSec),
        r.appenders > 1 && r.engine === 'sqlite' ? TARGETS.appendsPerSec : null,
        r.appenders > 1 && r.engine === 'sqlite' ? (r.perSec >= TARGETS.appendsPerSec ? 'met' : 'MISSED') : '',
        r.commits,
        fmt(r.perCommit),
        fmt(r.p50, 3),
        fmt(r.p99, 3),
        fmt(r.cpu),
        ratio(r.perSec, single(r.engine)),
        ratio(r.perSec, fsync.perSec),
        r.errors,
      ]),
      [
        'baseline: raw 4 KiB write+fsync, 1 thread',
        1,
        null,
        Math.round(fsync.perSec),
        null,
        '',
        null,
        null,
        fmt(fsync.p50, 3),
        fmt(fsync.p99, 3),
        null,
        '',
        '1.00×',
        null,
      ],
    ],
  )
  process.stdout.write(
    `fsync baseline on ${fsName} (${fsDir.split('/').slice(0, -1).join('/') || '/'}); SQLite in the same filesystem (WAL, synchronous=FULL)\n`,
  )
  printTable(
    '(a) Chains after the runs (AuditLog.verify over every entry written above)',
    ['engine', 'ok', 'entries checked', 'head seq', 'verify ms'],
    chains,
  )
  report.a = { fsync, fsType: fsName, runs, chains }
}

// ------------------------------------------------------------------------------------------
// Bulk loading: rows computed exactly as AuditLog.append computes them, written in big
// transactions (raw better-sqlite3 statements / PostgreSQL INSERT … SELECT FROM unnest).

interface EntryRow {
  workspace_id: string
  seq: number
  id: string
  time: string
  actor_type: string
  actor_id: string
  actor_ip: string
  actor_ua: string
  request_id: string
  action: string
  target_type: string
  target_id: string
  details: string
  prev_hash: Buffer
  hash: Buffer
}
const ENTRY_COLS = [
  'workspace_id',
  'seq',
  'id',
  'time',
  'actor_type',
  'actor_id',
  'actor_ip',
  'actor_ua',
  'request_id',
  'action',
  'target_type',
  'target_id',
  'details',
  'prev_hash',
  'hash',
] as const
const ENTRY_TYPES = [
  'text',
  'bigint',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'bytea',
  'bytea',
]

interface Loader {
  entries(rows: EntryRow[]): Promise<void>
  nodes(ws: string, level: number, fromIdx: number, hashes: Buffer, count: number): Promise<void>
  head(ws: string, seq: number, hash: Buffer, peaks: Buffer): Promise<void>
  close(): Promise<void>
}

async function openLoader(env: Env): Promise<Loader> {
  if (env.engine === 'sqlite') {
    const db = new BetterSqlite3(env.sqlitePath!)
    db.pragma('busy_timeout = 5000')
    const insE = db.prepare(`INSERT INTO audit_entries (${ENTRY_COLS.join(', ')}) VALUES (${ENTRY_COLS.map(() => '?').join(', ')})`)
    const insN = db.prepare('INSERT INTO audit_nodes (workspace_id, level, idx, hash) VALUES (?, ?, ?, ?)')
    const many = db.transaction((rows: EntryRow[]) => {
      for (const r of rows) insE.run(...ENTRY_COLS.map((c) => r[c]))
    })
    const nodes = db.transaction((ws: string, level: number, from: number, hashes: Buffer, count: number) => {
      for (let i = 0; i < count; i++) insN.run(ws, level, from + i, hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))
    })
    return {
      async entries(rows) {
        many(rows)
      },
      async nodes(ws, level, from, hashes, count) {
        for (let i = 0; i < count; i += 200_000) {
          const n = Math.min(200_000, count - i)
          nodes(ws, level, from + i, hashes.subarray(i * HASH_SIZE), n)
        }
      },
      async head(ws, seq, hash, peaks) {
        db.prepare('UPDATE audit_heads SET seq = ?, hash = ?, peaks = ? WHERE workspace_id = ?').run(seq, hash, peaks, ws)
      },
      async close() {
        db.close()
      },
    }
  }
  const client = new pg.Client({ connectionString: env.pgUrl })
  await client.connect()
  const inTx = async (f: () => Promise<void>) => {
    await client.query('BEGIN')
    try {
      await f()
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    }
  }
  return {
    async entries(rows) {
      await inTx(async () => {
        for (let i = 0; i < rows.length; i += 20_000) {
          const chunk = rows.slice(i, i + 20_000)
          await client.query(
            `INSERT INTO audit_entries (${ENTRY_COLS.join(', ')}) SELECT * FROM unnest(${ENTRY_TYPES.map((t, j) => `$${j + 1}::${t}[]`).join(', ')})`,
            ENTRY_COLS.map((c) => chunk.map((r) => r[c])),
          )
        }
      })
    },
    async nodes(ws, level, from, hashes, count) {
      await inTx(async () => {
        for (let i = 0; i < count; i += 100_000) {
          const n = Math.min(100_000, count - i)
          const idx = Array.from({ length: n }, (_, k) => from + i + k)
          const hs = Array.from({ length: n }, (_, k) => hashes.subarray((i + k) * HASH_SIZE, (i + k + 1) * HASH_SIZE))
          await client.query(
            `INSERT INTO audit_nodes (workspace_id, level, idx, hash) SELECT $1::text, $2::int, * FROM unnest($3::bigint[], $4::bytea[])`,
            [ws, level, idx, hs],
          )
        }
      })
    },
    async head(ws, seq, hash, peaks) {
      await client.query('UPDATE audit_heads SET seq = $1, hash = $2, peaks = $3 WHERE workspace_id = $4', [seq, hash, peaks, ws])
    },
    async close() {
      await client.end()
    },
  }
}

/**
 * Every node of a tree in memory, one Buffer per level (node i of level l at i * 32), filled
 * from the CompactRange's append results; the nodes already stored (the bootstrap entries')
 * are read from the database first.
 */
class NodeLevels {
  readonly levels: Buffer[] = []
  constructor(readonly size: number) {
    for (let w = size; w >= 1; w = Math.floor(w / 2)) this.levels.push(Buffer.allocUnsafe(w * HASH_SIZE))
  }
  set(level: number, index: number, hash: Uint8Array): void {
    this.levels[level]!.set(hash, index * HASH_SIZE)
  }
  nodeAt = (level: number, index: number): Uint8Array =>
    new Uint8Array(this.levels[level]!.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE))
  /** Writes the nodes of leaves [fromSize, size) (those not stored yet), level by level. */
  async store(loader: Loader, ws: string, fromSize: number): Promise<number> {
    let rows = 0
    for (let l = 0; l < this.levels.length; l++) {
      const from = Math.floor(fromSize / 2 ** l)
      const to = Math.floor(this.size / 2 ** l)
      if (to > from) await loader.nodes(ws, l, from, this.levels[l]!.subarray(from * HASH_SIZE), to - from)
      rows += Math.max(0, to - from)
    }
    return rows
  }
}

/** The workspace's stored head, its tree as a CompactRange, and its stored nodes in `mem`. */
async function resume(env: Env, mem: NodeLevels) {
  const head = await env.ctx.store.db
    .selectFrom('audit_heads')
    .select(['seq', 'hash', 'peaks'])
    .where('workspace_id', '=', env.ws)
    .executeTakeFirstOrThrow()
  const nodes = await env.ctx.store.db
    .selectFrom('audit_nodes')
    .select(['level', 'idx', 'hash'])
    .where('workspace_id', '=', env.ws)
    .execute()
  for (const n of nodes) mem.set(n.level, Number(n.idx), n.hash)
  return { seq: Number(head.seq), hash: Buffer.from(head.hash), range: unpackPeaks(Number(head.seq), head.peaks) }
}

/** An entry like those the API writes: a secret update with two fingerprints. */
function syntheticRecord(ws: string, seq: number, rnd: () => number, t0: number): AuditRecord {
  const fp = () => `hmac-sha256:${randomBytes(32).toString('base64url')}`
  const details = JSON.stringify({
    after: fp(),
    before: fp(),
    fromVersion: seq,
    key: `BENCH_SECRET_${Math.floor(rnd() * 1000)}`,
    toVersion: seq + 1,
  })
  return {
    workspaceId: ws,
    seq,
    id: randomUUID(),
    time: new Date(t0 + seq).toISOString(),
    actor: { type: 'user', id: ACTOR.id, ip: '127.0.0.1', userAgent: 'coffer-bench/1.0' },
    requestId: `req-${seq.toString(36)}`,
    action: 'secret.update',
    target: { type: 'secret', id: randomUUID() },
    details,
  }
}

function toRow(r: AuditRecord, prev: Buffer, hash: Buffer): EntryRow {
  return {
    workspace_id: r.workspaceId,
    seq: r.seq,
    id: r.id,
    time: r.time,
    actor_type: r.actor.type,
    actor_id: r.actor.id,
    actor_ip: r.actor.ip,
    actor_ua: r.actor.userAgent,
    request_id: r.requestId,
    action: r.action,
    target_type: r.target.type,
    target_id: r.target.id,
    details: r.details,
    prev_hash: prev,
    hash,
  }
}

// ------------------------------------------------------------------------------------------
// (b) Full verification speed.

async function partB(engine: EngineName): Promise<void> {
  const env = await openEnv(engine)
  const loader = await openLoader(env)
  try {
    // Build: continue the bootstrap chain to VERIFY_N entries, as AuditLog.append would.
    const tb = performance.now()
    const mem = new NodeLevels(VERIFY_N)
    const start = await resume(env, mem)
    const rnd = prng(1)
    let prev: Buffer = start.hash
    const range = start.range
    const t0 = Date.now() - VERIFY_N
    let batch: EntryRow[] = []
    let bytesTotal = 0
    for (let seq = start.seq + 1; seq <= VERIFY_N; seq++) {
      const rec = syntheticRecord(env.ws, seq, rnd, t0)
      const bytes = entryBytes(rec)
      bytesTotal += bytes.length
      const hash = chainHash(prev, bytes)
      for (const n of range.append(leafHash(bytes))) mem.set(n.level, n.index, n.hash)
      batch.push(toRow(rec, prev, hash))
      prev = hash
      if (batch.length === 50_000) {
        await loader.entries(batch)
        batch = []
        await new Promise((r) => setImmediate(r)) // lets a signal in
        if (stopping) throw new Error('stopping')
      }
    }
    if (batch.length) await loader.entries(batch)
    const nodeRows = await mem.store(loader, env.ws, start.seq)
    await loader.head(env.ws, VERIFY_N, prev, packPeaks(range))
    // A log that grew by appends gets analysed by autovacuum on the way; a bulk-loaded one has
    // no statistics, and PostgreSQL then sorts every remaining row for each page (~5× slower).
    if (engine === 'postgres') await sql`ANALYZE audit_entries, audit_nodes`.execute(env.ctx.store.db)
    const buildMs = performance.now() - tb
    const root = range.root()
    const db = env.ctx.store.readDb
    process.stderr.write(`bench: (b) ${engine}: built ${VERIFY_N} entries + ${nodeRows} nodes in ${(buildMs / 1000).toFixed(1)}s\n`)

    const rows: Cell[][] = []
    // Each step runs --repeat times (this VM's speed drifts by up to 2× within minutes): the
    // median is the figure, the slowest and fastest runs are shown beside it.
    const time = async <T>(label: string, what: string, f: () => Promise<T> | T, check?: (r: T) => boolean): Promise<number> => {
      const secs: number[] = []
      let ok = true
      for (let i = 0; i < REPEAT; i++) {
        const t = performance.now()
        const r = await f()
        secs.push((performance.now() - t) / 1000)
        if (check && !check(r)) {
          ok = false
          failures.push(`(b) ${engine}: ${label}: ${JSON.stringify(r).slice(0, 300)}`)
        }
      }
      secs.sort((a, b) => a - b)
      const median = secs[Math.floor(secs.length / 2)]!
      const range = `${Math.round(VERIFY_N / secs[secs.length - 1]!).toLocaleString('en-US')}–${Math.round(VERIFY_N / secs[0]!).toLocaleString('en-US')}`
      rows.push([label, what, Math.round(median * 1000), Math.round(VERIFY_N / median), range, ok ? 'ok' : 'FAILED'])
      return VERIFY_N / median
    }

    // Read only: the same paged query AuditLog.verify makes, rows turned into records.
    let loaded: ReturnType<typeof rowToRecord>[] = []
    await time(
      'read every entry (AuditLog.list pages of 5,000)',
      'DB + rowToRecord',
      async () => {
        const out: ReturnType<typeof rowToRecord>[] = []
        let after = 0
        for (;;) {
          const page = await env.ctx.audit.list(db, env.ws, after, 5000)
          for (const r of page) out.push(r)
          if (page.length < 5000) break
          after = page[page.length - 1]!.seq
        }
        loaded = out
        return out.length
      },
      (n) => n === VERIFY_N,
    )
    // The server's verification threads are started once and stay (a first start loads their code).
    await env.ctx.audit.warmWorkers()
    const chainRate = await time(
      'AuditLog.verify, chain only',
      'DB + chain',
      () => env.ctx.audit.verify(db, env.ws),
      (r) => r.ok && r.checked === VERIFY_N,
    )
    const fullRate = await time(
      'AuditLog.verify with the checkpoint (GET …/audit/verify)',
      'DB + chain + root',
      () => env.ctx.audit.verify(db, env.ws, { treeSize: VERIFY_N, rootHash: root }),
      (r) => r.ok && r.checked === VERIFY_N,
    )

    // Offline: an export in memory (what `coffer audit export` writes), verified by verifyExport.
    const key = generateNoteKey('bench')
    const note = signNote(formatCheckpoint({ origin: originOf(env.ws), treeSize: VERIFY_N, rootHash: root }), key.signerKey)
    const exported: ExportedEntry[] = loaded.map((r) => ({
      ...r,
      prevHash: Buffer.from(r.prevHash).toString('hex'),
      hash: Buffer.from(r.hash).toString('hex'),
    }))
    const exp: AuditExport = {
      format: 'coffer-audit-export/v1',
      workspace: { id: env.ws, slug: 'bench' },
      exportedAt: new Date().toISOString(),
      publicKey: key.verifierKey,
      checkpoint: { treeSize: VERIFY_N, rootHash: Buffer.from(root).toString('base64'), note },
      entries: exported,
    }
    const offlineRate = await time(
      'verifyExport (offline: signature, chain, root)',
      'memory',
      () => verifyExport(exp, key.verifierKey),
      (r) => r.ok && r.rootOk && r.chain.checked === VERIFY_N,
    )
    // What `coffer audit verify --file` does: the file as `coffer audit export` writes it,
    // read, parsed and verified on worker threads (src/audit/export-file.ts).
    const exportFile = join(makeTempDir('coffer-bench-export-'), 'export.json')
    writeExportFile(exportFile, exp)
    const filePool = new VerifyWorkers()
    await filePool.ready()
    const fileRate = await time(
      'coffer audit verify --file (read, parse, verify on threads)',
      'file',
      () => verifyExportFile(exportFile, key.verifierKey, filePool),
      (r) => r.ok && r.rootOk && r.chain.checked === VERIFY_N,
    )
    await filePool.close()
    await time(
      'root only: CompactRange over leafHash(entryBytes(e))',
      'memory',
      () => {
        const r = new CompactRange()
        for (const e of exported) r.append(leafHash(entryBytes(e)))
        return Buffer.from(r.root()).equals(Buffer.from(root))
      },
      (ok) => ok,
    )
    const allBytes = loaded.map((r) => entryBytes(r))
    await time(
      'entryBytes alone',
      'memory',
      () => {
        let n = 0
        for (const r of loaded) n += entryBytes(r).length
        return n
      },
      (n) => n >= bytesTotal,
    )
    const shaRate = await time('baseline: raw SHA-256 of the same entry bytes', 'memory', () => {
      for (const b of allBytes) createHash('sha256').update(b).digest()
      return true
    })
    const meanBytes = allBytes.reduce((s, b) => s + b.length, 0) / allBytes.length
    printTable(
      `(b) Full verification, ${engine}: ${VERIFY_N.toLocaleString('en-US')} entries (mean ${Math.round(meanBytes)} B of entry bytes), ` +
        `built in ${(buildMs / 1000).toFixed(1)} s; target ≥ ${TARGETS.verifyPerSec.toLocaleString('en-US')}/s`,
      ['step', 'where', 'ms (median)', 'entries/s (median)', `slowest–fastest of ${REPEAT}`, 'result'],
      rows,
    )
    printTable(
      `(b) Ratios, ${engine}`,
      ['verification', 'entries/s', 'target', '', 'vs raw SHA-256'],
      [
        [
          'AuditLog.verify, chain only',
          Math.round(chainRate),
          TARGETS.verifyPerSec,
          chainRate >= TARGETS.verifyPerSec ? 'met' : 'MISSED',
          ratio(chainRate, shaRate),
        ],
        [
          'AuditLog.verify, chain + checkpoint root',
          Math.round(fullRate),
          TARGETS.verifyPerSec,
          fullRate >= TARGETS.verifyPerSec ? 'met' : 'MISSED',
          ratio(fullRate, shaRate),
        ],
        [
          'verifyExport (offline, in memory, one thread)',
          Math.round(offlineRate),
          TARGETS.verifyPerSec,
          offlineRate >= TARGETS.verifyPerSec ? 'met' : 'MISSED',
          ratio(offlineRate, shaRate),
        ],
        [
          'coffer audit verify --file (offline, from the file)',
          Math.round(fileRate),
          TARGETS.verifyPerSec,
          fileRate >= TARGETS.verifyPerSec ? 'met' : 'MISSED',
          ratio(fileRate, shaRate),
        ],
      ],
    )
    report[`b_${engine}`] = { entries: VERIFY_N, buildMs, meanBytes, rows }
  } finally {
    await loader.close()
    await env.close()
  }
}

// ------------------------------------------------------------------------------------------
// (c) Proof generation latency on a large tree.

/** Counts the SQL statements each proof costs and the audit_nodes rows they read (a Kysely plugin on the read handle). */
class ReadCounter implements KyselyPlugin {
  queries = 0
  rows = 0
  nodeRows = 0
  readonly #table = new Map<unknown, string>()
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.queries++
    const n = args.node as { kind: string; from?: { froms: Array<{ kind: string; table?: { identifier?: { name?: string } } }> } }
    const from = n.kind === 'SelectQueryNode' ? n.from?.froms[0]?.table?.identifier?.name : undefined
    if (from) this.#table.set(args.queryId, from)
    return args.node
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.rows += args.result.rows.length
    if (this.#table.get(args.queryId) === 'audit_nodes') this.nodeRows += args.result.rows.length
    this.#table.delete(args.queryId)
    return args.result
  }
}

async function partC(engine: EngineName): Promise<void> {
  const env = await openEnv(engine)
  const loader = await openLoader(env)
  try {
    const tb = performance.now()
    const mem = new NodeLevels(PROOF_N)
    const start = await resume(env, mem)
    const rnd = prng(2)
    // The entries whose inclusion is proven get real rows (and their real leaf hashes);
    // every other leaf is a synthetic hash.
    const sampled = new Set<number>()
    while (sampled.size < Math.min(PROOFS, PROOF_N - start.seq)) sampled.add(start.seq + 1 + Math.floor(rnd() * (PROOF_N - start.seq)))
    const leaves = randomBytes((PROOF_N - start.seq) * HASH_SIZE)
    const entryRows: EntryRow[] = []
    const t0 = Date.now() - PROOF_N
    for (const seq of sampled) {
      const rec = syntheticRecord(env.ws, seq, rnd, t0)
      const bytes = entryBytes(rec)
      leaves.set(leafHash(bytes), (seq - start.seq - 1) * HASH_SIZE)
      entryRows.push(toRow(rec, randomBytes(32), chainHash(randomBytes(32), bytes)))
    }
    const range = start.range
    for (let seq = start.seq + 1; seq <= PROOF_N; seq++) {
      const o = (seq - start.seq - 1) * HASH_SIZE
      for (const n of range.append(leaves.subarray(o, o + HASH_SIZE))) mem.set(n.level, n.index, n.hash)
    }
    const hashMs = performance.now() - tb
    await loader.entries(entryRows.sort((a, b) => a.seq - b.seq))
    const nodeRows = await mem.store(loader, env.ws, start.seq)
    await loader.head(env.ws, PROOF_N, randomBytes(32), packPeaks(range))
    if (engine === 'postgres') await sql`ANALYZE audit_nodes`.execute(env.ctx.store.db)
    const buildMs = performance.now() - tb
    process.stderr.write(
      `bench: (c) ${engine}: built a tree of ${PROOF_N} leaves (${nodeRows} node rows) in ${(buildMs / 1000).toFixed(1)}s\n`,
    )

    const counter = new ReadCounter()
    const db = env.ctx.store.readDb.withPlugin(counter)
    const tree = env.ctx.auditTree
    const seqs = [...sampled]
    const measure = async (label: string, n: number, one: (i: number) => Promise<boolean>): Promise<Cell[]> => {
      for (let i = 0; i < Math.min(50, n); i++) await one(i) // warm-up: statement caches, JIT
      const lat: number[] = []
      const q0 = counter.queries
      const r0 = counter.rows
      const n0 = counter.nodeRows
      let bad = 0
      for (let i = 0; i < n; i++) {
        const t = performance.now()
        const ok = await one(i)
        lat.push(performance.now() - t)
        if (!ok) bad++
      }
      if (bad) failures.push(`(c) ${engine}: ${label}: ${bad} of ${n} did not verify`)
      const sorted = [...lat].sort((a, b) => a - b)
      const queries = (counter.queries - q0) / n
      const rows = (counter.rows - r0) / n
      const nodes = (counter.nodeRows - n0) / n
      return [
        label,
        n,
        fmt(percentile(sorted, 50), 3),
        fmt(percentile(sorted, 99), 3),
        fmt(sorted[sorted.length - 1]!, 3),
        fmt(queries),
        fmt(nodes, 1),
        fmt(rows, 1),
        bad ? `${bad} FAILED` : 'all verify',
      ]
    }
    const rootAt = new Map<number, Uint8Array>()
    const trueRoot = (size: number) => {
      let r = rootAt.get(size)
      if (!r) {
        r = rootFrom(size, mem.nodeAt)
        rootAt.set(size, r)
      }
      return r
    }
    const sizes = seqs.map((s) => s + Math.floor(rnd() * (PROOF_N - s + 1)))
    const pairs = Array.from({ length: PROOFS }, () => {
      const to = 2 + Math.floor(rnd() * (PROOF_N - 1))
      return [1 + Math.floor(rnd() * (to - 1)), to] as const
    })
    const pointIdx = Array.from({ length: PROOFS }, () => Math.floor(rnd() * PROOF_N))
    const rows: Cell[][] = []
    rows.push(
      await measure('baseline: one node point read (SELECT hash … WHERE level, idx)', PROOFS, async (i) => {
        const r = await db
          .selectFrom('audit_nodes')
          .select('hash')
          .where('workspace_id', '=', env.ws)
          .where('level', '=', 0)
          .where('idx', '=', pointIdx[i]!)
          .executeTakeFirst()
        return !!r && Buffer.from(r.hash).equals(Buffer.from(mem.nodeAt(0, pointIdx[i]!)))
      }),
    )
    rows.push(
      await measure(`AuditTree.inclusion, tree of ${PROOF_N.toLocaleString('en-US')}`, seqs.length, async (i) => {
        const p = await tree.inclusion(db, env.ws, seqs[i]!, PROOF_N)
        return (
          p.rootHash === Buffer.from(range.root()).toString('base64') &&
          verifyInclusion(
            p.leafIndex,
            p.treeSize,
            Buffer.from(p.leafHash, 'base64'),
            p.proof.map((h) => Buffer.from(h, 'base64')),
            range.root(),
          )
        )
      }),
    )
    rows.push(
      await measure('AuditTree.inclusion, random tree size ≥ seq', seqs.length, async (i) => {
        const p = await tree.inclusion(db, env.ws, seqs[i]!, sizes[i]!)
        return verifyInclusion(
          p.leafIndex,
          p.treeSize,
          Buffer.from(p.leafHash, 'base64'),
          p.proof.map((h) => Buffer.from(h, 'base64')),
          trueRoot(sizes[i]!),
        )
      }),
    )
    rows.push(
      await measure('AuditTree.consistency, random from < to', pairs.length, async (i) => {
        const [from, to] = pairs[i]!
        const p = await tree.consistency(db, env.ws, from, to)
        return verifyConsistency(
          from,
          to,
          p.proof.map((h) => Buffer.from(h, 'base64')),
          trueRoot(from),
          trueRoot(to),
        )
      }),
    )
    rows.push(
      await measure(`AuditTree.consistency, random from → ${PROOF_N.toLocaleString('en-US')}`, pairs.length, async (i) => {
        const from = pairs[i]![0]
        const p = await tree.consistency(db, env.ws, from, PROOF_N)
        return verifyConsistency(
          from,
          PROOF_N,
          p.proof.map((h) => Buffer.from(h, 'base64')),
          trueRoot(from),
          range.root(),
        )
      }),
    )
    printTable(
      `(c) Proof generation, ${engine}: tree of ${PROOF_N.toLocaleString('en-US')} leaves, ${nodeRows.toLocaleString('en-US')} node rows + ${entryRows.length} entry rows ` +
        `(hashing ${(hashMs / 1000).toFixed(1)} s, total build ${(buildMs / 1000).toFixed(1)} s); one at a time, latency in ms; each proof checked with verifyInclusion / verifyConsistency`,
      ['operation', 'count', 'p50', 'p99', 'max', 'SQL queries per op', 'node rows per op', 'all rows per op', 'result'],
      rows,
    )
    report[`c_${engine}`] = { leaves: PROOF_N, nodeRows, buildMs, rows }
  } finally {
    await loader.close()
    await env.close()
  }
}

// ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const otherLoad = await waitForIdle(Number(A.get('wait-idle') ?? 0))
  if (ENGINES.includes('postgres') && !(await pgAvailable())) {
    process.stderr.write('bench: PostgreSQL unreachable: measuring SQLite only\n')
    ENGINES = ENGINES.filter((e) => e !== 'postgres')
  }
  let pgInfo = ''
  if (ENGINES.includes('postgres')) {
    const c = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' })
    await c.connect()
    try {
      const v = (await c.query('SHOW server_version')).rows[0].server_version as string
      const settings = await c.query(
        "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'commit_delay')",
      )
      pgInfo = `PostgreSQL ${v} (${settings.rows.map((r: { name: string; setting: string }) => `${r.name}=${r.setting}`).join(', ')})`
    } finally {
      await c.end()
    }
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  process.stdout.write(`\nCoffer audit benchmark — Node ${process.version}, ${cpus().length} × ${cpu}\n`)
  process.stdout.write(
    `engines: ${ENGINES.join(', ')}; SQLite WAL synchronous=FULL in ${TMP_PARENT} (${fsType(TMP_PARENT)})${pgInfo ? `; ${pgInfo} on 127.0.0.1` : ''}\n`,
  )
  process.stdout.write(
    `CPU used by other processes in the second before the run: ${otherLoad === null ? 'unknown' : `${otherLoad.toFixed(2)} cores`}` +
      `${otherLoad !== null && otherLoad > 0.3 ? ' — WARNING: the machine was not idle, figures are pessimistic' : ''}\n`,
  )
  if (PARTS.includes('a')) await partA()
  if (PARTS.includes('b')) for (const e of ENGINES) await partB(e)
  if (PARTS.includes('c')) for (const e of ENGINES) await partC(e)
}

try {
  await main()
} finally {
  await cleanupAll()
}
if (JSON_OUT)
  writeFileSync(
    JSON_OUT,
    JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, ...report, failures }, null, 2),
  )
if (failures.length) {
  process.stdout.write(`\nFAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`)
  process.exitCode = 1
} else {
  process.stdout.write('\nEvery append succeeded, every chain verified, every proof verified.\n')
}
