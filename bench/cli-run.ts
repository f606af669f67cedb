// Wall time of the CLI beside bare Node: `coffer run -- true` against a running server (the
// common way secrets reach a process), and `coffer --help` (start-up alone).
//
//   node --import tsx bench/cli-run.ts [--runs 30] [--warmup 3] [--no-hyperfine] [--json FILE] [--wait-idle SECONDS]
//
// Starts `coffer server` on SQLite in a temp dir (127.0.0.1, free port), seeds project
// "bench" with 100 secrets in development, then times each command with hyperfine (if
// installed; else process.hrtime around spawnSync) from a temp dir with no .coffer.json,
// COFFER_URL and COFFER_TOKEN set. Target (issue 15): `coffer run` median ≤ 1.3× `node -e 0`.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { cpus } from 'node:os'
import { join } from 'node:path'
import {
  args,
  waitForIdle,
  cleanEnv,
  BENCH_DIR,
  COFFER_BIN,
  ensureBuilt,
  envPath,
  installCleanup,
  makeTempDir,
  median,
  percentile,
  printTable,
  ratio,
  removeTempDir,
  seed,
  startCoffer,
  type Cell,
} from './lib/harness.js'

const A = args()
const RUNS = Number(A.get('runs') ?? 30)
const WARMUP = Number(A.get('warmup') ?? 3)
const USE_HYPERFINE = A.get('no-hyperfine') !== 'true' && spawnSync('hyperfine', ['--version']).status === 0
const JSON_OUT = A.get('json')
if (!(RUNS >= 3 && RUNS <= 500 && WARMUP >= 0 && WARMUP <= 50)) throw new Error('--runs must be in [3, 500], --warmup in [0, 50]')
const TARGET_RATIO = 1.3

installCleanup(300 + RUNS * 4 * 2 + Number(A.get('wait-idle') ?? 0))
ensureBuilt()

const otherLoad = await waitForIdle(Number(A.get('wait-idle') ?? 0))
const base = makeTempDir('coffer-bench-cli-')
const server = await startCoffer(base)
const { scope } = await seed(server, 100)
const cwd = makeTempDir('coffer-bench-cwd-')
for (let d = cwd; ; d = join(d, '..')) {
  if (existsSync(join(d, '.coffer.json')))
    throw new Error(`${d}/.coffer.json would link the benchmark's directory; remove it or set TMPDIR`)
  if (d === '/' || join(d, '..') === d) break
}
const env = cleanEnv({ COFFER_URL: server.url, COFFER_TOKEN: server.token })

const node = process.execPath
// One audited environment fetch made by Node.js over node:net with no Coffer code: the floor
// under `coffer run`, whatever the CLI does.
const ONE_REQUEST = join(BENCH_DIR, 'lib', 'one-request.cjs')
const commands: Array<{ name: string; argv: string[]; target?: boolean; baseline?: string }> = [
  { name: 'node -e 0 (baseline)', argv: [node, '-e', '0'] },
  { name: 'coffer --help', argv: [node, COFFER_BIN, '--help'] },
  {
    name: 'coffer run --project P --env E -- true',
    argv: [node, COFFER_BIN, 'run', '--project', scope.project, '--env', scope.environment, '--', 'true'],
    target: true,
  },
  {
    name: 'node: the same fetch over node:net, no Coffer code (floor)',
    argv: [node, ONE_REQUEST, `${envPath({ ...scope, workspace: '-' })}/secrets?reveal=true`],
  },
  {
    name: 'coffer run --workspace W --project P --env E -- true',
    argv: [node, COFFER_BIN, 'run', '--workspace', scope.workspace, '--project', scope.project, '--env', scope.environment, '--', 'true'],
  },
]
// NODE_EXTRA_CA_CERTS makes every Node process parse that bundle before it runs a line (on this
// machine's image it names the system's ~140 certificates: ~35 ms), which hides how much Coffer
// adds to a plain start. Where it is set, the pair runs again without it, each through `env -u`.
const EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS
const BARE_BASELINE = 'node -e 0, without NODE_EXTRA_CA_CERTS'
if (EXTRA_CA) {
  const unset = ['/usr/bin/env', '-u', 'NODE_EXTRA_CA_CERTS']
  commands.push(
    { name: BARE_BASELINE, argv: [...unset, node, '-e', '0'] },
    {
      name: 'node: the same fetch over node:net (floor), without NODE_EXTRA_CA_CERTS',
      argv: [...unset, node, ONE_REQUEST, `${envPath({ ...scope, workspace: '-' })}/secrets?reveal=true`],
      baseline: BARE_BASELINE,
    },
    {
      name: 'coffer run --project P --env E -- true, without NODE_EXTRA_CA_CERTS',
      argv: [...unset, node, COFFER_BIN, 'run', '--project', scope.project, '--env', scope.environment, '--', 'true'],
      baseline: BARE_BASELINE,
    },
  )
}

// Each command must work, and `coffer run` must really inject the secrets.
for (const c of commands) {
  const r = spawnSync(c.argv[0]!, c.argv.slice(1), { cwd, env, encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(`${c.name} failed (${r.status ?? r.signal}): ${r.stderr}`)
}
{
  const check = [
    node,
    COFFER_BIN,
    'run',
    '--project',
    scope.project,
    '--env',
    scope.environment,
    '--',
    node,
    '-e',
    'process.exit(Object.keys(process.env).filter((k) => k.startsWith("BENCH_SECRET_")).length === 100 ? 0 : 3)',
  ]
  const r = spawnSync(check[0]!, check.slice(1), { cwd, env, encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(`coffer run did not pass the 100 secrets to the child (exit ${r.status}): ${r.stderr}`)
}

interface Timing {
  name: string
  times: number[]
  target?: boolean
  /** The baseline row this one is compared with (else the first). */
  baseline?: string
}
const timings: Timing[] = []
let tool: string
if (USE_HYPERFINE) {
  tool = spawnSync('hyperfine', ['--version'], { encoding: 'utf8' }).stdout.trim()
  const out = join(base, 'hyperfine.json')
  const hfArgs = ['--warmup', String(WARMUP), '--runs', String(RUNS), '--shell=none', '--style', 'none', '--export-json', out]
  for (const c of commands) hfArgs.push('-n', c.name, c.argv.join(' '))
  const r = spawnSync('hyperfine', hfArgs, { cwd, env, encoding: 'utf8', timeout: (RUNS + WARMUP) * commands.length * 10_000 })
  if (r.status !== 0) throw new Error(`hyperfine failed (${r.status ?? r.signal}): ${r.stderr}`)
  const json = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ command: string; times: number[]; exit_codes: number[] }> }
  for (const [i, res] of json.results.entries()) {
    if (res.exit_codes.some((x) => x !== 0)) throw new Error(`${res.command}: non-zero exit codes ${JSON.stringify(res.exit_codes)}`)
    timings.push({ ...commands[i]!, times: res.times.map((s) => s * 1000) })
  }
} else {
  tool = 'process.hrtime around spawnSync'
  for (const c of commands) {
    const times: number[] = []
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const t = process.hrtime.bigint()
      const r = spawnSync(c.argv[0]!, c.argv.slice(1), { cwd, env, stdio: 'ignore', timeout: 30_000 })
      const ms = Number(process.hrtime.bigint() - t) / 1e6
      if (r.status !== 0) throw new Error(`${c.name} failed (${r.status ?? r.signal})`)
      if (i >= WARMUP) times.push(ms)
    }
    timings.push({ ...c, times })
  }
}
// The server's share: the one request `coffer run --project P --env E` makes (the URL names the
// token's own workspace, so no GET /v1/me first), on a new connection as each run opens one,
// timed from this process, one at a time.
const requestTimes: number[] = []
for (let i = 0; i < WARMUP + RUNS; i++) {
  const agent = new Agent({ keepAlive: false })
  const envFetch = await timedGet(`${server.url}${envPath({ ...scope, workspace: '-' })}/secrets?reveal=true`, agent)
  agent.destroy()
  if (i >= WARMUP) requestTimes.push(envFetch)
}
await server.stop()
removeTempDir(cwd)
removeTempDir(base)

const stats = timings.map((t) => {
  const sorted = [...t.times].sort((a, b) => a - b)
  return {
    ...t,
    median: median(sorted),
    p90: percentile(sorted, 90),
    min: sorted[0]!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  }
})
const baseline = stats[0]!
const baselineOf = (s: (typeof stats)[number]) => stats.find((b) => b.name === s.baseline) ?? baseline
process.stdout.write(
  `\nCoffer CLI start-up — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}; ${RUNS} runs after ${WARMUP} warm-up, timed by ${tool}\n`,
)
process.stdout.write(
  `server: coffer server on SQLite at 127.0.0.1 (same machine), 100 secrets of 40 bytes; each coffer run is one audited environment fetch\n`,
)
process.stdout.write(
  `CPU used by other processes in the second before the run: ${otherLoad === null ? 'unknown' : `${otherLoad.toFixed(2)} cores`}` +
    `${otherLoad !== null && otherLoad > 0.3 ? ' — WARNING: the machine was not idle' : ''}\n`,
)
process.stdout.write(
  EXTRA_CA
    ? `NODE_EXTRA_CA_CERTS is set (${EXTRA_CA}): the last three rows run without it, compared with the first of them\n`
    : 'NODE_EXTRA_CA_CERTS is not set\n',
)
const rows: Cell[][] = stats.map((s) => [
  s.name,
  s.median.toFixed(1),
  s.p90.toFixed(1),
  s.min.toFixed(1),
  s.mean.toFixed(1),
  ratio(s.median, baselineOf(s).median),
  ratio(s.p90, baselineOf(s).p90),
  s.target ? `≤ ${TARGET_RATIO}×: ${s.median / baseline.median <= TARGET_RATIO ? 'met' : 'MISSED'}` : '',
])
printTable('Wall time (ms)', ['command', 'median', 'p90', 'min', 'mean', 'median vs node', 'p90 vs node', 'target'], rows)
const envMedian = median([...requestTimes].sort((a, b) => a - b))
const runMedian = stats.find((s) => s.target)!.median
process.stdout.write(
  `\nThe request of coffer run, from this process on a new connection (median of ${RUNS}): environment fetch ${envMedian.toFixed(1)} ms, ` +
    `${((envMedian / runMedian) * 100).toFixed(0)}% of coffer run's median wall time ` +
    `(${((envMedian / (runMedian - baseline.median)) * 100).toFixed(0)}% of what it adds to node -e 0)\n`,
)

if (JSON_OUT) {
  writeFileSync(
    JSON_OUT,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        tool,
        runs: RUNS,
        warmup: WARMUP,
        otherLoad,
        stats,
        requests: { envMedian },
      },
      null,
      2,
    ),
  )
}

/** Milliseconds from sending a GET with the token to the end of its 200 answer. */
function timedGet(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint()
    const req = request(url, { agent, headers: { authorization: `Bearer ${server.token}`, accept: 'application/json' } }, (res) => {
      res.resume()
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`))
        else resolve(Number(process.hrtime.bigint() - t) / 1e6)
      })
    })
    req.on('error', reject)
    req.end()
  })
}
