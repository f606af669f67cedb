// Reseal after a data-key rotation: throughput, and what it costs readers.
//
//   node --import tsx bench/reseal.ts [--parts ab] [--engines sqlite,postgres] [--versions 1000000]
//                                     [--pg-versions 200000] [--batch 2000] [--duration 10] [--server-batch N] [--wait-idle SECONDS]
//
// (a) throughput, in-process: --versions secret versions (10 per secret, 40-byte values) are
//     bulk-loaded under the environment's data key, the key is rotated (rotateDataKey, as the
//     API does), and one Resealer (the class the server runs) reseals them all with --batch
//     versions per transaction, without the pauses the server makes for requests
//     (pauseRatio 0). Baselines in the same run: the bare AES-GCM work (open + seal
//     of up to 200,000 ciphertexts in memory, no database) on one thread, and on the same
//     worker threads the resealer uses — the ceiling any reseal can reach on this machine.
// (b) readers during a reseal, SQLite, a real `coffer server`: p99 of an audited single-secret
//     read (GET …/secrets/KEY?reveal=true, 10 connections) for --duration seconds with the
//     server idle, then for --duration seconds right after a rotation while the server
//     reseals --versions versions with its default settings (batch 25; --server-batch N to change). Target: ≤ 2×.
//
// Prints tables; exits 1 if any version fails to read back after the reseal.
import { randomBytes, randomUUID } from 'node:crypto'
import autocannon from 'autocannon'
import { bootstrapWorkspace, createContext, type AppContext } from '../src/context.js'
import type { DataKey } from '../src/crypto/envelope.js'
import { keyRefOf, open, seal } from '../src/crypto/envelope.js'
import type { DataKeyScope } from '../src/crypto/key-provider.js'
import { buildConfig } from '../src/ops/config.js'
import { readEnv } from '../src/ops/env.js'
import { buildSecrets } from '../src/ops/secrets.js'
import { rotateDataKey } from '../src/vault/key-rotation.js'
import { createProject, findScope } from '../src/vault/project-service.js'
import { Resealer } from '../src/vault/resealer.js'
import { ResealWorkers } from '../src/crypto/reseal-workers.js'
import { FIELD_VALUE, ResealBatchBuilder, type ResealBatch } from '../src/crypto/reseal-batch.js'
import { createTestDatabase, pgAvailable } from '../test/helpers/pg.js'
import {
  args,
  cleanEnv,
  COFFER_BIN,
  ensureBuilt,
  installCleanup,
  makeTempDir,
  printTable,
  ratio,
  spawnServer,
  waitForIdle,
  type Cell,
} from './lib/harness.js'

type EngineName = 'sqlite' | 'postgres'
const A = args()
const PARTS = A.get('parts') ?? 'ab'
const ENGINES = (A.get('engines') ?? 'sqlite,postgres').split(',') as EngineName[]
const VERSIONS = Number(A.get('versions') ?? 1_000_000)
const PG_VERSIONS = Number(A.get('pg-versions') ?? 200_000)
const BATCH = Number(A.get('batch') ?? 2000)
const DURATION = Number(A.get('duration') ?? 10)
const TARGETS = { sqlitePerSec: 50_000, p99Ratio: 2 }
installCleanup(1800 + Number(A.get('wait-idle') ?? 0))
const idleLoad = await waitForIdle(Number(A.get('wait-idle') ?? 0))
if (idleLoad !== null) process.stderr.write(`bench: other processes used ${idleLoad.toFixed(2)} cores just before the start\n`)

interface Opened {
  ctx: AppContext
  scope: DataKeyScope
  token: string
  slug: string
  close(): Promise<void>
  env: Record<string, string>
}

async function openContext(engine: EngineName, dataDir: string, rootKey: string): Promise<Opened> {
  const raw: Record<string, string> = {
    COFFER_DATA_DIR: dataDir,
    COFFER_ROOT_KEY: rootKey,
    COFFER_LOG_LEVEL: 'silent',
    COFFER_KEY_ROTATION_CHECK_INTERVAL: '0',
  }
  let drop: (() => Promise<void>) | undefined
  if (engine === 'postgres') {
    const db = await createTestDatabase()
    raw.DATABASE_URL = db.url
    drop = db.drop
  }
  const e = readEnv(raw)
  const ctx = await createContext(buildConfig(e), buildSecrets(e))
  const ws = await bootstrapWorkspace(ctx, { name: `Reseal ${randomBytes(2).toString('hex')}`, ownerEmail: 'bench@localhost' })
  await ctx.committer.run(
    (tx) => createProject(tx, { dataKeys: ctx.dataKeys }, ws.workspace.id, { name: 'Bench', slug: 'bench' }, ctx.clock()),
    ws.workspace.id,
  )
  const scope = await findScope(ctx.store.db, ws.workspace.id, 'bench', 'development')
  return {
    ctx,
    scope,
    token: ws.token,
    slug: ws.workspace.slug,
    env: raw,
    async close() {
      await ctx.close()
      if (drop) await drop()
    },
  }
}

/** Loads `n` versions (10 per secret) sealed under the scope's primary key; returns the plaintexts' digest. */
async function load(o: Opened, n: number): Promise<void> {
  const { ctx, scope } = o
  const t0 = performance.now()
  const perSecret = 10
  const chunk = 1000
  let dek!: DataKey
  await ctx.committer.run(async (tx) => {
    dek = await ctx.dataKeys.forWrite(tx, scope, n)
  }, scope.workspaceId)
  const now = new Date().toISOString()
  for (let start = 0; start < n; start += chunk) {
    const secrets: Array<Record<string, unknown>> = []
    const versions: Array<Record<string, unknown>> = []
    for (let i = start; i < Math.min(n, start + chunk); i += perSecret) {
      const id = randomUUID()
      const count = Math.min(perSecret, n - i)
      secrets.push({
        id,
        workspace_id: scope.workspaceId,
        project_id: scope.projectId,
        environment_id: scope.environmentId,
        key: `K${i / perSecret}`,
        current_version: count,
        deleted: 0,
        created_at: now,
        updated_at: now,
      })
      for (let v = 1; v <= count; v++) {
        const value = Buffer.from(`value-${i}-${v}-${randomBytes(12).toString('hex')}`.slice(0, 40))
        versions.push({
          secret_id: id,
          version: v,
          workspace_id: scope.workspaceId,
          project_id: scope.projectId,
          environment_id: scope.environmentId,
          value_ct: seal(dek, value, { ...scope, recordId: id, recordVersion: v, field: 'value' }),
          comment_ct: null,
          tags: '[]',
          deleted: 0,
          origin: 'set',
          origin_version: null,
          dek_id: dek.id,
          dek_version: dek.version,
          created_at: now,
          created_by: 'bench',
        })
      }
    }
    await ctx.committer.run(async (tx) => {
      await tx
        .insertInto('secrets')
        .values(secrets as never)
        .execute()
      await tx
        .insertInto('secret_versions')
        .values(versions as never)
        .execute()
    }, scope.workspaceId)
  }
  process.stderr.write(`bench: loaded ${n} versions in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
}

/** Every version decrypts under the key its header names, and that key is the primary. */
async function checkAll(o: Opened, expectVersion: number): Promise<number> {
  const { ctx, scope } = o
  let bad = 0
  let after = ''
  for (;;) {
    const rows = await ctx.store.readDb
      .selectFrom('secret_versions')
      .select(['secret_id', 'version', 'value_ct', 'dek_version'])
      .where('environment_id', '=', scope.environmentId)
      .where('secret_id', '>', after)
      .orderBy('secret_id')
      .orderBy('version')
      .limit(20_000)
      .execute()
    if (rows.length === 0) return bad
    for (const r of rows) {
      try {
        if (r.dek_version !== expectVersion) throw new Error('old key')
        const dek = await ctx.dataKeys.byRef(ctx.store.readDb, keyRefOf(r.value_ct!), scope)
        open(dek, r.value_ct!, { ...scope, recordId: r.secret_id, recordVersion: r.version, field: 'value' })
      } catch {
        bad++
      }
    }
    after = rows[rows.length - 1]!.secret_id
    // Whole secrets per page: the last secret's remaining versions come with the next page.
    if (rows.length === 20_000) {
      const last = rows[rows.length - 1]!.secret_id
      after = rows.filter((r) => r.secret_id !== last).at(-1)?.secret_id ?? last
    }
  }
}

/** With --profile FILE: a CPU profile of this thread over the reseal alone (workers not included). */
async function startProfile(): Promise<(file: string) => Promise<void>> {
  const { Session } = await import('node:inspector/promises')
  const { writeFileSync } = await import('node:fs')
  const s = new Session()
  s.connect()
  await s.post('Profiler.enable')
  await s.post('Profiler.start')
  return async (file) => {
    const { profile } = await s.post('Profiler.stop')
    writeFileSync(file, JSON.stringify(profile))
    s.disconnect()
  }
}

async function partA(engine: EngineName): Promise<Cell[]> {
  const n = engine === 'sqlite' ? VERSIONS : PG_VERSIONS
  const o = await openContext(engine, makeTempDir(`coffer-bench-reseal-${engine}-`), randomBytes(32).toString('base64'))
  try {
    await load(o, n)
    const { ctx, scope } = o
    const workers = new ResealWorkers()
    const r = await ctx.committer.run((tx) => rotateDataKey(tx, ctx.dataKeys, scope, 'manual', ctx.clock()), scope.workspaceId)
    const resealer = new Resealer({
      store: ctx.store,
      committer: ctx.committer,
      dataKeys: ctx.dataKeys,
      audit: ctx.audit,
      batchSize: BATCH,
      leaseMs: 60_000,
      clock: ctx.clock,
      workers,
      pauseRatio: 0,
    })
    resealer.observe({ error: (err) => process.stderr.write(`bench: reseal error: ${(err as Error).stack}\n`) })
    const stopProfile = A.get('profile') ? await startProfile() : null
    const t0 = performance.now()
    const finished = await resealer.runPending()
    const sec = (performance.now() - t0) / 1000
    if (stopProfile) await stopProfile(A.get('profile')!)
    await workers.close()
    if (finished !== 1) throw new Error('the reseal job did not finish')
    const perSec = n / sec

    // Baseline: the same AES-GCM work with no database (open + seal of `sample` ciphertexts).
    const sample = Math.min(n, 200_000)
    const rows = await ctx.store.readDb
      .selectFrom('secret_versions')
      .select(['secret_id', 'version', 'value_ct'])
      .where('environment_id', '=', scope.environmentId)
      .limit(sample)
      .execute()
    const dek = await ctx.dataKeys.byRef(ctx.store.readDb, keyRefOf(rows[0]!.value_ct!), scope)
    const other = { ...dek, version: dek.version + 1 }
    const c0 = performance.now()
    for (const row of rows) {
      const binding = { ...scope, recordId: row.secret_id, recordVersion: row.version, field: 'value' as const }
      seal(other, open(dek, row.value_ct!, binding), binding)
    }
    const cryptoPerSec = rows.length / ((performance.now() - c0) / 1000)
    // The same work on the reseal worker threads, still without a database: the ceiling.
    const pool = new ResealWorkers()
    const pack = (part: typeof rows): ResealBatch => {
      const b = new ResealBatchBuilder(
        scope,
        part.length,
        part.reduce((n, row) => n + row.value_ct!.length, 0),
      )
      for (const row of part) b.add(row.value_ct!, row.secret_id, row.version, FIELD_VALUE, dek.version)
      return b.build()
    }
    const batches: ResealBatch[] = []
    for (let i = 0; i < rows.length; i += BATCH) batches.push(pack(rows.slice(i, i + BATCH)))
    await pool.reseal(pack(rows.slice(0, 100)), [dek], other)
    const w0 = performance.now()
    for (const b of batches) await pool.reseal(b, [dek], other)
    const workersPerSec = rows.length / ((performance.now() - w0) / 1000)
    await pool.close()
    const bad = await checkAll(o, r!.key.version)
    if (bad) throw new Error(`${bad} versions do not read back after the reseal`)
    const target =
      engine === 'sqlite' ? `≥ ${TARGETS.sqlitePerSec.toLocaleString('en')}: ${perSec >= TARGETS.sqlitePerSec ? 'met' : 'missed'}` : '—'
    return [
      engine,
      n.toLocaleString('en'),
      BATCH,
      sec.toFixed(2),
      Math.round(perSec).toLocaleString('en'),
      Math.round(cryptoPerSec).toLocaleString('en'),
      ratio(perSec, cryptoPerSec),
      Math.round(workersPerSec).toLocaleString('en'),
      ratio(perSec, workersPerSec),
      'all',
      target,
    ]
  } finally {
    await o.close()
  }
}

async function readP99(url: string, token: string, path: string): Promise<{ p99: number; p50: number; rps: number; bad: number }> {
  const r = await autocannon({ url: url + path, connections: 10, duration: DURATION, headers: { authorization: `Bearer ${token}` } })
  return { p99: r.latency.p99, p50: r.latency.p50, rps: r.requests.average, bad: r.non2xx + r.errors + r.timeouts }
}

async function partB(): Promise<Cell[][]> {
  ensureBuilt()
  const dataDir = makeTempDir('coffer-bench-reseal-live-')
  const rootKey = randomBytes(32).toString('base64')
  const o = await openContext('sqlite', dataDir, rootKey)
  await load(o, VERSIONS)
  const { slug, token } = o
  await o.close()
  const server = await spawnServer([COFFER_BIN, 'server', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], {
    env: cleanEnv({
      COFFER_ROOT_KEY: rootKey,
      COFFER_LOG_LEVEL: 'warn',
      COFFER_RATE_TOKEN_PER_MINUTE: '0',
      COFFER_RATE_TOKEN_PER_MONTH: '0',
      ...(A.get('server-batch') ? { COFFER_RESEAL_BATCH: A.get('server-batch')! } : {}),
    }),
    ready: /listening on (http:\/\/\S+)/,
    name: 'coffer server',
  })
  try {
    const E = `/v1/workspaces/${slug}/projects/bench/environments/development`
    const path = `${E}/secrets/K7?reveal=true`
    await autocannon({ url: server.url + path, connections: 10, duration: 2, headers: { authorization: `Bearer ${token}` } })
    const idle = await readP99(server.url, token, path)
    const rot = await fetch(`${server.url}${E}/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    })
    if (rot.status !== 202) throw new Error(`rotate: ${rot.status} ${await rot.text()}`)
    const job = ((await rot.json()) as { job: { id: string } }).job.id
    const during = await readP99(server.url, token, path)
    const st = (
      (await (
        await fetch(`${server.url}/v1/workspaces/${slug}/key-jobs/${job}`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { job: { state: string; done: number; total: number } }
    ).job
    const covered = st.state === 'running' ? 'whole window' : `reseal ended inside the window (${st.state})`
    return [
      ['idle', idle.rps.toFixed(0), idle.p50, idle.p99, idle.bad, '—', ''],
      [
        'during reseal',
        during.rps.toFixed(0),
        during.p50,
        during.p99,
        during.bad,
        ratio(during.p99, idle.p99),
        `${st.done.toLocaleString('en')} of ${st.total.toLocaleString('en')} resealed at the end; ${covered}; target ≤ ${TARGETS.p99Ratio}×: ${during.p99 <= TARGETS.p99Ratio * idle.p99 ? 'met' : 'missed'}`,
      ],
    ]
  } finally {
    await server.stop()
  }
}

if (PARTS.includes('a')) {
  const rows: Cell[][] = []
  for (const engine of ENGINES) {
    if (engine === 'postgres' && !(await pgAvailable())) {
      rows.push([engine, '—', '—', '—', 'PostgreSQL not reachable', '', '', '', '', '', ''])
      continue
    }
    rows.push(await partA(engine))
  }
  printTable(
    '(a) reseal throughput after a rotation (one Resealer, in-process)',
    [
      'engine',
      'versions',
      'batch',
      'seconds',
      'versions/s',
      'baseline: AES-GCM only, 1 thread',
      'ratio',
      'AES-GCM only, reseal workers',
      'ratio',
      'read back',
      'target',
    ],
    rows,
  )
}
if (PARTS.includes('b')) {
  printTable(
    `(b) audited single-secret reads (10 connections, ${DURATION} s) while the server reseals ${VERSIONS.toLocaleString('en')} versions (SQLite, batch ${A.get('server-batch') ?? '25, the default'})`,
    ['phase', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'p99 vs idle', 'note'],
    await partB(),
  )
}
process.exit(0)
