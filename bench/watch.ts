// How long a change takes to reach a program under `coffer run --watch`: from the write
// (PUT …/secrets/:key sent) to the program restarted with the new value in its environment.
//
//   node --import tsx bench/watch.ts [--changes 30] [--debounce 200,0] [--json FILE] [--wait-idle SECONDS]
//
// Starts `coffer server` on SQLite in a temp dir (127.0.0.1, free port), seeds project "bench"
// with 100 secrets in development, then for each --debounce value starts
// `coffer run --project bench --env development --watch --watch-debounce D -- sh -c …`, whose
// command appends BENCH_SECRET_000 to a file and sleeps. It then writes a new value N times,
// one at a time, and times each write until that value is in the file (polled every 2 ms).
// Target (issue 16): every change within 1 s.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  args,
  cleanEnv,
  COFFER_BIN,
  ensureBuilt,
  installCleanup,
  makeTempDir,
  median,
  percentile,
  printTable,
  randomValue,
  removeTempDir,
  seed,
  sleep,
  startCoffer,
  waitForIdle,
  type Cell,
} from './lib/harness.js'

const A = args()
const CHANGES = Number(A.get('changes') ?? 30)
const DEBOUNCES = (A.get('debounce') ?? '200,0').split(',').map(Number)
const JSON_OUT = A.get('json')
const TARGET_MS = 1_000
if (!(CHANGES >= 3 && CHANGES <= 1000) || DEBOUNCES.some((d) => !(d >= 0 && d <= 5000)))
  throw new Error('--changes must be in [3, 1000], each --debounce in [0, 5000]')

installCleanup(120 + DEBOUNCES.length * CHANGES * 3)
ensureBuilt()

const otherLoad = await waitForIdle(Number(A.get('wait-idle') ?? 0))
const base = makeTempDir('coffer-bench-watch-')
const server = await startCoffer(base)
const { scope, client } = await seed(server, 100)
const KEY = 'BENCH_SECRET_000'

async function until(what: string, f: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs
  while (!f()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

const results: Array<{ debounceMs: number; latenciesMs: number[] }> = []
let child: ChildProcess | undefined
try {
  for (const debounce of DEBOUNCES) {
    const log = join(base, `starts-${debounce}.log`)
    writeFileSync(log, '')
    child = spawn(
      process.execPath,
      [
        COFFER_BIN,
        'run',
        '--project',
        scope.project,
        '--env',
        scope.environment,
        '--watch',
        '--watch-debounce',
        String(debounce),
        '--',
        'sh',
        '-c',
        `printf '%s\\n' "$${KEY}" >> "${log}"; exec sleep 1000`,
      ],
      { cwd: base, env: cleanEnv({ COFFER_URL: server.url, COFFER_TOKEN: server.token }), stdio: ['ignore', 'ignore', 'inherit'] },
    )
    await until('the first start', () => existsSync(log) && readFileSync(log, 'utf8').length > 0)
    // The watch stream opens right after the command starts: give it a moment before the first write.
    await sleep(300)
    const latencies: number[] = []
    for (let i = 0; i < CHANGES; i++) {
      const value = `v${i}-${randomValue(16)}`
      const t0 = performance.now()
      await client.setSecret(scope, KEY, { value })
      await until(`change ${i}`, () => readFileSync(log, 'utf8').includes(`${value}\n`))
      latencies.push(performance.now() - t0)
      // Let the new command settle (and the debounce window close) before the next write.
      await sleep(Math.max(100, debounce + 50))
    }
    const stopped = new Promise((r) => child!.once('exit', r))
    child.kill('SIGTERM')
    await stopped
    child = undefined
    results.push({ debounceMs: debounce, latenciesMs: latencies })
  }
} finally {
  child?.kill('SIGKILL')
  await server.stop()
  removeTempDir(base)
}

const rows: Cell[][] = results.map((r) => {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b)
  const p99 = percentile(sorted, 99)
  return [
    `--watch-debounce ${r.debounceMs}${r.debounceMs === 200 ? ' (default)' : ''}`,
    r.latenciesMs.length,
    median(r.latenciesMs).toFixed(0),
    percentile(sorted, 90).toFixed(0),
    p99.toFixed(0),
    sorted[sorted.length - 1]!.toFixed(0),
    `≤ ${TARGET_MS}`,
    sorted[sorted.length - 1]! <= TARGET_MS ? 'met' : 'MISSED',
  ]
})
printTable(
  `write → command restarted with the new value (ms), SQLite server, 100 secrets${otherLoad === null ? '' : `; other load at start ${otherLoad.toFixed(2)} cores`}`,
  ['watch', 'changes', 'p50', 'p90', 'p99', 'max', 'target', 'all within target'],
  rows,
)
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ targetMs: TARGET_MS, results }, null, 2))
