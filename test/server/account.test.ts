// A person's own account: the JSON export (everything tied to the account, never a secret,
// a token or a password hash), deletion (refused for the last Owner of a workspace), and the
// audit entries both leave in each of the person's workspaces.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { browser, type Browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'

const PUBLIC_URL = 'http://coffer.test'

function suite(engine: EngineName): void {
  let h: Harness
  before(async () => {
    h = await startHarness(engine, { COFFER_PUBLIC_URL: PUBLIC_URL })
  })
  after(() => h?.close())

  /** A verified person with a password, member of A (and Owner of B when asked), signed in, with a token in A. */
  async function person(
    opts: { ownerOfB?: boolean } = {},
  ): Promise<{ id: string; email: string; token: string; br: Browser; csrf: string }> {
    const email = `p-${randomBytes(4).toString('hex')}@example.test`
    const password = `pw-${randomBytes(8).toString('hex')}`
    const hash = await hashPassword(password)
    const { id, token } = await h.ctx.committer.run(async (tx) => {
      const u = await ensureUser(tx, email, new Date())
      await tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('id', '=', u.id)
        .execute()
      await addMember(tx, h.a.id, u.id, 'member', new Date())
      if (opts.ownerOfB) await addMember(tx, h.b.id, u.id, 'owner', new Date())
      const t = await issueToken(tx, { workspaceId: h.a.id, userId: u.id, name: 'laptop' }, new Date())
      return { id: u.id, token: t.token }
    })
    const br = browser(h.app, PUBLIC_URL)
    const r = await br.post('/v1/auth/password/sign-in', { email, password })
    assert.equal(r.status, 200)
    return { id, email, token, br, csrf: r.json.csrfToken }
  }

  test('the export holds profile, memberships, token metadata, sessions and own audit entries — no token, hash or value', async () => {
    const p = await person({ ownerOfB: true })
    // Something the person did, to appear among their audit entries, with a secret value.
    const value = `canary-${randomBytes(12).toString('hex')}`
    const a = api(h.app, h.a.token)
    const proj = await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: `Export ${randomBytes(2).toString('hex')}` })
    assert.equal(proj.status, 201)

    const r = await p.br.get('/v1/account/export')
    assert.equal(r.status, 200)
    const e = r.json
    assert.equal(e.profile.email, p.email)
    assert.equal(e.profile.hasPassword, true)
    assert.deepEqual(
      e.memberships.map((m: { workspaceId: string; role: string }) => [m.workspaceId, m.role]).sort(),
      [
        [h.a.id, 'member'],
        [h.b.id, 'owner'],
      ].sort(),
    )
    assert.equal(e.tokens.length, 1)
    assert.equal(e.tokens[0].name, 'laptop')
    assert.ok(e.sessions.length >= 1)
    assert.ok(
      e.auditEntries.some((x: { action: string }) => x.action === 'auth.sign-in'),
      'their sign-in is among their entries',
    )
    const text = r.body
    assert.ok(
      !text.includes(p.token) && !text.includes('$argon2') && !text.includes(p.br.cookie('coffer_session')!) && !text.includes(value),
      'no token, hash, session id or value',
    )
    // The export itself is audited in both workspaces.
    await h.settle()
    for (const ws of [h.a.id, h.b.id]) {
      const n = await h.db
        .selectFrom('audit_entries')
        .select('id')
        .where('workspace_id', '=', ws)
        .where('action', '=', 'account.export')
        .where('actor_id', '=', p.id)
        .execute()
      assert.equal(n.length, 1)
    }
    // Not by token: a token is a credential of one workspace, the export spans them all.
    const byToken = await api(h.app, p.token).get('/v1/account/export')
    assert.deepEqual([byToken.status, byToken.body.error.code], [403, 'ERR_SESSION_REQUIRED'])
  })

  test('the last Owner of a workspace cannot delete the account; a confirmation that does not match is refused', async () => {
    const p = await person({ ownerOfB: true })
    // Make p B's only Owner for this test.
    const others = (
      await h.db
        .selectFrom('memberships')
        .select('user_id')
        .where('workspace_id', '=', h.b.id)
        .where('role', '=', 'owner')
        .where('user_id', '!=', p.id)
        .execute()
    ).map((r) => r.user_id)
    const setRole = (role: 'owner' | 'member') =>
      h.ctx.committer.run(
        (tx) => tx.updateTable('memberships').set({ role }).where('workspace_id', '=', h.b.id).where('user_id', 'in', others).execute(),
        h.b.id,
      )
    await setRole('member')
    try {
      const del = await p.br.post('/v1/account/delete', { confirmEmail: p.email }, { headers: { 'x-csrf-token': p.csrf } })
      assert.equal(del.status, 409)
      assert.equal(del.json.error.code, 'ERR_LAST_OWNER')
      const wrong = await p.br.post('/v1/account/delete', { confirmEmail: 'someone@else.test' }, { headers: { 'x-csrf-token': p.csrf } })
      assert.equal(wrong.status, 400)
      assert.equal(wrong.json.error.code, 'ERR_VALIDATION')
      assert.equal((await p.br.get('/v1/account')).status, 200, 'nothing was deleted')
    } finally {
      await setRole('owner')
    }
  })

  test('deleting the account removes it, its sessions and tokens, and is audited in each workspace', async () => {
    const p = await person({ ownerOfB: true })
    const r = await p.br.post('/v1/account/delete', { confirmEmail: p.email.toUpperCase() }, { headers: { 'x-csrf-token': p.csrf } })
    assert.equal(r.status, 200)
    assert.ok(
      r.setCookies.some((c) => /^coffer_session=;/.test(c)),
      'the cookie is cleared',
    )
    assert.equal((await p.br.get('/v1/account')).status, 401)
    assert.equal((await api(h.app, p.token).get('/v1/me')).status, 401, 'its tokens are gone')
    for (const table of ['users', 'sessions', 'tokens', 'memberships'] as const) {
      const col = table === 'users' ? 'id' : 'user_id'
      assert.equal(
        (
          await h.db
            .selectFrom(table)
            .select(col as never)
            .where(col as never, '=', p.id as never)
            .execute()
        ).length,
        0,
        `${table} emptied`,
      )
    }
    await h.settle()
    for (const ws of [h.a.id, h.b.id]) {
      const rows = await h.db
        .selectFrom('audit_entries')
        .select('action')
        .where('workspace_id', '=', ws)
        .where('target_id', '=', p.id)
        .execute()
      assert.ok(
        rows.some((x) => x.action === 'account.delete'),
        'deletion audited',
      )
    }
    for (const ws of [h.a.slug, h.b.slug]) {
      const v = await api(h.app, ws === h.a.slug ? h.a.token : h.b.token).get(`/v1/workspaces/${ws}/audit/verify`)
      assert.equal(v.body.ok, true, 'the audit chains still verify')
    }
  })
}

describeEachEngine(suite)
