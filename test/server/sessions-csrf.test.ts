// Browser sessions from the attacker's side: the session cookie on the workspace API (another
// tenant is 404 as with a token), forged cross-site requests without or with a wrong CSRF
// token, idle and absolute timeouts, sign-out, sign-out everywhere, one session ended from
// another, and a password change that ends every other session. Bearer tokens are unaffected.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { hashPassword } from '../../src/identity/passwords.js'
import { browser, type Browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { errorCode } from '../helpers/json-body.js'

const PUBLIC_URL = 'http://coffer.test'
const IDLE_S = 600
const ABSOLUTE_S = 3600

function code(r: { status: number; json: unknown }, status: number, c: string, what = c): void {
  assert.equal(r.status, status, what)
  assert.equal(errorCode(r.json), c, what)
}

function suite(engine: EngineName): void {
  let h: Harness
  let offset = 0
  let owner: { email: string; password: string }

  before(async () => {
    h = await startHarness(
      engine,
      { COFFER_PUBLIC_URL: PUBLIC_URL, COFFER_SESSION_IDLE_TIMEOUT: String(IDLE_S), COFFER_SESSION_ABSOLUTE_TIMEOUT: String(ABSOLUTE_S) },
      {
        clock: () => new Date(Date.now() + offset),
      },
    )
    // A password for A's Owner (as a reset link would set it).
    owner = { email: 'owner@acme.test', password: `owner-${randomBytes(8).toString('hex')}` }
    const hash = await hashPassword(owner.password)
    await h.ctx.committer.run((tx) =>
      tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('email', '=', owner.email)
        .execute(),
    )
  })
  after(() => h?.close())

  async function signIn(): Promise<Browser & { csrf: string }> {
    const br = browser(h.app, PUBLIC_URL)
    const r = await br.post('/v1/auth/password/sign-in', owner)
    assert.equal(r.status, 200)
    return Object.assign(br, { csrf: r.json.csrfToken as string })
  }

  const projects = () => `/v1/workspaces/${h.a.slug}/projects`
  const projectCount = async () => (await api(h.app, h.a.token).get(projects())).body.projects.length as number

  describe('the session cookie on the workspace API', () => {
    test('reads work with the cookie; another tenant and an unknown workspace are 404 as with a token', async () => {
      const br = await signIn()
      assert.equal((await br.get(projects())).status, 200)
      const me = await br.get('/v1/me')
      assert.equal(me.status, 200)
      assert.equal(me.json.user.email, owner.email)
      assert.equal(me.json.workspace.id, h.a.id)
      code(await br.get(`/v1/workspaces/${h.b.slug}/projects`), 404, 'ERR_NOT_FOUND', 'another tenant by slug')
      code(await br.get(`/v1/workspaces/${h.b.id}/projects`), 404, 'ERR_NOT_FOUND', 'another tenant by id')
      code(await br.get('/v1/workspaces/no-such-workspace/projects'), 404, 'ERR_NOT_FOUND')
      // `-` (the credential's own workspace) is for tokens: a session names its workspace.
      code(await br.get('/v1/workspaces/-/projects'), 404, 'ERR_NOT_FOUND', 'a session with -')
      code(
        await br.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'X' }, { headers: { 'x-csrf-token': br.csrf } }),
        404,
        'ERR_NOT_FOUND',
        'a write to another tenant',
      )
    })

    test('a bad or unknown cookie is 401, and so is a cookie next to nothing', async () => {
      for (const cookie of [
        'coffer_session=',
        'coffer_session=abc',
        `coffer_session=${randomBytes(32).toString('base64url')}`,
        'coffer_session=../../x',
      ]) {
        const r = await h.app.inject({ method: 'GET', url: projects(), headers: { cookie } })
        assert.equal(r.statusCode, 401, cookie.slice(0, 20))
        assert.equal(r.json().error.code, 'ERR_UNAUTHENTICATED')
      }
    })
  })

  describe('CSRF', () => {
    test('a forged cross-site POST without or with a wrong token is refused with ERR_CSRF and changes nothing', async () => {
      const br = await signIn()
      const before = await projectCount()
      const forged: Array<[string, Parameters<Browser['post']>[2]]> = [
        ['no token, same origin', {}],
        ['no token, cross-site', { site: 'cross-site', origin: 'https://evil.example' }],
        ['a wrong token', { headers: { 'x-csrf-token': 'A'.repeat(43) } }],
        ['a token of another session', { headers: { 'x-csrf-token': (await signIn()).csrf } }],
        ['the right token from another origin', { headers: { 'x-csrf-token': br.csrf }, origin: 'https://evil.example' }],
        ['the right token, cross-site fetch metadata', { headers: { 'x-csrf-token': br.csrf }, site: 'cross-site' }],
        ['the right token, same-site (a sibling subdomain)', { headers: { 'x-csrf-token': br.csrf }, site: 'same-site' as never }],
        ['the right token, Origin null, no fetch metadata', { headers: { 'x-csrf-token': br.csrf }, origin: 'null', site: null }],
        ['the right token, Origin null, cross-site', { headers: { 'x-csrf-token': br.csrf }, origin: 'null', site: 'cross-site' }],
      ]
      for (const [what, opts] of forged)
        code(await br.post(projects(), { name: `Forged ${randomBytes(2).toString('hex')}` }, opts), 403, 'ERR_CSRF', what)
      for (const [url, body] of [
        ['/v1/account/sign-out-everywhere', {}],
        ['/v1/account/password', { currentPassword: owner.password, newPassword: 'x'.repeat(20) }],
        ['/v1/account/delete', { confirmEmail: owner.email }],
      ] as const) {
        code(await br.post(url, body, { site: 'cross-site', origin: 'https://evil.example' }), 403, 'ERR_CSRF', url)
      }
      // A forged HTML form (what a hostile page can really send) without the hidden field.
      code(
        await br.form('/v1/account/sign-out-everywhere', {}, { site: 'cross-site', origin: 'https://evil.example' }),
        403,
        'ERR_CSRF',
        'forged form',
      )
      code(await br.form('/v1/account/sign-out-everywhere', { _csrf: 'A'.repeat(43) }), 403, 'ERR_CSRF', 'form with a wrong token')
      assert.equal(await projectCount(), before, 'no project was created')
      assert.equal((await br.get('/v1/account')).status, 200, 'the session survived every forgery')

      const ok = await br.post(projects(), { name: `Real ${randomBytes(2).toString('hex')}` }, { headers: { 'x-csrf-token': br.csrf } })
      assert.equal(ok.status, 201, 'the right token from this origin works')
      const noReferrerPage = await br.post(
        projects(),
        { name: `Null ${randomBytes(2).toString('hex')}` },
        { headers: { 'x-csrf-token': br.csrf }, origin: 'null' },
      )
      assert.equal(noReferrerPage.status, 201, 'Origin null from a no-referrer page of this origin (Sec-Fetch-Site: same-origin) works')
      const viaForm = await br.form('/v1/account/sign-out', { _csrf: br.csrf })
      assert.equal(viaForm.status, 303, 'a form with the hidden field works')
      assert.equal(viaForm.headers.location, '/sign-in?notice=signed-out')
    })

    test('Bearer-token requests are unaffected (no CSRF token, any Origin)', async () => {
      const r = await h.app.inject({
        method: 'POST',
        url: projects(),
        payload: { name: `Bearer ${randomBytes(2).toString('hex')}` },
        headers: { authorization: `Bearer ${h.a.token}`, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      })
      assert.equal(r.statusCode, 201)
    })

    test('GET /v1/account hands the session its CSRF token; reads need none', async () => {
      const br = await signIn()
      const a = await br.get('/v1/account')
      assert.equal(a.json.csrfToken, br.csrf)
      assert.equal(a.json.sessions.filter((s: { current: boolean }) => s.current).length, 1)
      assert.equal((await br.get(projects())).status, 200)
    })
  })

  describe('timeouts and endings', () => {
    test('idle timeout: a session unused for longer than the idle time has ended', async () => {
      const br = await signIn()
      offset = (IDLE_S - 60) * 1000
      assert.equal((await br.get('/v1/account')).status, 200, 'still alive just before')
      offset += (IDLE_S - 60) * 1000
      assert.equal((await br.get('/v1/account')).status, 200, 'activity moved the idle deadline')
      offset += (IDLE_S + 1) * 1000
      code(await br.get('/v1/account'), 401, 'ERR_UNAUTHENTICATED', 'idle too long')
      offset = 0
    })

    test('absolute timeout: even an active session ends after the absolute time', async () => {
      const br = await signIn()
      for (offset = 0; offset < (ABSOLUTE_S - 300) * 1000; offset += (IDLE_S - 120) * 1000) {
        assert.equal((await br.get(projects())).status, 200, `alive at +${offset / 1000} s`)
      }
      offset = (ABSOLUTE_S + 1) * 1000
      code(await br.get(projects()), 401, 'ERR_UNAUTHENTICATED', 'past the absolute lifetime')
      offset = 0
    })

    test('sign-out clears the cookie and ends the session for good', async () => {
      const br = await signIn()
      const cookie = br.cookie('coffer_session')!
      const out = await br.post('/v1/account/sign-out', {}, { headers: { 'x-csrf-token': br.csrf } })
      assert.equal(out.status, 200)
      assert.ok(
        out.setCookies.some((c) => /^coffer_session=;/.test(c) && /Expires=Thu, 01 Jan 1970|Max-Age=0/i.test(c)),
        'the cookie is cleared',
      )
      const replay = await h.app.inject({ method: 'GET', url: '/v1/account', headers: { cookie: `coffer_session=${cookie}` } })
      assert.equal(replay.statusCode, 401, 'a replayed cookie is dead')
    })

    test('one session ends another; sign out everywhere ends them all', async () => {
      const one = await signIn()
      const two = await signIn()
      const three = await signIn()
      const list = (await one.get('/v1/account')).json.sessions as Array<{ id: string; current: boolean }>
      const twoId = (await two.get('/v1/account')).json.sessions.find((s: { current: boolean }) => s.current).id
      assert.ok(list.some((s) => s.id === twoId))
      assert.equal((await one.post(`/v1/account/sessions/${twoId}/revoke`, {}, { headers: { 'x-csrf-token': one.csrf } })).status, 200)
      code(await two.get('/v1/account'), 401, 'ERR_UNAUTHENTICATED', 'the ended session')
      code(
        await one.post(`/v1/account/sessions/${twoId}/revoke`, {}, { headers: { 'x-csrf-token': one.csrf } }),
        404,
        'ERR_NOT_FOUND',
        'ending it twice',
      )
      const everywhere = await three.post('/v1/account/sign-out-everywhere', {}, { headers: { 'x-csrf-token': three.csrf } })
      assert.equal(everywhere.status, 200)
      assert.ok(everywhere.json.ended >= 2)
      code(await one.get('/v1/account'), 401, 'ERR_UNAUTHENTICATED')
      code(await three.get('/v1/account'), 401, 'ERR_UNAUTHENTICATED')
      await h.settle()
      const actions = (await h.db.selectFrom('audit_entries').select('action').where('workspace_id', '=', h.a.id).execute()).map(
        (r) => r.action,
      )
      for (const a of ['auth.sign-in', 'session.revoke', 'session.revoke-all', 'auth.sign-out'])
        assert.ok(actions.includes(a), `${a} audited`)
    })

    test('changing the password needs the current one and ends every other session', async () => {
      const keep = await signIn()
      const other = await signIn()
      code(
        await keep.post(
          '/v1/account/password',
          { currentPassword: 'not-the-password', newPassword: 'n'.repeat(16) },
          { headers: { 'x-csrf-token': keep.csrf } },
        ),
        401,
        'ERR_INVALID_CREDENTIALS',
      )
      code(
        await keep.post(
          '/v1/account/password',
          { currentPassword: owner.password, newPassword: 'short' },
          { headers: { 'x-csrf-token': keep.csrf } },
        ),
        400,
        'ERR_VALIDATION',
      )
      assert.equal((await other.get('/v1/account')).status, 200, 'refused changes end nothing')
      const next = `next-${randomBytes(8).toString('hex')}`
      const r = await keep.post(
        '/v1/account/password',
        { currentPassword: owner.password, newPassword: next },
        { headers: { 'x-csrf-token': keep.csrf } },
      )
      assert.equal(r.status, 200)
      assert.ok(r.json.sessionsEnded >= 1)
      assert.equal((await keep.get('/v1/account')).status, 200, 'this session stays')
      code(await other.get('/v1/account'), 401, 'ERR_UNAUTHENTICATED', 'the other one ended')
      code(await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-in', owner), 401, 'ERR_INVALID_CREDENTIALS', 'old password')
      owner = { ...owner, password: next }
      assert.equal((await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-in', owner)).status, 200)
      await h.settle()
      const actions = (await h.db.selectFrom('audit_entries').select('action').where('workspace_id', '=', h.a.id).execute()).map(
        (x) => x.action,
      )
      assert.ok(actions.includes('auth.password-change'))
    })
  })
}

describeEachEngine(suite)

describe('the Secure attribute', () => {
  test('the cookie is Secure when COFFER_PUBLIC_URL is https', async () => {
    const h = await startHarness('sqlite', { COFFER_PUBLIC_URL: 'https://coffer.example' })
    try {
      const password = `pw-${randomBytes(8).toString('hex')}`
      const hash = await hashPassword(password)
      await h.ctx.committer.run((tx) =>
        tx
          .updateTable('users')
          .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
          .where('email', '=', 'owner@acme.test')
          .execute(),
      )
      const br = browser(h.app, 'https://coffer.example')
      const r = await br.post('/v1/auth/password/sign-in', { email: 'owner@acme.test', password })
      assert.equal(r.status, 200)
      const set = r.setCookies.find((c) => c.startsWith('coffer_session='))!
      assert.match(set, /;\s*Secure/i)
      assert.match(set, /;\s*HttpOnly/i)
      assert.match(set, /;\s*SameSite=Lax/i)
    } finally {
      await h.close()
    }
  })
})
