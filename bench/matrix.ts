// The environment matrix and the `.env` apply at dashboard sizes, in-process (server time, no socket).
//
//   node --import tsx bench/matrix.ts [--engines sqlite,postgres] [--envs 10] [--keys 1000] [--runs 15]
//
// Seeds one project with --envs environments of --keys secrets each (40-byte random values;
// a third of the keys equal across environments), through POST …/secrets/apply, then times
// with app.inject (the whole pipeline: authentication, policy, read transaction, JSON):
//   - GET …/matrix, fingerprints stored at write time (what the server does);
//   - GET …/matrix with every stored fingerprint removed, so each value is decrypted and
//     fingerprinted on read (the alternative design, and the path of pre-migration-10 rows);
//   - baselines in the same run: listing one environment (keys only), and revealing one
//     environment's values (one decryption each);
//   - POST …/secrets/apply of --keys upserts: a preview (dryRun) with a third changed, and the
//     write of those changes.
// Prints median and p90 in milliseconds. Not a test: it fails only if an answer is not 2xx.
import { randomBytes } from 'node:crypto'
import { startHarness, type EngineName, type Harness } from '../test/helpers/harness.js'
import { pgAvailable } from '../test/helpers/pg.js'
import { args, printTable, type Cell } from './lib/harness.js'

const A = args()
const ENGINES = (A.get('engines') ?? 'sqlite,postgres').split(',') as EngineName[]
const ENVS = Number(A.get('envs') ?? 10)
const KEYS = Number(A.get('keys') ?? 1000)
const RUNS = Number(A.get('runs') ?? 15)

async function inject(h: Harness, method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await h.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${h.a.token}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  })
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 200)}`)
  return { body: JSON.parse(res.body), bytes: res.body.length }
}

async function time(runs: number, fn: () => Promise<unknown>): Promise<{ median: number; p90: number }> {
  await fn() // warm caches and compiled queries
  const ms: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await fn()
    ms.push(performance.now() - t0)
  }
  ms.sort((a, b) => a - b)
  return { median: ms[Math.floor(ms.length / 2)]!, p90: ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.9))]! }
}

const fmt = (x: number) => x.toFixed(1)

async function run(engine: EngineName): Promise<Cell[][]> {
  const h = await startHarness(engine)
  try {
    const W = `/v1/workspaces/${h.a.slug}`
    await inject(h, 'POST', `${W}/projects`, { name: 'Bench', slug: 'bench' })
    const shared = Array.from({ length: KEYS }, () => randomBytes(40).toString('base64url'))
    const envs: string[] = ['development', 'staging', 'production']
    for (let i = envs.length; i < ENVS; i++) {
      await inject(h, 'POST', `${W}/projects/bench/environments`, { name: `Env ${i}`, slug: `env-${i}` })
      envs.push(`env-${i}`)
    }
    const seed0 = performance.now()
    for (const env of envs.slice(0, ENVS)) {
      const upserts = shared.map((v, k) => ({ key: `KEY_${k}`, value: k % 3 === 0 ? v : randomBytes(40).toString('base64url') }))
      await inject(h, 'POST', `${W}/projects/bench/environments/${env}/secrets/apply`, { upserts })
    }
    const seedMs = (performance.now() - seed0) / ENVS
    const rows: Cell[][] = []
    const matrixUrl = `${W}/projects/bench/matrix`
    let bytes = 0
    const stored = await time(RUNS, async () => {
      bytes = (await inject(h, 'GET', matrixUrl)).bytes
    })
    rows.push([
      engine,
      `GET matrix (${ENVS} envs × ${KEYS} keys), fingerprints stored`,
      fmt(stored.median),
      fmt(stored.p90),
      `${Math.round(bytes / 1024)} KiB`,
    ])
    const listOne = await time(RUNS, () => inject(h, 'GET', `${W}/projects/bench/environments/development/secrets`))
    rows.push([engine, `baseline: list one environment (${KEYS} keys, no values)`, fmt(listOne.median), fmt(listOne.p90), ''])
    const revealOne = await time(RUNS, () => inject(h, 'GET', `${W}/projects/bench/environments/development/secrets?reveal=true`))
    rows.push([engine, `baseline: reveal one environment (${KEYS} decryptions, audited)`, fmt(revealOne.median), fmt(revealOne.p90), ''])

    // The apply: a preview with a third of the values changed, then the write.
    const url = `${W}/projects/bench/environments/development/secrets/apply`
    const current = (await inject(h, 'GET', `${W}/projects/bench/environments/development/secrets?reveal=true`)).body.secrets as Array<{
      key: string
      value: string
    }>
    const paste = current.map((s, k) => ({ key: s.key, value: k % 3 === 1 ? randomBytes(40).toString('base64url') : s.value }))
    let changes = 0
    const preview = await time(RUNS, async () => {
      changes = (await inject(h, 'POST', url, { upserts: paste, dryRun: true })).body.changes.length
    })
    rows.push([engine, `POST apply dryRun (${KEYS} keys, ${changes} changed)`, fmt(preview.median), fmt(preview.p90), ''])
    const w0 = performance.now()
    const applied = await inject(h, 'POST', url, { upserts: paste })
    rows.push([engine, `POST apply (${applied.body.changes.length} new versions, audited each)`, fmt(performance.now() - w0), '', ''])
    rows.push([engine, `seeding: POST apply of ${KEYS} new keys, per environment`, fmt(seedMs), '', ''])

    // The alternative: no stored fingerprint, every value decrypted and fingerprinted on read.
    await h.db.updateTable('secret_versions').set({ value_fingerprint: null }).execute()
    const decrypting = await time(RUNS, () => inject(h, 'GET', matrixUrl))
    rows.push([engine, 'GET matrix, no stored fingerprints (decrypt each value)', fmt(decrypting.median), fmt(decrypting.p90), ''])
    return rows
  } finally {
    await h.close()
  }
}

const all: Cell[][] = []
for (const engine of ENGINES) {
  if (engine === 'postgres' && !(await pgAvailable())) {
    console.log('PostgreSQL does not answer: skipped')
    continue
  }
  all.push(...(await run(engine)))
}
printTable('Environment matrix and .env apply (server time, in-process)', ['engine', 'what', 'median ms', 'p90 ms', 'answer'], all)
