// The per-node principal cache from the side of whoever revokes: a credential is accepted from
// memory on node B, then on node A a personal token is revoked, a member demoted or removed, a
// machine identity revoked, a session signed out, a workspace deleted — and the NEXT request on
// B must be refused (or demoted), every time, as it was without a cache. On PostgreSQL three
// nodes share one database (one reaches it through a TCP proxy this test cuts); on SQLite one
// node, and changes written to the database by something else than a request (a host command).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createSession, csrfTokenFor } from '../../src/identity/sessions.js'
import { describeEachEngine } from '../helpers/engines.js'
import { type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { bearer, cacheOn, call, type Node, sleep, startNode } from '../helpers/nodes.js'
import { addPerson } from '../helpers/principals.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

const hits = (n: Node) => n.ctx.metrics.principalCacheLookups.get({ result: 'hit' }) ?? 0

function suite(engine: EngineName): void {
  let h: Harness
  let A: Node
  let B: Node
  const extra: Node[] = []
  let W = ''
  let reveal = ''
  const owner = () => bearer(h.a.token)

  /** Warms B's cache with `headers` on `url` (two answers of `status`, the second from memory). */
  async function warm(headers: Record<string, string>, url = reveal, status = 200): Promise<void> {
    assert.equal((await call(B, 'GET', url, headers)).status, status, 'first request on B')
    const before = hits(B)
    assert.equal((await call(B, 'GET', url, headers)).status, status, 'second request on B')
    assert.equal(hits(B), before + 1, 'the second request on B was answered from its cache')
  }

  before(async () => {
    h = await startHarness(engine)
    A = { app: h.app, ctx: h.ctx }
    if (engine === 'postgres') {
      for (let i = 0; i < 2; i++) extra.push(await startNode(h.settings))
      B = extra[0]!
    } else {
      B = A
    }
    for (const n of [A, B]) await cacheOn(n)
    W = `/v1/workspaces/${h.a.slug}`
    assert.equal((await call(A, 'POST', `${W}/projects`, owner(), { name: 'Shop' })).status, 201)
    reveal = `${W}/projects/shop/environments/production/secrets/K?reveal=true`
    assert.equal((await call(A, 'PUT', `${W}/projects/shop/environments/production/secrets/K`, owner(), { value: 'v' })).status, 200)
  })
  after(async () => {
    for (const n of extra) {
      await n.app.close()
      await n.ctx.close()
    }
    await h?.close()
  })

  test('a personal token revoked on A is refused by the next request on B — 30 times in a row', async () => {
    for (let i = 0; i < 30; i++) {
      const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: `rev${i}` })
      await warm(bearer(p.token))
      const mine = await call(A, 'GET', `${W}/tokens`, bearer(p.token))
      const id = (mine.body.tokens as Array<{ id: string }>)[0]!.id
      assert.equal((await call(A, 'DELETE', `${W}/tokens/${id}`, bearer(p.token))).status, 200)
      const next = await call(B, 'GET', reveal, bearer(p.token))
      assert.equal(next.status, 401, `round ${i}: the next request on B`)
      assert.equal(next.body.error.code, 'ERR_UNAUTHENTICATED')
    }
  })

  test('an admin demoted to member on A is a member at the next request on B', async () => {
    const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'demoted' })
    await warm(bearer(p.token), `${W}/machines`)
    assert.equal((await call(A, 'PUT', `${W}/members/${p.userId}`, owner(), { role: 'member' })).status, 200)
    assert.equal((await call(B, 'GET', `${W}/machines`, bearer(p.token))).status, 403, 'demoted at once on B')
  })

  test('a member removed on A is refused at the next request on B', async () => {
    const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'removed' })
    await warm(bearer(p.token))
    assert.equal((await call(A, 'DELETE', `${W}/members/${p.userId}`, owner())).status, 200)
    assert.equal((await call(B, 'GET', reveal, bearer(p.token))).status, 401)
  })

  test("a machine identity revoked on A ends its access token at B's next request", async () => {
    const m = await call(A, 'POST', `${W}/machines`, owner(), {
      name: 'ci',
      scopes: [{ project: 'shop', environments: '*', access: 'read' }],
    })
    assert.equal(m.status, 201)
    const x = await A.app.inject({
      method: 'POST',
      url: '/v1/machine/token',
      payload: { clientId: m.body.clientId, clientSecret: m.body.clientSecret },
    })
    const sat = JSON.parse(x.body).accessToken as string
    await warm(bearer(sat))
    assert.equal((await call(A, 'DELETE', `${W}/machines/${m.body.machine.id}`, owner())).status, 200)
    assert.equal((await call(B, 'GET', reveal, bearer(sat))).status, 401)
  })

  test('a session signed out on A is refused at the next request on B', async () => {
    const user = await h.db.selectFrom('users').select('id').where('email', '=', 'owner@acme.test').executeTakeFirstOrThrow()
    const s = await h.ctx.committer.run((tx) =>
      createSession(tx, { userId: user.id, method: 'password', ip: '', userAgent: '' }, h.ctx.config.auth.session, new Date()),
    )
    const cookie = { cookie: `coffer_session=${s.cookieValue}` }
    await warm(cookie)
    const out = await call(A, 'POST', '/v1/account/sign-out', { ...cookie, 'x-csrf-token': csrfTokenFor(s.cookieValue) }, {})
    assert.equal(out.status, 200, JSON.stringify(out.body))
    assert.equal((await call(B, 'GET', reveal, cookie)).status, 401)
  })

  test('a token revoked straight in the database (no request: a host command) is refused at the next request on B', async () => {
    const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'direct' })
    await warm(bearer(p.token))
    await h.db.updateTable('tokens').set({ revoked_at: new Date().toISOString() }).where('user_id', '=', p.userId).execute()
    assert.equal((await call(B, 'GET', reveal, bearer(p.token))).status, 401)
  })

  test('last-used bookkeeping bumps no epoch: a busy token stays cached', async () => {
    const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'busy' })
    await warm(bearer(p.token))
    const epochs = async () =>
      (await h.db.selectFrom('auth_epochs').select(['scope', 'epoch']).orderBy('scope').execute()).map((r) => `${r.scope}=${r.epoch}`)
    const before = await epochs()
    await h.db
      .updateTable('tokens')
      .set({ last_used_at: new Date(0).toISOString() })
      .where('user_id', '=', p.userId)
      .execute()
    await h.db.updateTable('sessions').set({ last_seen_at: new Date().toISOString() }).execute()
    assert.deepEqual(await epochs(), before, 'last_used_at and last_seen_at writes leave the epochs alone')
    const n = hits(B)
    assert.equal((await call(B, 'GET', reveal, bearer(p.token))).status, 200)
    assert.equal(hits(B), n + 1)
  })

  test('a workspace deleted on A is gone at the next request on B', async () => {
    const other = `/v1/workspaces/${h.b.slug}`
    await warm(bearer(h.b.token), `${other}/projects`)
    const d = await call(A, 'DELETE', other, bearer(h.b.token), { confirm: h.b.slug })
    assert.equal(d.status, 200, JSON.stringify(d.body))
    assert.equal((await call(B, 'GET', `${other}/projects`, bearer(h.b.token))).status, 401)
  })

  if (engine === 'postgres') {
    test('a node whose LISTEN connection is cut empties and bypasses its cache, and refuses what was revoked meanwhile', async () => {
      const port = Number(new URL(h.settings.DATABASE_URL!).port || 5432)
      const proxy: TcpProxy = await startTcpProxy('127.0.0.1', port)
      const via = (u: string) => {
        const x = new URL(u)
        x.host = `127.0.0.1:${proxy.port}`
        return x.toString()
      }
      const D = await startNode({
        ...h.settings,
        DATABASE_URL: via(h.settings.DATABASE_URL!),
        COFFER_MIGRATION_DATABASE_URL: via(h.settings.COFFER_MIGRATION_DATABASE_URL!),
      })
      try {
        await cacheOn(D)
        const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'cut' })
        assert.equal((await call(D, 'GET', reveal, bearer(p.token))).status, 200)
        assert.equal(D.ctx.principals.size > 0, true, 'D holds the principal')
        proxy.cut()
        for (let i = 0; i < 100 && D.ctx.principals.enabled; i++) await sleep(20)
        assert.equal(D.ctx.principals.enabled, false, 'the cache is off while the channel is down')
        assert.equal(D.ctx.principals.size, 0, 'and empty')
        // Revoked while D hears nothing.
        await h.db.updateTable('tokens').set({ revoked_at: new Date().toISOString() }).where('user_id', '=', p.userId).execute()
        proxy.restore()
        await cacheOn(D)
        assert.equal((await call(D, 'GET', reveal, bearer(p.token))).status, 401)
        assert.ok((D.ctx.metrics.principalCacheInvalidations.get({ reason: 'channel-down' }) ?? 0) >= 1)
      } finally {
        await D.app.close()
        await D.ctx.close()
        await proxy.close()
      }
    })

    test('a notified change drops the entries of its workspace on every node before any request', async () => {
      const p = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'notified' })
      const C = extra[1]!
      await cacheOn(C)
      assert.equal((await call(C, 'GET', reveal, bearer(p.token))).status, 200)
      const held = C.ctx.principals.size
      assert.ok(held > 0)
      await h.db.updateTable('tokens').set({ revoked_at: new Date().toISOString() }).where('user_id', '=', p.userId).execute()
      for (let i = 0; i < 100 && C.ctx.principals.size >= held; i++) await sleep(20)
      assert.ok(C.ctx.principals.size < held, 'the notification dropped the entry without a request')
      assert.ok((C.ctx.metrics.principalCacheInvalidations.get({ reason: 'notified' }) ?? 0) >= 1)
    })
  }
}

describeEachEngine(suite)
