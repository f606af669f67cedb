// Where the server's time goes under load: runs `coffer server` with `node --cpu-prof`,
// drives one scenario with autocannon, stops the server (the profile is written at exit),
// and summarises self time by module and by function, mapped back to src/ via the bundle's
// source maps. Only samples taken during the measured window are counted.
//
//   node --import tsx bench/profile.ts [--scenario read|env|write] [--duration 10]
//                                      [--warmup 2] [--connections 50] [--top 25] [--keep DIR] [--tmpdir DIR]
//                                      [--engine sqlite|postgres] [--database-url postgres://…/postgres]
//
// --engine postgres profiles one node on a throw-away PostgreSQL database (bench/lib/postgres-vault.ts).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import {
  args,
  ensureBuilt,
  envPath,
  installCleanup,
  makeTempDir,
  printTable,
  processCpuSeconds,
  randomValue,
  removeTempDir,
  ROOT,
  seed,
  sleep,
  startCoffer,
} from './lib/harness.js'
import { createPostgresVault } from './lib/postgres-vault.js'

const A = args()
const SCENARIO = A.get('scenario') ?? 'read'
const DURATION = Number(A.get('duration') ?? 10)
const WARMUP = Number(A.get('warmup') ?? 2)
const CONNECTIONS = Number(A.get('connections') ?? 50)
const TOP = Number(A.get('top') ?? 25)
const KEEP = A.get('keep')
const ENGINE = A.get('engine') ?? 'sqlite'
if (!['sqlite', 'postgres'].includes(ENGINE)) throw new Error('--engine must be sqlite or postgres')
if (!['read', 'env', 'write'].includes(SCENARIO)) throw new Error('--scenario must be read, env or write')
if (!(DURATION > 0 && DURATION <= 60 && WARMUP >= 0 && WARMUP <= 30)) throw new Error('--duration must be in (0, 60], --warmup in [0, 30]')

installCleanup(WARMUP + DURATION + 180)
ensureBuilt()

const base = makeTempDir('coffer-bench-prof-', A.get('tmpdir'))
const profDir = join(base, 'prof')
mkdirSync(profDir)
const profFlags = ['--cpu-prof', '--cpu-prof-dir', profDir]
const vault =
  ENGINE === 'postgres' ? await createPostgresVault(A.get('database-url') ?? 'postgres://postgres@127.0.0.1:5432/postgres') : null
const server = vault ? await vault.startNode(0, profFlags) : await startCoffer(base, { nodeFlags: profFlags })
const { scope, keys } = await seed(server, 100)
const E = envPath(scope)
const auth = { authorization: `Bearer ${server.token}` }

let n = 0
const options: autocannon.Options =
  SCENARIO === 'read'
    ? { url: `${server.url}${E}/secrets/${keys[0]}?reveal=true`, headers: auth }
    : SCENARIO === 'env'
      ? { url: `${server.url}${E}/secrets?reveal=true`, headers: auth }
      : {
          url: server.url,
          headers: { ...auth, 'content-type': 'application/json' },
          requests: [
            {
              method: 'PUT',
              setupRequest: (req) => ({
                ...req,
                method: 'PUT',
                path: `${E}/secrets/${keys[n++ % keys.length]}`,
                body: JSON.stringify({ value: randomValue(40) }),
              }),
            },
          ],
        }
Object.assign(options, { connections: CONNECTIONS, pipelining: 1, timeout: 10 })

process.stderr.write(`bench: profiling scenario "${SCENARIO}": warm-up ${WARMUP}s, then ${DURATION}s at ${CONNECTIONS} connections\n`)
if (WARMUP > 0) await autocannon({ ...options, duration: WARMUP })
await sleep(500)
const cpu0 = processCpuSeconds(server.pid)
const windowStartUs = Number(process.hrtime.bigint() / 1000n)
const result = await autocannon({ ...options, duration: DURATION })
const windowEndUs = Number(process.hrtime.bigint() / 1000n)
const cpu1 = processCpuSeconds(server.pid)
await server.stop()
await vault?.drop()

// One profile per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; the main thread's id is 0.
// The others (the audit thread on SQLite, reseal/verify threads if any ran) are kept with --keep.
const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))
const mainFile = files.find((f) => f.split('.')[4] === '0')
if (!mainFile) throw new Error(`no main-thread .cpuprofile in ${profDir} (found ${files.join(', ')}):\n${server.output()}`)
const profilePath = join(profDir, mainFile)
if (KEEP) {
  mkdirSync(KEEP, { recursive: true })
  for (const f of files)
    copyFileSync(
      join(profDir, f),
      join(KEEP, f === mainFile ? `coffer-${SCENARIO}.cpuprofile` : `coffer-${SCENARIO}-thread-${f.split('.')[4]}.cpuprofile`),
    )
}
process.stderr.write(`bench: ${files.length} thread profile(s); summarising the main thread's\n`)

// ------------------------------------------------------------------------------------------
interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}
const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as Profile
removeTempDir(base)

const byId = new Map(profile.nodes.map((nd) => [nd.id, nd]))
const selfUs = new Map<number, number>()
let t = profile.startTime
let inWindow = 0
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0
  // The sample's duration is the gap to the next sample.
  const dt = profile.timeDeltas[i + 1] ?? 0
  total += dt
  if (t < windowStartUs || t > windowEndUs) continue
  inWindow += dt
  const id = profile.samples[i]!
  selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
}
let windowed = true
if (inWindow < 0.5 * (windowEndUs - windowStartUs)) {
  // Clocks did not line up: count the whole profile instead.
  windowed = false
  selfUs.clear()
  t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + dt)
  }
  inWindow = total
}

// Source maps of the bundle: dist/*.js → src/*.ts.
const maps = new Map<string, SourceMap | null>()
function original(cf: CallFrame): { file: string; line: number } | null {
  if (!cf.url.startsWith('file://') || !cf.url.includes('/dist/')) return null
  let map = maps.get(cf.url)
  if (map === undefined) {
    const mapFile = `${fileURLToPath(cf.url)}.map`
    map = existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : null
    maps.set(cf.url, map)
  }
  if (!map) return null
  const e = map.findEntry(cf.lineNumber, cf.columnNumber) as { originalSource?: string; originalLine?: number }
  if (!e.originalSource) return null
  const src = e.originalSource.startsWith('file://')
    ? fileURLToPath(e.originalSource)
    : join(dirname(fileURLToPath(cf.url)), e.originalSource)
  return { file: relative(ROOT, src), line: (e.originalLine ?? 0) + 1 }
}

function moduleOf(cf: CallFrame): string {
  if (!cf.url) return cf.functionName.startsWith('(') ? cf.functionName : '(native code)'
  if (cf.url.startsWith('node:')) return `node:${cf.url.slice(5).split('/').slice(0, 2).join('/')}`
  const nm = cf.url.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = cf.url.slice(nm + 14).split('/')
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!}`
  }
  const o = original(cf)
  if (o) return `coffer:${o.file}`
  return cf.url.startsWith('file://') ? relative(ROOT, fileURLToPath(cf.url)) : cf.url
}

function location(cf: CallFrame): string {
  const o = original(cf)
  if (o) return `${o.file}:${o.line}`
  if (!cf.url) return ''
  const nm = cf.url.lastIndexOf('/node_modules/')
  const path = nm >= 0 ? cf.url.slice(nm + 14) : cf.url.startsWith('file://') ? relative(ROOT, fileURLToPath(cf.url)) : cf.url
  return `${path}:${cf.lineNumber + 1}`
}

const byModule = new Map<string, number>()
const byFunction = new Map<string, { fn: string; loc: string; mod: string; us: number }>()
for (const [id, us] of selfUs) {
  const cf = byId.get(id)!.callFrame
  const mod = moduleOf(cf)
  byModule.set(mod, (byModule.get(mod) ?? 0) + us)
  const loc = location(cf)
  const key = `${cf.functionName}|${loc}`
  const f = byFunction.get(key) ?? { fn: cf.functionName || '(anonymous)', loc, mod, us: 0 }
  f.us += us
  byFunction.set(key, f)
}

// Coarser groups: what share is ours, the framework's, the driver's, the platform's.
function group(mod: string): string {
  if (mod === '(idle)') return 'idle (event loop waiting)'
  if (mod === '(garbage collector)') return 'garbage collector'
  if (mod === '(program)') return 'V8/native, not attributed to JS'
  if (mod.startsWith('coffer:')) return 'Coffer code (src/)'
  if (mod === 'npm:kysely') return 'Kysely'
  if (
    mod === 'npm:fastify' ||
    mod.startsWith('npm:@fastify') ||
    [
      'npm:find-my-way',
      'npm:light-my-request',
      'npm:avvio',
      'npm:fast-json-stringify',
      'npm:pino',
      'npm:secure-json-parse',
      'npm:fast-querystring',
      'npm:toad-cache',
    ].includes(mod)
  )
    return 'Fastify and its deps'
  if (mod === 'npm:zod') return 'zod'
  if (mod === 'npm:better-sqlite3' || mod === '(native code)')
    return ENGINE === 'postgres'
      ? 'native calls (socket writes to PostgreSQL and clients, crypto, …)'
      : 'native calls (better-sqlite3 statements incl. fsync, crypto, …)'
  if (mod.startsWith('node:')) return 'Node core (http, net, streams, crypto wrappers)'
  return 'other npm'
}
const byGroup = new Map<string, number>()
for (const [mod, us] of byModule) byGroup.set(group(mod), (byGroup.get(group(mod)) ?? 0) + us)

const pct = (us: number) => `${((100 * us) / inWindow).toFixed(1)}%`
const ms = (us: number) => Math.round(us / 1000)
const wallS = (windowEndUs - windowStartUs) / 1e6
process.stdout.write(
  `\nCPU profile of coffer server, scenario "${SCENARIO}", ${CONNECTIONS} connections, ${DURATION}s measured ` +
    `(${windowed ? 'samples inside the measured window only' : 'WHOLE profile: could not align clocks'})\n`,
)
process.stdout.write(
  `throughput ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms, ${result['2xx']} 2xx, ${result.non2xx} non-2xx, ${result.errors} errors; ` +
    `server CPU ${cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) / wallS).toFixed(2) : '?'} cores; sampled ${ms(inWindow)} ms\n`,
)

printTable(
  'Self time by group',
  ['group', 'self ms', 'share'],
  [...byGroup].sort((a, b) => b[1] - a[1]).map(([g, us]) => [g, ms(us), pct(us)]),
)
printTable(
  'Self time by module (src file via source map, npm package, or node core)',
  ['module', 'self ms', 'share'],
  [...byModule]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(([m, us]) => [m, ms(us), pct(us)]),
)
printTable(
  `Top ${TOP} functions by self time`,
  ['function', 'where', 'self ms', 'share'],
  [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, TOP)
    .map((f) => [f.fn.slice(0, 40), f.loc.slice(0, 70), ms(f.us), pct(f.us)]),
)
if (KEEP) process.stdout.write(`\nprofile kept in ${join(KEEP, `coffer-${SCENARIO}.cpuprofile`)} (open in Chrome DevTools → Performance)\n`)
if (result.non2xx + result.errors > 0) {
  process.stdout.write(`\nFAILED: ${result.non2xx} non-2xx and ${result.errors} errors during the profiled run\n`)
  process.exitCode = 1
}
