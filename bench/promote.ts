// Environment diff and promotion at team sizes, in-process (server time, no socket).
//
//   node --import tsx bench/promote.ts [--engines sqlite,postgres] [--keys 2000] [--runs 10]
//
// Seeds development and staging with --keys secrets each (a tenth of staging's values differ),
// then times with app.inject (the whole pipeline: authentication, policy, read transaction, JSON):
//   - GET …/development/diff?to=staging: by stored fingerprints, nothing decrypted;
//   - the same with reveal=true: both environments decrypted and answered (audited);
//   - POST …/staging/promote {all: true} once: keys equal by fingerprint are left alone, the
//     others copied (value, comment, tags) in one transaction, each audited;
//   - a protected production: PUT …/secrets/KEY answered 202 (a sealed change request), and the
//     approval that applies it.
// Prints median and p90 in milliseconds. Not a test: it fails only if an answer is not 2xx.
import { startHarness, type EngineName, type Harness } from '../test/helpers/harness.js'
import { pgAvailable } from '../test/helpers/pg.js'
import { addPerson } from '../test/helpers/principals.js'
import { args, printTable, type Cell } from './lib/harness.js'

const A = args()
const ENGINES = (A.get('engines') ?? 'sqlite,postgres').split(',') as EngineName[]
const KEYS = Number(A.get('keys') ?? 2000)
const RUNS = Number(A.get('runs') ?? 10)

async function inject(h: Harness, token: string, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) {
  const res = await h.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  })
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 200)}`)
  return JSON.parse(res.body)
}

async function time(runs: number, fn: () => Promise<unknown>): Promise<{ median: number; p90: number }> {
  await fn()
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
  const t = h.a.token
  try {
    const W = `/v1/workspaces/${h.a.slug}`
    const E = (e: string) => `${W}/projects/bench/environments/${e}`
    await inject(h, t, 'POST', `${W}/projects`, { name: 'Bench', slug: 'bench' })
    for (const env of ['development', 'staging']) {
      const upserts = Array.from({ length: KEYS }, (_, i) => ({
        key: `KEY_${i}`,
        value: env === 'staging' && i % 10 === 0 ? `s-${i}` : `v-${i}`,
      }))
      for (let i = 0; i < upserts.length; i += 1000)
        await inject(h, t, 'POST', `${E(env)}/secrets/apply`, { upserts: upserts.slice(i, i + 1000) })
    }
    const rows: Cell[][] = []
    let different = 0
    const diff = await time(RUNS, async () => {
      different = (await inject(h, t, 'GET', `${E('development')}/diff?to=staging`)).different.length
    })
    rows.push([engine, `GET diff, ${KEYS} × ${KEYS} keys (${different} different), fingerprints`, fmt(diff.median), fmt(diff.p90)])
    const revealed = await time(RUNS, () => inject(h, t, 'GET', `${E('development')}/diff?to=staging&reveal=true`))
    rows.push([engine, 'GET diff with reveal=true (both sides decrypted, audited)', fmt(revealed.median), fmt(revealed.p90)])
    const p0 = performance.now()
    const p = await inject(h, t, 'POST', `${E('staging')}/promote`, { from: { environment: 'development' }, all: true })
    rows.push([engine, `POST promote all (${p.changes.length} written, ${p.unchanged.length} equal)`, fmt(performance.now() - p0), ''])

    const admin = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'bench-admin' })
    await inject(h, t, 'PUT', `${E('production')}/protection`, { approvals: 1 })
    const ids: string[] = []
    let n = 0
    const propose = await time(RUNS, async () => {
      const res = await h.app.inject({
        method: 'PUT',
        url: `${E('production')}/secrets/PROPOSED_${n++}`,
        headers: { authorization: `Bearer ${t}` },
        payload: { value: 'x' },
      })
      if (res.statusCode !== 202) throw new Error(`propose: ${res.statusCode}`)
      ids.push(JSON.parse(res.body).changeRequest.id)
    })
    rows.push([engine, 'PUT secret in a protected environment (202, sealed change request)', fmt(propose.median), fmt(propose.p90)])
    const approve = await time(Math.min(RUNS, ids.length - 1), async () => {
      await inject(h, admin.token, 'POST', `${W}/change-requests/${ids.pop()}/approve`, {})
    })
    rows.push([engine, 'POST approve (the last approval: applied)', fmt(approve.median), fmt(approve.p90)])
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
printTable('Environment diff, promotion and change requests (server time, in-process)', ['engine', 'what', 'median ms', 'p90 ms'], all)
