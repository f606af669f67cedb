// The CLI login's server side on both engines, from the attacker's side too: the approval
// page needs a session and says whom it approves for, forms need the CSRF token, codes are
// single use, expire after 60 s, are bound to the PKCE verifier and the redirect URI; device
// codes answer pending, slow_down, denied, expired; a revoked CLI token stops working.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { csrfTokenFor, createSession } from '../../src/identity/sessions.js'
import { pollDevice, redeemLoginCode } from '../../src/identity/cli-login.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import type { JsonBody } from '../helpers/json-body.js'
import { describeEachEngine } from '../helpers/engines.js'

const LOOPBACK = 'http://127.0.0.1:48213/callback'

interface Res {
  status: number
  headers: Record<string, unknown>
  body: string
  json?: JsonBody
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

describeEachEngine((engine: EngineName) => {
  let h: Harness
  let now = Date.now()
  let cookie = ''
  let csrf = ''
  let otherCookie = ''

  before(async () => {
    h = await startHarness(engine, { COFFER_RATE_AUTH_PER_IP: '1000' }, { clock: () => new Date(now) })
    const userId = (await h.db.selectFrom('users').select('id').where('email', '=', 'owner@acme.test').executeTakeFirstOrThrow()).id
    const s = await h.ctx.committer.run((tx) =>
      createSession(tx, { userId, method: 'password', ip: '127.0.0.1', userAgent: 'test' }, h.ctx.config.auth.session, new Date(now)),
    )
    cookie = s.cookieValue
    csrf = csrfTokenFor(cookie)
    const otherId = (await h.db.selectFrom('users').select('id').where('email', '=', 'owner@globex.test').executeTakeFirstOrThrow()).id
    otherCookie = (
      await h.ctx.committer.run((tx) =>
        createSession(
          tx,
          { userId: otherId, method: 'password', ip: '127.0.0.1', userAgent: 'test' },
          h.ctx.config.auth.session,
          new Date(now),
        ),
      )
    ).cookieValue
  })
  after(async () => h?.close())

  async function req(
    method: 'GET' | 'POST',
    url: string,
    opts: { cookie?: string; form?: Record<string, string>; json?: unknown; origin?: string; ip?: string } = {},
  ): Promise<Res> {
    const headers: Record<string, string> = {}
    if (opts.cookie) headers.cookie = `coffer_session=${opts.cookie}`
    if (opts.origin) headers.origin = opts.origin
    let payload: string | undefined
    if (opts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      payload = new URLSearchParams(opts.form).toString()
    } else if (opts.json !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(opts.json)
    }
    const r = await h.app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload }),
      ...(opts.ip ? { remoteAddress: opts.ip } : {}),
    })
    let json: unknown
    try {
      json = JSON.parse(r.body)
    } catch {
      /* HTML or empty */
    }
    return { status: r.statusCode, headers: r.headers, body: r.body, json }
  }

  const loginQuery = (challenge: string, state: string, extra: Record<string, string> = {}) =>
    new URLSearchParams({
      code_challenge: challenge,
      code_challenge_method: 'S256',
      redirect_uri: LOOPBACK,
      state,
      client: 'dev@laptop',
      ...extra,
    }).toString()

  /** Approves a loopback login as the signed-in owner and returns the code from the redirect. */
  async function approve(
    challenge: string,
    state: string,
    extra: Record<string, string> = {},
  ): Promise<{ code: string | null; location: URL }> {
    const r = await req('POST', '/v1/cli/login/approve', {
      cookie,
      form: {
        code_challenge: challenge,
        code_challenge_method: 'S256',
        redirect_uri: LOOPBACK,
        state,
        client: 'dev@laptop',
        workspace: h.a.slug,
        decision: 'approve',
        _csrf: csrf,
        ...extra,
      },
    })
    assert.equal(r.status, 303, r.body)
    const location = new URL(String(r.headers.location))
    return { code: location.searchParams.get('code'), location }
  }

  const exchange = (code: string, codeVerifier: string, redirectUri = LOOPBACK, ip?: string) =>
    req('POST', '/v1/cli/token', { json: { code, codeVerifier, redirectUri }, ...(ip ? { ip } : {}) })

  test('the approval page needs a session, names the host and the person, escapes what it shows, and carries CSP and CSRF', async () => {
    const { challenge } = pkce()
    const state = randomBytes(16).toString('base64url')
    const anon = await req('GET', `/cli/login?${loginQuery(challenge, state)}`)
    assert.equal(anon.status, 302)
    assert.match(String(anon.headers.location), /^\/sign-in\?returnTo=%2Fcli%2Flogin%3F/)
    const r = await req('GET', `/cli/login?${loginQuery(challenge, state, { client: '<script>alert(1)</script>"' })}`, { cookie })
    assert.equal(r.status, 200)
    assert.match(String(r.headers['content-type']), /^text\/html/)
    assert.ok(!r.body.includes('<script>'), 'the host name is escaped')
    assert.ok(r.body.includes('&#60;script&#62;'))
    assert.ok(r.body.includes('owner@acme.test'))
    assert.ok(r.body.includes(`value="${csrf}"`), 'the form carries the CSRF token')
    const csp = String(r.headers['content-security-policy'])
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:48213(;|$)/)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.doesNotMatch(csp, /unsafe-inline|script-src/)
  })

  test('a login request that does not redirect to a loopback address, or lacks S256 or state, is refused without any redirect', async () => {
    const { challenge } = pkce()
    const state = randomBytes(16).toString('base64url')
    const bad: Array<Record<string, string>> = [
      { redirect_uri: 'https://evil.example/callback' },
      { redirect_uri: 'http://localhost:4000/cb' },
      { redirect_uri: 'http://127.0.0.1/cb' },
      { redirect_uri: 'http://127.0.0.1:4000/cb?x=1' },
      { redirect_uri: 'http://user:pw@127.0.0.1:4000/cb' },
      { code_challenge_method: 'plain' },
      { code_challenge: 'short' },
      { state: '' },
    ]
    for (const extra of bad) {
      const r = await req('GET', `/cli/login?${loginQuery(challenge, state, extra)}`, { cookie })
      assert.equal(r.status, 400, JSON.stringify(extra))
      assert.equal(r.headers.location, undefined)
    }
    // The form refuses the same (a forged form can name another redirect target).
    const f = await req('POST', '/v1/cli/login/approve', {
      cookie,
      form: {
        code_challenge: challenge,
        code_challenge_method: 'S256',
        redirect_uri: 'https://evil.example/cb',
        state,
        workspace: h.a.slug,
        decision: 'approve',
        _csrf: csrf,
      },
    })
    assert.equal(f.status, 303)
    assert.match(String(f.headers.location), /^\/cli\/done\?error=ERR_VALIDATION/)
  })

  test('approve → one-time code → exchange with the verifier → a CLI token that works; the code does not work twice', async () => {
    const { verifier, challenge } = pkce()
    const state = randomBytes(16).toString('base64url')
    const { code, location } = await approve(challenge, state)
    assert.equal(`${location.origin}${location.pathname}`, LOOPBACK)
    assert.equal(location.searchParams.get('state'), state)
    assert.ok(code && code.length === 43)
    const r = await exchange(code, verifier)
    assert.equal(r.status, 200, r.body)
    assert.match(r.json.token, /^coffer_cli_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/, 'a CLI token has its own recognisable prefix')
    assert.equal(r.json.user.email, 'owner@acme.test')
    assert.equal(r.json.workspace.slug, h.a.slug)
    assert.ok(Date.parse(r.json.expiresAt) > now + 80 * 86_400_000)
    const me = await api(h.app, r.json.token).get('/v1/me')
    assert.equal(me.status, 200)
    assert.equal(me.body.user.email, 'owner@acme.test')
    // Replayed code.
    const again = await exchange(code, verifier)
    assert.equal(again.status, 400)
    assert.equal(again.json.error.code, 'ERR_INVALID_GRANT')
    assert.ok(!again.body.includes(code))
    // The token is stored only hashed, and the approval and issue are audited.
    const rows = await h.db.selectFrom('tokens').select(['token_hash', 'name']).where('id', '=', r.json.tokenId).execute()
    assert.equal(rows.length, 1)
    assert.equal(rows[0]!.name, 'cli: dev@laptop')
    assert.ok(!Buffer.from(rows[0]!.token_hash).toString('utf8').includes(r.json.token))
    await h.settle()
    const actions = (await h.db.selectFrom('audit_entries').select('action').where('workspace_id', '=', h.a.id).execute()).map(
      (e) => e.action,
    )
    assert.ok(actions.includes('cli.login.approve'))
    assert.ok(actions.includes('token.create'))
    const stored = await h.db.selectFrom('cli_login_codes').selectAll().execute()
    for (const s of stored) assert.ok(!Buffer.from(s.code_hash).equals(Buffer.from(code)), 'codes are stored hashed')
  })

  test('a wrong verifier spends the code: the right verifier afterwards fails too', async () => {
    const { verifier, challenge } = pkce()
    const { code } = await approve(challenge, randomBytes(16).toString('base64url'))
    const wrong = await exchange(code!, pkce().verifier)
    assert.equal(wrong.json.error.code, 'ERR_INVALID_GRANT')
    const right = await exchange(code!, verifier)
    assert.equal(right.status, 400)
    assert.equal(right.json.error.code, 'ERR_INVALID_GRANT')
  })

  test('another redirect URI than the approved one, a made-up code, or a code after 60 s: ERR_INVALID_GRANT', async () => {
    const p1 = pkce()
    const { code: c1 } = await approve(p1.challenge, randomBytes(16).toString('base64url'))
    assert.equal((await exchange(c1!, p1.verifier, 'http://127.0.0.1:48214/callback')).json.error.code, 'ERR_INVALID_GRANT')
    assert.equal((await exchange(randomBytes(32).toString('base64url'), p1.verifier)).json.error.code, 'ERR_INVALID_GRANT')
    assert.equal((await exchange('not a code', p1.verifier)).json.error.code, 'ERR_INVALID_GRANT')
    const p2 = pkce()
    const { code: c2 } = await approve(p2.challenge, randomBytes(16).toString('base64url'))
    now += 61_000
    try {
      const late = await exchange(c2!, p2.verifier)
      assert.equal(late.status, 400)
      assert.equal(late.json.error.code, 'ERR_INVALID_GRANT')
    } finally {
      now -= 61_000
    }
    // At 59 s it still works.
    const p3 = pkce()
    const { code: c3 } = await approve(p3.challenge, randomBytes(16).toString('base64url'))
    now += 59_000
    try {
      assert.equal((await exchange(c3!, p3.verifier)).status, 200)
    } finally {
      now -= 59_000
    }
    // The core refuses the same, on a clock of its own.
    await assert.rejects(
      h.ctx.committer.run((tx) => redeemLoginCode(tx, { code: c3!, verifier: p3.verifier, redirectUri: LOOPBACK }, new Date(now))),
      { code: 'ERR_INVALID_GRANT' },
    )
  })

  test('the approval form needs the CSRF token of the session and refuses other sites', async () => {
    const { challenge } = pkce()
    const base = {
      code_challenge: challenge,
      code_challenge_method: 'S256',
      redirect_uri: LOOPBACK,
      state: randomBytes(16).toString('base64url'),
      workspace: h.a.slug,
      decision: 'approve',
    }
    for (const [label, opts] of [
      ['no token', { cookie, form: base }],
      ["another session's token", { cookie, form: { ...base, _csrf: csrfTokenFor(otherCookie) } }],
      ['from another site', { cookie, form: { ...base, _csrf: csrf }, origin: 'https://evil.example' }],
    ] as const) {
      const r = await req('POST', '/v1/cli/login/approve', opts)
      assert.equal(r.status, 403, label)
      assert.equal(r.json?.error?.code, 'ERR_CSRF', label)
    }
    const anon = await req('POST', '/v1/cli/login/approve', { form: { ...base, _csrf: csrf } })
    assert.match(String(anon.headers.location), /^\/cli\/done\?error=ERR_UNAUTHENTICATED/, 'no session, no code')
    assert.equal(
      await h.db.selectFrom('cli_login_codes').select('code_hash').where('code_challenge', '=', challenge).executeTakeFirst(),
      undefined,
      'no code was made',
    )
  })

  test('a person cannot approve a login into a workspace they are not a member of', async () => {
    const { challenge } = pkce()
    const r = await req('POST', '/v1/cli/login/approve', {
      cookie: otherCookie,
      form: {
        code_challenge: challenge,
        code_challenge_method: 'S256',
        redirect_uri: LOOPBACK,
        state: randomBytes(16).toString('base64url'),
        workspace: h.a.slug,
        decision: 'approve',
        _csrf: csrfTokenFor(otherCookie),
      },
    })
    assert.equal(r.status, 303)
    assert.match(String(r.headers.location), /^\/cli\/done\?error=ERR_NOT_FOUND/)
  })

  test('deny redirects to the CLI with access_denied and no code', async () => {
    const { challenge } = pkce()
    const state = randomBytes(16).toString('base64url')
    const { code, location } = await approve(challenge, state, { decision: 'deny' })
    assert.equal(code, null)
    assert.equal(location.searchParams.get('error'), 'access_denied')
    assert.equal(location.searchParams.get('state'), state)
  })

  test('device login: pending, slow_down, approval in the browser, the token once, then ERR_INVALID_GRANT', async () => {
    const start = await req('POST', '/v1/cli/device', { json: { clientName: 'build-box' } })
    assert.equal(start.status, 200, start.body)
    const { deviceCode, userCode, interval, verificationPath } = start.json
    assert.match(userCode, /^[B-Z]{4}-[B-Z]{4}$/)
    assert.equal(verificationPath, '/cli/device')
    assert.equal(interval, 5)
    const poll = () => req('POST', '/v1/cli/device/token', { json: { deviceCode } })
    assert.equal((await poll()).json.error.code, 'ERR_AUTHORIZATION_PENDING')
    const fast = await poll()
    assert.equal(fast.json.error.code, 'ERR_SLOW_DOWN')
    assert.match(fast.json.error.message, /10 s/)
    now += 10_000
    assert.equal((await poll()).json.error.code, 'ERR_AUTHORIZATION_PENDING')
    // The page: sign-in first; a wrong code says so; the right one (any case, no dash) shows the host.
    assert.equal((await req('GET', `/cli/device?code=${userCode}`)).status, 302)
    const wrong = await req('GET', '/cli/device?code=BCDF-GHJK', { cookie })
    assert.match(wrong.body, /not valid/)
    const page = await req('GET', `/cli/device?code=${userCode.replace('-', '').toLowerCase()}`, { cookie })
    assert.equal(page.status, 200)
    assert.ok(page.body.includes('build-box'))
    assert.ok(page.body.includes(`value="${csrf}"`))
    // Approval needs CSRF.
    const forged = await req('POST', '/v1/cli/device/approve', { cookie, form: { userCode, decision: 'approve', workspace: h.a.slug } })
    assert.equal(forged.status, 403)
    const ok = await req('POST', '/v1/cli/device/approve', {
      cookie,
      form: { userCode, decision: 'approve', workspace: h.a.slug, _csrf: csrf },
    })
    assert.equal(ok.status, 303, ok.body)
    assert.equal(ok.headers.location, '/cli/done?result=approved')
    // Approving again: the code is no longer pending.
    const twice = await req('POST', '/v1/cli/device/approve', {
      cookie,
      form: { userCode, decision: 'approve', workspace: h.a.slug, _csrf: csrf },
    })
    assert.match(String(twice.headers.location), /^\/cli\/device\?error=ERR_NOT_FOUND/)
    now += 15_000
    const granted = await poll()
    assert.equal(granted.status, 200, granted.body)
    assert.equal((await api(h.app, granted.json.token).get('/v1/me')).body.user.email, 'owner@acme.test')
    now += 15_000
    assert.equal((await poll()).json.error.code, 'ERR_INVALID_GRANT')
  })

  test('device login denied in the browser ends with ERR_ACCESS_DENIED; one approved by nobody ends with ERR_CODE_EXPIRED', async () => {
    const denied = (await req('POST', '/v1/cli/device', { json: { clientName: 'ci' } })).json
    const d = await req('POST', '/v1/cli/device/approve', { cookie, form: { userCode: denied.userCode, decision: 'deny', _csrf: csrf } })
    assert.equal(d.headers.location, '/cli/done?result=denied')
    const r = await req('POST', '/v1/cli/device/token', { json: { deviceCode: denied.deviceCode } })
    assert.equal(r.status, 403)
    assert.equal(r.json.error.code, 'ERR_ACCESS_DENIED')

    const nobody = (await req('POST', '/v1/cli/device', { json: {} })).json
    now += 10 * 60_000 + 1000
    try {
      const late = await req('POST', '/v1/cli/device/token', { json: { deviceCode: nobody.deviceCode } })
      assert.equal(late.json.error.code, 'ERR_CODE_EXPIRED')
      // Nor can it be approved any more.
      const page = await req('GET', `/cli/device?code=${nobody.userCode}`, { cookie })
      assert.match(page.body, /not valid/)
    } finally {
      now -= 10 * 60_000 + 1000
    }
    await assert.rejects(
      h.ctx.committer.run((tx) => pollDevice(tx, randomBytes(32).toString('base64url'), new Date(now))),
      { code: 'ERR_INVALID_GRANT' },
    )
  })

  test('a revoked CLI token fails at once', async () => {
    const { verifier, challenge } = pkce()
    const { code } = await approve(challenge, randomBytes(16).toString('base64url'))
    const t = (await exchange(code!, verifier)).json
    const c = api(h.app, t.token)
    assert.equal((await c.get('/v1/me')).status, 200)
    assert.equal((await c.del(`/v1/workspaces/${h.a.slug}/tokens/${t.tokenId}`)).status, 200)
    const after = await c.get('/v1/me')
    assert.equal(after.status, 401)
    assert.equal(after.body.error.code, 'ERR_UNAUTHENTICATED')
  })

  test('guessing codes at the exchange is limited per address', async () => {
    const ip = '203.0.113.77'
    let last: Res | undefined
    for (let i = 0; i < 1001; i++) {
      last = await exchange(randomBytes(32).toString('base64url'), pkce().verifier, LOOPBACK, ip)
      if (last.status === 429) break
    }
    assert.equal(last!.status, 429)
    assert.equal(last!.json.error.code, 'ERR_RATE_LIMITED')
    assert.ok(Number(last!.headers['retry-after']) >= 1)
  })
})
