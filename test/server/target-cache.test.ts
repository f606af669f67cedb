// The per-node target cache (src/access/target-cache.ts) from the side of whoever changes
// access: a request on node B resolves its project and environment from memory, then on node A
// a project role is taken away or lowered, an environment restricted, a grant removed, an
// environment sealed or deleted — and the NEXT request on B must see it, every time, as it did
// without a cache. On PostgreSQL two nodes share one database; on SQLite one node, and changes
// written to the database by something else than a request (a host command). From the
// attacker's side: another tenant naming this workspace's project by id never gets it.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { describeEachEngine } from '../helpers/engines.js'
import { type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { bearer, cacheOn, call, type Node, startNode } from '../helpers/nodes.js'
import { addPerson } from '../helpers/principals.js'

const targetHits = (n: Node) => n.ctx.metrics.targetCacheLookups.get({ result: 'hit' }) ?? 0

function suite(engine: EngineName): void {
  let h: Harness
  let A: Node
  let B: Node
  const extra: Node[] = []
  let W = ''
  let shopId = ''
  let n = 0
  const owner = () => bearer(h.a.token)

  /** A fresh environment of project shop with secret K, made on A; its path. */
  async function environment(): Promise<{ path: string; id: string }> {
    const slug = `env${++n}`
    const r = await call(A, 'POST', `${W}/projects/shop/environments`, owner(), { name: slug })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    const path = `${W}/projects/shop/environments/${slug}`
    assert.equal((await call(A, 'PUT', `${path}/secrets/K`, owner(), { value: 'v' })).status, 200)
    return { path, id: (r.body.environment as { id: string }).id }
  }

  /**
   * Answers of `status` on B until one resolved its target from B's memory (at most four): after
   * a change a request may authenticate from the database (its principal's epoch moved; on
   * SQLite that takes two), the next resolves and keeps the target, the one after finds it.
   */
  async function warm(headers: Record<string, string>, url: string, status = 200): Promise<void> {
    for (let i = 1; i <= 4; i++) {
      const before = targetHits(B)
      assert.equal((await call(B, 'GET', url, headers)).status, status, `request ${i} on B`)
      if (targetHits(B) === before + 1) return
    }
    assert.fail('four requests on B and none resolved its project and environment from memory')
  }

  before(async () => {
    h = await startHarness(engine)
    A = { app: h.app, ctx: h.ctx }
    if (engine === 'postgres') {
      extra.push(await startNode(h.settings))
      B = extra[0]!
    } else {
      B = A
    }
    for (const node of [A, B]) await cacheOn(node)
    W = `/v1/workspaces/${h.a.slug}`
    const p = await call(A, 'POST', `${W}/projects`, owner(), { name: 'Shop' })
    assert.equal(p.status, 201)
    shopId = (p.body.project as { id: string }).id
  })
  after(async () => {
    for (const node of extra) {
      await node.app.close()
      await node.ctx.close()
    }
    await h?.close()
  })

  test('repeated reads resolve their project and environment from memory; a request authenticated from the database does not use it', async () => {
    const e = await environment()
    await warm(owner(), `${e.path}/secrets/K?reveal=true`)
    B.ctx.principals.setEnabled(false)
    try {
      const before = targetHits(B)
      assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, owner())).status, 200)
      assert.equal(targetHits(B), before, 'no principal from the cache, no epoch read: the target came from the database')
    } finally {
      B.ctx.principals.setEnabled(true)
    }
  })

  test("a developer's project role taken away on A: the next read on B is 404 — 10 times in a row", async () => {
    const e = await environment()
    for (let i = 0; i < 10; i++) {
      const p = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: shopId, role: 'developer' }, label: `gone${i}` })
      await warm(bearer(p.token), `${e.path}/secrets/K?reveal=true`)
      assert.equal((await call(A, 'DELETE', `${W}/projects/shop/members/${p.userId}`, owner())).status, 200)
      assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, bearer(p.token))).status, 404, `round ${i}`)
    }
  })

  test('a developer lowered to viewer on A cannot write at the next request on B', async () => {
    const e = await environment()
    const p = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: shopId, role: 'developer' }, label: 'lowered' })
    await warm(bearer(p.token), `${e.path}/secrets/K?reveal=true`)
    assert.equal((await call(B, 'PUT', `${e.path}/secrets/W`, bearer(p.token), { value: 'w1' })).status, 200)
    assert.equal((await call(A, 'PUT', `${W}/projects/shop/members/${p.userId}`, owner(), { role: 'viewer' })).status, 200)
    assert.equal((await call(B, 'PUT', `${e.path}/secrets/W`, bearer(p.token), { value: 'w2' })).status, 403)
  })

  test('an environment restricted on A: a developer without a grant cannot reveal at the next request on B; a grant removed likewise', async () => {
    const e = await environment()
    const dev = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: shopId, role: 'developer' }, label: 'restricted' })
    await warm(bearer(dev.token), `${e.path}/secrets/K?reveal=true`)
    assert.equal((await call(A, 'PUT', `${e.path}/restriction`, owner(), { restricted: true })).status, 200)
    assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, bearer(dev.token))).status, 403, 'restricted at once on B')

    const granted = await addPerson(h, {
      workspaceId: h.a.id,
      role: 'member',
      project: { id: shopId, role: 'developer' },
      grant: { projectId: shopId, environmentId: e.id, access: 'read' },
      label: 'granted',
    })
    await warm(bearer(granted.token), `${e.path}/secrets/K?reveal=true`)
    assert.equal((await call(A, 'DELETE', `${e.path}/grants/${granted.userId}`, owner())).status, 200)
    assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, bearer(granted.token))).status, 403, 'grant gone at once on B')
  })

  test('an environment sealed on A needs break-glass at the next reveal on B; deleted, it is 404', async () => {
    const e = await environment()
    await warm(owner(), `${e.path}/secrets/K?reveal=true`)
    assert.equal((await call(A, 'PUT', `${e.path}/seal`, owner(), { sealed: true })).status, 200)
    const sealed = await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, owner())
    assert.equal(sealed.status, 403, 'sealed at once on B')
    assert.equal((sealed.body.error as { code: string }).code, 'ERR_BREAK_GLASS_REQUIRED')
    assert.equal((await call(A, 'PUT', `${e.path}/seal`, owner(), { sealed: false })).status, 200)
    await warm(owner(), `${e.path}/secrets/K?reveal=true`)
    const slug = e.path.slice(e.path.lastIndexOf('/') + 1)
    assert.equal((await call(A, 'DELETE', e.path, owner(), { confirm: slug, force: true })).status, 200)
    assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, owner())).status, 404, 'deleted at once on B')
  })

  test('an environment sealed straight in the database (no request: a host command) is sealed at the next request on B', async () => {
    const e = await environment()
    await warm(owner(), `${e.path}/secrets/K?reveal=true`)
    await h.db.updateTable('environments').set({ sealed: 1 }).where('id', '=', e.id).execute()
    assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, owner())).status, 403)
  })

  test("a member without a project role never gets another member's cached role for the same environment", async () => {
    const e = await environment()
    const dev = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: shopId, role: 'developer' }, label: 'holder' })
    const outsider = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'outsider' })
    await warm(bearer(dev.token), `${e.path}/secrets/K?reveal=true`)
    await warm(bearer(outsider.token), `${e.path}/secrets/K?reveal=true`, 404)
    for (let i = 0; i < 3; i++) {
      assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, bearer(outsider.token))).status, 404)
      assert.equal((await call(B, 'GET', `${e.path}/secrets/K?reveal=true`, bearer(dev.token))).status, 200)
    }
  })

  test("another tenant naming this workspace's project and environment by id gets 404, however warm the cache", async () => {
    const e = await environment()
    await warm(owner(), `/v1/workspaces/${h.a.slug}/projects/${shopId}/environments/${e.id}/secrets/K?reveal=true`)
    const other = `/v1/workspaces/${h.b.slug}/projects/${shopId}/environments/${e.id}/secrets/K?reveal=true`
    for (let i = 0; i < 3; i++) assert.equal((await call(B, 'GET', other, bearer(h.b.token))).status, 404)
    const cross = `/v1/workspaces/${h.a.slug}/projects/${shopId}/environments/${e.id}/secrets/K?reveal=true`
    assert.equal((await call(B, 'GET', cross, bearer(h.b.token))).status, 404, "workspace b's owner in workspace a's URL")
  })
}

describeEachEngine(suite)
