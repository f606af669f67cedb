// Key rotation while a cluster serves. Three real `coffer server` processes on one
// PostgreSQL database (as the application's role, row-level security on) serve audited
// reads and writes of one environment from every node while a data key of that environment
// is rotated through one of them; the reseal of its 1,000 older versions runs under that
// load. Every answer must be 2xx (a lost deadlock or serialization race is retried before
// anyone sees it), the reseal must run exactly once (one job, one `key.resealed` entry),
// every value must still decrypt, and every node must verify the audit log.
import { type ChildProcess, spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { BIN, childEnv, ensureBuilt, request, stopChild, waitListening } from '../helpers/child-server.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const NODES = 3
const SEEDED = 1000
const HOT_KEYS = 12
const WORKERS_PER_NODE = 4

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    c.on('exit', (status) => resolve({ status, stdout, stderr }))
  })
}

function suite(): void {
  const work = mkdtempSync(join(tmpdir(), 'coffer-rotate-load-'))
  const children: ChildProcess[] = []
  const stderrs: string[] = []
  const agents: http.Agent[] = []
  const urls: string[] = []
  let dropDb: (() => Promise<void>) | undefined
  let token = ''
  let ws = ''
  const call = (node: number, method: string, path: string, body?: unknown) =>
    request(urls[node]!, token, method, path, body, agents[node]!, 'coffer-rotate-load-test')

  before(async () => {
    ensureBuilt()
    const db = await createTestDatabase({ appRole: true })
    dropDb = db.drop
    const env = childEnv({
      DATABASE_URL: db.appUrl!,
      COFFER_MIGRATION_DATABASE_URL: db.url,
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
      COFFER_LOG_LEVEL: 'warn',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
      COFFER_RATE_TOKEN_PER_MINUTE: '0',
      // Small batches: the reseal takes many short transactions that interleave with requests.
      COFFER_RESEAL_BATCH: '20',
    })
    const init = await run([BIN, 'init', '--data-dir', join(work, 'init'), '--email', 'ops@example.com', '--json'], env)
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    ws = j.workspace.slug
    for (let i = 0; i < NODES; i++) {
      const c = spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, `node${i}`), '--host', '127.0.0.1', '--port', '0'], {
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      stderrs.push('')
      c.stderr?.on('data', (d: Buffer) => {
        stderrs[i] = (stderrs[i]! + d.toString()).slice(-8000)
      })
      children.push(c)
      agents.push(new http.Agent({ keepAlive: true, maxSockets: WORKERS_PER_NODE + 2 }))
    }
    urls.push(...(await Promise.all(children.map((c, i) => waitListening(c, `node ${i + 1}`, 60_000)))))
    const p = await call(0, 'POST', `/v1/workspaces/${ws}/projects`, { name: 'Shop', slug: 'shop' })
    assert.equal(p.status, 201, JSON.stringify(p.body))
  })

  after(async () => {
    for (const a of agents) a.destroy()
    await Promise.all(children.map((c) => stopChild(c)))
    await dropDb?.()
    rmSync(work, { recursive: true, force: true })
  })

  test('rotating a data key on one of three serving nodes: only 2xx answers, the reseal runs once, everything decrypts', {
    timeout: 180_000,
  }, async () => {
    const E = `/v1/workspaces/${ws}/projects/shop/environments/production`
    for (let i = 0; i < SEEDED; i += 250) {
      const secrets = Array.from({ length: 250 }, (_, k) => ({ key: `SEED_${String(i + k).padStart(4, '0')}`, value: `seed-${i + k}` }))
      const r = await call(i % NODES, 'POST', `${E}/secrets`, { secrets })
      assert.equal(r.status, 200, JSON.stringify(r.body))
    }

    const statuses = new Map<string, number>()
    const unexpected: string[] = []
    const lastWritten = new Map<string, string>()
    let stop = false
    let n = 0
    const worker = async (node: number) => {
      while (!stop) {
        const i = n++
        const key = `HOT_${i % HOT_KEYS}`
        const kind = i % 3
        const value = `hot-${i}`
        let r: Awaited<ReturnType<typeof call>>
        try {
          r =
            kind === 0
              ? await call(node, 'PUT', `${E}/secrets/${key}`, { value })
              : kind === 1
                ? await call(node, 'GET', `${E}/secrets/SEED_${String(i % SEEDED).padStart(4, '0')}?reveal=true`)
                : await call(node, 'GET', `${E}/secrets?reveal=true`)
        } catch (err) {
          unexpected.push(`node ${node + 1} transport: ${(err as Error).message}`)
          continue
        }
        const tag = `${r.status} ${r.body?.error?.code ?? ''}`.trim()
        statuses.set(tag, (statuses.get(tag) ?? 0) + 1)
        if (r.status < 200 || r.status > 299) unexpected.push(`node ${node + 1} kind ${kind}: ${tag} ${r.body?.error?.message ?? ''}`)
        else if (kind === 0) lastWritten.set(key, value)
        else if (kind === 1) assert.equal(r.body.secret.value, `seed-${i % SEEDED}`)
      }
    }
    const load = Promise.all(Array.from({ length: NODES * WORKERS_PER_NODE }, (_, w) => worker(w % NODES)))
    await sleep(1000)

    const rotated = await call(1, 'POST', `${E}/keys/rotate`)
    assert.equal(rotated.status, 202, JSON.stringify(rotated.body))
    const jobId = rotated.body.job.id as string
    const started = Date.now()
    let job: { state: string; done: number; total: number } | undefined
    while (Date.now() - started < 120_000) {
      const r = await call(2, 'GET', `/v1/workspaces/${ws}/key-jobs/${jobId}`)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      job = r.body.job
      if (job!.state !== 'running') break
      await sleep(200)
    }
    const resealMs = Date.now() - started
    await sleep(1000)
    stop = true
    await load

    const total = [...statuses.values()].reduce((a, b) => a + b, 0)
    const retries: string[] = []
    for (let i = 0; i < NODES; i++) {
      const m = await new Promise<string>((resolve, reject) =>
        http
          .get(`${urls[i]}/metrics`, { agent: agents[i] }, (res) => {
            let text = ''
            res.on('data', (d: Buffer) => (text += d.toString()))
            res.on('end', () => resolve(text))
          })
          .on('error', reject),
      )
      retries.push(
        ...m
          .split('\n')
          .filter((l) => l.startsWith('coffer_transaction_retries_total{'))
          .map((l) => `node ${i + 1} ${l}`),
      )
    }
    console.log(
      `# ${total} requests over ${NODES} nodes during the rotation; answers ${JSON.stringify(Object.fromEntries(statuses))}; reseal of ${job?.total} versions took ${resealMs} ms; transactions retried: ${retries.join(', ') || 'none'}`,
    )
    assert.equal(job?.state, 'done', `the reseal job ended ${job?.state}`)
    assert.ok(job!.total >= SEEDED, `the job resealed ${job!.total} versions`)
    assert.deepEqual(unexpected.slice(0, 10), [], `answers other than 2xx: ${unexpected.length}`)
    for (let i = 0; i < NODES; i++) assert.equal(children[i]!.exitCode, null, `node ${i + 1} exited: ${stderrs[i]}`)

    // Exactly one reseal: one `key.resealed` entry for the job, and the old key version destroyed.
    const entries: Array<{ action: string; details: string }> = []
    for (let afterSeq = 0; ; ) {
      const r = await call(0, 'GET', `/v1/workspaces/${ws}/audit/entries?after=${afterSeq}&limit=5000`)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      entries.push(...r.body.entries)
      if (r.body.next === null) break
      afterSeq = r.body.next
    }
    assert.equal(entries.filter((e) => e.action === 'key.resealed' && JSON.parse(e.details).resealJob === jobId).length, 1)
    assert.equal(entries.filter((e) => e.action === 'key.reseal_failed').length, 0)
    const keys = await call(0, 'GET', `${E}/keys`)
    assert.equal(keys.status, 200)
    const versions = keys.body.versions as Array<{ version: number; state: string }>
    assert.deepEqual(
      versions.filter((v) => v.state !== 'shredded').map((v) => v.version),
      [rotated.body.key.version],
      JSON.stringify(versions),
    )

    // Every value decrypts under the new key, the hot keys hold their last acknowledged write,
    // and every node verifies the chain and the tree.
    const list = await call(2, 'GET', `${E}/secrets?reveal=true`)
    assert.equal(list.status, 200)
    const values = new Map((list.body.secrets as Array<{ key: string; value: string }>).map((s) => [s.key, s.value]))
    for (let i = 0; i < SEEDED; i++) assert.equal(values.get(`SEED_${String(i).padStart(4, '0')}`), `seed-${i}`)
    for (const [key, value] of lastWritten) assert.ok(values.has(key), `${key} is there (last written ${value})`)
    for (let i = 0; i < NODES; i++) {
      const v = await call(i, 'GET', `/v1/workspaces/${ws}/audit/verify`)
      assert.equal(v.status, 200, JSON.stringify(v.body))
      assert.equal(v.body.ok, true, JSON.stringify(v.body))
    }
  })
}

describePostgres('rotation under load on three nodes', suite)
