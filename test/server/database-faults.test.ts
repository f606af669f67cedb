// A node survives its database going away. A real `coffer server` process talks to
// PostgreSQL through a TCP proxy this test cuts — under load of audited reads and writes —
// and whose app-role backends it terminates; the process never exits, every answer is 2xx
// or 503 ERR_DATABASE_UNAVAILABLE (never a 500, never a hang), the node serves again within
// 5 s of the database coming back, and every write it acknowledged is there afterwards.
import { type ChildProcess, spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { BIN, childEnv, ensureBuilt, request, stopChild, waitListening } from '../helpers/child-server.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase, TEST_PG_URL } from '../helpers/pg.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const KEYS = 8
const WORKERS = 8

function suite(): void {
  const work = mkdtempSync(join(tmpdir(), 'coffer-dbfault-'))
  let child: ChildProcess | undefined
  let proxy: TcpProxy
  let dropDb: (() => Promise<void>) | undefined
  let appRole = ''
  let url = ''
  let token = ''
  let ws = ''
  let stderr = ''
  const agent = new http.Agent({ keepAlive: true, maxSockets: WORKERS + 2 })
  const call = (method: string, path: string, body?: unknown) => request(url, token, method, path, body, agent, 'coffer-db-fault-test')

  before(async () => {
    ensureBuilt()
    const db = await createTestDatabase({ appRole: true })
    dropDb = db.drop
    appRole = db.appRole!
    const pgUrl = new URL(TEST_PG_URL)
    proxy = await startTcpProxy(pgUrl.hostname, Number(pgUrl.port || 5432))
    // The application connects through the proxy; the schema owner migrates directly.
    const app = new URL(db.appUrl!)
    app.host = `127.0.0.1:${proxy.port}`
    const env = childEnv({
      DATABASE_URL: app.toString(),
      COFFER_MIGRATION_DATABASE_URL: db.url,
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
      COFFER_LOG_LEVEL: 'warn',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
      COFFER_RATE_TOKEN_PER_MINUTE: '0',
    })
    // @NOTE not spawnSync: the proxy runs in this process and must keep pumping meanwhile.
    const init = await run([BIN, 'init', '--data-dir', join(work, 'node'), '--email', 'ops@example.com', '--json'], env)
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    ws = j.workspace.slug
    child = spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, 'node'), '--host', '127.0.0.1', '--port', '0'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000)
    })
    url = await waitListening(child, 'the node')
    const p = await call('POST', `/v1/workspaces/${ws}/projects`, { name: 'Shop', slug: 'shop' })
    assert.equal(p.status, 201, JSON.stringify(p.body))
  })

  after(async () => {
    agent.destroy()
    if (child) await stopChild(child)
    await proxy?.close()
    await dropDb?.()
    rmSync(work, { recursive: true, force: true })
  })

  test('cut and terminated database connections under load: no exit, 2xx or 503 only, back within 5 s, no acknowledged write lost', {
    timeout: 90_000,
  }, async () => {
    const E = `/v1/workspaces/${ws}/projects/shop/environments/development/secrets`
    const acknowledged = new Map<string, number[]>() // key → versions the node answered with
    const unexpected: string[] = []
    const statuses = new Map<string, number>()
    let stop = false
    let n = 0
    const worker = async (w: number) => {
      while (!stop) {
        const key = `K${(n++ + w) % KEYS}`
        const write = n % 2 === 0
        let r: Awaited<ReturnType<typeof call>>
        try {
          r = write ? await call('PUT', `${E}/${key}`, { value: `v-${n}` }) : await call('GET', `${E}/${key}?reveal=true`)
        } catch (err) {
          unexpected.push(`transport: ${(err as Error).message}`)
          await sleep(50)
          continue
        }
        const tag = `${r.status} ${r.body?.error?.code ?? ''}`.trim()
        statuses.set(tag, (statuses.get(tag) ?? 0) + 1)
        if (r.status === 200 && write) acknowledged.set(key, [...(acknowledged.get(key) ?? []), r.body.secret.version])
        const fine =
          r.status === 200 || (r.status === 404 && !write) || (r.status === 503 && r.body?.error?.code === 'ERR_DATABASE_UNAVAILABLE')
        if (!fine) unexpected.push(`${write ? 'PUT' : 'GET'} ${key}: ${tag}`)
        if (r.status === 503) await sleep(20)
      }
    }
    const load = Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i)))
    await sleep(1500)

    // 1. The network to PostgreSQL goes away for 3 s, then comes back.
    proxy.cut()
    await sleep(1000)
    // Alive, not ready: a load balancer takes the node out of rotation, a supervisor leaves it be.
    const health = await call('GET', '/healthz')
    const ready = await call('GET', '/readyz')
    await sleep(2000)
    proxy.restore()
    const back1 = Date.now()
    await waitServing(call, E).catch((err: Error) => {
      throw new Error(`${err.message}; the node ${child!.exitCode === null ? 'runs' : `exited ${child!.exitCode}`}: ${stderr}`)
    })
    const recovery1 = Date.now() - back1
    await sleep(1000)

    // 2. PostgreSQL ends every backend of the application's role (a failover, an operator).
    const admin = new pg.Client({ connectionString: TEST_PG_URL })
    await admin.connect()
    const killed = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [appRole])
    await admin.end()
    const back2 = Date.now()
    await waitServing(call, E).catch((err: Error) => {
      throw new Error(`${err.message}; the node ${child!.exitCode === null ? 'runs' : `exited ${child!.exitCode}`}: ${stderr}`)
    })
    const recovery2 = Date.now() - back2
    await sleep(1000)
    stop = true
    await load

    assert.equal(health.status, 200, 'alive while the database is away')
    assert.equal(ready.status, 503, 'not ready while the database is away')
    assert.equal(ready.body?.error?.code, 'ERR_DATABASE_UNAVAILABLE')
    assert.equal((await call('GET', '/readyz')).status, 200, 'ready again')
    assert.equal(child!.exitCode, null, `the node exited: ${stderr}`)
    assert.equal(child!.signalCode, null, `the node was killed: ${stderr}`)
    assert.deepEqual(unexpected.slice(0, 10), [], `answers other than 2xx or 503: ${JSON.stringify([...statuses])}`)
    assert.ok((statuses.get('503 ERR_DATABASE_UNAVAILABLE') ?? 0) > 0, `the cut was seen: ${JSON.stringify([...statuses])}`)
    assert.ok(killed.rowCount! > 0, 'app-role backends were terminated')
    assert.ok(recovery1 < 5000, `serving again ${recovery1} ms after the network came back`)
    assert.ok(recovery2 < 5000, `serving again ${recovery2} ms after the backends were terminated`)

    // Every acknowledged write is there.
    for (const [key, versions] of acknowledged) {
      const h = await call('GET', `${E}/${key}/versions`)
      assert.equal(h.status, 200, JSON.stringify(h.body))
      const have = new Set((h.body.versions as Array<{ version: number }>).map((v) => v.version))
      for (const v of versions) assert.ok(have.has(v), `${key} version ${v} was acknowledged and is kept`)
    }
    console.log(
      `answers: ${JSON.stringify(Object.fromEntries(statuses))}; recovered in ${recovery1} ms (network) and ${recovery2} ms (terminated backends); ${[...acknowledged.values()].flat().length} writes acknowledged`,
    )
    const verify = await call('GET', `/v1/workspaces/${ws}/audit/verify`)
    assert.equal(verify.status, 200, JSON.stringify(verify.body))
    assert.equal(verify.body.ok, true, JSON.stringify(verify.body))
  })
}

/** Runs a node command to its end without blocking this process's event loop. */
function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000)
    c.on('error', reject)
    c.on('exit', (status) => {
      clearTimeout(t)
      resolve({ status, stdout, stderr })
    })
  })
}

/** Resolves once a read through the node succeeds again. */
async function waitServing(call: (m: string, p: string) => Promise<{ status: number }>, E: string): Promise<void> {
  const until = Date.now() + 10_000
  for (;;) {
    const r = await call('GET', E).catch(() => ({ status: 0 }))
    if (r.status === 200) return
    if (Date.now() > until) throw new Error(`the node did not serve again within 10 s (last answer ${r.status})`)
    await sleep(100)
  }
}

describePostgres('a node survives database faults', suite)
