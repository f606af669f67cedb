// Would more processes on one SQLite file serve more? One `coffer server` process against N
// on the same data dir (each on a port of its own; not a supported deployment — SQLite is one
// node), under the same total load: audited single-secret reads, which each write an audit
// entry durably before answering, and the same read without `reveal`, which reads and writes
// nothing to the audit log. Printed beside bare Fastify measured in the same run.
//
//   node --import tsx bench/processes.ts [--processes 2] [--duration 10] [--warmup 2]
//                                        [--connections 50] [--order 1,N,N,1] [--wait-idle SECONDS]
//
// The connections are split evenly over the processes and their answers added up; latency is
// the worst process's. Afterwards the audit chain must verify and hold one entry per audited
// 2xx (give or take the requests in flight when a run stopped). Exits non-zero on any non-2xx,
// error, failed verification or count mismatch.
import { cpus } from 'node:os'
import autocannon from 'autocannon'
import {
  args,
  ensureBuilt,
  envPath,
  getJson,
  installCleanup,
  makeTempDir,
  printTable,
  processCpuSeconds,
  ratio,
  removeTempDir,
  seed,
  startAnotherProcess,
  startBaseline,
  startCoffer,
  waitForIdle,
  type ChildServer,
  type CofferServer,
} from './lib/harness.js'

const A = args()
const N = Number(A.get('processes') ?? 2)
const DURATION = Number(A.get('duration') ?? 10)
const WARMUP = Number(A.get('warmup') ?? 2)
const CONNECTIONS = Number(A.get('connections') ?? 50)
// Each configuration runs twice, 1 N N 1 by default (the database grows with every audited
// run), and the figures are the means.
const ORDER = (A.get('order') ?? '1,N,N,1').split(',').map((s) => (s === 'N' ? N : Number(s)))
if (!(Number.isInteger(N) && N >= 2 && N <= 8)) throw new Error('--processes must be an integer in [2, 8]')
if (!(DURATION > 0 && DURATION <= 60 && WARMUP >= 0 && WARMUP <= 30)) throw new Error('--duration must be in (0, 60], --warmup in [0, 30]')
if (!(Number.isInteger(CONNECTIONS) && CONNECTIONS >= N && CONNECTIONS % N === 0 && CONNECTIONS <= 600))
  throw new Error(`--connections must be a multiple of --processes, at most 600`)
if (!ORDER.includes(1) || !ORDER.includes(N) || ORDER.some((n) => n !== 1 && n !== N))
  throw new Error('--order lists 1 and N, e.g. 1,N,N,1')

installCleanup(300 + Number(A.get('wait-idle') ?? 0) + (ORDER.length * 2 + 1) * (WARMUP + DURATION + 5))
ensureBuilt()

interface Run {
  rps: number
  ok: number
  bad: number
  p50: number
  p99: number
  /** CPU cores the servers used, summed. */
  serverCpu: number
  loadgenCpu: number
}

/** Warm-up, then the measured run, of `path` on each of `servers` at once (the connections split evenly). */
async function load(servers: readonly ChildServer[], path: string, headers: Record<string, string>): Promise<{ warmOk: number; run: Run }> {
  const each = CONNECTIONS / servers.length
  const go = (duration: number) =>
    Promise.all(servers.map((s) => autocannon({ url: s.url + path, headers, connections: each, pipelining: 1, timeout: 10, duration })))
  const warm = WARMUP > 0 ? await go(WARMUP) : []
  const cpu0 = servers.map((s) => processCpuSeconds(s.pid) ?? Number.NaN)
  const self0 = process.cpuUsage()
  const t0 = performance.now()
  const rs = await go(DURATION)
  const elapsed = (performance.now() - t0) / 1000
  const self = process.cpuUsage(self0)
  const cpu = servers.reduce((sum, s, i) => sum + ((processCpuSeconds(s.pid) ?? Number.NaN) - cpu0[i]!), 0)
  return {
    warmOk: warm.reduce((n, r) => n + r['2xx'], 0),
    run: {
      rps: rs.reduce((n, r) => n + r.requests.average, 0),
      ok: rs.reduce((n, r) => n + r['2xx'], 0),
      bad: [...warm, ...rs].reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0),
      p50: Math.max(...rs.map((r) => r.latency.p50)),
      p99: Math.max(...rs.map((r) => r.latency.p99)),
      serverCpu: cpu / elapsed,
      loadgenCpu: (self.user + self.system) / 1e6 / elapsed,
    },
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

const otherLoad = await waitForIdle(Number(A.get('wait-idle') ?? 0))
const base = makeTempDir('coffer-bench-processes-', A.get('tmpdir'))
const servers: CofferServer[] = []
let failed = false
try {
  servers.push(await startCoffer(base))
  const first = servers[0]!
  const { scope, keys } = await seed(first, 100)
  for (let i = 1; i < N; i++) servers.push(await startAnotherProcess(first, base))
  const auth = { authorization: `Bearer ${first.token}` }
  const one = `${envPath(scope)}/secrets/${keys[0]}`
  const audited = `${one}?reveal=true`
  const verifyPath = `/v1/workspaces/${first.workspace}/audit/verify`
  const before = await getJson<{ ok: boolean; checked: number; pending: { count: number } }>(first, verifyPath)
  if (!before.ok) throw new Error('audit chain broken before the load')

  // The baseline first, then stopped.
  const baseline = await startBaseline()
  process.stderr.write(`bench: bare Fastify, ${CONNECTIONS} connections\n`)
  const fastify = (await load([baseline], audited, auth)).run
  await baseline.stop()

  const runs = new Map<string, Run[]>()
  let auditedOk = 0
  let stops = 0
  for (const kind of ['audited', 'unaudited'] as const) {
    for (const n of ORDER) {
      process.stderr.write(`bench: ${kind} read on ${n} process(es): warm-up ${WARMUP}s, then ${DURATION}s at ${CONNECTIONS} connections\n`)
      const { warmOk, run } = await load(servers.slice(0, n), kind === 'audited' ? audited : one, auth)
      if (kind === 'audited') {
        auditedOk += warmOk + run.ok
        stops += WARMUP > 0 ? 2 : 1
      }
      const key = `${kind} ${n}`
      runs.set(key, [...(runs.get(key) ?? []), run])
    }
  }

  const after = await getJson<{ ok: boolean; checked: number; pending: { count: number } }>(first, verifyPath)
  const written = after.checked + after.pending.count - (before.checked + before.pending.count)
  // A stopped run's requests in flight may have been answered and audited without being counted.
  const auditOk = after.ok && written >= auditedOk && written - auditedOk <= stops * CONNECTIONS

  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  process.stdout.write(`\nProcesses on one SQLite file — Node ${process.version}, ${cpus().length} × ${cpu}\n`)
  process.stdout.write(
    `${CONNECTIONS} connections split over the processes, ${WARMUP}s warm-up + ${DURATION}s measured, order ${ORDER.join(' ')} (means of the runs); ` +
      `autocannon in this process; CPU used by other processes before the run: ${otherLoad === null ? 'unknown' : `${otherLoad.toFixed(2)} cores`}\n`,
  )
  const row = (title: string, rs: Run[], vsOne: Run[] | null): (string | number)[] => {
    const rps = mean(rs.map((r) => r.rps))
    return [
      title,
      Math.round(rps),
      ratio(rps, fastify.rps),
      vsOne ? ratio(rps, mean(vsOne.map((r) => r.rps))) : '1.00×',
      mean(rs.map((r) => r.p50)),
      Math.max(...rs.map((r) => r.p99)),
      mean(rs.map((r) => r.serverCpu)),
      mean(rs.map((r) => r.loadgenCpu)),
      rs.reduce((n, r) => n + r.bad, 0),
    ]
  }
  printTable(
    'Throughput (req/s: all processes added up; p50 the mean of the worst process, p99 the worst of every run; server CPU in cores, all processes)',
    ['benchmark', 'req/s', 'vs Fastify', `${N} ÷ 1`, 'p50 ms', 'p99 ms', 'server CPU', 'loadgen CPU', 'non-2xx + errors'],
    [
      row('bare Fastify GET, one process', [fastify], null),
      row('audited read (reveal=true), 1 process', runs.get('audited 1')!, null),
      row(`audited read (reveal=true), ${N} processes`, runs.get(`audited ${N}`)!, runs.get('audited 1')!),
      row('unaudited read (no reveal), 1 process', runs.get('unaudited 1')!, null),
      row(`unaudited read (no reveal), ${N} processes`, runs.get(`unaudited ${N}`)!, runs.get('unaudited 1')!),
    ],
  )
  printTable(
    'Audit chain after the runs (GET …/audit/verify)',
    ['check', 'value'],
    [
      ['chain intact', String(after.ok)],
      ['new entries', written],
      ['audited 2xx counted (warm-up + measured)', auditedOk],
      [`difference (in flight when a run stopped; allowed 0..${stops * CONNECTIONS})`, written - auditedOk],
    ],
  )
  const bad = [...runs.values()].flat().reduce((n, r) => n + r.bad, 0) + fastify.bad
  if (bad > 0 || !auditOk) {
    failed = true
    process.stdout.write(`\nFAILED: ${bad} non-2xx or errors; audit ${auditOk ? 'ok' : 'MISMATCH or broken'}\n`)
  } else process.stdout.write('\nAll responses 2xx; audit chain intact with one entry per audited request.\n')
} finally {
  for (const s of servers) await s.stop()
  removeTempDir(base)
}
process.exit(failed ? 1 : 0)
