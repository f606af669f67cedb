// Issue 16 §4 on both engines: environment diff by keyed fingerprints, promotion in one atomic
// write, and protected environments whose writes become change requests — from the attacker's
// side: the requester cannot approve their own request, a Member cannot approve, another
// workspace's request id is 404, a stale request is not applied over a newer value, and
// proposed values appear neither in the database in clear, nor in the audit log, nor in the
// API's answers unless revealed by a reader allowed to reveal the environment.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { changeRequestExpiryJob } from '../../src/jobs/lifecycle-jobs.js'
import { readInScope } from '../../src/storage/tenant-scope.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { startMailbox, type Mailbox } from '../helpers/mailbox.js'
import { addPerson } from '../helpers/principals.js'

type Client = ReturnType<typeof api>

const canary = (label: string) => `${label}-${randomBytes(12).toString('hex')}`

function suite(engine: EngineName): void {
  let h: Harness
  let owner: Client
  let admin1: Client
  let admin2: Client
  let mailbox: Mailbox
  const adminEmails: string[] = []
  let memberEmail: string
  let member: Client
  let viewer: Client
  let memberId: string
  let W: string
  let P: string
  let projectId: string

  const env = (e: string) => `${P}/environments/${e}`
  let offsetMs = 0

  before(async () => {
    mailbox = await startMailbox()
    h = await startHarness(engine, { COFFER_SMTP_URL: mailbox.url }, { clock: () => new Date(Date.now() + offsetMs) })
    owner = api(h.app, h.a.token)
    W = `/v1/workspaces/${h.a.slug}`
    const p = await owner.post(`${W}/projects`, { name: 'Shop' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
    P = `${W}/projects/shop`
    const a1 = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'admin1' })
    const a2 = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'admin2' })
    admin1 = api(h.app, a1.token)
    admin2 = api(h.app, a2.token)
    adminEmails.push(a1.email, a2.email)
    const m = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'dev', project: { id: projectId, role: 'developer' } })
    member = api(h.app, m.token)
    memberId = m.userId
    memberEmail = m.email
    viewer = api(
      h.app,
      (await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'viewer', project: { id: projectId, role: 'viewer' } })).token,
    )
  })
  after(async () => {
    await h?.close()
    await mailbox?.close()
  })

  test('diff: missing, extra, different and equal by fingerprint; values only with reveal, audited', async () => {
    const same = canary('same')
    const devOnly = canary('dev-only')
    assert.equal(
      (
        await owner.post(`${env('development')}/secrets`, {
          secrets: [
            { key: 'SAME', value: same },
            { key: 'DIFF', value: 'dev-value' },
            { key: 'DEV_ONLY', value: devOnly },
          ],
        })
      ).status,
      200,
    )
    assert.equal(
      (
        await owner.post(`${env('staging')}/secrets`, {
          secrets: [
            { key: 'SAME', value: same },
            { key: 'DIFF', value: 'staging-value' },
            { key: 'STAGING_ONLY', value: 'x' },
          ],
        })
      ).status,
      200,
    )
    // Deleted in staging: counts as missing there.
    assert.equal((await owner.put(`${env('staging')}/secrets/GONE`, { value: 'g' })).status, 200)
    assert.equal((await owner.del(`${env('staging')}/secrets/GONE`)).status, 200)
    assert.equal((await owner.put(`${env('development')}/secrets/GONE`, { value: 'g' })).status, 200)

    const d = await owner.get(`${env('development')}/diff?to=staging`)
    assert.equal(d.status, 200)
    const keys = (list: Array<{ key: string }>) => list.map((e) => e.key)
    assert.deepEqual(keys(d.body.missing), ['DEV_ONLY', 'GONE'])
    assert.deepEqual(keys(d.body.extra), ['STAGING_ONLY'])
    assert.deepEqual(keys(d.body.different), ['DIFF'])
    assert.deepEqual(keys(d.body.same), ['SAME'])
    assert.equal(d.body.valuesCompared, true)
    assert.ok(!JSON.stringify(d.body).includes(same), 'no value without reveal')
    assert.equal(d.body.different[0].fromValue, undefined)
    // A version written before migration 10 has no stored fingerprint: it is fingerprinted by
    // decrypting it, and compares the same.
    const staging = d.body.to.environmentId
    const legacy = await h.db
      .updateTable('secret_versions')
      .set({ value_fingerprint: null })
      .where('environment_id', '=', staging)
      .where('secret_id', 'in', (eb) =>
        eb.selectFrom('secrets').select('id').where('environment_id', '=', staging).where('key', 'in', ['SAME', 'DIFF']),
      )
      .executeTakeFirst()
    assert.equal(Number(legacy.numUpdatedRows), 2)
    const again = await owner.get(`${env('development')}/diff?to=staging`)
    assert.deepEqual(keys(again.body.same), ['SAME'])
    assert.deepEqual(keys(again.body.different), ['DIFF'])

    // Same values, different keys of different environments: equal fingerprints say so, without decrypting.
    const r = await owner.get(`${env('development')}/diff?to=staging&reveal=true`)
    assert.equal(r.status, 200)
    const diff = r.body.different.find((e: { key: string }) => e.key === 'DIFF')
    assert.equal(diff.fromValue, 'dev-value')
    assert.equal(diff.toValue, 'staging-value')
    await h.settle()
    const log = await readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.list(db, h.a.id, 0, 10_000))
    const revealed = log.filter((e) => e.action === 'secrets.diff_reveal')
    assert.equal(revealed.length, 1, 'the revealing diff is audited once')
    assert.ok(!JSON.stringify(log).includes(same), 'no value in the audit log')

    // Cross-project: project/env.
    assert.equal((await owner.post(`${W}/projects`, { name: 'Other' })).status, 201)
    const x = await owner.get(`${env('development')}/diff?to=development&toProject=other`)
    assert.equal(x.status, 200)
    assert.equal(x.body.missing.length, 4)

    // A viewer lists keys but may not compare values: keys in both are not compared, and reveal is refused.
    const v = await viewer.get(`${env('development')}/diff?to=staging`)
    assert.equal(v.status, 200)
    assert.equal(v.body.valuesCompared, false)
    assert.deepEqual(v.body.different, [])
    assert.deepEqual(keys(v.body.uncompared), ['DIFF', 'SAME'])
    assert.equal((await viewer.get(`${env('development')}/diff?to=staging&reveal=true`)).status, 403)
    // A developer may not reveal restricted production: reveal there is refused, naming nothing.
    assert.equal((await member.get(`${env('development')}/diff?to=production&reveal=true`)).status, 403)
    // Another workspace's owner: 404.
    assert.equal((await api(h.app, h.b.token).get(`${env('development')}/diff?to=staging`)).status, 404)
  })

  test('promote: one atomic write, versions in the target, check-and-set; a failing key writes nothing', async () => {
    const before = await owner.get(`${env('staging')}/secrets`)
    // A key missing in the source: nothing is written, not even the keys that exist.
    const bad = await owner.post(`${env('staging')}/promote`, { from: { environment: 'development' }, keys: ['DIFF', 'NOPE'] })
    assert.equal(bad.status, 404)
    assert.deepEqual((await owner.get(`${env('staging')}/secrets`)).body, before.body, 'nothing written')

    // A stale check-and-set: nothing written.
    const stale = await owner.post(`${env('staging')}/promote`, { from: { environment: 'development' }, keys: ['DIFF'], ifState: 'nope' })
    assert.equal(stale.status, 409)
    assert.equal(stale.body.error.code, 'ERR_ENVIRONMENT_CHANGED')

    const d = await owner.get(`${env('development')}/diff?to=staging`)
    const ok = await owner.post(`${env('staging')}/promote`, {
      from: { environment: 'development' },
      keys: ['DIFF', 'DEV_ONLY', 'SAME'],
      ifState: d.body.to.state,
    })
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    assert.deepEqual(
      ok.body.changes.map((e: { key: string }) => e.key),
      ['DIFF'],
    )
    assert.deepEqual(
      ok.body.adds.map((e: { key: string }) => e.key),
      ['DEV_ONLY'],
    )
    assert.deepEqual(
      ok.body.unchanged.map((e: { key: string }) => e.key),
      ['SAME'],
    )
    const diff = (await owner.get(`${env('staging')}/secrets/DIFF?reveal=true`)).body.secret
    assert.equal(diff.value, 'dev-value')
    assert.equal(diff.version, 2, 'a new version in the target')
    const after = await owner.get(`${env('development')}/diff?to=staging`)
    assert.deepEqual(after.body.different, [])

    // --all: every live key.
    const all = await owner.post(`${env('staging')}/promote`, { from: { environment: 'development' }, all: true })
    assert.equal(all.status, 200)
    assert.deepEqual(
      all.body.adds.map((e: { key: string }) => e.key),
      ['GONE'],
    )
    // A viewer cannot write, and a developer cannot promote into restricted production.
    assert.equal((await viewer.post(`${env('staging')}/promote`, { from: { environment: 'development' }, all: true })).status, 403)
    assert.equal((await member.post(`${env('production')}/promote`, { from: { environment: 'development' }, all: true })).status, 403)
  })

  test('protected environment: writes become change requests; N other admins approve; applied atomically', async () => {
    // Protecting needs enough other Owners/Admins.
    const tooMany = await owner.put(`${env('production')}/protection`, { approvals: 5 })
    assert.equal(tooMany.status, 409)
    assert.equal(tooMany.body.error.code, 'ERR_CHANGE_REQUEST_NO_APPROVERS')
    assert.equal((await member.put(`${env('production')}/protection`, { approvals: 1 })).status, 403)
    assert.equal((await owner.put(`${env('production')}/protection`, { approvals: 2 })).status, 200)
    const envs = await owner.get(`${P}/environments`)
    assert.equal(envs.body.environments.find((e: { slug: string }) => e.slug === 'production').changeApprovals, 2)

    const value = canary('prod-secret')
    const proposed = await owner.put(`${env('production')}/secrets/API_KEY`, { value })
    assert.equal(proposed.status, 202)
    const cr = proposed.body.changeRequest
    assert.equal(cr.status, 'pending')
    assert.equal(cr.kind, 'set')
    assert.deepEqual(cr.changes, [{ key: 'API_KEY', op: 'set', baseVersion: 0 }])
    assert.ok(!JSON.stringify(proposed.body).includes(value), 'no value in the answer')
    // Nothing written yet.
    assert.equal((await owner.get(`${env('production')}/secrets/API_KEY`)).status, 404)
    // The other Owners/Admins are told by mail (keys, never the value); the requester and Members are not.
    for (const email of adminEmails) {
      const mail = await mailbox.waitFor(email, (m) => m.text.includes(cr.id))
      assert.match(mail.subject, /Change request for shop\/production/)
      assert.match(mail.text, /set API_KEY/)
      assert.ok(!mail.text.includes(value))
    }
    assert.ok(!mailbox.mails.some((m) => m.to.includes(memberEmail) || m.to.includes('owner@acme.test')))
    // Not in clear in the database either.
    const rows = await h.db.selectFrom('change_requests').selectAll().where('id', '=', cr.id).execute()
    assert.equal(rows.length, 1)
    assert.ok(!Buffer.from(rows[0]!.payload_ct!).toString('latin1').includes(value), 'the proposal is sealed')
    assert.ok(!JSON.stringify({ ...rows[0], payload_ct: null }).includes(value))

    // The requester cannot approve their own request.
    const self = await owner.post(`${W}/change-requests/${cr.id}/approve`, {})
    assert.equal(self.status, 403)
    assert.equal(self.body.error.code, 'ERR_CHANGE_REQUEST_SELF_APPROVAL')
    // A Member cannot approve (and sees only their own requests: this one is 404 to them).
    assert.equal((await member.post(`${W}/change-requests/${cr.id}/approve`, {})).status, 403)
    assert.equal((await member.get(`${W}/change-requests/${cr.id}`)).status, 404)
    // Another workspace's request id: 404, whether through their URL or ours.
    const outsider = api(h.app, h.b.token)
    assert.equal((await outsider.post(`/v1/workspaces/${h.b.slug}/change-requests/${cr.id}/approve`, {})).status, 404)
    assert.equal((await outsider.get(`/v1/workspaces/${h.b.slug}/change-requests/${cr.id}`)).status, 404)
    assert.equal((await outsider.get(`${W}/change-requests/${cr.id}`)).status, 404)

    // Listing shows keys, never values; reveal only for a reader who may reveal production.
    const listed = await admin1.get(`${W}/change-requests?status=pending`)
    assert.equal(listed.status, 200)
    assert.ok(listed.body.changeRequests.some((r: { id: string }) => r.id === cr.id))
    assert.ok(!JSON.stringify(listed.body).includes(value))
    const revealed = await admin1.get(`${W}/change-requests/${cr.id}?reveal=true`)
    assert.equal(revealed.status, 200)
    assert.equal(revealed.body.changeRequest.changes[0].value, value)

    // First approval: counted, nothing applied.
    const a1 = await admin1.post(`${W}/change-requests/${cr.id}/approve`, { comment: 'ok' })
    assert.equal(a1.status, 200)
    assert.equal(a1.body.changeRequest.status, 'pending')
    assert.equal(a1.body.changeRequest.approvals, 1)
    const again = await admin1.post(`${W}/change-requests/${cr.id}/approve`, {})
    assert.equal(again.body.error.code, 'ERR_CHANGE_REQUEST_ALREADY_DECIDED')
    assert.equal((await owner.get(`${env('production')}/secrets/API_KEY`)).status, 404)
    // Second: applied.
    const a2 = await admin2.post(`${W}/change-requests/${cr.id}/approve`, {})
    assert.equal(a2.status, 200)
    assert.equal(a2.body.changeRequest.status, 'applied')
    const s = await owner.get(`${env('production')}/secrets/API_KEY?reveal=true`)
    assert.equal(s.body.secret.value, value)
    assert.equal(s.body.secret.version, 1)
    // Ended: the sealed proposal is erased, and it cannot be decided again.
    const ended = await h.db.selectFrom('change_requests').select('payload_ct').where('id', '=', cr.id).executeTakeFirstOrThrow()
    assert.equal(ended.payload_ct, null)
    assert.equal((await owner.post(`${W}/change-requests/${cr.id}/reject`, {})).body.error.code, 'ERR_CHANGE_REQUEST_SELF_APPROVAL')
    assert.equal((await admin1.post(`${W}/change-requests/${cr.id}/reject`, {})).body.error.code, 'ERR_CHANGE_REQUEST_CLOSED')

    await h.settle()
    const log = await readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.list(db, h.a.id, 0, 10_000))
    const actions = log.map((e) => e.action)
    for (const a of ['environment.protect', 'change.request', 'change.approve', 'change.apply', 'change.reveal', 'secret.create'])
      assert.ok(actions.includes(a as never), `${a} is audited`)
    assert.ok(!JSON.stringify(log).includes(value), 'no proposed value in the audit log')
  })

  test('a stale request is not applied over a newer value; bulk, delete, rollback and promote are proposed too; rejection ends one', async () => {
    // Two requests on the same key: the second applied first makes the first stale.
    const first = await admin1.put(`${env('production')}/secrets/API_KEY`, { value: 'first' })
    const second = await admin2.put(`${env('production')}/secrets/API_KEY`, { value: 'second' })
    assert.equal(first.status, 202)
    assert.equal(second.status, 202)
    for (const c of [owner, admin1])
      assert.equal((await c.post(`${W}/change-requests/${second.body.changeRequest.id}/approve`, {})).status, 200)
    assert.equal((await owner.get(`${env('production')}/secrets/API_KEY?reveal=true`)).body.secret.value, 'second')
    await owner.post(`${W}/change-requests/${first.body.changeRequest.id}/approve`, {})
    const st = await admin2.post(`${W}/change-requests/${first.body.changeRequest.id}/approve`, {})
    assert.equal(st.status, 200)
    assert.equal(st.body.changeRequest.status, 'stale')
    assert.match(st.body.changeRequest.outcome, /API_KEY is at version 2, not 1/)
    assert.equal((await owner.get(`${env('production')}/secrets/API_KEY?reveal=true`)).body.secret.value, 'second', 'the newer value stays')

    // A developer with a write grant proposes a bulk write; another set of admins applies it atomically.
    const bulk = await owner.post(`${env('production')}/secrets`, {
      secrets: [
        { key: 'B1', value: 'one' },
        { key: 'B2', value: 'two' },
      ],
    })
    assert.equal(bulk.status, 202)
    assert.equal(bulk.body.changeRequest.kind, 'bulk')
    const rej = await admin1.post(`${W}/change-requests/${bulk.body.changeRequest.id}/reject`, { comment: 'no' })
    assert.equal(rej.body.changeRequest.status, 'rejected')
    assert.equal((await owner.get(`${env('production')}/secrets/B1`)).status, 404)

    // Delete and rollback are proposed with their base versions.
    const del = await owner.del(`${env('production')}/secrets/API_KEY`)
    assert.equal(del.status, 202)
    assert.deepEqual(del.body.changeRequest.changes, [{ key: 'API_KEY', op: 'delete', baseVersion: 2 }])
    const rb = await owner.post(`${env('production')}/secrets/API_KEY/rollback`, { version: 1 })
    assert.equal(rb.status, 202)
    assert.deepEqual(rb.body.changeRequest.changes, [{ key: 'API_KEY', op: 'rollback', baseVersion: 2, toVersion: 1 }])
    for (const c of [admin1, admin2])
      assert.equal((await c.post(`${W}/change-requests/${rb.body.changeRequest.id}/approve`, {})).status, 200)
    const history = await owner.get(`${env('production')}/secrets/API_KEY/versions?reveal=true`)
    const v1 = history.body.versions.find((v: { version: number }) => v.version === 1).value
    const now = (await owner.get(`${env('production')}/secrets/API_KEY?reveal=true`)).body.secret
    assert.deepEqual([now.value, now.version], [v1, 3], 'rolled back to the value of version 1, as version 3')
    // The delete was based on version 2: now stale.
    for (const c of [admin1, admin2]) await c.post(`${W}/change-requests/${del.body.changeRequest.id}/approve`, {})
    assert.equal((await owner.get(`${W}/change-requests/${del.body.changeRequest.id}`)).body.changeRequest.status, 'stale')
    assert.equal((await owner.get(`${env('production')}/secrets/API_KEY`)).status, 200, 'not deleted')

    // Promote into production is a change request; copy and restore are refused.
    const pr = await owner.post(`${env('production')}/promote`, { from: { environment: 'staging' }, keys: ['DIFF'] })
    assert.equal(pr.status, 202)
    assert.equal(pr.body.changeRequest.kind, 'promote')
    assert.ok(!JSON.stringify(pr.body).includes('dev-value'))
    for (const c of [admin1, admin2])
      assert.equal((await c.post(`${W}/change-requests/${pr.body.changeRequest.id}/approve`, {})).status, 200)
    assert.equal((await owner.get(`${env('production')}/secrets/DIFF?reveal=true`)).body.secret.value, 'dev-value')
    const copy = await owner.post(`${env('staging')}/secrets/copy`, { keys: ['SAME'], to: { environment: 'production' } })
    assert.equal(copy.status, 409)
    assert.equal(copy.body.error.code, 'ERR_ENVIRONMENT_PROTECTED')

    // A member's own request: visible to them, values hidden unless they may reveal production (they may not).
    assert.equal((await owner.put(`${env('staging')}/protection`, { approvals: 1 })).status, 200)
    const mine = await member.put(`${env('staging')}/secrets/MINE`, { value: 'member-value' })
    assert.equal(mine.status, 202)
    const listed = await member.get(`${W}/change-requests`)
    assert.deepEqual(
      listed.body.changeRequests.map((r: { id: string }) => r.id),
      [mine.body.changeRequest.id],
      'a Member sees only their own requests',
    )
    assert.equal(listed.body.changeRequests[0].requester.id, memberId)
    const shown = await member.get(`${W}/change-requests/${mine.body.changeRequest.id}?reveal=true`)
    assert.equal(shown.status, 200, 'a developer may reveal staging')
    // A viewer of the project gets 404 for someone else's request.
    assert.equal((await viewer.get(`${W}/change-requests/${mine.body.changeRequest.id}`)).status, 404)
    // Lifting the protection makes writes direct again.
    assert.equal((await owner.put(`${env('staging')}/protection`, { approvals: 0 })).status, 200)
    assert.equal((await owner.put(`${env('staging')}/secrets/DIRECT`, { value: 'd' })).status, 200)
  })

  test('a key rotation reseals pending proposals and retires the old key version; the request still applies', async () => {
    const value = canary('rotated')
    const pending = await owner.put(`${env('production')}/secrets/ROTATED`, { value })
    assert.equal(pending.status, 202)
    const id = pending.body.changeRequest.id
    const before = await h.db.selectFrom('change_requests').select(['dek_version']).where('id', '=', id).executeTakeFirstOrThrow()
    const r = await owner.post(`${env('production')}/keys/rotate`, {})
    assert.equal(r.status, 202)
    for (let i = 0; i < 200; i++) {
      await h.ctx.resealer.runPending()
      const j = (await owner.get(`${W}/key-jobs/${r.body.job.id}`)).body.job
      if (j.state !== 'running') break
      await new Promise((res) => setTimeout(res, 20))
    }
    const job = (await owner.get(`${W}/key-jobs/${r.body.job.id}`)).body.job
    assert.equal(job.state, 'done', 'the reseal finishes while a request is pending')
    const after = await h.db.selectFrom('change_requests').select(['dek_version']).where('id', '=', id).executeTakeFirstOrThrow()
    assert.equal(after.dek_version, r.body.key.version, 'the proposal moved to the new key version')
    assert.ok(Number(after.dek_version) > Number(before.dek_version))
    const versions = await h.db
      .selectFrom('data_keys')
      .select('version')
      .where('environment_id', '=', pending.body.changeRequest.environment.id)
      .execute()
    assert.ok(!versions.some((v) => v.version === before.dek_version), 'the old version is destroyed')
    for (const c of [admin1, admin2]) assert.equal((await c.post(`${W}/change-requests/${id}/approve`, {})).status, 200)
    assert.equal((await owner.get(`${env('production')}/secrets/ROTATED?reveal=true`)).body.secret.value, value)
  })

  test('a .env apply is previewed as usual and proposed on write; a pending request expires after 7 days', async () => {
    const preview = await owner.post(`${env('production')}/secrets/apply`, { upserts: [{ key: 'FROM_ENV', value: 'e' }], dryRun: true })
    assert.equal(preview.status, 200, 'a dry run answers the diff')
    assert.deepEqual(
      preview.body.adds.map((e: { key: string }) => e.key),
      ['FROM_ENV'],
    )
    const applied = await owner.post(`${env('production')}/secrets/apply`, {
      upserts: [{ key: 'FROM_ENV', value: 'e' }],
      ifState: preview.body.state,
    })
    assert.equal(applied.status, 202)
    assert.equal(applied.body.changeRequest.kind, 'apply')
    const id = applied.body.changeRequest.id
    offsetMs = 8 * 24 * 3_600_000
    try {
      const shown = await admin1.get(`${W}/change-requests/${id}`)
      assert.equal(shown.body.changeRequest.status, 'expired')
      const late = await admin1.post(`${W}/change-requests/${id}/approve`, {})
      assert.equal(late.status, 409)
      assert.equal(late.body.error.code, 'ERR_CHANGE_REQUEST_CLOSED')
      const expired = await admin1.get(`${W}/change-requests?status=expired`)
      assert.ok(expired.body.changeRequests.some((r: { id: string }) => r.id === id))
      // The expiry job records it once (two runs, as on two nodes) and erases the sealed proposal.
      await changeRequestExpiryJob(h.ctx).run()
      await changeRequestExpiryJob(h.ctx).run()
      const row = await h.db
        .selectFrom('change_requests')
        .select(['payload_ct', 'dek_version'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      assert.deepEqual([row.payload_ct, row.dek_version], [null, null])
      await h.settle()
      const log = await readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.list(db, h.a.id, 0, 10_000))
      assert.equal(log.filter((e) => e.action === 'change.expired' && e.target.id === id).length, 1)
    } finally {
      offsetMs = 0
    }
    assert.equal((await owner.get(`${env('production')}/secrets/FROM_ENV`)).status, 404, 'never applied')
  })
}

describeEachEngine(suite)
