// `-` as a URL's `:workspace` names the Bearer credential's own workspace (what `coffer run`
// uses instead of asking GET /v1/me first). From the attacker's side: it never reaches another
// workspace — two tenants with the same project slug each get their own values through the same
// URL — and a browser session, which must name its workspace, gets 404.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'

const OWN = '/v1/workspaces/-/projects/shop/environments/development'

function suite(engine: EngineName): void {
  let h: Harness
  const aValue = `a-${randomBytes(12).toString('hex')}`
  const bValue = `b-${randomBytes(12).toString('hex')}`

  before(async () => {
    h = await startHarness(engine)
    for (const [w, token, value] of [
      [h.a.slug, h.a.token, aValue],
      [h.b.slug, h.b.token, bValue],
    ] as const) {
      const c = api(h.app, token)
      assert.equal((await c.post(`/v1/workspaces/${w}/projects`, { name: 'Shop', slug: 'shop' })).status, 201)
      assert.equal((await c.put(`/v1/workspaces/${w}/projects/shop/environments/development/secrets/KEY`, { value })).status, 200)
    }
  })
  after(() => h?.close())

  test('each token reads its own workspace through the same URL, never the other', async () => {
    const a = await api(h.app, h.a.token).get(`${OWN}/secrets?reveal=true`)
    const b = await api(h.app, h.b.token).get(`${OWN}/secrets?reveal=true`)
    assert.equal(a.status, 200)
    assert.equal(b.status, 200)
    assert.ok(a.body.secrets[0].value === aValue, "A's value for A")
    assert.ok(b.body.secrets[0].value === bValue, "B's value for B")
    // Each audited reveal is recorded in the reader's own workspace: one in A's log, one in B's.
    await h.settle()
    for (const [w, token] of [
      [h.a.slug, h.a.token],
      [h.b.slug, h.b.token],
    ] as const) {
      const log = await api(h.app, token).get(`/v1/workspaces/${w}/audit/entries?action=secrets.reveal_all`)
      assert.equal(log.status, 200)
      assert.equal(log.body.entries.length, 1, w)
    }
  })

  test('writes land in the token’s own workspace', async () => {
    assert.equal((await api(h.app, h.b.token).put(`${OWN}/secrets/FROM_DASH`, { value: 'x' })).status, 200)
    assert.equal(
      (await api(h.app, h.b.token).get(`/v1/workspaces/${h.b.slug}/projects/shop/environments/development/secrets/FROM_DASH`)).status,
      200,
    )
    assert.equal(
      (await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/projects/shop/environments/development/secrets/FROM_DASH`)).status,
      404,
    )
  })

  test('a project only the other tenant has is 404, as by slug', async () => {
    assert.equal((await api(h.app, h.b.token).post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Only B', slug: 'only-b' })).status, 201)
    const r = await api(h.app, h.a.token).get('/v1/workspaces/-/projects/only-b/environments/development/secrets')
    assert.equal(r.status, 404)
    assert.equal(r.body.error.code, 'ERR_NOT_FOUND')
  })
}

describeEachEngine(suite)
