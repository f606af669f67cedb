// Break-glass (issue 4 §4), from the attacker's side: sealed environments refuse every
// person's plaintext without a grant; grants need N approvals from other Owners/Admins, cover
// exactly their scope and access, end by themselves without any job, stop at once when
// revoked, and every step is in the verified audit log.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { Role } from '../../src/access/policy.js'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import { breakGlassExpiryJob } from '../../src/jobs/lifecycle-jobs.js'
import { API_ROUTES } from '../../src/server/app.js'
import { readInScope } from '../../src/storage/tenant-scope.js'
import type { AnyRoute } from '../../src/server/route.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import type { JsonBody } from '../helpers/json-body.js'
import { startMailbox, type Mailbox } from '../helpers/mailbox.js'
import { fillUrl, sampleBody } from '../helpers/routes.js'
import { injectAny } from '../helpers/inject-stream.js'

type Client = ReturnType<typeof api>
type Reply = { status: number; body: JsonBody }

const canary = (label: string) => `${label}-${randomBytes(12).toString('hex')}`

function assertCode(r: Reply, status: number, code: string, what = code): void {
  assert.equal(r.status, status, `${what}: status (got ${r.status} ${r.body?.error?.code ?? ''})`)
  assert.equal(r.body?.error?.code, code, what)
}

/** Workspace A's audit entries, read in its row-level security scope. */
/** Workspace A's audit log, with every entry queued until now integrated. */
async function entries(h: Harness) {
  await h.ctx.sequencer.catchUp(h.a.id)
  return readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.list(db, h.a.id, 0, 10_000))
}

/** A person of workspace A with `role` and a token. */
async function person(h: Harness, role: Role, label: string): Promise<{ id: string; email: string; token: string; client: Client }> {
  const r = await h.ctx.committer.run(async (tx) => {
    const u = await ensureUser(tx, `${label}-${randomBytes(3).toString('hex')}@acme.test`, new Date())
    await addMember(tx, h.a.id, u.id, role, new Date())
    const t = await issueToken(tx, { workspaceId: h.a.id, userId: u.id, name: `${label} token` }, new Date())
    return { id: u.id, email: u.email, token: t.token }
  })
  return { ...r, client: api(h.app, r.token) }
}

function suite(engine: EngineName): void {
  let h: Harness
  let offsetMs = 0
  let mailbox: Mailbox
  let owner: Client
  let ownerId: string
  let admin1: Awaited<ReturnType<typeof person>>
  let admin2: Awaited<ReturnType<typeof person>>
  let admin3: Awaited<ReturnType<typeof person>>
  let member: Awaited<ReturnType<typeof person>>
  const prodValue = canary('prod')
  const stagingValue = canary('staging')
  let W: string
  let PROD: string
  let STAGING: string
  let DEV: string

  before(async () => {
    mailbox = await startMailbox()
    h = await startHarness(
      engine,
      { COFFER_BREAKGLASS_APPROVALS: '2', COFFER_BREAKGLASS_MAX_MINUTES: '60', COFFER_SMTP_URL: mailbox.url },
      { clock: () => new Date(Date.now() + offsetMs) },
    )
    owner = api(h.app, h.a.token)
    ownerId = (await owner.get('/v1/me')).body.user.id
    admin1 = await person(h, 'admin', 'admin1')
    admin2 = await person(h, 'admin', 'admin2')
    admin3 = await person(h, 'admin', 'admin3')
    member = await person(h, 'member', 'member')
    W = `/v1/workspaces/${h.a.slug}`
    assert.equal((await owner.post(`${W}/projects`, { name: 'Ops' })).status, 201)
    PROD = `${W}/projects/ops/environments/production`
    STAGING = `${W}/projects/ops/environments/staging`
    DEV = `${W}/projects/ops/environments/development`
    assert.equal((await owner.put(`${PROD}/secrets/DB_PASSWORD`, { value: prodValue, comment: canary('comment') })).status, 200)
    assert.equal((await owner.put(`${STAGING}/secrets/DB_PASSWORD`, { value: stagingValue })).status, 200)
    assert.equal((await owner.put(`${DEV}/secrets/DB_PASSWORD`, { value: canary('dev') })).status, 200)
  })
  after(async () => {
    await h?.close()
    await mailbox?.close()
  })

  const grantRequest = (c: Client, body: Record<string, unknown>) =>
    c.post(`${W}/break-glass`, {
      project: 'ops',
      environment: 'production',
      access: 'read',
      reason: 'incident 42: payments down',
      durationMinutes: 10,
      ...body,
    })

  describe('sealing', () => {
    test('only Owners and Admins seal; the seal is audited', async () => {
      // A Member without a role on the project does not even see it (404); with one, the role still says no (403).
      const byMember = await member.client.put(`${PROD}/seal`, { sealed: true })
      assert.ok(byMember.status === 403 || byMember.status === 404, `a member cannot seal (got ${byMember.status})`)
      assert.equal((await owner.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`)).status, 200, 'still unsealed')
      const r = await admin1.client.put(`${PROD}/seal`, { sealed: true })
      assert.equal(r.status, 200)
      assert.equal(r.body.environment.sealed, true)
      assert.equal((await owner.put(`${STAGING}/seal`, { sealed: true })).status, 200)
      assertCode(await owner.put(`${PROD}/seal`, { sealed: 'yes' }), 400, 'ERR_VALIDATION')
      const seals = (await entries(h)).filter((e) => e.action === 'environment.seal')
      assert.equal(seals.length, 2)
    })

    test('in a sealed environment no person — not even the Owner — reveals or writes; listing stays', async () => {
      for (const c of [owner, admin1.client]) {
        assertCode(await c.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED', 'reveal one')
        assertCode(await c.get(`${PROD}/secrets?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED', 'reveal all')
        assertCode(await c.get(`${PROD}/secrets/DB_PASSWORD/versions?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED', 'reveal history')
        assertCode(await c.put(`${PROD}/secrets/DB_PASSWORD`, { value: 'overwrite' }), 403, 'ERR_BREAK_GLASS_REQUIRED', 'write')
        assertCode(
          await c.post(`${PROD}/secrets`, { secrets: [{ key: 'NEW', value: 'x' }] }),
          403,
          'ERR_BREAK_GLASS_REQUIRED',
          'bulk write',
        )
        assertCode(await c.post(`${PROD}/secrets/DB_PASSWORD/rollback`, { version: 1 }), 403, 'ERR_BREAK_GLASS_REQUIRED', 'rollback')
        assertCode(await c.del(`${PROD}/secrets/DB_PASSWORD`), 403, 'ERR_BREAK_GLASS_REQUIRED', 'delete')
        const list = await c.get(`${PROD}/secrets`)
        assert.equal(list.status, 200, 'listing keys stays allowed')
        assert.deepEqual(
          list.body.secrets.map((s: { key: string }) => s.key),
          ['DB_PASSWORD'],
        )
        assert.ok(!('value' in list.body.secrets[0]))
        const meta = await c.get(`${PROD}/secrets/DB_PASSWORD`)
        assert.equal(meta.status, 200, 'metadata stays allowed')
        assert.equal(meta.body.secret.version, 1, 'nothing was written')
      }
      // An unsealed environment is unaffected.
      assert.equal((await owner.get(`${DEV}/secrets/DB_PASSWORD?reveal=true`)).status, 200)
    })

    test("no API route shows a sealed environment's value to the Owner", async () => {
      const refs = {
        workspace: h.a.slug,
        project: 'ops',
        environment: 'production',
        key: 'DB_PASSWORD',
        token: '00000000-0000-4000-8000-000000000000',
        request: '00000000-0000-4000-8000-000000000000',
      }
      const samples: Record<string, unknown> = {}
      let checked = 0
      for (const r of API_ROUTES as AnyRoute[]) {
        if (r.url === '/v1/workspaces/:workspace' && r.method === 'DELETE') continue
        const names = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!)
        if (!names.every((n) => n in refs)) continue
        let url = fillUrl(r.url, refs)
        if (r.method === 'GET' && r.query?.safeParse({ reveal: 'true' }).success) url += '?reveal=true'
        let body: unknown
        try {
          body = sampleBody(r, samples)
        } catch {
          body = r.method === 'GET' || r.method === 'DELETE' ? undefined : {}
        }
        const res = await injectAny(h.app, {
          method: r.method,
          url,
          headers: { authorization: `Bearer ${h.a.token}` },
          ...(body === undefined ? {} : { payload: body as object }),
        })
        assert.ok(!res.body.includes(prodValue), `${r.method} ${r.url} must not show the sealed value`)
        checked++
      }
      assert.ok(checked >= 10, `checked ${checked} routes`)
      // The seal routes above were sent an invalid body, so production is still sealed.
      assertCode(await owner.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED')
    })
  })

  describe('requests and approvals', () => {
    let grantId: string

    test('bad requests are refused clearly and record nothing', async () => {
      assertCode(await grantRequest(owner, { reason: '' }), 400, 'ERR_VALIDATION', 'empty reason')
      assertCode(await grantRequest(owner, { reason: 'x'.repeat(1001) }), 400, 'ERR_VALIDATION', 'long reason')
      assertCode(await grantRequest(owner, { durationMinutes: 61 }), 400, 'ERR_VALIDATION', 'beyond COFFER_BREAKGLASS_MAX_MINUTES')
      assertCode(await grantRequest(owner, { access: 'admin' }), 400, 'ERR_VALIDATION', 'unknown access')
      assertCode(await grantRequest(owner, { environment: 'nope' }), 404, 'ERR_NOT_FOUND', 'unknown environment')
      assertCode(await grantRequest(member.client, {}), 403, 'ERR_FORBIDDEN', 'a member cannot request')
      assert.equal((await owner.get(`${W}/break-glass`)).body.requests.length, 0)
    })

    test('the requester cannot approve; a Member cannot approve; one approval is not enough', async () => {
      const r = await grantRequest(owner, {})
      assert.equal(r.status, 201)
      grantId = r.body.request.id
      assert.equal(r.body.request.status, 'pending')
      assert.equal(r.body.request.approvalsRequired, 2)
      assertCode(await owner.post(`${W}/break-glass/${grantId}/approve`, {}), 403, 'ERR_BREAK_GLASS_SELF_APPROVAL')
      assertCode(await owner.post(`${W}/break-glass/${grantId}/deny`, {}), 403, 'ERR_BREAK_GLASS_SELF_APPROVAL')
      assertCode(await member.client.post(`${W}/break-glass/${grantId}/approve`, {}), 403, 'ERR_FORBIDDEN')
      assertCode(await member.client.get(`${W}/break-glass`), 403, 'ERR_FORBIDDEN', 'a member cannot list requests')
      const one = await admin1.client.post(`${W}/break-glass/${grantId}/approve`, { comment: 'ok' })
      assert.equal(one.status, 200)
      assert.equal(one.body.request.status, 'pending')
      assert.equal(one.body.request.approvals, 1)
      assertCode(
        await admin1.client.post(`${W}/break-glass/${grantId}/approve`, {}),
        409,
        'ERR_BREAK_GLASS_ALREADY_DECIDED',
        'an approver counts once',
      )
      assertCode(await owner.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED', 'one approval is not enough')
      const pending = await admin2.client.get(`${W}/break-glass?status=pending`)
      assert.deepEqual(
        pending.body.requests.map((x: { id: string }) => x.id),
        [grantId],
        'the approvers see it in the list',
      )
      // Every other Owner/Admin is told by mail; the requester and Members are not.
      for (const a of [admin1, admin2, admin3]) {
        const mail = await mailbox.waitFor(a.email, (m) => m.text.includes(grantId))
        assert.match(mail.subject, /Break-glass request for ops\/production/)
        assert.match(mail.text, /incident 42: payments down/)
        assert.ok(!mail.text.includes(prodValue))
      }
      assert.ok(
        !mailbox.mails.some((m) => m.to.includes(member.email) || m.to.includes('owner@acme.test')),
        'no mail to the requester or a Member',
      )
    })

    test('the N-th approval activates the grant: exactly its scope and access, only for the requester', async () => {
      const two = await admin2.client.post(`${W}/break-glass/${grantId}/approve`, {})
      assert.equal(two.status, 200)
      assert.equal(two.body.request.status, 'active')
      const expires = Date.parse(two.body.request.expiresAt) - Date.parse(two.body.request.activatedAt)
      assert.equal(expires, 10 * 60_000, 'lasts the requested time from the last approval')
      assertCode(
        await admin3.client.post(`${W}/break-glass/${grantId}/approve`, {}),
        409,
        'ERR_BREAK_GLASS_CLOSED',
        'no approvals after activation',
      )

      const got = await owner.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`)
      assert.equal(got.status, 200)
      assert.ok(got.body.secret.value === prodValue, 'the grant reveals the sealed value')
      assert.equal((await owner.get(`${PROD}/secrets/DB_PASSWORD/versions?reveal=true`)).status, 200)
      assertCode(
        await owner.put(`${PROD}/secrets/DB_PASSWORD`, { value: 'nope' }),
        403,
        'ERR_BREAK_GLASS_REQUIRED',
        'a read grant does not write',
      )
      assertCode(
        await owner.get(`${STAGING}/secrets/DB_PASSWORD?reveal=true`),
        403,
        'ERR_BREAK_GLASS_REQUIRED',
        'another sealed environment stays sealed',
      )
      assertCode(
        await admin1.client.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`),
        403,
        'ERR_BREAK_GLASS_REQUIRED',
        'the approver gets nothing',
      )

      const uses = (await entries(h)).filter((e) => e.action === 'breakglass.use')
      assert.equal(uses.length, 2, 'each request served through the grant is an audit event')
      for (const u of uses) {
        assert.equal(u.target.id, grantId)
        assert.equal(JSON.parse(u.details).grant, grantId)
      }
    })

    test('it stops at its end by itself (no job), and the expiry is recorded once', async () => {
      offsetMs = 10 * 60_000 + 1000
      try {
        assertCode(await owner.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED', 'expired')
        const listed = await owner.get(`${W}/break-glass/${grantId}`)
        assert.equal(listed.body.request.status, 'expired')
        assertCode(await owner.post(`${W}/break-glass/${grantId}/revoke`, {}), 409, 'ERR_BREAK_GLASS_CLOSED', 'nothing to revoke')
        const job = breakGlassExpiryJob(h.ctx)
        await job.run()
        await job.run()
        await Promise.all([job.run(), job.run()])
        const expired = (await entries(h)).filter((e) => e.action === 'breakglass.expired')
        assert.equal(expired.length, 1)
        assert.equal(expired[0]!.target.id, grantId)
      } finally {
        offsetMs = 0
      }
    })

    test('read-write writes; a revoked grant stops at once; only the requester or an Owner revokes', async () => {
      const req = await grantRequest(admin1.client, { access: 'read-write', durationMinutes: 60 })
      assert.equal(req.status, 201)
      const id = req.body.request.id
      assert.equal((await owner.post(`${W}/break-glass/${id}/approve`, {})).status, 200)
      assert.equal((await admin2.client.post(`${W}/break-glass/${id}/approve`, {})).status, 200)
      const w = await admin1.client.put(`${PROD}/secrets/DB_PASSWORD`, { value: canary('rotated') })
      assert.equal(w.status, 200)
      assert.equal(w.body.secret.version, 2)
      assertCode(await admin3.client.post(`${W}/break-glass/${id}/revoke`, {}), 403, 'ERR_FORBIDDEN', 'another Admin cannot revoke')
      const rev = await admin1.client.post(`${W}/break-glass/${id}/revoke`, {})
      assert.equal(rev.status, 200)
      assert.equal(rev.body.request.status, 'revoked')
      assertCode(
        await admin1.client.put(`${PROD}/secrets/DB_PASSWORD`, { value: 'late' }),
        403,
        'ERR_BREAK_GLASS_REQUIRED',
        'revoked: stops at once',
      )
      assertCode(await admin1.client.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED')

      // An Owner may revoke someone else's request.
      const other = await grantRequest(admin2.client, {})
      const byOwner = await owner.post(`${W}/break-glass/${other.body.request.id}/revoke`, {})
      assert.equal(byOwner.status, 200)
      assert.equal(byOwner.body.request.status, 'revoked')
    })

    test('one denial ends a request', async () => {
      const req = await grantRequest(admin3.client, {})
      const id = req.body.request.id
      assert.equal((await admin1.client.post(`${W}/break-glass/${id}/approve`, {})).status, 200)
      const d = await admin2.client.post(`${W}/break-glass/${id}/deny`, { comment: 'not during the freeze' })
      assert.equal(d.status, 200)
      assert.equal(d.body.request.status, 'denied')
      assertCode(await owner.post(`${W}/break-glass/${id}/approve`, {}), 409, 'ERR_BREAK_GLASS_CLOSED', 'approving a denied request')
      assertCode(await admin3.client.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED')
    })

    test('an approval counts only while its approver is still an Owner or Admin', async () => {
      const temp = await person(h, 'admin', 'temp-admin')
      const req = await grantRequest(admin3.client, {})
      const id = req.body.request.id
      assert.equal((await temp.client.post(`${W}/break-glass/${id}/approve`, {})).status, 200)
      await h.ctx.committer.run(
        (tx) =>
          tx.updateTable('memberships').set({ role: 'member' }).where('workspace_id', '=', h.a.id).where('user_id', '=', temp.id).execute(),
        h.a.id,
      )
      const second = await admin1.client.post(`${W}/break-glass/${id}/approve`, {})
      assert.equal(second.status, 200)
      assert.equal(second.body.request.status, 'pending', 'the demoted approver no longer counts')
      assertCode(await admin3.client.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_BREAK_GLASS_REQUIRED')
      const third = await admin2.client.post(`${W}/break-glass/${id}/approve`, {})
      assert.equal(third.body.request.status, 'active')
      assert.equal((await admin3.client.get(`${PROD}/secrets/DB_PASSWORD?reveal=true`)).status, 200)
      assert.equal((await admin3.client.post(`${W}/break-glass/${id}/revoke`, {})).status, 200)
    })

    test("another workspace's request ids answer 404, and its people cannot act on ours", async () => {
      const b = api(h.app, h.b.token)
      const ids = (await owner.get(`${W}/break-glass`)).body.requests.map((r: { id: string }) => r.id)
      assert.ok(ids.length >= 4)
      const BW = `/v1/workspaces/${h.b.slug}`
      for (const id of ids) {
        assertCode(await b.get(`${BW}/break-glass/${id}`), 404, 'ERR_NOT_FOUND', "B reads A's request under B")
        for (const act of ['approve', 'deny', 'revoke']) {
          assertCode(await b.post(`${BW}/break-glass/${id}/${act}`, {}), 404, 'ERR_NOT_FOUND', `B ${act}s A's request under B`)
          assertCode(await b.post(`${W}/break-glass/${id}/${act}`, {}), 404, 'ERR_NOT_FOUND', `B ${act}s A's request under A`)
        }
      }
      assertCode(
        await owner.get(`${W}/break-glass/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`),
        404,
        'ERR_NOT_FOUND',
        'an unknown id',
      )
      assertCode(await owner.get(`${W}/break-glass/not-a-uuid`), 400, 'ERR_VALIDATION')
      assertCode(
        await b.post(`${BW}/break-glass`, { project: 'ops', environment: 'production', access: 'read', reason: 'x', durationMinutes: 5 }),
        404,
        'ERR_NOT_FOUND',
        "B names A's project",
      )
    })

    test('with too few other Owners/Admins a request is refused up front', async () => {
      const b = api(h.app, h.b.token)
      assert.equal((await b.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Solo' })).status, 201)
      assertCode(
        await b.post(`/v1/workspaces/${h.b.slug}/break-glass`, {
          project: 'solo',
          environment: 'production',
          access: 'read',
          reason: 'alone',
          durationMinutes: 5,
        }),
        409,
        'ERR_BREAK_GLASS_NO_APPROVERS',
      )
    })

    test('every step is in the audit log, and the chain verifies', async () => {
      const actions = new Set((await entries(h)).map((e) => e.action))
      for (const a of [
        'environment.seal',
        'breakglass.request',
        'breakglass.approve',
        'breakglass.activate',
        'breakglass.use',
        'breakglass.deny',
        'breakglass.revoke',
        'breakglass.expired',
      ]) {
        assert.ok(actions.has(a), `audited: ${a}`)
      }
      const v = await owner.get(`${W}/audit/verify`)
      assert.equal(v.status, 200)
      assert.equal(v.body.ok, true)
      const direct = await readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.verify(db, h.a.id))
      assert.equal(direct.ok, true)
      assert.ok(!JSON.stringify(await entries(h)).includes(prodValue), 'no value in the log')
      void ownerId
      void stagingValue
    })
  })
}

describeEachEngine(suite)
