// While another connection holds SQLite's write lock — a host command, another process — a
// write waits for it without holding up the server (src/storage/write-lock-wait.ts): health,
// readiness and reads that write nothing answer at once, and the write lands once the lock
// is free, with its audit entry. (Audited reads wait: their entry must be durable first.)
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import { api, type Harness, startHarness } from '../helpers/harness.js'

let h: Harness
let E: string
before(async () => {
  h = await startHarness('sqlite')
  const a = api(h.app, h.a.token)
  assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Shop', slug: 'shop' })).status, 201)
  E = `/v1/workspaces/${h.a.slug}/projects/shop/environments/development/secrets`
  assert.equal((await a.put(`${E}/API_KEY`, { value: 'first-value' })).status, 200)
})
after(() => h?.close())

test('a write waiting for a write lock held elsewhere holds up neither health checks nor unaudited reads', async () => {
  const a = api(h.app, h.a.token)
  const config = h.ctx.config.database
  assert.equal(config.engine, 'sqlite')
  if (config.engine !== 'sqlite') return

  const other = new BetterSqlite3(config.path)
  other.exec('BEGIN IMMEDIATE')
  const HOLD_MS = 800
  const heldAt = performance.now()
  let releasedAt = Number.POSITIVE_INFINITY
  const release = setTimeout(() => {
    other.exec('COMMIT')
    releasedAt = performance.now()
  }, HOLD_MS)
  try {
    let writeDoneAt = 0
    const write = a.put(`${E}/API_KEY`, { value: 'second-value' }).then((r) => {
      writeDoneAt = performance.now()
      return r
    })
    // Let the write reach its transaction and find the lock taken.
    await new Promise((r) => setTimeout(r, 100))
    for (const url of ['/healthz', '/readyz', `${E}/API_KEY`, `${E}`]) {
      const start = performance.now()
      const r = url.startsWith('/v1') ? await a.get(url) : await h.app.inject({ method: 'GET', url })
      const took = performance.now() - start
      const status = 'status' in r ? r.status : r.statusCode
      assert.equal(status, 200, `${url} answered ${status}`)
      assert.ok(took < 300, `${url} took ${took.toFixed(0)} ms while a write waited for the lock`)
      assert.ok(performance.now() < releasedAt, `${url} was answered only after the lock was released`)
    }
    const w = await write
    assert.equal(w.status, 200)
    assert.ok(writeDoneAt >= releasedAt, 'the write finished before the other connection let go of the lock')
    assert.ok(writeDoneAt - heldAt >= HOLD_MS - 50)
  } finally {
    clearTimeout(release)
    if (other.inTransaction) other.exec('COMMIT')
    other.close()
  }
  const shown = await a.get(`${E}/API_KEY?reveal=true`)
  assert.equal(shown.status, 200)
  assert.ok(shown.body.secret.value === 'second-value', 'the write that waited is the current value')
  await h.settle()
  const log = await a.get(`/v1/workspaces/${h.a.slug}/audit/entries?limit=1000`)
  assert.equal(log.status, 200)
  const updates = (log.body.entries as Array<{ action: string }>).filter((e) => e.action === 'secret.update')
  assert.equal(updates.length, 1, 'the write that waited was audited once')
})

test('a write that waits out the busy timeout answers 503 ERR_DATABASE_BUSY and writes nothing', async () => {
  const a = api(h.app, h.a.token)
  const before = await a.get(`${E}/API_KEY?reveal=true`)
  assert.equal(before.status, 200)
  assert.equal(typeof before.body.secret.version, 'number')
  const config = h.ctx.config.database
  if (config.engine !== 'sqlite') throw new Error('a SQLite harness')
  const other = new BetterSqlite3(config.path)
  other.exec('BEGIN IMMEDIATE')
  try {
    const start = performance.now()
    const w = await a.put(`${E}/API_KEY`, { value: 'never-written' })
    const took = performance.now() - start
    assert.equal(w.status, 503)
    assert.equal(w.body.error.code, 'ERR_DATABASE_BUSY')
    assert.ok(took >= 4_500 && took < 8_000, `gave up after ${took.toFixed(0)} ms (the busy timeout is 5 s)`)
    assert.ok(!JSON.stringify(w.body).includes('never-written'), 'the answer does not echo the value')
    // The server answered meanwhile, and still does.
    assert.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
  } finally {
    other.exec('COMMIT')
    other.close()
  }
  const after = await a.get(`${E}/API_KEY?reveal=true`)
  assert.equal(after.status, 200)
  assert.equal(after.body.secret.version, before.body.secret.version, 'nothing was written')
  assert.ok(after.body.secret.value === before.body.secret.value)
  // Once the lock is free, the same write goes through.
  assert.equal((await a.put(`${E}/API_KEY`, { value: 'third-value' })).status, 200)
})
