// Onboarding with mail off (issue 14): signing up through an invitation link proves the
// invited address — and only that one — and lands in the workspace; a signed-in person sees
// the pending invitations addressed to their own verified email and accepts them in one
// click. From the attacker's side: an invitation for alice@ does not make bob@, a used,
// revoked or expired invitation makes nobody, an existing account is never changed, nobody
// sees or accepts another address's invitation, a workspace token lists nothing, and an
// account whose address only an invitation link vouched for does not accept other
// workspaces' invitations without their link.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { browser, type Browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'

const PUBLIC_URL = 'http://coffer.test'
const PASSWORD = `onboarding-${randomBytes(6).toString('hex')}`

type Json = Record<string, unknown>

function suite(engine: EngineName): void {
  let h: Harness
  let offset = 0
  let projectId: string
  const A = () => `/v1/workspaces/${h.a.slug}`
  const B = () => `/v1/workspaces/${h.b.slug}`
  const unique = (label: string) => `${label}-${randomBytes(4).toString('hex')}@people.test`

  before(async () => {
    h = await startHarness(engine, { COFFER_PUBLIC_URL: PUBLIC_URL }, { clock: () => new Date(Date.now() + offset) })
    const p = await api(h.app, h.a.token).post(`${A()}/projects`, { name: 'Onboard' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
  })
  after(() => h?.close())

  async function invite(email: string, ws: 'a' | 'b' = 'a', extra: Json = {}) {
    const r = await api(h.app, h[ws].token).post(`${ws === 'a' ? A() : B()}/invitations`, { email, role: 'member', ...extra })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    assert.equal(r.body.mailed, false, 'mail is off: nothing was mailed, the link is handed over')
    return { token: r.body.token as string, id: r.body.invitation.id as string, acceptUrl: r.body.acceptUrl as string }
  }

  async function userRow(email: string) {
    return h.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst()
  }

  async function invitationState(ws: 'a' | 'b', id: string): Promise<string> {
    const l = await api(h.app, h[ws].token).get(`${ws === 'a' ? A() : B()}/invitations`)
    return (l.body.invitations as Array<{ id: string; state: string }>).find((i) => i.id === id)!.state
  }

  async function memberOf(ws: 'a' | 'b', email: string): Promise<string | undefined> {
    const m = await api(h.app, h[ws].token).get(`${ws === 'a' ? A() : B()}/members`)
    return (m.body.members as Array<{ email: string; role: string }>).find((x) => x.email === email)?.role
  }

  /** A person who signed up normally and verified the address by a mailed link (created `password`). */
  async function verifiedPerson(label: string): Promise<{ email: string; b: Browser }> {
    const email = unique(label)
    const b = browser(h.app, PUBLIC_URL)
    assert.equal((await b.post('/v1/auth/password/sign-up', { email, password: PASSWORD })).status, 202)
    await h.db.updateTable('users').set({ email_verified_at: new Date().toISOString() }).where('email', '=', email).execute()
    const s = await b.post('/v1/auth/password/sign-in', { email, password: PASSWORD })
    assert.equal(s.status, 200)
    return { email, b }
  }

  async function csrf(b: Browser): Promise<string> {
    const a = await b.get('/v1/account')
    assert.equal(a.status, 200)
    return (a.json as { csrfToken: string }).csrfToken
  }

  describe('signing up through an invitation link', () => {
    test('mail off: the page, the form, and the new member lands in the workspace, verified and signed in', async () => {
      const email = unique('alice')
      const inv = await invite(email, 'a', { project: projectId, projectRole: 'developer' })
      const local = new URL(inv.acceptUrl).pathname + new URL(inv.acceptUrl).search
      const b = browser(h.app, PUBLIC_URL)
      const landing = await b.get(local)
      assert.equal(landing.status, 200)
      assert.ok(landing.body.includes(`/invite/sign-up?token=${encodeURIComponent(inv.token)}`), 'offers sign-up through the invitation')
      const page = await b.get(`/invite/sign-up?token=${encodeURIComponent(inv.token)}`)
      assert.equal(page.status, 200)
      assert.equal(page.headers['cache-control'], 'no-store')
      for (const hidden of [email, h.a.slug, 'Acme']) assert.ok(!page.body.includes(hidden), `the form does not show ${hidden}`)
      assert.ok(page.body.includes('action="/v1/auth/invitation/sign-up"'))

      const r = await b.form('/v1/auth/invitation/sign-up', {
        token: inv.token,
        email: email.toUpperCase(),
        password: PASSWORD,
        name: 'Alice',
      })
      assert.equal(r.status, 303)
      assert.equal(r.headers.location, `/w/${h.a.slug}`, 'lands in the workspace, in the dashboard')
      assert.ok(b.cookie('coffer_session'), 'signed in')
      const account = (await b.get('/v1/account')).json as {
        user: { email: string; emailVerified: boolean; createdVia: string }
        workspaces: Array<{ slug: string; role: string }>
      }
      assert.equal(account.user.email, email)
      assert.equal(account.user.emailVerified, true, 'no further verification')
      assert.equal(account.user.createdVia, 'invite')
      assert.deepEqual(
        account.workspaces.map((w) => [w.slug, w.role]),
        [[h.a.slug, 'member']],
      )
      const pm = await api(h.app, h.a.token).get(`${A()}/projects/${projectId}/members`)
      assert.ok(JSON.stringify(pm.body).includes(email), 'the project role came with it')
      assert.equal(await invitationState('a', inv.id), 'accepted')
      // The person can sign in again later with the password set here.
      assert.equal((await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-in', { email, password: PASSWORD })).status, 200)
      // Every step is in the workspace's log, by the new member.
      const entries = await api(h.app, h.a.token).get(`${A()}/audit/entries?limit=1000`)
      assert.equal(entries.status, 200)
      const userId = (await userRow(email))!.id
      const actions = (entries.body.entries as Array<{ action: string; actor: { type: string; id: string } }>)
        .filter((e) => e.actor.id === userId)
        .map((e) => e.action)
      assert.deepEqual(actions.slice(0, 3), ['invitation.accept', 'member.add', 'auth.sign-in'])
    })

    test('JSON: answers the session and the workspace; the token works once', async () => {
      const email = unique('json')
      const inv = await invite(email)
      const b = browser(h.app, PUBLIC_URL)
      const r = await b.post('/v1/auth/invitation/sign-up', { token: inv.token, email, password: PASSWORD })
      assert.equal(r.status, 201)
      const body = r.json as { workspace: { slug: string }; role: string; csrfToken: string }
      assert.deepEqual([body.workspace.slug, body.role], [h.a.slug, 'member'])
      assert.ok(body.csrfToken)
      const again = await browser(h.app, PUBLIC_URL).post('/v1/auth/invitation/sign-up', {
        token: inv.token,
        email: unique('again'),
        password: PASSWORD,
      })
      assert.deepEqual([again.status, (again.json as { error: { code: string } }).error.code], [404, 'ERR_INVITATION_INVALID'])
    })

    test('attacker: an invitation for alice@ does not sign up bob@, and stays usable for alice', async () => {
      const alice = unique('alice')
      const bob = unique('bob')
      const inv = await invite(alice)
      const b = browser(h.app, PUBLIC_URL)
      const r = await b.post('/v1/auth/invitation/sign-up', { token: inv.token, email: bob, password: PASSWORD })
      assert.deepEqual([r.status, (r.json as { error: { code: string } }).error.code], [403, 'ERR_INVITATION_WRONG_ACCOUNT'])
      assert.equal(await userRow(bob), undefined, 'no account for bob')
      assert.equal(b.cookie('coffer_session'), undefined, 'no session')
      // The form gets the page back with the code, the token carried for a retry.
      const f = await b.form('/v1/auth/invitation/sign-up', { token: inv.token, email: bob, password: PASSWORD })
      assert.equal(f.status, 303)
      assert.equal(f.headers.location, `/invite/sign-up?token=${encodeURIComponent(inv.token)}&error=ERR_INVITATION_WRONG_ACCOUNT`)
      const back = await b.get(String(f.headers.location))
      assert.ok(back.body.includes('This invitation was sent to another email address'))
      assert.equal(await invitationState('a', inv.id), 'pending', 'the refusal did not use the invitation')
      assert.equal(await memberOf('a', bob), undefined)
      const ok = await browser(h.app, PUBLIC_URL).post('/v1/auth/invitation/sign-up', {
        token: inv.token,
        email: alice,
        password: PASSWORD,
      })
      assert.equal(ok.status, 201)
    })

    test('attacker: used, revoked, expired and made-up invitations sign up nobody', async () => {
      const used = await invite(unique('used'))
      const usedEmail = (await api(h.app, h.a.token).get(`${A()}/invitations`)).body.invitations.find(
        (i: { id: string }) => i.id === used.id,
      ).email as string
      assert.equal(
        (await browser(h.app, PUBLIC_URL).post('/v1/auth/invitation/sign-up', { token: used.token, email: usedEmail, password: PASSWORD }))
          .status,
        201,
      )

      const revokedEmail = unique('revoked')
      const revoked = await invite(revokedEmail)
      assert.equal((await api(h.app, h.a.token).del(`${A()}/invitations/${revoked.id}`)).status, 200)

      const expiredEmail = unique('expired')
      const expired = await invite(expiredEmail, 'a', { expiresInDays: 1 })

      // A newer invitation of the same address supersedes the older one.
      const supersededEmail = unique('superseded')
      const superseded = await invite(supersededEmail)
      await invite(supersededEmail)

      offset = 2 * 86_400_000
      try {
        for (const [what, token, email] of [
          ['used', used.token, usedEmail],
          ['revoked', revoked.token, revokedEmail],
          ['expired', expired.token, expiredEmail],
          ['superseded', superseded.token, supersededEmail],
          ['made up', `coffer_inv_${'x'.repeat(32)}_abcdef`, unique('madeup')],
        ] as const) {
          const b = browser(h.app, PUBLIC_URL)
          const r = await b.post('/v1/auth/invitation/sign-up', { token, email, password: PASSWORD })
          assert.deepEqual([r.status, (r.json as { error: { code: string } }).error.code], [404, 'ERR_INVITATION_INVALID'], what)
          assert.equal(b.cookie('coffer_session'), undefined, `${what}: no session`)
          if (what !== 'used') assert.equal(await userRow(email), undefined, `${what}: no account`)
          const page = await b.get(`/invite/sign-up?token=${encodeURIComponent(token)}`)
          assert.equal(page.status, 404, `${what}: the page offers no form`)
          assert.ok(!page.body.includes('<form'), `${what}: no form`)
        }
      } finally {
        offset = 0
      }
    })

    test('attacker: an invitation never changes or verifies an existing account', async () => {
      // An unverified account someone made for the address (mail off: it never got verified).
      const squatted = unique('squatted')
      assert.equal(
        (await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-up', { email: squatted, password: PASSWORD })).status,
        202,
      )
      const before = await userRow(squatted)
      const inv = await invite(squatted)
      const r = await browser(h.app, PUBLIC_URL).post('/v1/auth/invitation/sign-up', {
        token: inv.token,
        email: squatted,
        password: `${PASSWORD}-other`,
      })
      assert.deepEqual([r.status, (r.json as { error: { code: string } }).error.code], [409, 'ERR_ACCOUNT_EXISTS'])
      const afterRow = await userRow(squatted)
      assert.deepEqual(afterRow, before, 'not verified, password unchanged')
      assert.equal(await invitationState('a', inv.id), 'pending')
      assert.equal(await memberOf('a', squatted), undefined)

      // A verified account in another workspace: its password stays its own.
      const { email } = await verifiedPerson('existing')
      const inv2 = await invite(email)
      const r2 = await browser(h.app, PUBLIC_URL).post('/v1/auth/invitation/sign-up', {
        token: inv2.token,
        email,
        password: `${PASSWORD}-taken`,
      })
      assert.equal(r2.status, 409)
      const s = await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-in', { email, password: `${PASSWORD}-taken` })
      assert.equal(s.status, 401, 'the attempted password does not sign in')
    })

    test('attacker: a cross-site form post is refused (login CSRF)', async () => {
      const email = unique('csrf')
      const inv = await invite(email)
      const r = await browser(h.app, PUBLIC_URL).form(
        '/v1/auth/invitation/sign-up',
        { token: inv.token, email, password: PASSWORD },
        { site: 'cross-site', origin: 'https://evil.test' },
      )
      assert.equal(r.status, 403)
      assert.equal(await userRow(email), undefined)
    })
  })

  describe('my pending invitations', () => {
    test('lists only invitations for my own verified address, never a token; accepted in one click', async () => {
      const me = await verifiedPerson('me')
      const other = unique('other')
      const mineA = await invite(me.email, 'a', { project: projectId, projectRole: 'viewer' })
      const mineB = await invite(me.email, 'b')
      const theirs = await invite(other)
      const list = await me.b.get('/v1/account/invitations')
      assert.equal(list.status, 200)
      const body = list.json as { invitations: Array<{ id: string; workspace: { slug: string }; role: string }>; oneClick: boolean }
      assert.deepEqual(body.invitations.map((i) => i.id).sort(), [mineA.id, mineB.id].sort())
      assert.equal(body.oneClick, true)
      assert.ok(!list.body.includes('coffer_inv_'), 'no invitation token in the answer')
      assert.ok(!list.body.includes(other), "nothing of another address's invitation")

      // Someone else's invitation id is refused like a made-up one, and stays pending.
      const token = await csrf(me.b)
      const steal = await me.b.post(`/v1/account/invitations/${theirs.id}/accept`, {}, { headers: { 'x-csrf-token': token } })
      assert.deepEqual([steal.status, (steal.json as { error: { code: string } }).error.code], [404, 'ERR_INVITATION_INVALID'])
      assert.equal(await invitationState('a', theirs.id), 'pending')

      // Without the CSRF token: refused.
      const forged = await me.b.post(`/v1/account/invitations/${mineA.id}/accept`, {})
      assert.equal(forged.status, 403)
      assert.equal(await memberOf('a', me.email), undefined)

      const ok = await me.b.post(`/v1/account/invitations/${mineA.id}/accept`, {}, { headers: { 'x-csrf-token': token } })
      assert.equal(ok.status, 201)
      assert.deepEqual((ok.json as { workspace: { slug: string } }).workspace.slug, h.a.slug)
      assert.equal(await memberOf('a', me.email), 'member')
      const entries = await api(h.app, h.a.token).get(`${A()}/audit/entries?limit=1000`)
      assert.ok(
        (entries.body.entries as Array<{ action: string; target: { id: string } }>).some(
          (e) => e.action === 'invitation.accept' && e.target.id === mineA.id,
        ),
        'recorded in the inviting workspace',
      )
      const twice = await me.b.post(`/v1/account/invitations/${mineA.id}/accept`, {}, { headers: { 'x-csrf-token': token } })
      assert.equal(twice.status, 404, 'works once')
      const left = (await me.b.get('/v1/account/invitations')).json as { invitations: Array<{ id: string }> }
      assert.deepEqual(
        left.invitations.map((i) => i.id),
        [mineB.id],
      )

      // A revoked one disappears and cannot be accepted.
      assert.equal((await api(h.app, h.b.token).del(`${B()}/invitations/${mineB.id}`)).status, 200)
      assert.deepEqual(((await me.b.get('/v1/account/invitations')).json as { invitations: unknown[] }).invitations, [])
      const revoked = await me.b.post(`/v1/account/invitations/${mineB.id}/accept`, {}, { headers: { 'x-csrf-token': token } })
      assert.equal(revoked.status, 404)
      assert.equal(await memberOf('b', me.email), undefined)
    })

    test('a workspace token neither lists nor accepts them (the list spans workspaces)', async () => {
      const member = await verifiedPerson('tokened')
      const inv = await invite(member.email, 'b')
      const first = await invite(member.email, 'a')
      const t = await csrf(member.b)
      assert.equal((await member.b.post(`/v1/account/invitations/${first.id}/accept`, {}, { headers: { 'x-csrf-token': t } })).status, 201)
      const pat = await member.b.post(`${A()}/tokens`, { name: 'cli' }, { headers: { 'x-csrf-token': t } })
      assert.equal(pat.status, 201)
      const bearer = api(h.app, (pat.json as { token: string }).token)
      const l = await bearer.get('/v1/account/invitations')
      assert.deepEqual([l.status, l.body.error.code], [403, 'ERR_SESSION_REQUIRED'])
      const a = await bearer.post(`/v1/account/invitations/${inv.id}/accept`, {})
      assert.deepEqual([a.status, a.body.error.code], [403, 'ERR_SESSION_REQUIRED'])
      assert.equal(await memberOf('b', member.email), undefined)
    })

    test('attacker: an address vouched for only by an invitation link does not accept another workspace in one click', async () => {
      // An Admin of A invites an address and signs up with the link themselves (mail off: the
      // Admin holds it). B later invites the same address: the account sees it but needs B's link.
      const victim = unique('victim')
      const inA = await invite(victim)
      const held = browser(h.app, PUBLIC_URL)
      assert.equal((await held.post('/v1/auth/invitation/sign-up', { token: inA.token, email: victim, password: PASSWORD })).status, 201)
      const inB = await invite(victim, 'b')
      const list = (await held.get('/v1/account/invitations')).json as { invitations: Array<{ id: string }>; oneClick: boolean }
      assert.deepEqual(
        list.invitations.map((i) => i.id),
        [inB.id],
      )
      assert.equal(list.oneClick, false)
      const t = await csrf(held)
      const r = await held.post(`/v1/account/invitations/${inB.id}/accept`, {}, { headers: { 'x-csrf-token': t } })
      assert.deepEqual([r.status, (r.json as { error: { code: string } }).error.code], [403, 'ERR_INVITATION_LINK_REQUIRED'])
      assert.equal(await memberOf('b', victim), undefined)
      assert.equal(await invitationState('b', inB.id), 'pending')
      // With B's own link (which B's Admin gave the person), it works.
      const withLink = await held.post('/v1/invitations/accept', { token: inB.token }, { headers: { 'x-csrf-token': t } })
      assert.equal(withLink.status, 201)
      assert.equal(await memberOf('b', victim), 'member')
    })
  })
}

describeEachEngine(suite)
