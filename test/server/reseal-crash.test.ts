// kill -9 during a reseal, again and again: a real `coffer server` on SQLite is killed at
// random points while it re-encrypts thousands of secret versions after a key rotation,
// then restarted. After every kill the database holds only consistent rows (each ciphertext
// names an existing key version that its row records, the job never goes backwards); after
// the last restart the job finishes, every value and version reads back exactly, the old
// key version is destroyed and the audit log verifies. COFFER_RESEAL_CRASH_KILLS sets the
// number of kills (20 in the suite; `npm run crash:reseal` runs 100). A second suite kills one
// of two PostgreSQL nodes mid-reseal and watches the other take the job over.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import { keyRefOf } from '../../src/crypto/envelope.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'
import { BIN, childEnv, ensureBuilt, killChild, request, startServer, stopChild } from '../helpers/child-server.js'

const KILLS = Number(process.env.COFFER_RESEAL_CRASH_KILLS ?? 20)
/** Enough versions that the reseal outlasts the kills (500 per bulk write). */
const SECRETS = Math.max(5000, Math.ceil((KILLS * 250) / 500) * 500)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe(`reseal survives kill -9 at ${KILLS} random points (SQLite, real server process)`, () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-crash-'))
  const dataDir = join(work, 'data')
  const env = childEnv({
    COFFER_LOG_LEVEL: 'warn',
    COFFER_RESEAL_BATCH: '4',
    COFFER_RESEAL_LEASE_MS: '200',
    COFFER_KEY_ROTATION_CHECK_INTERVAL: '1',
  })
  let server: { child: ChildProcess; url: string } | null = null
  let token = ''
  let E = ''
  let jobId = ''
  const expected = new Map<string, string[]>()
  process.once('exit', () => server?.child.kill('SIGKILL'))

  const call = (method: string, path: string, body?: unknown) => request(server!.url, token, method, path, body)

  /** Reads the stopped server's database and checks what must hold after any crash. */
  function inspect(): { state: string; done: number; total: number; ciphertexts: number } {
    const db = new BetterSqlite3(join(dataDir, 'coffer.db'))
    try {
      const keys = new Set(
        (db.prepare('SELECT id, version FROM data_keys').all() as Array<{ id: string; version: number }>).map(
          (k) => `${k.id}:${k.version}`,
        ),
      )
      const rows = db
        .prepare('SELECT dek_id, dek_version, value_ct, comment_ct FROM secret_versions WHERE dek_id IS NOT NULL')
        .all() as Array<{ dek_id: string; dek_version: number; value_ct: Buffer; comment_ct: Buffer | null }>
      let ciphertexts = 0
      for (const r of rows) {
        assert.ok(keys.has(`${r.dek_id}:${r.dek_version}`), 'every ciphertext names a key version that exists')
        for (const ct of [r.value_ct, r.comment_ct]) {
          if (!ct) continue
          ciphertexts++
          const ref = keyRefOf(ct)
          assert.equal(ref.id, r.dek_id)
          assert.equal(ref.version, r.dek_version, 'a row records the key version its ciphertext header names')
        }
      }
      const job = db.prepare('SELECT state, done, total FROM key_jobs WHERE id = ?').get(jobId) as {
        state: string
        done: number
        total: number
      }
      return { ...job, ciphertexts }
    } finally {
      db.close()
    }
  }

  before(async () => {
    ensureBuilt()
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', dataDir, '--email', 'ops@example.com', '--workspace', 'Crash', '--json'],
      { encoding: 'utf8', env, timeout: 30_000 },
    )
    assert.equal(init.status, 0, init.stderr)
    const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } }
    token = j.token
    server = await startServer(['--data-dir', dataDir], env)
    assert.equal((await call('POST', `/v1/workspaces/${j.workspace.slug}/projects`, { name: 'Crash' })).status, 201)
    E = `/v1/workspaces/${j.workspace.slug}/projects/crash/environments/production`
    for (let b = 0; b < SECRETS / 500; b++) {
      const secrets = Array.from({ length: 500 }, (_, i) => {
        const key = `S${b}_${i}`
        const value = `v-${randomBytes(8).toString('hex')}`
        expected.set(key, [value])
        return { key, value, ...(i % 5 === 0 ? { comment: `c-${i}` } : {}) }
      })
      assert.equal((await call('POST', `${E}/secrets`, { secrets })).status, 200)
    }
    // A second version of some secrets.
    const again = Array.from({ length: 200 }, (_, i) => ({ key: `S0_${i}`, value: `v2-${randomBytes(8).toString('hex')}` }))
    assert.equal((await call('POST', `${E}/secrets`, { secrets: again })).status, 200)
    for (const s of again) expected.get(s.key)!.push(s.value)
  })

  after(async () => {
    if (server) await stopChild(server.child)
    rmSync(work, { recursive: true, force: true })
  })

  test('every kill leaves consistent rows; the restarted server finishes; nothing is lost', async (t) => {
    const rotated = await call('POST', `${E}/keys/rotate`, {})
    assert.equal(rotated.status, 202)
    jobId = rotated.body.job.id
    const total = rotated.body.job.total as number
    assert.equal(total, SECRETS + 200)
    const ciphertexts = inspectCount()
    const jobPath = `${E.split('/projects/')[0]}/key-jobs/${jobId}`
    let lastDone = 0
    let midJob = 0
    for (let k = 0; k < KILLS; k++) {
      // A random point in the work: once this server has resealed something (the killed node's
      // lease ran out and it took the job over), within the next 0–100 ms. The first kill may
      // also land right after start-up, before any progress.
      for (const until = Date.now() + 10_000; k > 0 && Date.now() < until; ) {
        const j = (await call('GET', jobPath)).body.job as { state: string; done: number }
        if (j.done > lastDone || j.state !== 'running') break
        await sleep(10)
      }
      await sleep(Math.floor(Math.random() * 100))
      await killChild(server!.child)
      server = null
      const s = inspect()
      assert.ok(s.done >= lastDone, `the job never goes backwards (kill ${k + 1})`)
      assert.equal(s.ciphertexts, ciphertexts, 'no ciphertext appeared or vanished')
      if (s.state === 'running' && s.done > lastDone && s.done < total) midJob++
      lastDone = s.done
      server = await startServer(['--data-dir', dataDir], env)
    }
    // The last server finishes the job by itself.
    let job: { state: string; done: number } | undefined
    for (let i = 0; i < 600; i++) {
      job = (await call('GET', `${E.split('/projects/')[0]}/key-jobs/${jobId}`)).body.job
      if (job?.state !== 'running') break
      await sleep(50)
    }
    assert.equal(job?.state, 'done')
    assert.equal(job?.done, total)
    t.diagnostic(`${midJob} of ${KILLS} kills landed mid-reseal (after progress, before the end); ${total} versions resealed`)
    assert.ok(midJob >= Math.min(10, KILLS / 2), `at least half the kills landed mid-reseal (${midJob} of ${KILLS})`)

    const versions = (await call('GET', `${E}/keys`)).body.versions as Array<{ version: number; state: string }>
    assert.deepEqual(
      versions.map((v) => [v.version, v.state]),
      [[2, 'primary']],
      'the old key version is destroyed',
    )
    const list = (await call('GET', `${E}/secrets?reveal=true`)).body.secrets as Array<{ key: string; value: string }>
    assert.equal(list.length, SECRETS)
    let wrong = 0
    for (const s of list) if (expected.get(s.key)!.at(-1) !== s.value) wrong++
    assert.equal(wrong, 0, 'every current value reads back exactly')
    for (let i = 0; i < 200; i += 37) {
      const hist = (await call('GET', `${E}/secrets/S0_${i}/versions?reveal=true`)).body.versions as Array<{
        version: number
        value: string
      }>
      assert.ok(
        hist.length === 2 && hist[1]!.value === expected.get(`S0_${i}`)![0] && hist[0]!.value === expected.get(`S0_${i}`)![1],
        `S0_${i}: both versions read back`,
      )
    }
    const verify = await call('GET', `${E.split('/projects/')[0]}/audit/verify`)
    assert.equal(verify.body.ok, true)
    const final = inspectLive()
    assert.equal(final, ciphertexts)
  })

  function inspectCount(): number {
    const db = new BetterSqlite3(join(dataDir, 'coffer.db'), { readonly: true })
    try {
      const r = db.prepare('SELECT COUNT(value_ct) + COUNT(comment_ct) AS n FROM secret_versions').get() as { n: number }
      return r.n
    } finally {
      db.close()
    }
  }
  const inspectLive = inspectCount
})

// Two `coffer server` nodes on one PostgreSQL database: the node that rotated (and so leased
// the reseal job) is killed mid-reseal; the other node takes the job over once the lease
// runs out and finishes it. One worker per job at a time, nothing lost.
describePostgres('reseal failover between two nodes (PostgreSQL, real server processes)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-crash-pg-'))
  let drop: (() => Promise<void>) | undefined
  const nodes: Array<{ child: ChildProcess; url: string } | null> = [null, null]
  let env: NodeJS.ProcessEnv = {}
  let token = ''
  let slug = ''
  const expected = new Map<string, string>()
  process.once('exit', () => {
    for (const n of nodes) n?.child.kill('SIGKILL')
  })

  before(async () => {
    ensureBuilt()
    const db = await createTestDatabase()
    drop = db.drop
    env = childEnv({
      COFFER_LOG_LEVEL: 'warn',
      DATABASE_URL: db.url,
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
      COFFER_RESEAL_BATCH: '20',
      COFFER_RESEAL_LEASE_MS: '300',
      COFFER_KEY_ROTATION_CHECK_INTERVAL: '1',
    })
    const init = spawnSync(
      process.execPath,
      [BIN, 'init', '--data-dir', join(work, 'a'), '--email', 'ops@example.com', '--workspace', 'Failover', '--json'],
      { encoding: 'utf8', env, timeout: 30_000 },
    )
    assert.equal(init.status, 0, init.stderr)
    ;({
      token,
      workspace: { slug },
    } = JSON.parse(init.stdout) as { token: string; workspace: { slug: string } })
    nodes[0] = await startServer(['--data-dir', join(work, 'a')], env)
    nodes[1] = await startServer(['--data-dir', join(work, 'b')], env)
    assert.equal((await request(nodes[0].url, token, 'POST', `/v1/workspaces/${slug}/projects`, { name: 'Fo' })).status, 201)
    for (let b = 0; b < 8; b++) {
      const secrets = Array.from({ length: 500 }, (_, i) => ({ key: `F${b}_${i}`, value: `f-${randomBytes(8).toString('hex')}` }))
      assert.equal(
        (await request(nodes[b % 2]!.url, token, 'POST', `/v1/workspaces/${slug}/projects/fo/environments/production/secrets`, { secrets }))
          .status,
        200,
      )
      for (const s of secrets) expected.set(s.key, s.value)
    }
  })

  after(async () => {
    for (const n of nodes) if (n) await stopChild(n.child)
    if (drop) await drop()
    rmSync(work, { recursive: true, force: true })
  })

  test('the survivor finishes the job the killed node held', async () => {
    const E = `/v1/workspaces/${slug}/projects/fo/environments/production`
    const rotated = await request(nodes[0]!.url, token, 'POST', `${E}/keys/rotate`, {})
    assert.equal(rotated.status, 202)
    const job = rotated.body.job.id as string
    let before = 0
    for (let i = 0; i < 400 && before === 0; i++) {
      before = (await request(nodes[1]!.url, token, 'GET', `/v1/workspaces/${slug}/key-jobs/${job}`)).body.job.done
      await sleep(5)
    }
    assert.ok(before > 0 && before < 4000, `node A was mid-reseal when killed (${before} of 4000)`)
    await killChild(nodes[0]!.child)
    nodes[0] = null
    let j: { state: string } | undefined
    for (let i = 0; i < 600; i++) {
      j = (await request(nodes[1]!.url, token, 'GET', `/v1/workspaces/${slug}/key-jobs/${job}`)).body.job
      if (j?.state !== 'running') break
      await sleep(50)
    }
    assert.equal(j?.state, 'done', 'node B took the job over and finished it')
    const list = (await request(nodes[1]!.url, token, 'GET', `${E}/secrets?reveal=true`)).body.secrets as Array<{
      key: string
      value: string
    }>
    assert.equal(list.length, expected.size)
    assert.equal(list.filter((s) => expected.get(s.key) !== s.value).length, 0, 'every value reads back on the survivor')
    const versions = (await request(nodes[1]!.url, token, 'GET', `${E}/keys`)).body.versions as Array<{ version: number; state: string }>
    assert.deepEqual(
      versions.map((v) => [v.version, v.state]),
      [[2, 'primary']],
    )
    assert.equal((await request(nodes[1]!.url, token, 'GET', `/v1/workspaces/${slug}/audit/verify`)).body.ok, true)
  })
})
