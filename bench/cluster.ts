// Scaling out on PostgreSQL: one Coffer node against three, on one database, under the same
// total load — audited single-secret reads, then durable audited writes — with how often the
// request path waits on a lock in PostgreSQL, sampled from pg_stat_activity meanwhile.
//
//   node --import tsx bench/cluster.ts [--duration 10] [--warmup 2] [--connections 48] [--order 1,3,3,1]
//                                      [--database-url postgres://postgres@127.0.0.1:5432/postgres]
//                                      [--pool-size N]
//
// Creates a throw-away database and an application role without BYPASSRLS (as a deployment
// runs), `coffer init`s it, seeds 100 secrets, then for 1 and for 3 nodes runs autocannon
// against each node at once (the connections split evenly) and adds their figures up. The
// nodes and the load generator share this machine's cores, so the ratio "3 nodes ÷ 1 node"
// says whether adding nodes adds throughput or only contention (issue 15's target: ≥ 1.0×).
// Afterwards every node verifies the audit log, and the entries written must equal the
// audited 2xx answers (plus at most the requests in flight when a run stopped). Exits non-zero on any non-2xx, failed verification or count mismatch.
// --pool-size sets COFFER_DATABASE_POOL_SIZE on every node, in both configurations (default: the server's, 10).
import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import pg from 'pg'
import { readdirSync, readFileSync } from 'node:fs'
import {
  args,
  ensureBuilt,
  envPath,
  installCleanup,
  printTable,
  processCpuSeconds,
  ratio,
  seed,
  sleep,
  type CofferServer,
} from './lib/harness.js'
import { delta, quantileBound, readMergeDelay } from './lib/merge-delay.js'
import { createPostgresVault } from './lib/postgres-vault.js'

const A = args()
const DURATION = Number(A.get('duration') ?? 10)
const WARMUP = Number(A.get('warmup') ?? 2)
const CONNECTIONS = Number(A.get('connections') ?? 48)
const ADMIN_URL = A.get('database-url') ?? 'postgres://postgres@127.0.0.1:5432/postgres'
// The configurations in the order they run. The database grows with every run (audit entries,
// versions) and the first run's nodes start cold, so a configuration run later is measured on
// a bigger database (writes on three nodes: 345–390 req/s run second, 496 run first). By
// default each runs twice, in the order 1, 3, 3, 1, and the figures are the means.
const ORDER = (A.get('order') ?? '1,3,3,1').split(',').map(Number)
const POOL_SIZE = A.get('pool-size')
if (POOL_SIZE !== undefined && !/^\d+$/.test(POOL_SIZE)) throw new Error('--pool-size must be a whole number')
if (!ORDER.includes(1) || !ORDER.includes(3) || ORDER.some((n) => n !== 1 && n !== 3))
  throw new Error('--order lists 1 and 3 (node counts), e.g. 1,3,3,1')
if (!(DURATION > 0 && DURATION <= 60 && WARMUP >= 0 && CONNECTIONS >= 3 && CONNECTIONS <= 600))
  throw new Error('--duration must be in (0, 60], --warmup ≥ 0, --connections in [3, 600]')

installCleanup(300 + ORDER.length * 2 * (WARMUP + DURATION + 10))
ensureBuilt()

const vault = await createPostgresVault(ADMIN_URL)
const { name, role, token } = vault
const nodes: CofferServer[] = []
try {
  const startNode = (i: number) => vault.startNode(i, [], POOL_SIZE === undefined ? {} : { COFFER_DATABASE_POOL_SIZE: POOL_SIZE })
  nodes.push(await startNode(0))
  const { scope, keys } = await seed(nodes[0]!, 100)
  const E = envPath(scope)
  const auth = { authorization: `Bearer ${token}` }

  // Lock waits of the application's sessions, sampled every 50 ms while a load runs.
  const sampler = new pg.Client({ connectionString: ADMIN_URL })
  await sampler.connect()
  // The benchmark's database as its superuser, to VACUUM it before each run: the audit queue
  // (an INSERT per request, a DELETE per integrated entry) and the data key's counter row (an
  // UPDATE per write) leave dead row versions that the sequencer's scans and every write then
  // wade through. Autovacuum clears them about once a minute where it runs; on a server where
  // it is off (as on this machine's), a later run would be measured on a more bloated database.
  const vacuumUrl = new URL(ADMIN_URL)
  vacuumUrl.pathname = `/${name}`
  const vacuumer = new pg.Client({ connectionString: vacuumUrl.toString() })
  await vacuumer.connect()
  const autovacuum = (await sampler.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]!.autovacuum
  async function sampleLocks<T>(
    run: () => Promise<T>,
  ): Promise<{ result: T; samples: number; waiting: number; max: number; events: string }> {
    let stop = false
    let samples = 0
    let waiting = 0
    let max = 0
    const events = new Map<string, number>()
    const loop = (async () => {
      while (!stop) {
        const { rows } = await sampler.query<{ ev: string; n: string }>(
          `SELECT wait_event_type || ':' || wait_event AS ev, count(*) AS n FROM pg_stat_activity
             WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock' GROUP BY 1`,
          [name, role],
        )
        const now = rows.reduce((a, r) => a + Number(r.n), 0)
        for (const r of rows) events.set(r.ev, (events.get(r.ev) ?? 0) + Number(r.n))
        samples++
        waiting += now
        max = Math.max(max, now)
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    const result = await run()
    stop = true
    await loop
    return {
      result,
      samples,
      waiting,
      max,
      events:
        [...events]
          .sort((a, b) => b[1] - a[1])
          .map(([e, n]) => `${e} ${n}`)
          .join(', ') || 'none',
    }
  }

  /** CPU seconds used so far by every PostgreSQL process on this machine (backends and helpers). */
  function databaseCpuSeconds(): number {
    let total = 0
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      try {
        if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue
      } catch {
        continue
      }
      total += processCpuSeconds(Number(pid)) ?? 0
    }
    return total
  }
  const nodesCpuSeconds = () => nodes.reduce((a, n) => a + (processCpuSeconds(n.pid) ?? 0), 0)
  /** Transactions committed or rolled back in the benchmark's database (PostgreSQL's statistics, flushed within ~1 s). */
  async function transactions(): Promise<number> {
    const { rows } = await sampler.query<{ n: string }>(
      'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
      [name],
    )
    return Number(rows[0]?.n ?? 0)
  }

  /** Audited 2xx answers over every run, warm-ups included: each must have left one entry. */
  let audited = 0
  /** Requests in flight when a run stopped: answered and audited by a node, not counted by autocannon. */
  let inFlight = 0
  let writeSeq = 0
  const runTag = randomBytes(4).toString('hex')
  const scenarios = {
    read: (url: string): autocannon.Options => ({ url: `${url}${E}/secrets/${keys[0]}?reveal=true`, headers: auth }),
    write: (url: string): autocannon.Options => ({
      url,
      headers: { ...auth, 'content-type': 'application/json' },
      requests: [
        {
          method: 'PUT',
          setupRequest: (req) => {
            const n = writeSeq++
            return {
              ...req,
              method: 'PUT',
              path: `${E}/secrets/${keys[n % keys.length]}`,
              body: JSON.stringify({ value: `${runTag}-${n.toString(36)}`.padEnd(40, '.') }),
            }
          },
        },
      ],
    }),
  }

  /** Runs `kind` against every node at once, the connections split evenly; sums the figures. */
  async function load(kind: keyof typeof scenarios) {
    const per = Math.floor(CONNECTIONS / nodes.length)
    const fire = async (duration: number) => {
      const rs = await Promise.all(
        nodes.map((n) => autocannon({ ...scenarios[kind](n.url), connections: per, duration }) as Promise<autocannon.Result>),
      )
      for (const r of rs) audited += r['2xx']
      inFlight += per * nodes.length
      return rs
    }
    await vacuumer.query('VACUUM (ANALYZE)')
    if (WARMUP > 0) await fire(WARMUP)
    await sleep(1500)
    const lagBefore = await Promise.all(nodes.map((n) => readMergeDelay(n.url)))
    const xact0 = await transactions()
    const cpu0 = { db: databaseCpuSeconds(), nodes: nodesCpuSeconds() }
    const { result, samples, waiting, max, events } = await sampleLocks(() => fire(DURATION))
    const cpu1 = { db: databaseCpuSeconds(), nodes: nodesCpuSeconds() }
    await sleep(1500)
    const xact1 = await transactions()
    const lag = delta(lagBefore, await Promise.all(nodes.map((n) => readMergeDelay(n.url))))
    const ok = result.reduce((a, r) => a + r['2xx'], 0)
    const non2xx = result.reduce((a, r) => a + r.non2xx + r.errors + r.timeouts, 0)
    return {
      rps: ok / DURATION,
      p99: Math.max(...result.map((r) => r.latency.p99)),
      p50: Math.max(...result.map((r) => r.latency.p50)),
      non2xx,
      lockWaitAvg: samples ? waiting / samples : 0,
      lockWaitMax: max,
      events,
      mergeP99: quantileBound(lag, 0.99),
      dbCores: (cpu1.db - cpu0.db) / DURATION,
      nodeCores: (cpu1.nodes - cpu0.nodes) / DURATION,
      dbCpuMs: ((cpu1.db - cpu0.db) * 1000) / ok,
      nodeCpuMs: ((cpu1.nodes - cpu0.nodes) * 1000) / ok,
      xactPerRequest: (xact1 - xact0) / ok,
    }
  }

  // Integrated entries plus any still queued (the verify call integrates what is queued first).
  const entries = async () => {
    const v = (await (await fetch(`${nodes[0]!.url}/v1/workspaces/${vault.workspace}/audit/verify`, { headers: auth })).json()) as {
      checked: number
      pending: { count: number }
    }
    return v.checked + v.pending.count
  }

  type Run = Awaited<ReturnType<typeof load>> & { label: string }
  const results: Record<string, Run[]> = {}
  const before = await entries()
  for (const [i, count] of ORDER.entries()) {
    while (nodes.length < count) nodes.push(await startNode(nodes.length))
    while (nodes.length > count) await nodes.pop()!.stop()
    for (const kind of ['read', 'write'] as const) {
      process.stderr.write(`bench: ${kind} on ${count} node(s): warm-up ${WARMUP}s, then ${DURATION}s at ${CONNECTIONS} connections\n`)
      const r = await load(kind)
      const key = `${kind}-${count}`
      results[key] = [...(results[key] ?? []), { ...r, label: `${key} (run ${i + 1} of ${ORDER.length})` }]
      if (r.non2xx > 0) throw new Error(`${kind} on ${count} node(s): ${r.non2xx} answers were not 2xx`)
    }
  }
  const after = await entries()
  const verified = await Promise.all(
    nodes.map(
      async (n) =>
        (await (await fetch(`${n.url}/v1/workspaces/${vault.workspace}/audit/verify`, { headers: auth })).json()) as { ok: boolean },
    ),
  )
  const mean = (rs: Run[], f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  const each = (rs: Run[], f: (r: Run) => number | string) => rs.map(f).join(', ')
  printTable(
    `Coffer on PostgreSQL, 1 node vs 3 nodes on one database (${CONNECTIONS} connections in all, ${DURATION}s each; order ${ORDER.join(', ')}: means of each configuration's runs; ${POOL_SIZE ?? 10} database connections per node)`,
    [
      'scenario',
      '1 node req/s',
      '3 nodes req/s',
      '3 ÷ 1',
      'runs (1 / 3)',
      'p99 ms (1 / 3)',
      'lock waits avg (1 / 3)',
      'lock waits max (1 / 3)',
      'merge delay p99 ≤ s (1 / 3)',
    ],
    (['read', 'write'] as const).map((k) => {
      const one = results[`${k}-1`]!
      const three = results[`${k}-3`]!
      const rps = (r: Run) => Math.round(r.rps)
      return [
        k === 'read' ? 'audited single read' : 'durable audited write',
        Math.round(mean(one, (r) => r.rps)),
        Math.round(mean(three, (r) => r.rps)),
        ratio(
          mean(three, (r) => r.rps),
          mean(one, (r) => r.rps),
        ),
        `${each(one, rps)} / ${each(three, rps)}`,
        `${each(one, (r) => r.p99)} / ${each(three, (r) => r.p99)}`,
        `${mean(one, (r) => r.lockWaitAvg).toFixed(2)} / ${mean(three, (r) => r.lockWaitAvg).toFixed(2)}`,
        `${Math.max(...one.map((r) => r.lockWaitMax))} / ${Math.max(...three.map((r) => r.lockWaitMax))}`,
        `${Math.max(...one.map((r) => r.mergeP99))} / ${Math.max(...three.map((r) => r.mergeP99))}`,
      ]
    }),
  )
  console.log(`autovacuum on this server: ${autovacuum}; every run started after a VACUUM (ANALYZE) of the benchmark's database`)
  const runs = Object.values(results).flat()
  printTable(
    'Where the CPU went (cores used in the measured run, and CPU ms per 2xx answer; the transactions counted in pg_stat_database)',
    ['run', 'req/s', 'PostgreSQL cores', 'nodes cores', 'PostgreSQL ms/req', 'nodes ms/req', 'transactions/req'],
    runs.map((r) => [r.label, Math.round(r.rps), r.dbCores, r.nodeCores, r.dbCpuMs, r.nodeCpuMs, r.xactPerRequest]),
  )
  for (const r of runs) console.log(`lock waits by event (${r.label}): ${r.events}`)
  console.log(
    `audit: ${after - before} entries written for ${audited} audited 2xx answers counted (difference ${after - before - audited}: requests in flight when a run stopped, allowed 0..${inFlight}); verify on every node: ${verified.map((v) => v.ok).join(', ')}`,
  )
  if (!verified.every((v) => v.ok)) throw new Error('audit verification failed on a node')
  const diff = after - before - audited
  if (diff < 0 || diff > inFlight) throw new Error(`${after - before} audit entries for ${audited} audited answers`)
  await sampler.end()
  await vacuumer.end()
} finally {
  await Promise.all(nodes.map((n) => n.stop()))
  await vault.drop()
}
