// Invitations, role changes and removal, as a new team would use them — and as an attacker
// would try them: an invitation accepted by the wrong person, twice, after revocation or
// expiry; an Admin making an Owner; the last Owner leaving; a removed member's token replayed.
// Mail goes through a real SMTP server.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { hashToken } from '../../src/identity/token-format.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { errorCode } from '../helpers/json-body.js'
import { startMailbox, type Mailbox } from '../helpers/mailbox.js'
import { addPerson } from '../helpers/principals.js'

const PUBLIC_URL = 'http://coffer.test'

function code(r: { status: number; body: unknown }, status: number, c: string, what = c): void {
  assert.equal(r.status, status, `${what}: status`)
  assert.equal(errorCode(r.body), c, what)
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
    assert.equal((await owner().put(`${W}/projects/invited/environments/development/secrets/DEV_KEY`, { value: 'dev-value' })).status, 200)
  })
  after(async () => {
    await h?.close()
    await mailbox?.close()
  })

  /** A person who belongs to workspace B only, with a Bearer token. */
  const outsider = (label: string) => addPerson(h, { workspaceId: h.b.id, role: 'member', label })

  describe('invitations', () => {
    test('invite with a project role, mailed; accept with a Bearer token; the token is single use', async () => {
      const alice = await outsider('alice')
      const r = await owner().post(`${W}/invitations`, {
        email: alice.email.toUpperCase(),
        role: 'member',
        project: 'invited',
        projectRole: 'viewer',
      })
      assert.equal(r.status, 201)
      const token = r.body.token as string
      assert.match(token, /^coffer_inv_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/)
      assert.equal(r.body.invitation.email, alice.email, 'emails are stored lower-cased')
      assert.equal(r.body.invitation.state, 'pending')
      assert.equal(r.body.acceptUrl, `${PUBLIC_URL}/invite?token=${token}`)
      assert.equal(r.body.mailed, true)
      const mail = await mailbox.waitFor(alice.email)
      assert.ok(mail.text.includes(token), 'the mail carries the token')
      assert.ok(mail.subject.includes('invited'))
      // Stored only as a hash; listings never show it.
      const row = await h.db.selectFrom('invitations').selectAll().where('id', '=', r.body.invitation.id).executeTakeFirstOrThrow()
      assert.ok(Buffer.from(row.token_hash).equals(hashToken(token)))
      assert.ok(!JSON.stringify({ ...row, token_hash: Buffer.from(row.token_hash).toString('hex') }).includes(token.slice(11, 43)))
      const listed = await owner().get(`${W}/invitations`)
      assert.equal(listed.status, 200)
      assert.ok(!JSON.stringify(listed.body).includes(token.slice(11, 43)), 'no token in the listing')

      // Accepted by the invited person (signed in through their token of another workspace).
      const a = api(h.app, alice.token)
      const accepted = await a.post('/v1/invitations/accept', { token, tokenName: 'acme' })
      assert.equal(accepted.status, 201)
      assert.equal(accepted.body.workspace.id, h.a.id)
      assert.equal(accepted.body.role, 'member')
      assert.deepEqual(accepted.body.project, { id: projectId, role: 'viewer' })
      const inA = api(h.app, accepted.body.token)
      assert.equal((await inA.get('/v1/me')).body.workspace.id, h.a.id)
      assert.deepEqual(
        (await inA.get(`${W}/projects`)).body.projects.map((p: { slug: string }) => p.slug),
        ['invited'],
      )
      assert.equal((await inA.get(`${W}/projects/invited/environments/development/secrets`)).status, 200, 'a viewer lists keys')
      code(
        await inA.get(`${W}/projects/invited/environments/development/secrets/DEV_KEY?reveal=true`),
        403,
        'ERR_FORBIDDEN',
        'a viewer never reveals',
      )

      // Twice: refused, and nothing changes.
      code(await a.post('/v1/invitations/accept', { token }), 404, 'ERR_INVITATION_INVALID', 'a second accept')
      const state = (await owner().get(`${W}/invitations`)).body.invitations.find((i: { id: string }) => i.id === r.body.invitation.id)
      assert.equal(state.state, 'accepted')

      const entries = (await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string; target: { id: string } }>
      for (const action of ['invitation.create', 'invitation.accept', 'member.add'])
        assert.ok(
          entries.some((e) => e.action === action),
          `audited: ${action}`,
        )
      assert.ok(!JSON.stringify(entries).includes(token.slice(11, 43)), 'no token in the audit log')
    })

    test('the wrong person cannot accept (and does not use it up); the right one then can', async () => {
      const bob = await outsider('bob')
      const carol = await outsider('carol')
      const r = await owner().post(`${W}/invitations`, { email: carol.email, role: 'admin' })
      assert.equal(r.status, 201)
      code(
        await api(h.app, bob.token).post('/v1/invitations/accept', { token: r.body.token }),
        403,
        'ERR_INVITATION_WRONG_ACCOUNT',
        "bob accepting carol's invitation",
      )
      code(
        await api(h.app, h.b.token).post('/v1/invitations/accept', { token: r.body.token }),
        403,
        'ERR_INVITATION_WRONG_ACCOUNT',
        "another workspace's Owner",
      )
      assert.equal(
        await h.db
          .selectFrom('memberships')
          .select('user_id')
          .where('workspace_id', '=', h.a.id)
          .where('user_id', '=', bob.userId)
          .executeTakeFirst(),
        undefined,
      )
      const ok = await api(h.app, carol.token).post('/v1/invitations/accept', { token: r.body.token })
      assert.equal(ok.status, 201)
      assert.equal(ok.body.role, 'admin')
      assert.equal(ok.body.token, null, 'no token unless asked')
    })

    test('revoked, expired, superseded, malformed and made-up invitations answer alike', async () => {
      const dave = await outsider('dave')
      const d = api(h.app, dave.token)
      const revoked = await owner().post(`${W}/invitations`, { email: dave.email })
      assert.equal((await owner().del(`${W}/invitations/${revoked.body.invitation.id}`)).body.invitation.state, 'revoked')
      code(await d.post('/v1/invitations/accept', { token: revoked.body.token }), 404, 'ERR_INVITATION_INVALID', 'revoked')

      const first = await owner().post(`${W}/invitations`, { email: dave.email, expiresInDays: 1 })
      const second = await owner().post(`${W}/invitations`, { email: dave.email, expiresInDays: 1 })
      code(
        await d.post('/v1/invitations/accept', { token: first.body.token }),
        404,
        'ERR_INVITATION_INVALID',
        'superseded by a newer invitation',
      )
      offset = 2 * 86_400_000
      try {
        code(await d.post('/v1/invitations/accept', { token: second.body.token }), 404, 'ERR_INVITATION_INVALID', 'expired')
      } finally {
        offset = 0
      }
      const body = second.body.token as string
      for (const token of [
        `${body.slice(0, -1)}${body.endsWith('A') ? 'B' : 'A'}`,
        body.replace('coffer_inv_', 'coffer_pat_'),
        'coffer_inv_',
        'x'.repeat(200),
      ]) {
        code(await d.post('/v1/invitations/accept', { token }), 404, 'ERR_INVITATION_INVALID', 'a forged token')
      }
      // An invitation token is not a credential.
      code(await api(h.app, body).get('/v1/me'), 401, 'ERR_UNAUTHENTICATED', 'an invitation as a Bearer token')
      code(
        await h.app
          .inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token: body } })
          .then((x) => ({ status: x.statusCode, body: JSON.parse(x.body) })),
        401,
        'ERR_UNAUTHENTICATED',
        'accept without signing in',
      )
    })

    test('accepting through a browser session needs its CSRF token', async () => {
      const email = `eve-${randomBytes(3).toString('hex')}@people.test`
      const password = `pw-${randomBytes(8).toString('hex')}`
      const hash = await hashPassword(password)
      await h.ctx.committer.run((tx) =>
        tx
          .insertInto('users')
          .values({
            id: crypto.randomUUID(),
            email,
            name: 'eve',
            created_at: new Date().toISOString(),
            password_hash: hash,
            email_verified_at: new Date().toISOString(),
            created_via: 'password',
          })
          .execute(),
      )
      const inv = await owner().post(`${W}/invitations`, { email, project: projectId, projectRole: 'developer' })
      const br = browser(h.app, PUBLIC_URL)
      const signedIn = await br.post('/v1/auth/password/sign-in', { email, password })
      assert.equal(signedIn.status, 200)
      const forged = await br.post('/v1/invitations/accept', { token: inv.body.token })
      assert.equal(forged.status, 403, 'no CSRF token')
      assert.equal(forged.json.error.code, 'ERR_CSRF')
      const ok = await br.post(
        '/v1/invitations/accept',
        { token: inv.body.token },
        { headers: { 'x-csrf-token': signedIn.json.csrfToken } },
      )
      assert.equal(ok.status, 201)
      assert.deepEqual(ok.json.project, { id: projectId, role: 'developer' })
      // The session now reaches the workspace's API, as a developer.
      const dev = await br.get(`${W}/projects/invited/environments/development/secrets/DEV_KEY?reveal=true`)
      assert.equal(dev.status, 200)
      assert.ok(dev.json.secret.value === 'dev-value', 'the developer reveals')
    })

    test('who may invite whom', async () => {
      const admin = await addPerson(h, { workspaceId: h.a.id, role: 'admin' })
      const member = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
      code(
        await api(h.app, admin.token).post(`${W}/invitations`, { email: 'would-be-owner@people.test', role: 'owner' }),
        403,
        'ERR_FORBIDDEN',
        'an Admin inviting an Owner',
      )
      assert.equal((await api(h.app, admin.token).post(`${W}/invitations`, { email: 'new-admin@people.test', role: 'admin' })).status, 201)
      code(await api(h.app, member.token).post(`${W}/invitations`, { email: 'x@people.test' }), 403, 'ERR_FORBIDDEN', 'a Member inviting')
      code(await api(h.app, member.token).get(`${W}/invitations`), 403, 'ERR_FORBIDDEN', 'a Member listing invitations')
      code(await owner().post(`${W}/invitations`, { email: member.email }), 409, 'ERR_ALREADY_EXISTS', 'inviting a member')
      assert.equal((await owner().post(`${W}/invitations`, { email: 'new-owner@people.test', role: 'owner' })).status, 201)
      code(
        await owner().post(`${W}/invitations`, { email: 'x@people.test', project: 'no-such-project' }),
        404,
        'ERR_NOT_FOUND',
        'an unknown project',
      )
      code(
        await api(h.app, h.b.token).post(`${W}/invitations`, { email: 'x@people.test' }),
        404,
        'ERR_NOT_FOUND',
        "another workspace's Owner",
      )
      code(
        await api(h.app, h.b.token).del(`${W}/invitations/${(await owner().get(`${W}/invitations`)).body.invitations[0].id}`),
        404,
        'ERR_NOT_FOUND',
        "revoking another tenant's invitation",
      )
    })
  })

  describe('roles, removal and the last Owner', () => {
    test('role changes: Admins manage Members and Admins, only an Owner touches an Owner, the last Owner stays', async () => {
      const me = (await owner().get('/v1/me')).body.user.id as string
      const admin = await addPerson(h, { workspaceId: h.a.id, role: 'admin' })
      const member = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
      const ad = api(h.app, admin.token)
      assert.equal((await ad.put(`${W}/members/${member.userId}`, { role: 'admin' })).body.member.role, 'admin')
      assert.equal((await ad.put(`${W}/members/${member.userId}`, { role: 'member' })).body.member.role, 'member')
      code(await ad.put(`${W}/members/${member.userId}`, { role: 'owner' }), 403, 'ERR_FORBIDDEN', 'an Admin making an Owner')
      code(await ad.put(`${W}/members/${me}`, { role: 'member' }), 403, 'ERR_FORBIDDEN', 'an Admin demoting the Owner')
      code(await ad.del(`${W}/members/${me}`), 403, 'ERR_FORBIDDEN', 'an Admin removing the Owner')
      code(
        await api(h.app, member.token).put(`${W}/members/${admin.userId}`, { role: 'member' }),
        403,
        'ERR_FORBIDDEN',
        'a Member changing roles',
      )
      code(await owner().put(`${W}/members/${me}`, { role: 'admin' }), 409, 'ERR_LAST_OWNER', 'the last Owner demoting themselves')
      code(await owner().post(`${W}/leave`), 409, 'ERR_LAST_OWNER', 'the last Owner leaving')
      code(await owner().del(`${W}/members/${me}`), 409, 'ERR_LAST_OWNER', 'the last Owner removing themselves')
      code(
        await owner().put(`${W}/members/00000000-0000-4000-8000-000000000000`, { role: 'admin' }),
        404,
        'ERR_NOT_FOUND',
        'no such member',
      )
      code(
        await owner().put(`${W}/members/${(await api(h.app, h.b.token).get('/v1/me')).body.user.id}`, { role: 'admin' }),
        404,
        'ERR_NOT_FOUND',
        'a member of another workspace',
      )
      const owners = async () => (await owner().get(`${W}/members`)).body.members.filter((m: { role: string }) => m.role === 'owner').length
      assert.equal(await owners(), 1)

      // With a second Owner, the first may step down.
      assert.equal((await owner().put(`${W}/members/${admin.userId}`, { role: 'owner' })).status, 200)
      assert.equal(await owners(), 2)
      assert.equal((await ad.put(`${W}/members/${me}`, { role: 'admin' })).status, 200, 'an Owner demotes another Owner')
      code(await ad.put(`${W}/members/${admin.userId}`, { role: 'member' }), 409, 'ERR_LAST_OWNER', 'now the last Owner')
      assert.equal((await ad.put(`${W}/members/${me}`, { role: 'owner' })).status, 200)
      const entries = (await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string; details: string }>
      assert.ok(entries.filter((e) => e.action === 'member.role_change').length >= 4, 'every role change is audited')
    })

    test('a removed member loses roles, grants and tokens at once; a member may leave', async () => {
      const m = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: projectId, role: 'developer' } })
      const c = api(h.app, m.token)
      assert.equal((await c.get(`${W}/projects/invited/environments/development/secrets/DEV_KEY?reveal=true`)).status, 200)
      const removed = await owner().del(`${W}/members/${m.userId}`)
      assert.equal(removed.status, 200)
      assert.equal(removed.body.revokedTokens, 1)
      code(await c.get('/v1/me'), 401, 'ERR_UNAUTHENTICATED', "the removed member's token replayed")
      assert.equal(await h.db.selectFrom('project_members').select('user_id').where('user_id', '=', m.userId).executeTakeFirst(), undefined)

      const leaver = await addPerson(h, { workspaceId: h.a.id, role: 'admin' })
      const left = await api(h.app, leaver.token).post(`${W}/leave`)
      assert.equal(left.status, 200)
      code(await api(h.app, leaver.token).get(`${W}/projects`), 401, 'ERR_UNAUTHENTICATED', 'after leaving')
      const entries = (await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string }>
      assert.ok(entries.some((e) => e.action === 'member.remove') && entries.some((e) => e.action === 'member.leave'))
    })

    test('project roles, restrictions and grants are managed by project admins and audited', async () => {
      const padmin = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: projectId, role: 'admin' } })
      const dev = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
      const pa = api(h.app, padmin.token)
      const P = `${W}/projects/invited`
      assert.equal((await pa.put(`${P}/members/${dev.userId}`, { role: 'developer' })).status, 200)
      const listed = await pa.get(`${P}/members`)
      const roleOf = (id: string) => listed.body.members.find((x: { userId: string }) => x.userId === id)?.role
      assert.deepEqual([roleOf(dev.userId), roleOf(padmin.userId)], ['developer', 'admin'])
      const d = api(h.app, dev.token)
      code(await d.put(`${P}/members/${dev.userId}`, { role: 'admin' }), 403, 'ERR_FORBIDDEN', 'a developer promoting themselves')
      code(
        await d.put(`${P}/environments/development/restriction`, { restricted: false }),
        403,
        'ERR_FORBIDDEN',
        'a developer lifting a restriction',
      )
      code(
        await d.put(`${P}/environments/production/grants/${dev.userId}`, { access: 'write' }),
        403,
        'ERR_FORBIDDEN',
        'a developer granting themselves',
      )
      assert.equal((await pa.put(`${P}/environments/production/secrets/PROD_KEY`, { value: 'prod' })).status, 200)
      code(await d.get(`${P}/environments/production/secrets/PROD_KEY?reveal=true`), 403, 'ERR_FORBIDDEN', 'restricted production')
      // Restrict development: the developer loses it too; grant write: back.
      assert.equal((await pa.put(`${P}/environments/development/restriction`, { restricted: true })).body.environment.restricted, true)
      code(await d.put(`${P}/environments/development/secrets/DEV_KEY`, { value: 'x' }), 403, 'ERR_FORBIDDEN', 'restricted development')
      assert.equal((await pa.put(`${P}/environments/development/grants/${dev.userId}`, { access: 'write' })).status, 200)
      assert.equal((await d.put(`${P}/environments/development/secrets/DEV_KEY`, { value: 'dev-value' })).status, 200)
      assert.equal((await pa.get(`${P}/environments/development/grants`)).body.grants.length, 1)
      assert.equal((await pa.del(`${P}/environments/development/grants/${dev.userId}`)).status, 200)
      code(await d.put(`${P}/environments/development/secrets/DEV_KEY`, { value: 'x' }), 403, 'ERR_FORBIDDEN', 'grant removed')
      assert.equal((await pa.put(`${P}/environments/development/restriction`, { restricted: false })).status, 200)
      // A grant needs a project role; removing the role removes its grants.
      const stranger = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
      code(
        await pa.put(`${P}/environments/production/grants/${stranger.userId}`, { access: 'read' }),
        404,
        'ERR_NOT_FOUND',
        'a grant to a non-member of the project',
      )
      assert.equal((await pa.put(`${P}/environments/production/grants/${dev.userId}`, { access: 'read' })).status, 200)
      assert.equal((await pa.del(`${P}/members/${dev.userId}`)).status, 200)
      assert.equal((await pa.get(`${P}/environments/production/grants`)).body.grants.length, 0)
      code(await d.get(P), 404, 'ERR_NOT_FOUND', 'no role: the project is gone for them')
      const actions = new Set(((await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string }>).map((e) => e.action))
      for (const a of [
        'project_member.set',
        'project_member.remove',
        'environment.restrict',
        'environment_grant.set',
        'environment_grant.remove',
      ])
        assert.ok(actions.has(a), `audited: ${a}`)
    })
  })
}

describeEachEngine(suite)
