// Email and password sign-in from a new user's side and an attacker's: sign-up with a mail
// received by a real SMTP server, verification, sign-in, "forgot password" and reset, the
// answers that must not reveal whether an email is registered, single-use and expiring
// links, and the audit entries each step leaves in every workspace of the person.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { addMember } from '../../src/identity/identity-service.js'
import { browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { errorCode } from '../helpers/json-body.js'
import { startMailbox, type Mailbox } from '../helpers/mailbox.js'

const PUBLIC_URL = 'http://coffer.test'
const pw = (label: string) => `${label}-${randomBytes(9).toString('hex')}`

function code(r: { status: number; json: unknown }, status: number, c: string, what = c): void {
  assert.equal(r.status, status, what)
  assert.equal(errorCode(r.json), c, what)
}

async function auditActions(h: Harness, workspaceId: string, targetId?: string): Promise<string[]> {
  await h.settle()
  let q = h.db.selectFrom('audit_entries').select(['action', 'target_id']).where('workspace_id', '=', workspaceId)
  if (targetId) q = q.where('target_id', '=', targetId)
  return (await q.orderBy('seq').execute()).map((r) => r.action)
}

function suite(engine: EngineName): void {
  let h: Harness
  let mail: Mailbox

  before(async () => {
    mail = await startMailbox()
    h = await startHarness(engine, {
      COFFER_PUBLIC_URL: PUBLIC_URL,
      COFFER_SMTP_URL: mail.url,
      COFFER_MAIL_FROM: 'Coffer <coffer@coffer.test>',
    })
  })
  after(async () => {
    await h?.close()
    await mail?.close()
  })

  /** Signs up, verifies through the mailed link and joins workspace A (and B, when asked). */
  async function person(opts: { b?: boolean } = {}) {
    const email = `p-${randomBytes(4).toString('hex')}@example.test`
    const password = pw('pass')
    const br = browser(h.app, PUBLIC_URL)
    assert.equal((await br.post('/v1/auth/password/sign-up', { email, password })).status, 202)
    const m = await mail.waitFor(email, (x) => x.text.includes('/verify-email'))
    const token = new URL(mail.linkIn(m, '/verify-email')).searchParams.get('token')!
    assert.equal((await br.post('/v1/auth/email/verify', { token })).status, 200)
    const user = await h.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow()
    await h.ctx.committer.run(async (tx) => {
      await addMember(tx, h.a.id, user.id, 'member', new Date())
      if (opts.b) await addMember(tx, h.b.id, user.id, 'member', new Date())
    })
    return { email, password, id: user.id }
  }

  describe('sign-up, verification and sign-in', () => {
    test('a new account gets a verification mail; it signs in only once verified, with an HttpOnly SameSite=Lax cookie', async () => {
      const email = `new-${randomBytes(4).toString('hex')}@example.test`
      const password = pw('first')
      const br = browser(h.app, PUBLIC_URL)
      const up = await br.post('/v1/auth/password/sign-up', { email, password, name: 'Ada' })
      assert.equal(up.status, 202)
      assert.deepEqual(up.json, { status: 'accepted' })
      assert.equal(up.setCookies.length, 0, 'sign-up does not sign in')

      code(await br.post('/v1/auth/password/sign-in', { email, password }), 403, 'ERR_EMAIL_NOT_VERIFIED')
      code(
        await br.post('/v1/auth/password/sign-in', { email, password: 'wrong-password-1' }),
        401,
        'ERR_INVALID_CREDENTIALS',
        'a wrong password says nothing about verification',
      )

      const m = await mail.waitFor(email)
      assert.match(m.subject, /verify/i)
      const link = mail.linkIn(m, '/verify-email')
      assert.ok(link.startsWith(`${PUBLIC_URL}/verify-email?token=`), 'the link uses COFFER_PUBLIC_URL')
      const token = new URL(link).searchParams.get('token')!
      assert.equal(Buffer.from(token, 'base64url').length, 32, '32 random bytes')

      // The page behind the link only shows a button: opening it uses nothing up.
      const page = await br.get(`/verify-email?token=${token}`)
      assert.equal(page.status, 200)
      assert.ok(page.body.includes('action="/v1/auth/email/verify"'))
      assert.equal((await br.post('/v1/auth/email/verify', { token })).status, 200)
      code(await br.post('/v1/auth/email/verify', { token }), 400, 'ERR_INVALID_LINK', 'a verification link works once')

      const ok = await br.post('/v1/auth/password/sign-in', { email: email.toUpperCase(), password })
      assert.equal(ok.status, 200)
      assert.equal(ok.json.user.email, email)
      assert.equal(typeof ok.json.csrfToken, 'string')
      const set = ok.setCookies.find((c) => c.startsWith('coffer_session='))
      assert.ok(set, 'sets coffer_session')
      assert.match(set, /;\s*HttpOnly/i)
      assert.match(set, /;\s*SameSite=Lax/i)
      assert.match(set, /;\s*Path=\/(;|$)/i)
      assert.doesNotMatch(set, /;\s*Secure/i, 'not Secure on a plain-http public URL')
      const me = await br.get('/v1/account')
      assert.equal(me.status, 200)
      assert.equal(me.json.user.email, email)
      assert.equal(me.json.user.name, 'Ada')

      // Only hashes are stored: neither the session id nor the link token is in the database.
      const cookie = br.cookie('coffer_session')!
      const rows =
        JSON.stringify(await h.db.selectFrom('sessions').selectAll().execute()) +
        JSON.stringify(await h.db.selectFrom('email_links').selectAll().execute())
      assert.ok(!rows.includes(cookie) && !rows.includes(token), 'no session id or link token in the database')
      const user = await h.db.selectFrom('users').select(['password_hash']).where('email', '=', email).executeTakeFirstOrThrow()
      assert.match(user.password_hash ?? '', /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'Argon2id with OWASP parameters')
    })

    test('sign-up for a registered email answers the same, creates nothing and changes nothing', async () => {
      const p = await person()
      const before = await h.db.selectFrom('users').select(['id', 'password_hash']).where('email', '=', p.email).executeTakeFirstOrThrow()
      const br = browser(h.app, PUBLIC_URL)
      const again = await br.post('/v1/auth/password/sign-up', { email: p.email, password: pw('takeover') })
      assert.equal(again.status, 202)
      assert.deepEqual(again.json, { status: 'accepted' })
      const m = await mail.waitFor(p.email, (x) => /already have/i.test(x.subject))
      assert.ok(!m.text.includes('token='), 'the notice carries no link token')
      const after = await h.db.selectFrom('users').select(['id', 'password_hash']).where('email', '=', p.email).execute()
      assert.deepEqual(after, [before], 'one account, same password')
      assert.equal((await br.post('/v1/auth/password/sign-in', { email: p.email, password: p.password })).status, 200)
    })

    test('unknown email, wrong password and an account without a password answer alike, in similar time', async () => {
      const p = await person()
      const br = browser(h.app, PUBLIC_URL)
      const unknown = await br.post('/v1/auth/password/sign-in', { email: 'nobody-here@example.test', password: p.password })
      const wrong = await br.post('/v1/auth/password/sign-in', { email: p.email, password: 'not-the-password' })
      const noPassword = await br.post('/v1/auth/password/sign-in', { email: 'owner@acme.test', password: 'anything-at-all' })
      for (const r of [unknown, wrong, noPassword]) code(r, 401, 'ERR_INVALID_CREDENTIALS')
      assert.equal(unknown.json.error.message, wrong.json.error.message)
      assert.equal(noPassword.json.error.message, wrong.json.error.message)

      const time = async (email: string) => {
        const t = process.hrtime.bigint()
        await br.post('/v1/auth/password/sign-in', { email, password: 'not-the-password' })
        return Number(process.hrtime.bigint() - t) / 1e6
      }
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
      const tu: number[] = []
      const tk: number[] = []
      for (let i = 0; i < 5; i++) {
        tu.push(await time(`nobody-${i}@example.test`))
        tk.push(await time(p.email))
      }
      // Both spend one Argon2id verification; an unknown email must not answer in a fraction of the time.
      assert.ok(
        median(tu) > median(tk) * 0.5,
        `unknown-email answers are not much faster (${median(tu).toFixed(1)} vs ${median(tk).toFixed(1)} ms)`,
      )
    })

    test('sign-in and its failures are audited in every workspace of the person; an unknown email is counted', async () => {
      const p = await person({ b: true })
      const br = browser(h.app, PUBLIC_URL)
      code(await br.post('/v1/auth/password/sign-in', { email: p.email, password: 'wrong-password-9' }), 401, 'ERR_INVALID_CREDENTIALS')
      assert.equal((await br.post('/v1/auth/password/sign-in', { email: p.email, password: p.password })).status, 200)
      await h.settle()
      for (const ws of [h.a.id, h.b.id]) {
        const rows = await h.db
          .selectFrom('audit_entries')
          .select(['action', 'actor_type', 'actor_id', 'details'])
          .where('workspace_id', '=', ws)
          .where((eb) => eb.or([eb('target_id', '=', p.id), eb('actor_id', '=', p.id)]))
          .orderBy('seq')
          .execute()
        const failed = rows.find((r) => r.action === 'auth.sign-in-failed')
        assert.ok(failed, `failure audited in ${ws === h.a.id ? 'A' : 'B'}`)
        assert.equal(failed.actor_type, 'anonymous')
        assert.match(failed.details, /wrong-password/)
        const ok = rows.find((r) => r.action === 'auth.sign-in')
        assert.ok(ok && ok.actor_type === 'user' && ok.actor_id === p.id, 'sign-in audited with the person as actor')
      }
      const metric = async () => {
        const m = await h.app.inject({ method: 'GET', url: '/metrics' })
        return Number(
          /coffer_auth_failures_unattributed_total\{event="auth.sign-in",reason="unknown-account"\} (\d+)/.exec(m.body)?.[1] ?? 0,
        )
      }
      const before = await metric()
      await h.settle()
      const entries = await h.db
        .selectFrom('audit_entries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      code(
        await br.post('/v1/auth/password/sign-in', { email: 'ghost@example.test', password: 'whatever-it-is' }),
        401,
        'ERR_INVALID_CREDENTIALS',
      )
      assert.equal(await metric(), before + 1, 'counted in coffer_auth_failures_unattributed_total')
      await h.settle()
      const entriesAfter = await h.db
        .selectFrom('audit_entries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      assert.equal(Number(entriesAfter.n), Number(entries.n), 'no workspace log records it')
    })

    test('bad input is refused with stable codes and creates nothing', async () => {
      const br = browser(h.app, PUBLIC_URL)
      const users = (await h.db.selectFrom('users').select('id').execute()).length
      code(await br.post('/v1/auth/password/sign-up', { email: 'short@example.test', password: 'short' }), 400, 'ERR_VALIDATION')
      code(await br.post('/v1/auth/password/sign-up', { email: 'not-an-email', password: pw('long-enough') }), 400, 'ERR_VALIDATION')
      code(
        await br.post('/v1/auth/password/sign-up', { email: 'x@example.test', password: pw('long-enough'), admin: true }),
        400,
        'ERR_VALIDATION',
      )
      code(await br.post('/v1/auth/password/sign-up', { email: 'x@example.test', password: 'x'.repeat(2000) }), 400, 'ERR_VALIDATION')
      code(await br.post('/v1/auth/password/sign-in', { email: 'x@example.test' }), 400, 'ERR_VALIDATION')
      code(await br.post('/v1/auth/email/verify', { token: 'A'.repeat(43) }), 400, 'ERR_INVALID_LINK')
      code(await br.post('/v1/auth/password/reset', { token: '../../etc', password: pw('new-password') }), 400, 'ERR_INVALID_LINK')
      assert.equal((await h.db.selectFrom('users').select('id').execute()).length, users)
    })
  })

  describe('forgot password and reset', () => {
    test('the reset link sets a new password once, ends every session, and the old password stops working', async () => {
      const p = await person()
      const signedIn = browser(h.app, PUBLIC_URL)
      assert.equal((await signedIn.post('/v1/auth/password/sign-in', { email: p.email, password: p.password })).status, 200)
      const br = browser(h.app, PUBLIC_URL)
      const r = await br.post('/v1/auth/password/forgot', { email: p.email })
      assert.equal(r.status, 202)
      const m = await mail.waitFor(p.email, (x) => x.text.includes('/reset-password'))
      const token = new URL(mail.linkIn(m, '/reset-password')).searchParams.get('token')!
      const fresh = pw('fresh')
      code(await br.post('/v1/auth/password/reset', { token, password: 'too-short' }), 400, 'ERR_VALIDATION')
      assert.equal(
        (await br.post('/v1/auth/password/reset', { token, password: fresh })).status,
        200,
        'a refused attempt did not use the link up',
      )
      code(await br.post('/v1/auth/password/reset', { token, password: pw('again') }), 400, 'ERR_INVALID_LINK', 'single use')
      code(await signedIn.get('/v1/account'), 401, 'ERR_UNAUTHENTICATED', 'the session from before the reset ended')
      code(await br.post('/v1/auth/password/sign-in', { email: p.email, password: p.password }), 401, 'ERR_INVALID_CREDENTIALS')
      assert.equal((await br.post('/v1/auth/password/sign-in', { email: p.email, password: fresh })).status, 200)
      const actions = await auditActions(h, h.a.id, p.id)
      assert.ok(actions.includes('auth.password-reset-requested') && actions.includes('auth.password-reset'), 'reset audited')
    })

    test('an unknown email gets the same answer and no mail; an expired or superseded link is refused', async () => {
      const br = browser(h.app, PUBLIC_URL)
      const count = mail.mails.length
      const r = await br.post('/v1/auth/password/forgot', { email: 'nobody-at-all@example.test' })
      assert.equal(r.status, 202)
      assert.deepEqual(r.json, { status: 'accepted' })
      await new Promise((res) => setTimeout(res, 200))
      assert.equal(mail.mails.filter((m) => m.to.includes('nobody-at-all@example.test')).length, 0)
      assert.ok(mail.mails.length >= count)

      const p = await person()
      await br.post('/v1/auth/password/forgot', { email: p.email })
      const first = new URL(
        mail.linkIn(await mail.waitFor(p.email, (x) => x.text.includes('/reset-password')), '/reset-password'),
      ).searchParams.get('token')!
      await br.post('/v1/auth/password/forgot', { email: p.email })
      const second = new URL(
        mail.linkIn(await mail.waitFor(p.email, (x) => x.text.includes('/reset-password') && !x.text.includes(first)), '/reset-password'),
      ).searchParams.get('token')!
      code(
        await br.post('/v1/auth/password/reset', { token: first, password: pw('x') }),
        400,
        'ERR_INVALID_LINK',
        'a newer link voids the older one',
      )
      // Expire the newest one (1 hour) in the database.
      await h.db
        .updateTable('email_links')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('user_id', '=', p.id)
        .where('used_at', 'is', null)
        .execute()
      code(await br.post('/v1/auth/password/reset', { token: second, password: pw('y') }), 400, 'ERR_INVALID_LINK', 'expired')
    })

    test('reset links live one hour, verification links 24 hours', async () => {
      const p = await person()
      await browser(h.app, PUBLIC_URL).post('/v1/auth/password/forgot', { email: p.email })
      await mail.waitFor(p.email, (x) => x.text.includes('/reset-password'))
      const rows = await h.db
        .selectFrom('email_links')
        .select(['purpose', 'created_at', 'expires_at'])
        .where('user_id', '=', p.id)
        .execute()
      const life = (purpose: string) =>
        rows.filter((r) => r.purpose === purpose).map((r) => Date.parse(r.expires_at) - Date.parse(r.created_at))
      assert.deepEqual(life('reset'), [3_600_000])
      assert.deepEqual(life('verify'), [86_400_000])
    })
  })

  describe('the pages', () => {
    test('every page, the stylesheet and a form redirect carry the security headers; no X-Powered-By', async () => {
      const br = browser(h.app, PUBLIC_URL)
      const replies = [
        ...(await Promise.all(
          [
            '/sign-in',
            '/sign-up',
            '/verify-email?token=abc',
            '/forgot-password',
            '/reset-password?token=abc',
            '/assets/coffer.css',
            '/account',
          ].map((u) => br.get(u)),
        )),
        await br.form('/v1/auth/password/forgot', { email: 'x@example.test' }),
      ]
      for (const r of replies) {
        const hsts = String(r.headers['strict-transport-security'])
        assert.ok(Number(/max-age=(\d+)/.exec(hsts)?.[1]) >= 15_552_000 && /includeSubDomains/.test(hsts) && /preload/.test(hsts), 'HSTS')
        assert.equal(r.headers['x-content-type-options'], 'nosniff')
        assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/)
        assert.equal(r.headers['x-powered-by'], undefined)
        assert.equal(r.headers['cache-control'], 'no-store')
      }
      assert.equal(replies[6]!.status, 303, '/account without a session goes to sign-in')
      assert.equal(replies[7]!.status, 303)
    })

    test('forms post to the API and come back as redirects; a cross-site form post is refused', async () => {
      const p = await person()
      const br = browser(h.app, PUBLIC_URL)
      const page = await br.get('/sign-in')
      assert.equal(page.status, 200)
      assert.ok(!/<script/i.test(page.body) && !/ style=/i.test(page.body) && !/<style/i.test(page.body), 'no inline script or style')
      const csp = String(page.headers['content-security-policy'])
      assert.match(csp, /default-src 'none'/)
      assert.match(csp, /frame-ancestors 'none'/)
      assert.match(csp, /style-src 'self'/)
      assert.doesNotMatch(csp, /unsafe-inline|script-src/)

      const bad = await br.form('/v1/auth/password/sign-in', { email: p.email, password: 'wrong-password!' })
      assert.equal(bad.status, 303)
      assert.equal(bad.headers.location, '/sign-in?error=ERR_INVALID_CREDENTIALS')
      const shown = await br.get('/sign-in?error=ERR_INVALID_CREDENTIALS')
      assert.ok(shown.body.includes('The email or password is wrong.'))
      const xss = await br.get('/sign-in?error=%3Cscript%3Ealert(1)%3C/script%3E&returnTo=%22%3E%3Cscript%3E')
      assert.ok(!xss.body.includes('<script>'), 'query text is escaped')

      const forged = await br.form(
        '/v1/auth/password/sign-in',
        { email: p.email, password: p.password },
        { site: 'cross-site', origin: 'https://evil.example' },
      )
      code(forged, 403, 'ERR_CSRF', 'login CSRF')
      assert.equal(br.cookie('coffer_session'), undefined)

      const ok = await br.form('/v1/auth/password/sign-in', { email: p.email, password: p.password })
      assert.equal(ok.status, 303)
      assert.equal(ok.headers.location, '/', 'the dashboard')
      const account = await br.get('/account')
      assert.equal(account.status, 200)
      assert.ok(account.body.includes(p.email))
      assert.match(account.body, /name="_csrf" value="[A-Za-z0-9_-]{43}"/)
    })
  })

  describe('with mail off, an Owner or Admin issues links', () => {
    let m: Harness
    before(async () => {
      m = await startHarness(engine, { COFFER_PUBLIC_URL: PUBLIC_URL })
    })
    after(() => m?.close())

    test('a link for oneself is never handed out through a token; another Owner hands one out, and it signs in', async () => {
      const owner = api(m.app, m.a.token)
      for (const purpose of ['reset', 'verify']) {
        const self = await owner.post(`/v1/workspaces/${m.a.slug}/auth-links`, { email: 'owner@acme.test', purpose })
        assert.deepEqual([self.status, self.body.error?.code], [403, 'ERR_LINK_REFUSED'], `a ${purpose} link for oneself`)
        assert.equal(self.body.url, undefined)
      }
      // A second Owner of A alone (no other workspace) gets in through the first one.
      const email = `second-owner-${randomBytes(3).toString('hex')}@acme.test`
      await m.ctx.committer.run(async (tx) => {
        const { ensureUser } = await import('../../src/identity/identity-service.js')
        const u = await ensureUser(tx, email, new Date())
        await addMember(tx, m.a.id, u.id, 'owner', new Date())
      })
      const r = await owner.post(`/v1/workspaces/${m.a.slug}/auth-links`, { email, purpose: 'reset' })
      assert.equal(r.status, 201)
      assert.equal(r.body.delivery, 'response')
      assert.ok(r.body.url.startsWith(`${PUBLIC_URL}/reset-password?token=`))
      const token = new URL(r.body.url).searchParams.get('token')!
      const br = browser(m.app, PUBLIC_URL)
      const password = pw('owner')
      assert.equal((await br.post('/v1/auth/password/reset', { token, password })).status, 200)
      const s = await br.post('/v1/auth/password/sign-in', { email, password })
      assert.equal(s.status, 200, 'a reset also verifies the email')
      assert.equal((await br.get(`/v1/workspaces/${m.a.slug}/projects`)).status, 200, 'the session works on the workspace API')
      assert.ok((await auditActions(m, m.a.id)).includes('auth.link-issued'))
    })

    test('who may issue links for whom', async () => {
      const mk = async (role: 'admin' | 'member', inB = false) => {
        const email = `${role}-${randomBytes(3).toString('hex')}@acme.test`
        const { token } = await m.ctx.committer.run(async (tx) => {
          const { ensureUser, issueToken } = await import('../../src/identity/identity-service.js')
          const u = await ensureUser(tx, email, new Date())
          await addMember(tx, m.a.id, u.id, role, new Date())
          if (inB) await addMember(tx, m.b.id, u.id, 'owner', new Date())
          return issueToken(tx, { workspaceId: m.a.id, userId: u.id, name: 't' }, new Date())
        })
        return { email, client: api(m.app, token) }
      }
      const admin = await mk('admin')
      const member = await mk('member')
      const ownerElsewhere = await mk('member', true)
      const url = `/v1/workspaces/${m.a.slug}/auth-links`
      assert.equal((await admin.client.post(url, { email: member.email, purpose: 'verify' })).status, 201, 'admin for a member')
      assert.equal((await member.client.post(url, { email: member.email, purpose: 'reset' })).status, 403, 'a member may not')
      assert.equal(
        (await admin.client.post(url, { email: 'owner@acme.test', purpose: 'reset' })).status,
        403,
        'an admin may not take over an Owner',
      )
      assert.equal(
        (await admin.client.post(url, { email: ownerElsewhere.email, purpose: 'reset' })).body.error.code,
        'ERR_LINK_REFUSED',
        'nor someone who is Owner of another workspace',
      )
      assert.equal(
        (await admin.client.post(url, { email: 'owner@globex.test', purpose: 'reset' })).status,
        404,
        "another tenant's person is not found",
      )
      assert.equal(
        (await api(m.app, m.a.token).post(`/v1/workspaces/${m.b.slug}/auth-links`, { email: 'owner@globex.test', purpose: 'reset' }))
          .status,
        404,
        "another tenant's workspace is not found",
      )
    })
  })
}

describeEachEngine(suite)

describe('COFFER_AUTH_MODE=oidc-only', () => {
  let h: Harness
  before(async () => {
    h = await startHarness('sqlite', {
      COFFER_PUBLIC_URL: PUBLIC_URL,
      COFFER_AUTH_MODE: 'oidc-only',
      COFFER_OIDC_ISSUER: 'http://127.0.0.1:9',
      COFFER_OIDC_CLIENT_ID: 'coffer',
    })
  })
  after(() => h?.close())

  test('password sign-in, sign-up, forgot and reset are off', async () => {
    const br = browser(h.app, PUBLIC_URL)
    for (const [url, body] of [
      ['/v1/auth/password/sign-in', { email: 'owner@acme.test', password: 'anything-at-all' }],
      ['/v1/auth/password/sign-up', { email: 'new@example.test', password: pw('p') }],
      ['/v1/auth/password/forgot', { email: 'owner@acme.test' }],
      ['/v1/auth/password/reset', { token: 'A'.repeat(43), password: pw('p') }],
    ] as const)
      code(await br.post(url, body), 403, 'ERR_AUTH_METHOD_DISABLED', url)
    const methods = await br.get('/v1/auth/methods')
    assert.deepEqual(methods.json, { password: false, signUp: false, oidc: true, mail: false })
    const page = await br.get('/sign-in')
    assert.ok(!page.body.includes('name="password"') && page.body.includes('Sign in with SSO'))
  })
})
