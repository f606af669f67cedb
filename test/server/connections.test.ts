// Third-party OAuth connections against a real authorization server (oidc-provider, in-process)
// and an API that accepts only its tokens and records who called (test/helpers/oauth-provider.ts),
// both on loopback, allowed through COFFER_OUTBOUND_ALLOW as an operator would allow an
// internal provider. The authorization-code flow is driven for real (the provider's login and
// consent, its redirect to Coffer's callback); then the relay calls the API as the app and as
// each member. The attacker's side: paths off the allow-list, `..` and encoded traversal, a
// private API base, a replayed or forged state, another workspace's connection, a token or
// the client secret anywhere an answer, the audit log, a backup or the server log reaches.
// Both engines.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { createBackup } from '../../src/backup/backup-service.js'
import { seal } from '../../src/crypto/envelope.js'
import { tokenBinding } from '../../src/connections/links.js'
import { buildApp } from '../../src/server/app.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { atProvider, startThirdParty, type ThirdParty } from '../helpers/oauth-provider.js'
import { addPerson, type TestPerson } from '../helpers/principals.js'

const PUBLIC_URL = 'http://coffer.test'

function suite(engine: EngineName): void {
  let h: Harness
  let tp: ThirdParty
  let app: FastifyInstance
  const logLines: string[] = []
  let alice: TestPerson
  let bob: TestPerson
  let C: string
  let id: string

  const as = (token: string) => api(app, token)
  async function relay(token: string, method: string, path: string, extra: { headers?: Record<string, string>; payload?: string } = {}) {
    const res = await app.inject({
      method: method as 'GET',
      url: `${C}/${id}/relay${path}`,
      headers: { authorization: `Bearer ${token}`, ...extra.headers },
      ...(extra.payload !== undefined ? { payload: extra.payload } : {}),
    })
    return { status: res.statusCode, headers: res.headers, text: res.body, json: () => JSON.parse(res.body) }
  }
  /** Starts a flow with `token`, signs in at the provider as `login`, follows the redirect to Coffer's callback. */
  async function authorize(token: string, kind: 'app' | 'personal', login: string) {
    const r = await as(token).post(`${C}/${id}/authorize`, { kind })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const url = new URL(r.body.url)
    assert.equal(url.origin, tp.issuer)
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
    const back = new URL(await atProvider(r.body.url, login, PUBLIC_URL))
    assert.equal(back.pathname, '/oauth/callback')
    const res = await app.inject({ method: 'GET', url: `${back.pathname}${back.search}` })
    return { status: res.statusCode, body: JSON.parse(res.body), callback: `${back.pathname}${back.search}` }
  }

  before(async () => {
    tp = await startThirdParty(PUBLIC_URL)
    h = await startHarness(engine, {
      COFFER_PUBLIC_URL: PUBLIC_URL,
      COFFER_OUTBOUND_ALLOW: '127.0.0.1/32',
      COFFER_AUDIT_MERGE_DELAY: '0.1',
    })
    await h.ctx.webhooks.stop()
    app = await buildApp(h.ctx, { logger: { level: 'trace', stream: { write: (line: string) => void logLines.push(line) } } })
    await app.ready()
    alice = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'alice' })
    bob = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'bob' })
    C = `/v1/workspaces/${h.a.slug}/connections`
    const made = await as(h.a.token).post(C, {
      name: 'tracker',
      authorizeUrl: `${tp.issuer}/auth`,
      tokenUrl: `${tp.issuer}/token`,
      clientId: tp.clientId,
      clientSecret: tp.clientSecret,
      scopes: ['openid', 'offline_access', 'api'],
      apiBase: tp.apiBase,
      allow: ['GET /v1/*', 'POST /v1/items'],
    })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    id = made.body.connection.id
    assert.equal(made.body.connection.app, null)
  })
  after(async () => {
    await app?.close()
    await h?.close()
    await tp?.close()
  })

  test('members may not make connections or connect the app; an Owner connects it through the real flow', async () => {
    const denied = await as(alice.token).post(C, {
      name: 'mine',
      authorizeUrl: `${tp.issuer}/auth`,
      tokenUrl: `${tp.issuer}/token`,
      clientId: 'x',
      clientSecret: 'y',
      apiBase: tp.apiBase,
      allow: ['GET /*'],
    })
    assert.equal(denied.status, 403)
    assert.equal((await as(alice.token).post(`${C}/${id}/authorize`, { kind: 'app' })).status, 403)
    const r = await authorize(h.a.token, 'app', 'service-account')
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.deepEqual(r.body, { connected: true, connection: 'tracker', kind: 'app' })
    const shown = await as(alice.token).get(`${C}/${id}`)
    assert.equal(shown.body.connection.app.status, 'connected')
    assert.ok(shown.body.connection.app.expiresAt)
    assert.equal(shown.body.connection.personal, null)
  })

  test('a used state is refused, and so is a forged one', async () => {
    const r = await authorize(bob.token, 'personal', 'bob-at-provider')
    assert.equal(r.status, 200)
    const again = await app.inject({ method: 'GET', url: r.callback })
    assert.deepEqual([again.statusCode, JSON.parse(again.body).error.code], [400, 'ERR_CONNECTION_STATE'])
    const forged = await app.inject({ method: 'GET', url: '/oauth/callback?code=abc&state=forged-state-forged-state' })
    assert.deepEqual([forged.statusCode, JSON.parse(forged.body).error.code], [400, 'ERR_CONNECTION_STATE'])
  })

  test('two members link themselves; the relay calls the API as the app and as each of them', async () => {
    assert.equal((await authorize(alice.token, 'personal', 'alice-at-provider')).status, 200)
    const mine = await relay(alice.token, 'GET', '/v1/me?x=1&as=personal')
    assert.equal(mine.status, 200, mine.text)
    assert.equal(mine.json().sub, 'alice-at-provider')
    assert.equal(mine.json().url, '/api/v1/me?x=1')
    assert.equal(mine.headers['coffer-relay'], 'personal')
    assert.equal(mine.headers['set-cookie'], undefined, 'no cookie of the provider comes through')
    assert.equal(mine.headers['x-powered-by'], undefined)
    assert.equal(mine.headers['x-ratelimit-remaining'], '42')
    // The provider's answer is served under Coffer's API policy: HTML from it runs nothing in Coffer's origin.
    assert.match(String(mine.headers['content-security-policy']), /default-src 'none'/)
    assert.equal(mine.headers['x-content-type-options'], 'nosniff')
    assert.equal((await relay(bob.token, 'GET', '/v1/me')).json().sub, 'bob-at-provider')
    const asApp = await relay(h.a.token, 'GET', '/v1/me?as=app')
    assert.equal(asApp.json().sub, 'service-account')
    const byHeader = await relay(h.a.token, 'POST', '/v1/items', {
      headers: { 'coffer-relay-as': 'app', 'content-type': 'application/json', cookie: 'coffer_session=x' },
      payload: '{"name":"one"}',
    })
    assert.equal(byHeader.json().sub, 'service-account')
    const seen = tp.calls.at(-1)!
    assert.equal(seen.body, '{"name":"one"}')
    assert.equal(seen.headers.cookie, undefined, "the caller's cookies stay behind")
    assert.ok(!String(seen.headers.authorization).includes('coffer_'), "the caller's Coffer token stays behind")
    // A member may not act as the app; the Owner without a link of their own gets a clear code.
    assert.equal((await relay(alice.token, 'GET', '/v1/me?as=app')).status, 403)
    const none = await relay(h.a.token, 'GET', '/v1/me')
    assert.deepEqual([none.status, none.json().error.code], [409, 'ERR_CONNECTION_NOT_LINKED'])
  })

  test('off the allow-list, traversal and encoded slashes are refused before any token is used', async () => {
    const before = tp.calls.length
    for (const [method, path] of [
      ['DELETE', '/v1/me'],
      ['POST', '/v1/me'],
      ['GET', '/admin'],
      ['GET', '/v1'],
      ['GET', '/v1/%2e%2e/admin'],
      ['GET', '/v1/a%2Fb'],
      ['GET', '/v1/a%5C..%5Cadmin'],
      ['GET', '/v1//x'],
    ] as const) {
      const r = await relay(alice.token, method, path)
      assert.deepEqual([r.status, r.json().error.code], [403, 'ERR_RELAY_REFUSED'], `${method} ${path}`)
    }
    // A literal `..` sent on the wire (inject would normalise it): a real socket.
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as AddressInfo).port
    for (const path of ['/v1/../admin', '/v1/x/../../admin', '/v1/./me']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, path: `${C}/${id}/relay${path}`, headers: { authorization: `Bearer ${alice.token}` } },
          (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          },
        )
        req.on('error', reject)
        req.end()
      })
      assert.equal(status, 403, path)
    }
    assert.equal(tp.calls.length, before, 'nothing reached the API')
  })

  test('an API base or endpoint at a private or metadata address is refused by the guard', async () => {
    for (const apiBase of ['https://10.0.0.1/api', 'http://169.254.169.254/latest', 'https://[::ffff:127.0.0.1]/x']) {
      const r = await as(h.a.token).post(C, {
        name: 'evil',
        authorizeUrl: `${tp.issuer}/auth`,
        tokenUrl: `${tp.issuer}/token`,
        clientId: 'x',
        clientSecret: 'y',
        apiBase,
        allow: ['GET /*'],
      })
      assert.deepEqual([r.status, r.body.error.code], [400, 'ERR_OUTBOUND_REFUSED'], apiBase)
    }
    // Plain http to an address the operator did not allow is refused even when public (nothing is contacted).
    const plain = await as(h.a.token).post(C, {
      name: 'plain',
      authorizeUrl: 'http://93.184.216.34/auth',
      tokenUrl: `${tp.issuer}/token`,
      clientId: 'x',
      clientSecret: 'y',
      apiBase: tp.apiBase,
      allow: ['GET /*'],
    })
    assert.deepEqual([plain.status, plain.body.error.code], [400, 'ERR_OUTBOUND_REFUSED'])
    assert.match(plain.body.error.message, /https/)
  })

  test('a token about to expire is refreshed before use; a refused refresh marks the link', async () => {
    const link = () =>
      h.db
        .selectFrom('connection_links')
        .selectAll()
        .where('connection_id', '=', id)
        .where('owner', '=', alice.userId)
        .executeTakeFirstOrThrow()
    const first = await link()
    await h.db
      .updateTable('connection_links')
      .set({ expires_at: new Date(Date.now() + 30_000).toISOString() })
      .where('id', '=', first.id)
      .execute()
    const tokenBefore = tp.calls.filter((c) => c.sub === 'alice-at-provider').at(-1)!.token
    const r = await relay(alice.token, 'GET', '/v1/me')
    assert.equal(r.json().sub, 'alice-at-provider')
    const after = await link()
    assert.equal(Number(after.token_version), Number(first.token_version) + 1)
    assert.ok(after.refreshed_at)
    assert.notEqual(tp.calls.at(-1)!.token, tokenBefore, 'the API saw a fresh token')
    // A refresh token the provider no longer honours: the link needs re-linking, visibly and on record.
    const key = await h.ctx.dataKeys.integrationKey(h.ctx.store.db, h.a.id)
    const v = Number(after.token_version)
    await h.db
      .updateTable('connection_links')
      .set({
        refresh_token_ct: seal(key, Buffer.from('not-a-refresh-token'), tokenBinding(h.a.id, id, alice.userId, 'refresh_token', v)),
        expires_at: new Date(Date.now() - 1000).toISOString(),
      })
      .where('id', '=', after.id)
      .execute()
    const refused = await relay(alice.token, 'GET', '/v1/me')
    assert.deepEqual([refused.status, refused.json().error.code], [409, 'ERR_CONNECTION_NEEDS_RECONNECT'])
    assert.equal((await as(alice.token).get(`${C}/${id}`)).body.connection.personal.status, 'needs_reconnect')
    await h.settle()
    const events = await h.db.selectFrom('audit_entries').select('action').where('workspace_id', '=', h.a.id).execute()
    const actions = new Set(events.map((e) => e.action))
    for (const a of [
      'connection.create',
      'connection.connect',
      'connection.link',
      'connection.relay',
      'connection.refresh',
      'connection.refresh_failed',
    ])
      assert.ok(actions.has(a), a)
    // Linking again mends it.
    assert.equal((await authorize(alice.token, 'personal', 'alice-at-provider')).status, 200)
    assert.equal((await relay(alice.token, 'GET', '/v1/me')).status, 200)
  })

  test('the refresher job refreshes a token ahead of its expiry, once, on behalf of every node', async () => {
    const link = () =>
      h.db
        .selectFrom('connection_links')
        .selectAll()
        .where('connection_id', '=', id)
        .where('owner', '=', alice.userId)
        .executeTakeFirstOrThrow()
    const before = await link()
    assert.equal(before.status, 'connected')
    await h.db
      .updateTable('connection_links')
      .set({ expires_at: new Date(Date.now() + 5 * 60_000).toISOString() })
      .where('id', '=', before.id)
      .execute()
    assert.equal(await h.ctx.connectionRefresher.run(), 1)
    const after = await link()
    assert.equal(Number(after.token_version), Number(before.token_version) + 1)
    assert.ok(new Date(after.expires_at!).getTime() > Date.now() + 30 * 60_000, 'a fresh expiry')
    assert.equal(after.refresher, null, 'the lease is released')
    assert.equal(await h.ctx.connectionRefresher.run(), 0, 'nothing is due any more')
    assert.equal((await relay(alice.token, 'GET', '/v1/me')).json().sub, 'alice-at-provider')
    await h.settle()
    const byJob = await h.db
      .selectFrom('audit_entries')
      .select(['action', 'actor_type'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'connection.refresh')
      .where('actor_type', '=', 'system')
      .execute()
    assert.equal(byJob.length, 1)
  })

  test("another workspace's connection answers 404, and B's token reaches nothing of A", async () => {
    const CB = `/v1/workspaces/${h.b.slug}/connections`
    assert.equal((await as(h.b.token).get(`${CB}/${id}`)).status, 404)
    assert.equal((await as(h.b.token).del(`${CB}/${id}`)).status, 404)
    assert.equal((await as(h.b.token).post(`${CB}/${id}/authorize`, { kind: 'app' })).status, 404)
    const r = await app.inject({ method: 'GET', url: `${CB}/${id}/relay/v1/me?as=app`, headers: { authorization: `Bearer ${h.b.token}` } })
    assert.equal(r.statusCode, 404)
    assert.equal((await as(h.b.token).get(`${C}/${id}`)).status, 404)
  })

  test('a member who unlinks, or leaves, takes their tokens along', async () => {
    const u = await as(bob.token).del(`${C}/${id}/link`)
    assert.deepEqual([u.status, u.body.unlinked], [200, true])
    assert.equal((await relay(bob.token, 'GET', '/v1/me')).status, 409)
    assert.equal((await authorize(bob.token, 'personal', 'bob-at-provider')).status, 200)
    assert.equal((await as(h.a.token).del(`/v1/workspaces/${h.a.slug}/members/${bob.userId}`)).status, 200)
    const left = await h.db.selectFrom('connection_links').select('id').where('owner', '=', bob.userId).execute()
    assert.equal(left.length, 0)
  })

  test('attacker: no token or client secret in any answer, the audit log, a backup or the server log', async () => {
    assert.ok(tp.issued.size >= 5, `the provider issued tokens (${tp.issued.size})`)
    const secrets = [tp.clientSecret, ...tp.issued]
    const seen: string[] = []
    // Every GET route of the workspace API as the Owner and as a member, with this connection's id.
    const refs: Record<string, string> = {
      workspace: h.a.slug,
      connection: id,
      project: 'web',
      environment: 'development',
    }
    await as(h.a.token).post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Web', slug: 'web' })
    for (const r of app.cofferRoutes as ReadonlyArray<{ method: string; url: string; events?: unknown }>) {
      // The change stream stays open (it answers what the fetch does); the relay answers the provider's API.
      if (r.method !== 'GET' || !r.url.startsWith('/v1/workspaces/:workspace') || r.url.includes('/relay/') || r.events) continue
      const url = r.url.replace(/:([A-Za-z]+)/g, (_m, n: string) => refs[n] ?? '00000000-0000-4000-8000-000000000000')
      for (const token of [h.a.token, alice.token]) {
        const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
        seen.push(`${url} ${res.statusCode} ${res.body}`)
      }
    }
    await h.settle()
    seen.push(JSON.stringify((await as(h.a.token).get(`/v1/workspaces/${h.a.slug}/audit/entries?limit=1000`)).body))
    seen.push(JSON.stringify(await h.db.selectFrom('audit_entries').selectAll().execute()))
    const dir = await mkdtemp(join(tmpdir(), 'coffer-conn-backup-'))
    try {
      const b = await createBackup(
        { database: h.ctx.config.database, store: h.ctx.store, auditTree: h.ctx.auditTree, clock: h.ctx.clock, audit: h.ctx.audit },
        { dir, trigger: 'manual' },
      )
      seen.push(readFileSync(b.path).toString('latin1'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
    seen.push(logLines.join('\n'))
    // The callbacks' one-time codes and states stay out of the log too.
    for (const l of logLines.filter((x) => x.includes('/oauth/callback?')))
      assert.match(l, /code=\[redacted\]&state=\[redacted\]/, 'the callback URL is logged without its code and state')
    assert.ok(
      logLines.some((l) => l.includes('/oauth/callback')),
      'the server log was captured',
    )
    const all = seen.join('\n')
    for (const s of secrets) assert.ok(!all.includes(s), `a token or the client secret leaked (${s.slice(0, 4)}…)`)
    // The rows hold ciphertext only.
    const rows = JSON.stringify(await h.db.selectFrom('connection_links').selectAll().execute(), (_k, v) =>
      v && typeof v === 'object' && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v,
    )
    for (const s of secrets) assert.ok(!rows.includes(s))
  })

  test('a deleted connection takes its tokens along', async () => {
    assert.equal((await as(alice.token).del(`${C}/${id}`)).status, 403)
    assert.equal((await as(h.a.token).del(`${C}/${id}`)).status, 200)
    assert.equal((await h.db.selectFrom('connection_links').select('id').where('connection_id', '=', id).execute()).length, 0)
    assert.equal((await relay(alice.token, 'GET', '/v1/me')).status, 404)
  })
}

describeEachEngine(suite)
