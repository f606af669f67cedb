// The invite page (GET /invite?token=…) over app.inject with real sessions and a real SMTP
// server, from the invited person's side and the attacker's: the mailed link signed out, the
// sign-in round trip back to it, Accept with the session's CSRF token, a forged Accept, the
// wrong account, a replayed / expired / revoked / made-up token, an open redirect through
// returnTo, and the token kept out of the server's log.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { ensureUser } from '../../src/identity/identity-service.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { buildApp } from '../../src/server/app.js'
import { INVITATION_INVALID_TEXT, INVITATION_WRONG_ACCOUNT_TEXT } from '../../src/server/pages/invite-pages.js'
import { esc } from '../../src/server/pages/layout.js'
import { browser, type Browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { startMailbox, type Mailbox } from '../helpers/mailbox.js'

const PUBLIC_URL = 'http://coffer.test'
const PASSWORD = `invite-page-${randomBytes(6).toString('hex')}`

/** The local part of a mailed accept link (`/invite?token=…`). */
function localPart(link: string): string {
  const u = new URL(link)
  assert.equal(u.origin, PUBLIC_URL, 'the link points at COFFER_PUBLIC_URL')
  return `${u.pathname}${u.search}`
}

function hiddenField(body: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(body)
  assert.ok(m, `the page has a hidden ${name} field`)
  return m[1]!.replace(/&amp;/g, '&')
}

function assertPageHeaders(r: { headers: Record<string, unknown>; body: string }, what: string): void {
  assert.match(String(r.headers['content-type']), /^text\/html/, `${what}: HTML`)
  assert.equal(r.headers['referrer-policy'], 'strict-origin', `${what}: no path or query ever leaves as a referrer`)
  assert.equal(r.headers['cache-control'], 'no-store', `${what}: not cached`)
  assert.match(String(r.headers['content-security-policy']), /^default-src 'none';/, `${what}: strict CSP`)
  assert.ok(!/script/i.test(String(r.headers['content-security-policy'])) && !/<script/i.test(r.body), `${what}: no script at all`)
}

function suite(engine: EngineName): void {
  let h: Harness
  let mailbox: Mailbox
  let offset = 0
  let W: string
  let projectId: string
  const owner = () => api(h.app, h.a.token)

  before(async () => {
    mailbox = await startMailbox()
    h = await startHarness(
      engine,
      { COFFER_PUBLIC_URL: PUBLIC_URL, COFFER_SMTP_URL: mailbox.url },
      { clock: () => new Date(Date.now() + offset) },
    )
    W = `/v1/workspaces/${h.a.slug}`
    const p = await owner().post(`${W}/projects`, { name: 'Invited' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
  })
  after(async () => {
    await h?.close()
    await mailbox?.close()
  })

  /** A person with a verified email and a password, in no workspace yet. */
  async function person(label: string): Promise<string> {
    const email = `${label}-${randomBytes(4).toString('hex')}@people.test`
    const hash = await hashPassword(PASSWORD)
    await h.ctx.committer.run(async (tx) => {
      const u = await ensureUser(tx, email, new Date())
      await tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('id', '=', u.id)
        .execute()
    })
    return email
  }

  /** Invites `email` (as A's Owner) and returns the token and the mailed link's local part. */
  async function invite(email: string, extra: Record<string, unknown> = {}): Promise<{ token: string; link: string; id: string }> {
    const r = await owner().post(`${W}/invitations`, { email, role: 'member', ...extra })
    assert.equal(r.status, 201)
    const mail = await mailbox.waitFor(email, (m) => m.text.includes(r.body.token))
    return { token: r.body.token, link: localPart(mailbox.linkIn(mail, '/invite')), id: r.body.invitation.id }
  }

  async function signIn(email: string, returnTo?: string): Promise<Browser> {
    const br = browser(h.app, PUBLIC_URL)
    const r = await br.form('/v1/auth/password/sign-in', { email, password: PASSWORD, ...(returnTo ? { returnTo } : {}) })
    assert.equal(r.status, 303, 'signed in')
    return br
  }

  async function state(id: string): Promise<string> {
    const l = await owner().get(`${W}/invitations`)
    return (l.body.invitations as Array<{ id: string; state: string }>).find((i) => i.id === id)!.state
  }

  async function isMember(email: string): Promise<boolean> {
    const m = await owner().get(`${W}/members`)
    assert.equal(m.status, 200)
    return JSON.stringify(m.body).includes(email)
  }

  describe('the invite page', () => {
    test('the mailed link, signed out: explains the invitation, names nothing, links to sign in and back', async () => {
      const email = await person('signed-out')
      const { token, link } = await invite(email, { project: 'invited', projectRole: 'viewer' })
      assert.equal(link, `/invite?token=${token}`, 'the mail carries the query link')
      const page = await browser(h.app, PUBLIC_URL).get(link)
      assert.equal(page.status, 200)
      assertPageHeaders(page, 'signed-out invite page')
      assert.ok(page.body.includes('Someone invited you to join a workspace'))
      for (const hidden of [h.a.slug, 'Acme', 'Invited', email])
        assert.ok(!page.body.includes(hidden), `the signed-out page does not show ${hidden}`)
      const back = encodeURIComponent(link)
      assert.ok(page.body.includes(`href="/sign-in?returnTo=${esc(back)}"`), 'a sign-in link that returns here')
      assert.ok(page.body.includes(`href="/invite/sign-up?token=${esc(encodeURIComponent(token))}"`), 'a sign-up through the invitation')
      // A made-up token is refused before anyone signs in, with the one message.
      const bad = await browser(h.app, PUBLIC_URL).get(`/invite?token=coffer_inv_${'x'.repeat(32)}_abcdef`)
      assert.equal(bad.status, 404)
      assert.ok(bad.body.includes(esc(INVITATION_INVALID_TEXT)))
    })

    test('sign in from the page: the form carries returnTo and lands back on the invitation, which names workspace and role', async () => {
      const email = await person('round-trip')
      const { link } = await invite(email, { project: 'invited', projectRole: 'viewer' })
      const br = browser(h.app, PUBLIC_URL)
      const signInPage = await br.get(`/sign-in?returnTo=${encodeURIComponent(link)}`)
      assert.equal(signInPage.status, 200)
      assertPageHeaders(signInPage, 'sign-in page with a returnTo')
      assert.equal(hiddenField(signInPage.body, 'returnTo'), link, 'the sign-in form carries the way back')
      // A wrong password comes back to the sign-in page, still knowing the way back.
      const wrong = await br.form('/v1/auth/password/sign-in', { email, password: 'not-the-password', returnTo: link })
      assert.equal(wrong.status, 303)
      assert.equal(wrong.headers.location, `/sign-in?returnTo=${encodeURIComponent(link)}&error=ERR_INVALID_CREDENTIALS`)
      const ok = await br.form('/v1/auth/password/sign-in', {
        email,
        password: PASSWORD,
        returnTo: hiddenField(signInPage.body, 'returnTo'),
      })
      assert.equal(ok.status, 303)
      assert.equal(ok.headers.location, link, 'back on the invitation')
      const page = await br.get(String(ok.headers.location))
      assert.equal(page.status, 200)
      assertPageHeaders(page, 'signed-in invite page')
      const name = (await owner().get('/v1/me')).body.workspace.name as string
      assert.ok(page.body.includes(esc(name)), 'names the workspace')
      assert.ok(page.body.includes('<td>Member</td>'), 'names the role')
      assert.ok(page.body.includes('Invited') && page.body.includes('viewer'), 'names the project role')
      assert.ok(page.body.includes('action="/v1/account/invitations/accept"'))
      // Sign-up carries it too: the page after sign-up still knows the way back.
      const signUp = await browser(h.app, PUBLIC_URL).get(`/sign-up?returnTo=${encodeURIComponent(link)}`)
      assert.equal(hiddenField(signUp.body, 'returnTo'), link)
      const made = await browser(h.app, PUBLIC_URL).form('/v1/auth/password/sign-up', {
        email: `new-${randomBytes(3).toString('hex')}@people.test`,
        password: PASSWORD,
        returnTo: link,
      })
      assert.equal(made.status, 303)
      assert.equal(made.headers.location, `/sign-in?notice=check-mail&returnTo=${encodeURIComponent(link)}`)
    })

    test("Accept with the session's CSRF token: member with the role, audited in the workspace, success page names it", async () => {
      const email = await person('accepts')
      const { token, link, id } = await invite(email, { project: 'invited', projectRole: 'viewer' })
      const br = await signIn(email, link)
      const page = await br.get(link)
      assert.equal(page.status, 200)
      const csrf = hiddenField(page.body, '_csrf')
      assert.equal(hiddenField(page.body, 'token'), token)
      const accepted = await br.form('/v1/account/invitations/accept', { token, _csrf: csrf })
      assert.equal(accepted.status, 303, accepted.body)
      assert.equal(accepted.headers.location, `/invite/accepted?workspace=${encodeURIComponent(h.a.slug)}`)
      const done = await br.get(String(accepted.headers.location))
      assert.equal(done.status, 200)
      const name = (await owner().get('/v1/me')).body.workspace.name as string
      assert.ok(done.body.includes(`You joined the workspace <strong>${esc(name)}</strong> as Member.`))
      assert.equal(await state(id), 'accepted')
      assert.ok(await isMember(email))
      const row = await h.db
        .selectFrom('project_members')
        .innerJoin('users', 'users.id', 'project_members.user_id')
        .select(['project_members.role'])
        .where('users.email', '=', email)
        .where('project_members.project_id', '=', projectId)
        .executeTakeFirst()
      assert.equal(row?.role, 'viewer')
      // Audited by the pipeline in the invited workspace, the person as the actor.
      const userId = (await h.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow()).id
      const entries = (await owner().get(`${W}/audit/entries?limit=5000`)).body.entries as Array<{
        action: string
        target: { id: string }
        details: string
        actor: { type: string; id: string }
      }>
      const text = JSON.stringify(entries)
      const acc = entries.find((e) => e.action === 'invitation.accept' && e.target.id === id)
      assert.ok(acc, 'invitation.accept is in the workspace log')
      assert.deepEqual([acc.actor.type, acc.actor.id], ['user', userId], 'the person is the actor')
      const add = entries.find((e) => e.action === 'member.add' && e.target.id === userId)
      assert.ok(
        add && JSON.parse(add.details).via === 'invitation' && JSON.parse(add.details).projectRole === 'viewer',
        'member.add is in the workspace log',
      )
      assert.ok(!text.includes(token), 'no token in the audit log')
      // Another workspace's log has no trace of it.
      assert.ok(!JSON.stringify((await api(h.app, h.b.token).get(`/v1/workspaces/${h.b.slug}/audit/entries`)).body).includes(id))
      // The success page names a workspace only to its members.
      const other = await br.get(`/invite/accepted?workspace=${encodeURIComponent(h.b.slug)}`)
      assert.equal(other.status, 303)
      assert.equal(other.headers.location, '/account')
    })

    test('a forged Accept (no CSRF token, a wrong one, or from another site) is refused and uses nothing', async () => {
      const email = await person('forged')
      const { token, link, id } = await invite(email)
      const br = await signIn(email, link)
      const csrf = hiddenField((await br.get(link)).body, '_csrf')
      for (const [what, form, more] of [
        ['no CSRF token', { token }, {}],
        ['a wrong CSRF token', { token, _csrf: `${csrf.slice(0, -2)}xx` }, {}],
        ['another site, right token', { token, _csrf: csrf }, { site: 'cross-site' as const, origin: 'https://evil.example' }],
      ] as const) {
        const r = await br.form('/v1/account/invitations/accept', form as Record<string, string>, more)
        assert.equal(r.status, 403, what)
        assert.equal(r.json?.error?.code, 'ERR_CSRF', what)
      }
      assert.equal(await state(id), 'pending', 'the invitation is still usable')
      assert.equal(await isMember(email), false)
    })

    test('the wrong account learns nothing and cannot accept', async () => {
      const invited = await person('invited')
      const intruder = await person('intruder')
      const { token, link, id } = await invite(invited, { project: 'invited', projectRole: 'viewer' })
      const br = await signIn(intruder, link)
      const page = await br.get(link)
      assert.equal(page.status, 403)
      assertPageHeaders(page, 'wrong-account page')
      assert.ok(page.body.includes(esc(INVITATION_WRONG_ACCOUNT_TEXT)))
      const name = (await owner().get('/v1/me')).body.workspace.name as string
      for (const hidden of [name, h.a.slug, invited, 'Invited', 'viewer', 'Member', token])
        assert.ok(!page.body.includes(hidden), `the wrong account does not see ${hidden}`)
      // Even with a session CSRF token (from its own account page), the POST is refused.
      const csrf = hiddenField((await br.get('/account')).body, '_csrf')
      const r = await br.form('/v1/account/invitations/accept', { token, _csrf: csrf })
      assert.equal(r.status, 303)
      assert.equal(r.headers.location, '/invite?error=ERR_INVITATION_WRONG_ACCOUNT')
      const back = await br.get(String(r.headers.location))
      assert.ok(back.body.includes(esc(INVITATION_WRONG_ACCOUNT_TEXT)) && !back.body.includes(name))
      assert.equal(await state(id), 'pending')
      assert.equal(await isMember(intruder), false)
    })

    test('a replayed, expired, revoked or made-up token gets one message, on the page and on Accept', async () => {
      const email = await person('replay')
      const used = await invite(email)
      const br = await signIn(email, used.link)
      const csrf = hiddenField((await br.get(used.link)).body, '_csrf')
      assert.equal((await br.form('/v1/account/invitations/accept', { token: used.token, _csrf: csrf })).status, 303)
      const later = await person('later')
      const revoked = await invite(later)
      assert.equal((await owner().del(`${W}/invitations/${revoked.id}`)).status, 200)
      const expiring = await invite(await person('expiring'), { expiresInDays: 1 })
      const madeUp = `/invite?token=coffer_inv_${'A'.repeat(32)}_${'b'.repeat(6)}`
      const pages: string[] = []
      offset = 0
      for (const link of [used.link, revoked.link, madeUp, '/invite?token=not-a-token', '/invite']) {
        const p = await br.get(link)
        assert.equal(p.status, 404, link)
        pages.push(p.body)
      }
      offset = 2 * 86_400_000
      try {
        const p = await br.get(expiring.link)
        assert.equal(p.status, 404, 'expired')
        pages.push(p.body)
      } finally {
        offset = 0
      }
      assert.ok(pages[0]!.includes(esc(INVITATION_INVALID_TEXT)))
      for (const p of pages) assert.equal(p, pages[0], 'every unusable token looks the same')
      // Replaying the accepted token through the form.
      const again = await br.form('/v1/account/invitations/accept', { token: used.token, _csrf: csrf })
      assert.equal(again.status, 303)
      assert.equal(again.headers.location, '/invite?error=ERR_INVITATION_INVALID')
      const shown = await br.get(String(again.headers.location))
      assert.ok(shown.body.includes(esc(INVITATION_INVALID_TEXT)))
      // And through the API, the same core rule.
      const viaApi = await br.post('/v1/invitations/accept', { token: used.token }, { headers: { 'x-csrf-token': csrf } })
      assert.equal(viaApi.json?.error?.code, 'ERR_INVITATION_INVALID')
    })

    test('returnTo naming another site (or anything but a local path) is refused', async () => {
      const email = await person('redirect')
      for (const evil of [
        'https://evil.example',
        '//evil.example/invite',
        '/\\evil.example',
        'javascript:alert(1)',
        ' https://evil.example',
        '/ok\nLocation: https://evil.example',
      ]) {
        const page = await browser(h.app, PUBLIC_URL).get(`/sign-in?returnTo=${encodeURIComponent(evil)}`)
        assert.equal(page.status, 200)
        assert.ok(
          !page.body.includes('evil.example') && !page.body.includes('name="returnTo"'),
          `the sign-in page drops ${JSON.stringify(evil)}`,
        )
        const r = await browser(h.app, PUBLIC_URL).form('/v1/auth/password/sign-in', { email, password: PASSWORD, returnTo: evil })
        assert.equal(r.status, 303)
        assert.equal(r.headers.location, '/', `sign-in with returnTo ${JSON.stringify(evil)} ends on the dashboard`)
        const failed = await browser(h.app, PUBLIC_URL).form('/v1/auth/password/sign-in', {
          email,
          password: 'wrong-password-x',
          returnTo: evil,
        })
        assert.equal(failed.headers.location, '/sign-in?error=ERR_INVALID_CREDENTIALS')
        const up = await browser(h.app, PUBLIC_URL).form('/v1/auth/password/sign-up', {
          email: `x-${randomBytes(3).toString('hex')}@people.test`,
          password: PASSWORD,
          returnTo: evil,
        })
        assert.equal(up.headers.location, '/sign-in?notice=check-mail')
      }
    })

    test('the token never reaches the server log', async () => {
      const lines: string[] = []
      const loud = await buildApp(h.ctx, { logger: { level: 'trace', stream: { write: (line: string) => void lines.push(line) } } })
      await loud.ready()
      const email = await person('logged')
      const { token, link } = await invite(email)
      try {
        const anon = browser(loud, PUBLIC_URL)
        assert.equal((await anon.get(link)).status, 200)
        assert.equal((await anon.get(`/sign-in?returnTo=${encodeURIComponent(link)}`)).status, 200)
        const br = browser(loud, PUBLIC_URL)
        const s = await br.form('/v1/auth/password/sign-in', { email, password: PASSWORD, returnTo: link })
        assert.equal(s.headers.location, link)
        const page = await br.get(link)
        const accepted = await br.form('/v1/account/invitations/accept', { token, _csrf: hiddenField(page.body, '_csrf') })
        assert.equal(accepted.status, 303)
        assert.equal((await br.get(link)).status, 404)
      } finally {
        await loud.close()
      }
      const log = lines.join('\n')
      assert.ok(log.includes('/invite?token=[redacted]'), 'the page requests were logged, token redacted')
      assert.ok(
        log.includes(`/sign-in?returnTo=${encodeURIComponent('/invite?token=[redacted]')}`),
        'the token inside returnTo is redacted too',
      )
      assert.ok(!log.includes(token), 'no token in the log')
      assert.ok(!log.includes(token.slice(11, 43)), 'not even its random part')
    })
  })
}

describeEachEngine(suite)
