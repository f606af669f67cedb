// HTTP throughput of a real Coffer server on SQLite, beside a bare Fastify baseline.
//
//   node --import tsx bench/http.ts [--duration 10] [--warmup 2] [--connections 50]
//                                   [--serial 3] [--no-probe] [--json results.json] [--tmpdir DIR]
//                                   [--wait-idle SECONDS]
//
// Starts `coffer server` (SQLite, temp data dir, 127.0.0.1, free port) and bench/baseline-server.mjs
// as child processes, seeds a project with 100 secrets of 40 bytes, then runs autocannon
// (warm-up, then a measured run) for: (a) audited single-secret reads, (b) audited
// environment fetches (100 secrets), (c) durable audited writes, (d) the Fastify baseline.
// Afterwards it verifies the audit chain through the API and checks that every 2xx audited
// request left exactly one entry. Each scenario is also run for --serial seconds on one
// connection (unloaded latency: the service time of one request). Exits non-zero on any non-2xx, error, or audit mismatch.
// --tmpdir puts the data dir elsewhere (e.g. /dev/shm: fsync becomes free — an experiment
// that shows the CPU ceiling, not a durable configuration).
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type autocannon from 'autocannon'
import {
  args,
  waitForIdle,
  BENCH_DIR,
  COFFER_BIN,
  ensureBuilt,
  envPath,
  fsType,
  getJson,
  installCleanup,
  makeTempDir,
  printTable,
  ratio,
  removeTempDir,
  ROOT,
  seed,
  startBaseline,
  startCoffer,
  type Cell,
} from './lib/harness.js'
import { measure, type RunResult } from './lib/load.js'
import { fsyncBaseline } from './lib/fsync.js'
import { delta, quantileBound, readMergeDelay } from './lib/merge-delay.js'

const A = args()
const DURATION = Number(A.get('duration') ?? 10)
const WARMUP = Number(A.get('warmup') ?? 2)
const CONNECTIONS = Number(A.get('connections') ?? 50)
const SERIAL = Number(A.get('serial') ?? 3)
const PROBE = A.get('no-probe') !== 'true'
const JSON_OUT = A.get('json')
if (!(DURATION > 0 && DURATION <= 60 && WARMUP >= 0 && WARMUP <= 30 && CONNECTIONS >= 1 && CONNECTIONS <= 1000)) {
  throw new Error('--duration must be in (0, 60], --warmup in [0, 30], --connections in [1, 1000]')
}

const TARGETS = { read: 10_000, env: 3_000, write: 1_000 }

// Four scenarios of warm-up + duration, plus start-up, seeding and verification.
installCleanup(4 * (WARMUP + DURATION + SERIAL) + 300 + Number(A.get('wait-idle') ?? 0))
ensureBuilt()

const require = createRequire(import.meta.url)
const autocannonVersion = (require('autocannon/package.json') as { version: string }).version
const fastifyVersion = (require('fastify/package.json') as { version: string }).version
const cofferVersion = spawnSync(process.execPath, [COFFER_BIN, '--version'], { encoding: 'utf8' }).stdout.trim()

const otherLoad = await waitForIdle(Number(A.get('wait-idle') ?? 0))
const base = makeTempDir('coffer-bench-http-', A.get('tmpdir'))
const probeFile = PROBE ? join(base, 'probe.json') : undefined
const coffer = await startCoffer(base, {
  nodeFlags: PROBE ? ['--import', pathToFileURL(join(BENCH_DIR, 'lib', 'sqlite-probe.mjs')).href] : [],
  env: PROBE ? { COFFER_BENCH_PROBE_FILE: probeFile!, COFFER_BENCH_ROOT: ROOT } : {},
})
const { scope, keys } = await seed(coffer, 100)
const E = envPath(scope)
const auth = { authorization: `Bearer ${coffer.token}` }

// One request of each kind by hand: they must answer 2xx, and their sizes are reported.
async function probeRequest(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } })
  const body = await res.arrayBuffer()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${Buffer.from(body).toString('utf8').slice(0, 300)}`)
  return body.byteLength
}
const readPath = `${E}/secrets/${keys[0]}?reveal=true`
const envFetchPath = `${E}/secrets?reveal=true`
const sizes = {
  read: await probeRequest(coffer.url + readPath),
  env: await probeRequest(coffer.url + envFetchPath),
  write: await probeRequest(`${coffer.url}${E}/secrets/${keys[1]}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value: 'x'.repeat(40) }),
  }),
}
const before = await getJson<{ ok: boolean; checked: number; pending: { count: number } }>(
  coffer,
  `/v1/workspaces/${coffer.workspace}/audit/verify`,
)
if (!before.ok) throw new Error('audit chain broken before the load')
// The entries so far: integrated, and those still queued (the seeding's, if the sequencer has
// not reached them yet) — they are not the benchmark's.
const entriesBefore = before.checked + before.pending.count

const fsync = fsyncBaseline(base, 2)

// (d) The bare Fastify baseline first, on an otherwise idle machine, then it is stopped.
const baseline = await startBaseline()
const baselineSize = await probeRequest(baseline.url + readPath)
type Kind = 'baseline' | 'read' | 'env' | 'write'
const results: Record<Kind, RunResult> = {} as never
const serial: Partial<Record<Kind, RunResult>> = {}
const common = { connections: CONNECTIONS, pipelining: 1, timeout: 10 }
const sched = { warmupSec: WARMUP, durationSec: DURATION }
/** The loaded run, then (with --serial) the same requests on one connection. */
async function scenario(kind: Kind, title: string, options: autocannon.Options, pid: number): Promise<void> {
  results[kind] = await measure(
    title,
    { ...common, ...options },
    { ...sched, serverPid: pid, probeFile: kind === 'baseline' ? undefined : probeFile },
  )
  if (SERIAL > 0) {
    serial[kind] = await measure(
      `${title}, 1 connection`,
      { ...common, ...options, connections: 1 },
      { warmupSec: 0, durationSec: SERIAL, serverPid: pid, probeFile: kind === 'baseline' ? undefined : probeFile },
    )
  }
}
await scenario('baseline', '(d) bare Fastify GET', { url: baseline.url + readPath, headers: auth }, baseline.pid)
await baseline.stop()

// (a) Audited single-secret read, with the sequencer's merge delay over the entries it integrated meanwhile.
const lagBefore = await readMergeDelay(coffer.url)
await scenario('read', '(a) single-secret audited read', { url: coffer.url + readPath, headers: auth }, coffer.pid)
const readLag = delta([lagBefore], [await readMergeDelay(coffer.url)])

// (b) Environment fetch (what `coffer run` does): 100 secrets decrypted, one audit entry.
await scenario('env', '(b) environment fetch, 100 secrets', { url: coffer.url + envFetchPath, headers: auth }, coffer.pid)

// (c) Durable audited writes: PUT a new 40-byte value each time, round-robin over the keys.
const runTag = randomBytes(6).toString('hex')
let writeSeq = 0
const writeRequests: autocannon.Request[] = [
  {
    method: 'PUT',
    setupRequest: (req) => {
      const n = writeSeq++
      const value = `${runTag}-${n.toString(36)}`.padEnd(40, '.')
      return { ...req, method: 'PUT', path: `${E}/secrets/${keys[n % keys.length]}`, body: JSON.stringify({ value }) }
    },
  },
]
await scenario(
  'write',
  '(c) durable audited write (PUT)',
  { url: coffer.url, headers: { ...auth, 'content-type': 'application/json' }, requests: writeRequests },
  coffer.pid,
)

// Audit chain: intact, and one entry per audited 2xx (autocannon does not count requests
// still in flight when a run stops; the server may have answered and audited those).
const verifyStart = performance.now()
const after = await getJson<{ ok: boolean; checked: number; head: string; firstBad?: unknown; pending: { count: number } }>(
  coffer,
  `/v1/workspaces/${coffer.workspace}/audit/verify`,
)
const verifyMs = performance.now() - verifyStart
const audited = [results.read, results.env, results.write, ...[serial.read, serial.env, serial.write].filter((r): r is RunResult => !!r)]
const expectedNew = audited.reduce((s, r) => s + r.ok + r.warmupOk, 0)
// Entries still queued count too (the verify call integrates what is queued first; none should be left).
const actualNew = after.checked + after.pending.count - entriesBefore
const inFlightAllowance = audited.reduce((s, r) => s + r.stops * r.connections, 0)
const auditOk = after.ok && actualNew >= expectedNew && actualNew - expectedNew <= inFlightAllowance

await coffer.stop()
const dataFs = fsType(base)
removeTempDir(base)

// ------------------------------------------------------------------------------------------
// Report.
const cpu = cpus()[0]?.model ?? 'unknown CPU'
process.stdout.write(`\nCoffer HTTP benchmark — coffer ${cofferVersion}, Node ${process.version}, ${cpus().length} × ${cpu}\n`)
process.stdout.write(
  `autocannon ${autocannonVersion} in this process (shares the cores with the server), ${CONNECTIONS} connections, ` +
    `${WARMUP}s warm-up + ${DURATION}s measured per scenario; SQLite WAL synchronous=FULL on ${dataFs}; baseline: Fastify ${fastifyVersion}\n`,
)
process.stdout.write(
  `CPU used by other processes in the second before the run: ${otherLoad === null ? 'unknown' : `${otherLoad.toFixed(2)} cores`}` +
    `${otherLoad !== null && otherLoad > 0.3 ? ' — WARNING: the machine was not idle, figures are pessimistic' : ''}\n`,
)
process.stdout.write(
  `response bodies: single read ${sizes.read} B (baseline ${baselineSize} B), environment fetch ${sizes.env} B, write ${sizes.write} B\n`,
)

const status = (value: number, target: number | null) => (target === null ? '' : value >= target ? 'met' : 'MISSED')
const row = (r: RunResult, target: number | null): Cell[] => [
  r.title,
  Math.round(r.rps),
  target,
  status(r.rps, target),
  ratio(r.rps, results.baseline.rps),
  r.p50,
  r.p99,
  ratio(r.p99, results.baseline.p99),
  r.ok,
  r.non2xx + r.warmupBad,
  r.errors + r.timeouts,
  r.serverCpu === null ? null : Number(r.serverCpu.toFixed(2)),
  Number(r.loadgenCpu.toFixed(2)),
]
printTable(
  'Throughput and latency (req/s = mean of per-second counts; latency in ms)',
  ['benchmark', 'req/s', 'target', '', 'vs baseline', 'p50', 'p99', 'p99 vs base', '2xx', 'non-2xx', 'errors', 'server CPU', 'loadgen CPU'],
  [
    row(results.read, TARGETS.read),
    row(results.env, TARGETS.env),
    row(results.write, TARGETS.write),
    row(results.baseline, null),
    [
      '(c) baseline: raw 4 KiB write+fsync, 1 thread',
      Math.round(fsync.perSec),
      null,
      '',
      `${ratio(results.write.rps, fsync.perSec)} (c/fsync)`,
      fsync.p50,
      fsync.p99,
      '',
      null,
      null,
      null,
      null,
      null,
    ],
  ],
)

if (SERIAL > 0) {
  const srow = (r: RunResult | undefined): Cell[] =>
    r
      ? [
          r.title,
          Math.round(r.rps),
          Number(r.mean.toFixed(2)),
          r.p50,
          r.p99,
          r.max,
          ratio(r.mean, serial.baseline?.mean ?? NaN),
          r.ok,
          r.non2xx,
          r.errors + r.timeouts,
        ]
      : []
  printTable(
    `Unloaded latency: the same requests one at a time on 1 connection for ${SERIAL}s (ms)`,
    ['benchmark', 'req/s', 'mean', 'p50', 'p99', 'max', 'mean vs base', '2xx', 'non-2xx', 'errors'],
    [srow(serial.read), srow(serial.env), srow(serial.write), srow(serial.baseline)].filter((r) => r.length),
  )
}

const auditRow = (r: RunResult): Cell[] => {
  const p = r.probe
  const entries = p ? p.auditInserts : null
  return [
    r.title,
    r.ok,
    entries,
    entries === null ? null : Math.round(entries / r.durationSec),
    p ? p.commits : null,
    p ? Math.round(p.commits / r.durationSec) : null,
    p?.commits && entries !== null ? Number((entries / p.commits).toFixed(2)) : null,
    p && entries ? Number((p.executions / entries).toFixed(1)) : null,
    p ? `${((100 * p.loopSqlMs) / 1000 / r.durationSec).toFixed(0)}%` : null,
    p ? `${((100 * p.loopCommitMs) / 1000 / r.durationSec).toFixed(0)}%` : null,
    p?.commits ? Number((p.commitMs / p.commits).toFixed(2)) : null,
  ]
}
printTable(
  'Audit and group commit in the measured windows (server side, counted in better-sqlite3 by bench/lib/sqlite-probe.mjs)',
  [
    'benchmark',
    '2xx',
    'audit entries queued',
    'entries/s',
    'COMMITs (fsync batches)',
    'COMMITs/s',
    'entries per COMMIT',
    'SQL stmts per request',
    'loop blocked in SQLite',
    'of which COMMIT',
    'ms per COMMIT',
  ],
  [results.read, serial.read, results.env, serial.env, results.write, serial.write].filter((r): r is RunResult => !!r).map(auditRow),
)
if (!PROBE) process.stdout.write('(probe disabled with --no-probe: server-side counts unavailable)\n')

for (const r of [results.read, results.write]) {
  const p = r.probe
  if (!p?.auditInserts) continue
  const top = Object.entries(p.statements)
    .sort((a, b) => (p.statementMs[b[0]] ?? 0) - (p.statementMs[a[0]] ?? 0))
    .slice(0, 16)
  printTable(
    `SQL statements per request, ${r.title} (executed in better-sqlite3; first 90 characters)`,
    ['statement', 'per request', 'mean ms', 'total ms'],
    top.map(([sql, n]) => [
      sql.replace(/\s+/g, ' ').slice(0, 90),
      Number((n / p.auditInserts).toFixed(2)),
      Number(((p.statementMs[sql] ?? 0) / n).toFixed(3)),
      Math.round(p.statementMs[sql] ?? 0),
    ]),
  )
}

printTable(
  'Audit chain after the run (GET /v1/workspaces/:ws/audit/verify)',
  ['check', 'value'],
  [
    ['chain intact (ok)', String(after.ok)],
    ['entries in chain', after.checked],
    ['new entries during the benchmark', actualNew],
    ['2xx audited responses counted by autocannon (warm-up + measured)', expectedNew],
    [`difference (requests in flight when a run stopped; allowed 0..${inFlightAllowance})`, actualNew - expectedNew],
    ['still queued after the verify call (integrated first; expected 0)', after.pending.count],
    ['verify call took (ms)', Math.round(verifyMs)],
    ['head', after.head],
    [`merge delay during (a): entries integrated`, readLag.count],
    [
      'merge delay during (a): p50 / p99 at most (s; histogram bounds, target p99 ≤ 1 s)',
      `${quantileBound(readLag, 0.5)} / ${quantileBound(readLag, 0.99)}`,
    ],
  ],
)

const failures: string[] = []
for (const r of [...Object.values(results), ...Object.values(serial)]) {
  const bad = r.non2xx + r.errors + r.timeouts + r.warmupBad
  if (bad > 0)
    failures.push(
      `${r.title}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts (measured), ${r.warmupBad} bad in warm-up; status codes ${JSON.stringify(r.statusCodes)}`,
    )
  if (r.ok === 0) failures.push(`${r.title}: no 2xx response at all`)
}
if (!auditOk)
  failures.push(
    `audit: ok=${after.ok}, ${actualNew} new entries for ${expectedNew} audited 2xx responses${after.firstBad ? `, first bad ${JSON.stringify(after.firstBad)}` : ''}`,
  )

if (JSON_OUT) {
  writeFileSync(
    JSON_OUT,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        cpu,
        coffer: cofferVersion,
        autocannon: autocannonVersion,
        connections: CONNECTIONS,
        warmupSec: WARMUP,
        durationSec: DURATION,
        serialSec: SERIAL,
        dataFs,
        sizes,
        baselineSize,
        fsync,
        results,
        serial,
        audit: { ...after, before: entriesBefore, actualNew, expectedNew },
        failures,
      },
      null,
      2,
    ),
  )
}

if (failures.length) {
  process.stdout.write(`\nFAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`)
  process.exitCode = 1
} else {
  process.stdout.write('\nAll responses 2xx; audit chain intact with one entry per audited request.\n')
}
