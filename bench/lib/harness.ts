// Shared plumbing of the benchmarks: child servers on 127.0.0.1, temp dirs, cleanup that
// runs on every way out, a global time limit, seeding through the typed client.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CofferClient, type Scope } from '../../src/client/client.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const COFFER_BIN = join(ROOT, 'bin', 'coffer.js')
export const BENCH_DIR = join(ROOT, 'bench')

// ---------------------------------------------------------------------------------------
// Cleanup: children are killed and temp dirs removed on normal exit, on an exception, on
// Ctrl-C and when the global deadline passes.

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()
let cleanedUp = false

function cleanupSync(): void {
  if (cleanedUp) return
  cleanedUp = true
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL')
      } catch {
        /* already gone */
      }
    }
  }
  children.clear()
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  tempDirs.clear()
}

let installed = false
/** Installs the exit hooks and a hard deadline (the whole script stops by itself). */
export function installCleanup(deadlineSeconds: number): void {
  if (installed) return
  installed = true
  process.on('exit', cleanupSync)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, cleaning up\n`)
      cleanupSync()
      process.exit(130)
    })
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`)
    cleanupSync()
    process.exit(1)
  })
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? err}\n`)
    cleanupSync()
    process.exit(1)
  })
  const t = setTimeout(() => {
    process.stderr.write(`bench: over the ${deadlineSeconds}s limit, stopping\n`)
    cleanupSync()
    process.exit(2)
  }, deadlineSeconds * 1000)
  t.unref()
}

export function makeTempDir(prefix: string, parent = tmpdir()): string {
  const d = mkdtempSync(join(parent, prefix))
  tempDirs.add(d)
  return d
}

export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true })
  tempDirs.delete(d)
}

/** Filesystem type of a path (the data dir's fsync cost depends on it). */
export function fsType(path: string): string {
  const r = spawnSync('stat', ['-f', '-c', '%T', path], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : 'unknown'
}

// ---------------------------------------------------------------------------------------
// The CLI bundle.

function newestMtime(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** Builds dist/ if it is missing; warns when src/ is newer than the bundle. */
export function ensureBuilt(): void {
  const bundle = join(ROOT, 'dist', 'cli.js')
  if (!existsSync(bundle)) {
    process.stderr.write('bench: dist/ is missing, running npm run build\n')
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
    if (r.status !== 0) throw new Error('npm run build failed')
    return
  }
  if (newestMtime(join(ROOT, 'src')) > statSync(bundle).mtimeMs) {
    process.stderr.write('bench: WARNING: src/ is newer than dist/cli.js; run `npm run build` to measure the current code\n')
  }
}

// ---------------------------------------------------------------------------------------
// Child servers.

/** The environment of a child: no inherited Coffer or database settings (SQLite only). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('COFFER_') || k === 'DATABASE_URL' || k.startsWith('NODE_OPTIONS')) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

export interface ChildServer {
  readonly url: string
  readonly pid: number
  readonly child: ChildProcess
  /** The last lines the child wrote (for error messages). */
  output(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>
}

/**
 * Spawns `args` with node and waits (at most `timeoutMs`) until its output contains a
 * URL matching `ready`.
 */
export async function spawnServer(
  nodeArgs: string[],
  opts: { env: NodeJS.ProcessEnv; ready: RegExp; timeoutMs?: number; name: string; cwd?: string },
): Promise<ChildServer> {
  const child = spawn(process.execPath, nodeArgs, { env: opts.env, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-8000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${opts.name} did not start within ${opts.timeoutMs ?? 20_000} ms:\n${out}`))
    }, opts.timeoutMs ?? 20_000)
    const check = () => {
      const m = opts.ready.exec(out)
      if (m) {
        clearTimeout(timer)
        child.stdout!.off('data', check)
        child.stderr!.off('data', check)
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', check)
    child.stderr!.on('data', check)
    child.once('exit', (code, sig) => {
      clearTimeout(timer)
      reject(new Error(`${opts.name} exited (${code ?? sig}) before it was ready:\n${out}`))
    })
  })
  if (!/^http:\/\/(127\.0\.0\.1|localhost):\d+$/.test(url)) {
    child.kill('SIGKILL')
    throw new Error(`${opts.name} listens on ${url}, not on 127.0.0.1`)
  }
  return {
    url: url.replace('localhost', '127.0.0.1'),
    pid: child.pid!,
    child,
    output: () => out,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(t)
      }
      children.delete(child)
    },
  }
}

export interface CofferServer extends ChildServer {
  readonly token: string
  readonly workspace: string
  readonly dataDir: string
}

/**
 * `coffer init` in a fresh data dir under `baseDir`, then `coffer server` on a free port of
 * 127.0.0.1, with `nodeFlags` (e.g. --cpu-prof) and extra environment variables.
 */
export async function startCoffer(
  baseDir: string,
  opts: { nodeFlags?: string[]; env?: Record<string, string> } = {},
): Promise<CofferServer> {
  const dataDir = join(baseDir, 'data')
  const env = cofferEnv(opts.env)
  const init = spawnSync(process.execPath, [COFFER_BIN, 'init', '--data-dir', dataDir, '--email', 'bench@localhost', '--json'], {
    env,
    cwd: baseDir,
    encoding: 'utf8',
    timeout: 30_000,
  })
  if (init.status !== 0) throw new Error(`coffer init failed (${init.status}): ${init.stderr}`)
  const info = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
  const server = await serveDataDir(dataDir, baseDir, opts)
  return { ...server, token: info.token, workspace: info.workspace.slug, dataDir }
}

/** The environment of a benchmarked `coffer server`. */
function cofferEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Load generators send far more than a person would: the per-token caps are off here.
  return cleanEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_RATE_TOKEN_PER_MINUTE: '0', COFFER_RATE_TOKEN_PER_MONTH: '0', ...extra })
}

function serveDataDir(
  dataDir: string,
  cwd: string,
  opts: { nodeFlags?: string[]; env?: Record<string, string> } = {},
): Promise<ChildServer> {
  return spawnServer([...(opts.nodeFlags ?? []), COFFER_BIN, 'server', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], {
    env: cofferEnv(opts.env),
    cwd,
    ready: /listening on (http:\/\/\S+)/,
    name: 'coffer server',
  })
}

/**
 * One more `coffer server` process on `first`'s SQLite data dir, on a port of its own (not a
 * supported deployment: SQLite is one node; bench/processes.ts measures whether it would pay).
 */
export async function startAnotherProcess(first: CofferServer, baseDir: string): Promise<CofferServer> {
  const server = await serveDataDir(first.dataDir, baseDir)
  return { ...server, token: first.token, workspace: first.workspace, dataDir: first.dataDir }
}

/** The bare Fastify baseline (bench/baseline-server.mjs). */
export function startBaseline(): Promise<ChildServer> {
  return spawnServer([join(BENCH_DIR, 'baseline-server.mjs')], {
    env: cleanEnv(),
    ready: /listening on (http:\/\/\S+)/,
    name: 'baseline server',
  })
}

// ---------------------------------------------------------------------------------------
// Seeding.

export const PROJECT = 'bench'
export const ENVIRONMENT = 'development'

/** A random printable value of exactly `bytes` bytes. */
export function randomValue(bytes = 40): string {
  return randomBytes(Math.ceil((bytes * 3) / 4))
    .toString('base64url')
    .slice(0, bytes)
}

/** Creates project "bench" (with its default environments) and `count` secrets in development. */
export async function seed(server: CofferServer, count = 100): Promise<{ scope: Scope; keys: string[]; client: CofferClient }> {
  const client = new CofferClient({ url: server.url, token: server.token, userAgent: 'coffer-bench' })
  const { project, environments } = await client.createProject(server.workspace, { name: 'Bench', slug: PROJECT })
  if (!environments.some((e) => e.slug === ENVIRONMENT)) throw new Error(`project has no ${ENVIRONMENT} environment`)
  const scope: Scope = { workspace: server.workspace, project: project.slug, environment: ENVIRONMENT }
  const keys = Array.from({ length: count }, (_, i) => `BENCH_SECRET_${String(i).padStart(3, '0')}`)
  await client.setSecrets(
    scope,
    keys.map((key) => ({ key, value: randomValue(40) })),
  )
  const listed = await client.listSecrets(scope)
  if (listed.length !== count) throw new Error(`seeded ${listed.length} secrets, expected ${count}`)
  return { scope, keys, client }
}

export function envPath(scope: Scope): string {
  const e = encodeURIComponent
  return `/v1/workspaces/${e(scope.workspace)}/projects/${e(scope.project)}/environments/${e(scope.environment)}`
}

/** GET with the token, JSON answer; throws on non-2xx. */
export async function getJson<T>(server: CofferServer, path: string): Promise<T> {
  const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${server.token}` } })
  const text = await res.text()
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 300)}`)
  return JSON.parse(text) as T
}

// ---------------------------------------------------------------------------------------
// CPU accounting of a child (Linux /proc), in seconds of CPU.

let clockTicks: number | undefined
export function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of the line; 11 and 12 after the command name.
    const ticks = Number(fields[11]) + Number(fields[12])
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100
    return Number.isFinite(ticks) ? ticks / clockTicks : null
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------
// Tables.

export type Cell = string | number | null | undefined

function fmtCell(c: Cell): string {
  if (c === null || c === undefined) return '—'
  if (typeof c === 'number') {
    if (!Number.isFinite(c)) return '—'
    if (Number.isInteger(c)) return c.toLocaleString('en-US')
    return Math.abs(c) >= 100 ? Math.round(c).toLocaleString('en-US') : c.toFixed(2)
  }
  return c
}

/** Prints a plain-text table; numeric columns are right-aligned. */
export function printTable(title: string, header: string[], rows: Cell[][]): void {
  const cells = rows.map((r) => r.map(fmtCell))
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)))
  const numeric = header.map((_, i) =>
    rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined || /^[\d.,]+[×x%]?$|^—$/.test(String(r[i]))),
  )
  const line = (r: string[]) => `| ${r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`
  process.stdout.write(`\n${title}\n`)
  process.stdout.write(`${line(header)}\n`)
  process.stdout.write(`|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|\n`)
  for (const r of cells) process.stdout.write(`${line(r)}\n`)
}

export function ratio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : '—'
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return NaN
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Parses `--name value` and `--flag` from argv. */
export function args(argv = process.argv.slice(2)): Map<string, string> {
  const m = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('--')) continue
    const eq = a.indexOf('=')
    if (eq > 0) m.set(a.slice(2, eq), a.slice(eq + 1))
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) m.set(a.slice(2), argv[++i]!)
    else m.set(a.slice(2), 'true')
  }
  return m
}

/** Cores' worth of CPU that other processes used over `ms` (from /proc/stat), before we start. */
export async function backgroundLoad(ms = 1000): Promise<number | null> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const idle = (f[3] ?? 0) + (f[4] ?? 0)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
    return { idle, total }
  }
  try {
    const a = read()
    await sleep(ms)
    const b = read()
    const total = b.total - a.total
    if (total <= 0) return null
    return ((total - (b.idle - a.idle)) / total) * cpus().length
  } catch {
    return null
  }
}

/**
 * Waits up to `maxSeconds` for other processes to use less than `threshold` cores (checked
 * over 2 s windows); returns the last reading.
 */
export async function waitForIdle(maxSeconds: number, threshold = 0.3): Promise<number | null> {
  const end = performance.now() + maxSeconds * 1000
  let load = await backgroundLoad(1000)
  while (load !== null && load >= threshold && performance.now() < end) {
    process.stderr.write(`bench: other processes use ${load.toFixed(2)} cores; waiting for the machine to be idle\n`)
    load = await backgroundLoad(2000)
  }
  return load
}
