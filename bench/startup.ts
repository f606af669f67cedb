// How long `coffer server` takes to be ready, and how much memory it holds when idle.
//
//   node --import tsx bench/startup.ts [--runs 5]
//
// For each run: a fresh data directory (`coffer init` first, so the time measured is a start
// on an existing vault, as after a restart), then `coffer server`; the time from spawning the
// process to the first `200` from `/readyz` (polled every 10 ms), and the process's resident
// memory (VmRSS from /proc) after one idle second, after 200 unaudited requests (`GET /v1/me`)
// and after 200 audited reads (a secret revealed: on SQLite the audit thread is then running).
// Beside it, the same for `node -e` holding a bare Fastify server (bench/baseline-server.mjs).
// Prints medians. Issue 15's targets: ready ≤ 1 s, idle RSS ≤ 120 MB.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CofferClient } from '../src/client/client.js'
import {
  args,
  BENCH_DIR,
  COFFER_BIN,
  cleanEnv,
  ensureBuilt,
  installCleanup,
  makeTempDir,
  median,
  printTable,
  removeTempDir,
  sleep,
} from './lib/harness.js'

const A = args()
const RUNS = Number(A.get('runs') ?? 5)
if (!(RUNS >= 1 && RUNS <= 50)) throw new Error('--runs must be in [1, 50]')
installCleanup(300)
ensureBuilt()

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

/** Spawns `argv`, waits for a URL in its output, then for /readyz (or /) to answer 200. */
async function start(argv: string[], env: NodeJS.ProcessEnv, readyPath: string) {
  const t0 = performance.now()
  const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start within 20 s: ${out}`)), 20_000)
    const on = (d: Buffer) => {
      out += d.toString()
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) {
        clearTimeout(t)
        resolve(m[1]!.replace('localhost', '127.0.0.1'))
      }
    }
    child.stdout.on('data', on)
    child.stderr.on('data', on)
  })
  for (;;) {
    const ok = await fetch(url + readyPath)
      .then((r) => r.status === 200)
      .catch(() => false)
    if (ok) break
    await sleep(10)
  }
  return { child, url, readyMs: performance.now() - t0 }
}

const rows: Record<'coffer' | 'baseline', { ready: number[]; idle: number[]; loaded: number[]; audited: number[] }> = {
  coffer: { ready: [], idle: [], loaded: [], audited: [] },
  baseline: { ready: [], idle: [], loaded: [], audited: [] },
}
for (let i = 0; i < RUNS; i++) {
  const dir = makeTempDir('coffer-bench-startup-')
  try {
    const env = cleanEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_RATE_TOKEN_PER_MINUTE: '0' })
    const init = spawnSync(
      process.execPath,
      [COFFER_BIN, 'init', '--data-dir', join(dir, 'data'), '--email', 'bench@localhost', '--json'],
      {
        env,
        encoding: 'utf8',
      },
    )
    if (init.status !== 0) throw new Error(init.stderr)
    const { token, workspace } = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    const c = await start([COFFER_BIN, 'server', '--data-dir', join(dir, 'data'), '--host', '127.0.0.1', '--port', '0'], env, '/readyz')
    await sleep(1000)
    rows.coffer.ready.push(c.readyMs)
    rows.coffer.idle.push(rssMb(c.child.pid!))
    for (let k = 0; k < 200; k++)
      await fetch(`${c.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer())
    rows.coffer.loaded.push(rssMb(c.child.pid!))
    const client = new CofferClient({ url: c.url, token, userAgent: 'coffer-bench' })
    const scope = { workspace: workspace.slug, project: 'startup', environment: 'development' }
    await client.createProject(workspace.slug, { name: 'Startup', slug: scope.project })
    await client.setSecrets(scope, [{ key: 'STARTUP_SECRET', value: 'x'.repeat(40) }])
    for (let k = 0; k < 200; k++) await client.getSecret(scope, 'STARTUP_SECRET', { reveal: true })
    rows.coffer.audited.push(rssMb(c.child.pid!))
    c.child.kill('SIGTERM')
    await new Promise((r) => c.child.once('exit', r))

    const b = await start([join(BENCH_DIR, 'baseline-server.mjs')], cleanEnv(), '/')
    await sleep(1000)
    rows.baseline.ready.push(b.readyMs)
    rows.baseline.idle.push(rssMb(b.child.pid!))
    for (let k = 0; k < 200; k++) await fetch(`${b.url}/`).then((r) => r.arrayBuffer())
    rows.baseline.loaded.push(rssMb(b.child.pid!))
    b.child.kill('SIGTERM')
    await new Promise((r) => b.child.once('exit', r))
  } finally {
    removeTempDir(dir)
  }
}

printTable(
  `Start-up and idle memory, median of ${RUNS} runs`,
  ['process', 'spawn → ready (ms)', 'RSS idle (MB)', 'RSS after 200 requests (MB)', 'RSS after 200 audited reads (MB)', 'targets'],
  [
    [
      'coffer server (SQLite, existing vault)',
      Math.round(median(rows.coffer.ready)),
      median(rows.coffer.idle).toFixed(1),
      median(rows.coffer.loaded).toFixed(1),
      median(rows.coffer.audited).toFixed(1),
      'ready ≤ 1,000 ms, idle ≤ 120 MB',
    ],
    [
      'bare Fastify (baseline)',
      Math.round(median(rows.baseline.ready)),
      median(rows.baseline.idle).toFixed(1),
      median(rows.baseline.loaded).toFixed(1),
      '',
      '',
    ],
  ],
)
