// A cluster survives its database going away. Three real `coffer server` processes reach
// PostgreSQL only through a TCP proxy this test cuts for 10 s, while two of them serve
// audited reads and writes and a data-key reseal of 1,000 versions is in progress; the third
// is started during the cut. Nothing exits; every answer is 2xx or 503
// ERR_DATABASE_UNAVAILABLE; the node started during the cut waits (alive, not ready) and
// comes up by itself; the running nodes serve again within 5 s; the reseal resumes and runs
// exactly once; every acknowledged write is there and every node verifies the audit log.
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
import pg from 'pg'
import { createTestDatabase, TEST_PG_URL } from '../helpers/pg.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const SEEDED = 1000
const KEYS = 8
const WORKERS_PER_NODE = 4
const CUT_MS = 10_000

interface Node {
  child: ChildProcess
  url: string
  agent: http.Agent
  stderr: string
}

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

/** Resolves with the address a node prints when it starts waiting for its database. */
function waitWaiting(child: ChildProcess, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error(`the node did not say it waits: ${buf}`)), timeoutMs)
    const onData = (d: Buffer) => {
      buf += d.toString()
      const m = /answering on (https?:\/\/[^\s]+) meanwhile/.exec(buf)
      if (m) {
        clearTimeout(t)
        child.stderr?.off('data', onData)
        resolve(m[1]!)
      }
    }
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`the node exited (${code}) instead of waiting: ${buf}`)))
  })
}

function metric(base: string, name: string): Promise<number | undefined> {
  return new Promise((resolve, reject) =>
    http
      .get(`${base}/metrics`, (res) => {
        let text = ''
        res.on('data', (d: Buffer) => (text += d.toString()))
        res.on('end', () => {
          const line = text.split('\n').find((l) => l.startsWith(`${name} `))
          resolve(line === undefined ? undefined : Number(line.split(' ')[1]))
        })
      })
      .on('error', reject),
  )
}

/** What the database's sessions are doing (a diagnosis for a node that does not start). */
async function sessions(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: TEST_PG_URL })
  await c.connect()
  try {
    const r = await c.query(
      'SELECT usename, state, wait_event_type, wait_event, left(query, 80) AS query FROM pg_stat_activity WHERE datname = $1',
      [new URL(url).pathname.slice(1)],
    )
    return JSON.stringify(r.rows)
  } finally {
    await c.end()
  }
}

function suite(): void {
  const work = mkdtempSync(join(tmpdir(), 'coffer-cluster-fault-'))
  const nodes: Node[] = []
  let proxy: TcpProxy
  let dropDb: (() => Promise<void>) | undefined
  let env: NodeJS.ProcessEnv
  let token = ''
  let ws = ''
  const call = (n: number, method: string, path: string, body?: unknown) =>
    request(nodes[n]!.url, token, method, path, body, nodes[n]!.agent, 'coffer-cluster-fault-test')

  function spawnNode(i: number): Node {
    const child = spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, `node${i}`), '--host', '127.0.0.1', '--port', '0'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const node: Node = { child, url: '', agent: new http.Agent({ keepAlive: true, maxSockets: WORKERS_PER_NODE + 2 }), stderr: '' }
    child.stderr?.on('data', (d: Buffer) => {
      node.stderr = (node.stderr + d.toString()).slice(-8000)
    })
    return node
  }

  before(async () => {
    ensureBuilt()
    const db = await createTestDatabase({ appRole: true })
    dropDb = db.drop
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port || 5432))
    // Both the application's role and the schema owner reach PostgreSQL only through the proxy.
    const viaProxy = (u: string) => {
      const x = new URL(u)
      x.host = `127.0.0.1:${proxy.port}`
      return x.toString()
    }
    env = childEnv({
      DATABASE_URL: viaProxy(db.appUrl!),
      COFFER_MIGRATION_DATABASE_URL: viaProxy(db.url),
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
      COFFER_LOG_LEVEL: 'warn',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
      COFFER_RATE_TOKEN_PER_MINUTE: '0',
      COFFER_RESEAL_BATCH: '10',
    })
    const init = await run([BIN, 'init', '--data-dir', join(work, 'init'), '--email', 'ops@example.com', '--json'], env)
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    ws = j.workspace.slug
    nodes.push(spawnNode(0), spawnNode(1))
    // Both listened for at once: a node that prints before the other is waited for is not missed.
    const started = await Promise.all(
      nodes.map((n) =>
        waitListening(n.child, 'a node', 60_000).catch(async (err: Error) => {
          throw new Error(`${err.message} (proxy: ${JSON.stringify(proxy.stats)}; database sessions: ${await sessions(db.url)})`)
        }),
      ),
    )
    started.forEach((url, i) => {
      nodes[i]!.url = url
    })
    const p = await call(0, 'POST', `/v1/workspaces/${ws}/projects`, { name: 'Shop', slug: 'shop' })
    assert.equal(p.status, 201, JSON.stringify(p.body))
  })

  after(async () => {
    for (const n of nodes) n.agent.destroy()
    await Promise.all(nodes.map((n) => stopChild(n.child)))
    await proxy?.close()
    await dropDb?.()
    rmSync(work, { recursive: true, force: true })
  })

  test('a 10 s cut under load and a reseal, a node started during it: no exit, 2xx or 503 only, back within 5 s, the reseal runs once', {
    timeout: 180_000,
  }, async () => {
    const P = `/v1/workspaces/${ws}/projects/shop/environments/production`
    const D = `/v1/workspaces/${ws}/projects/shop/environments/development/secrets`
    for (let i = 0; i < SEEDED; i += 250) {
      const secrets = Array.from({ length: 250 }, (_, k) => ({ key: `SEED_${String(i + k).padStart(4, '0')}`, value: `seed-${i + k}` }))
      const r = await call(0, 'POST', `${P}/secrets`, { secrets })
      assert.equal(r.status, 200, JSON.stringify(r.body))
    }

    const acknowledged = new Map<string, number[]>()
    const statuses = new Map<string, number>()
    const unexpected: string[] = []
    let stop = false
    let n = 0
    const worker = async (node: number) => {
      while (!stop) {
        if (!nodes[node]?.url) {
          await sleep(100)
          continue
        }
        const i = n++
        const key = `K${i % KEYS}`
        const write = i % 2 === 0
        let r: Awaited<ReturnType<typeof call>>
        try {
          r = write
            ? await call(node, 'PUT', `${D}/${key}`, { value: `v-${i}` })
            : await call(node, 'GET', `${P}/secrets/SEED_${String(i % SEEDED).padStart(4, '0')}?reveal=true`)
        } catch (err) {
          unexpected.push(`node ${node + 1} transport: ${(err as Error).message}`)
          await sleep(50)
          continue
        }
        const tag = `${r.status} ${r.body?.error?.code ?? ''}`.trim()
        statuses.set(tag, (statuses.get(tag) ?? 0) + 1)
        if (r.status === 200 && write) acknowledged.set(key, [...(acknowledged.get(key) ?? []), r.body.secret.version])
        if (r.status === 200 && !write) assert.equal(r.body.secret.value, `seed-${i % SEEDED}`)
        const fine = r.status === 200 || (r.status === 503 && r.body?.error?.code === 'ERR_DATABASE_UNAVAILABLE')
        if (!fine) unexpected.push(`node ${node + 1} ${write ? 'PUT' : 'GET'} ${key}: ${tag}`)
        if (r.status === 503) await sleep(20)
      }
    }
    const load = Promise.all(Array.from({ length: 3 * WORKERS_PER_NODE }, (_, w) => worker(w % 3)))
    await sleep(1000)

    const rotated = await call(1, 'POST', `${P}/keys/rotate`)
    assert.equal(rotated.status, 202, JSON.stringify(rotated.body))
    const jobId = rotated.body.job.id as string
    await sleep(1500)
    const midway = await call(0, 'GET', `/v1/workspaces/${ws}/key-jobs/${jobId}`)
    assert.equal(midway.body.job.state, 'running', 'the reseal is in progress when the cut comes')

    // The database goes away for 10 s; a third node is started meanwhile.
    proxy.cut()
    const third = spawnNode(2)
    nodes.push(third)
    const waitingAt = await waitWaiting(third.child)
    await sleep(CUT_MS - 2000)
    const waitingHealth = await request(waitingAt, token, 'GET', '/healthz')
    const waitingReady = await request(waitingAt, token, 'GET', '/readyz')
    const waitingApi = await request(waitingAt, token, 'GET', `${P}/secrets`)
    const availableDuringCut = await metric(nodes[0]!.url, 'coffer_database_available')
    const runningReady = await call(0, 'GET', '/readyz')
    await sleep(2000)
    proxy.restore()
    const back = Date.now()
    const recovery = await Promise.all(
      [0, 1].map(async (i) => {
        for (;;) {
          const r = await call(i, 'GET', `${D}`).catch(() => ({ status: 0 }))
          if (r.status === 200) return Date.now() - back
          if (Date.now() - back > 15_000) throw new Error(`node ${i + 1} did not serve again within 15 s: ${nodes[i]!.stderr}`)
          await sleep(100)
        }
      }),
    )
    third.url = await waitListening(third.child, 'the third node', 60_000)
    const thirdUp = Date.now() - back
    assert.equal(third.url, waitingAt, 'the node serves on the address it waited on')

    // The reseal resumes and finishes; load continues on all three nodes meanwhile.
    let job: { state: string; total: number } | undefined
    for (const started = Date.now(); Date.now() - started < 90_000; await sleep(250)) {
      const r = await call(2, 'GET', `/v1/workspaces/${ws}/key-jobs/${jobId}`)
      if (r.status !== 200) continue
      job = r.body.job
      if (job!.state !== 'running') break
    }
    await sleep(1000)
    stop = true
    await load
    const availableAfter = await metric(nodes[0]!.url, 'coffer_database_available')

    console.log(
      `# answers ${JSON.stringify(Object.fromEntries(statuses))}; serving again ${recovery.join(' and ')} ms after the cut ended; the node started during the cut served ${thirdUp} ms after; ${[...acknowledged.values()].flat().length} writes acknowledged`,
    )
    for (const [i, node] of nodes.entries()) {
      assert.equal(node.child.exitCode, null, `node ${i + 1} exited: ${node.stderr}`)
      assert.equal(node.child.signalCode, null, `node ${i + 1} was killed: ${node.stderr}`)
    }
    assert.deepEqual(unexpected.slice(0, 10), [], `answers other than 2xx or 503 ERR_DATABASE_UNAVAILABLE: ${unexpected.length}`)
    assert.ok((statuses.get('503 ERR_DATABASE_UNAVAILABLE') ?? 0) > 0, 'the cut was seen')
    assert.equal(waitingHealth.status, 200, 'a node waiting for its database is alive')
    assert.equal(waitingReady.status, 503, 'and not ready')
    assert.equal(waitingReady.body?.error?.code, 'ERR_DATABASE_UNAVAILABLE')
    assert.equal(waitingApi.status, 503)
    assert.equal(waitingApi.body?.error?.code, 'ERR_DATABASE_UNAVAILABLE')
    assert.equal(runningReady.status, 503, 'a running node is not ready while its database is away')
    assert.equal(availableDuringCut, 0, 'coffer_database_available is 0 during the cut')
    assert.equal(availableAfter, 1, 'and 1 after')
    for (const ms of recovery) assert.ok(ms < 5000, `serving again ${ms} ms after the database came back`)
    assert.ok(thirdUp < 10_000, `the waiting node came up ${thirdUp} ms after the database came back`)

    assert.equal(job?.state, 'done', `the reseal ended ${job?.state}`)
    const entries: Array<{ action: string; details: string }> = []
    for (let afterSeq = 0; ; ) {
      const r = await call(2, 'GET', `/v1/workspaces/${ws}/audit/entries?after=${afterSeq}&limit=5000`)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      entries.push(...r.body.entries)
      if (r.body.next === null) break
      afterSeq = r.body.next
    }
    assert.equal(entries.filter((e) => e.action === 'key.resealed' && JSON.parse(e.details).resealJob === jobId).length, 1)
    for (const [key, versions] of acknowledged) {
      const h = await call(0, 'GET', `${D}/${key}/versions`)
      assert.equal(h.status, 200, JSON.stringify(h.body))
      const have = new Set((h.body.versions as Array<{ version: number }>).map((v) => v.version))
      for (const v of versions) assert.ok(have.has(v), `${key} version ${v} was acknowledged and is kept`)
    }
    const all = await call(1, 'GET', `${P}/secrets?reveal=true`)
    assert.equal(all.status, 200)
    assert.equal((all.body.secrets as unknown[]).length, SEEDED, 'every resealed value decrypts')
    for (let i = 0; i < nodes.length; i++) {
      const v = await call(i, 'GET', `/v1/workspaces/${ws}/audit/verify`)
      assert.equal(v.status, 200, JSON.stringify(v.body))
      assert.equal(v.body.ok, true, JSON.stringify(v.body))
    }
  })
}

describePostgres('a cluster survives its database going away', suite)
