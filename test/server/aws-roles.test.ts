// AWS role assumption. AWS is unreachable from here, so Coffer's STS endpoint
// (COFFER_AWS_STS_ENDPOINT) points at a local STS stand-in (test/helpers/sts-stand-in.ts) that
// verifies each AssumeRole request's SigV4 signature against the key given to Coffer's server
// through the AWS SDK's default chain, knows which roles exist and which external ID each
// one's trust policy requires, and refuses a session over an hour. Cases: the external ID and
// the CloudFormation template (Owners/Admins, audited), credentials issued and audited without
// their keys, a rotated external ID refused by "STS" as a clear ERR_AWS_ASSUME_ROLE, the
// server's own key refused, members without reveal rights refused, another workspace's role
// hidden (404), and nothing long-lived in any answer, the audit log, an export or a backup.
// Coffer's own store on both engines.
import assert from 'node:assert/strict'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createBackup } from '../../src/backup/backup-service.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'
import { awsEnvFor, startStsStandIn, type StsStandIn } from '../helpers/sts-stand-in.js'

const PRINCIPAL = 'arn:aws:iam::111122223333:role/coffer-server'
const ROLE_ARN = 'arn:aws:iam::444455556666:role/coffer-read-only'

function suite(engine: EngineName): void {
  let h: Harness
  let sts: StsStandIn
  let owner: ReturnType<typeof api>
  let W: string
  let R: string
  let projectId: string
  const answers: string[] = []
  const record = <T extends { body: unknown }>(r: T): T => {
    answers.push(JSON.stringify(r.body))
    return r
  }

  before(async () => {
    sts = await startStsStandIn()
    const { COFFER_AWS_STS_ENDPOINT, ...sdk } = awsEnvFor(sts)
    // Coffer's own AWS credentials reach it as an operator's would: the AWS SDK's default chain
    // reads them from the server process's environment (this test file is its own process).
    Object.assign(process.env, sdk)
    delete process.env.AWS_SESSION_TOKEN
    delete process.env.AWS_PROFILE
    h = await startHarness(engine, { COFFER_AWS_STS_ENDPOINT: COFFER_AWS_STS_ENDPOINT!, COFFER_AWS_PRINCIPAL_ARN: PRINCIPAL })
    owner = api(h.app, h.a.token)
    const p = await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Shop', slug: 'shop' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
    W = `/v1/workspaces/${h.a.slug}/aws`
    R = `/v1/workspaces/${h.a.slug}/projects/shop/environments/development/aws-roles`
  })
  after(async () => {
    await h?.close()
    await sts?.close()
  })

  const auditRows = async (action: string) => {
    await h.settle()
    return h.db
      .selectFrom('audit_entries')
      .select(['action', 'actor_type', 'details'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', action)
      .execute()
  }

  test('the external ID: Owners and Admins see it (audited), it is stable and unguessable, and the template requires it', async () => {
    const a = record(await owner.get(`${W}/external-id`))
    assert.equal(a.status, 200, JSON.stringify(a.body))
    assert.match(a.body.externalId, /^coffer-[0-9a-f]{40}$/)
    assert.equal(a.body.version, 1)
    assert.equal(a.body.principalArn, PRINCIPAL)
    assert.equal((await owner.get(`${W}/external-id`)).body.externalId, a.body.externalId, 'stable until rotated')
    const b = await api(h.app, h.b.token).get(`/v1/workspaces/${h.b.slug}/aws/external-id`)
    assert.notEqual(b.body.externalId, a.body.externalId, 'each workspace has its own')
    // Nothing stores it: the row holds a version only.
    const rows = await h.db.selectFrom('aws_external_ids').selectAll().execute()
    assert.ok(!JSON.stringify(rows).includes(a.body.externalId))

    const t = record(await owner.get(`${W}/template`))
    assert.equal(t.status, 200)
    const tpl = t.body.template
    assert.equal(tpl.Parameters.ExternalId.Default, a.body.externalId)
    assert.equal(tpl.Parameters.CofferPrincipalArn.Default, PRINCIPAL)
    const role = tpl.Resources.CofferRole
    assert.equal(role.Type, 'AWS::IAM::Role')
    assert.ok(role.Properties.MaxSessionDuration <= 3600)
    const trust = role.Properties.AssumeRolePolicyDocument.Statement[0]
    assert.deepEqual(trust.Principal, { AWS: { Ref: 'CofferPrincipalArn' } })
    assert.equal(trust.Action, 'sts:AssumeRole')
    assert.deepEqual(trust.Condition, { StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } })
    assert.match(JSON.stringify(role.Properties.ManagedPolicyArns), /policy\/ReadOnlyAccess/)

    const member = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: projectId, role: 'admin' } })
    for (const path of ['external-id', 'template']) assert.equal((await api(h.app, member.token).get(`${W}/${path}`)).status, 403, path)
    assert.equal((await api(h.app, member.token).post(`${W}/external-id/rotate`, {})).status, 403)
    const reads = await auditRows('aws.external_id_read')
    assert.ok(reads.length >= 3)
    assert.ok(!reads.some((e) => e.details.includes(a.body.externalId)), 'the audit log records the version, not the ID')
  })

  test('credentials issued with the external ID, within the hour, audited without their keys', async () => {
    const { externalId } = (await owner.get(`${W}/external-id`)).body
    sts.roles.set(ROLE_ARN, { externalId })
    const made = record(await owner.post(R, { name: 'readonly', roleArn: ROLE_ARN, region: 'eu-west-1' }))
    assert.equal(made.status, 201, JSON.stringify(made.body))
    assert.deepEqual(
      { name: made.body.role.name, roleArn: made.body.role.roleArn, region: made.body.role.region, max: made.body.role.maxDurationSeconds },
      { name: 'readonly', roleArn: ROLE_ARN, region: 'eu-west-1', max: 3600 },
    )
    assert.equal((await owner.post(R, { name: 'readonly', roleArn: ROLE_ARN })).status, 409)

    const before = Date.now()
    const issued = await owner.post(`${R}/readonly/credentials`, {})
    assert.equal(issued.status, 201, JSON.stringify(issued.body))
    const c = issued.body.credentials
    const handed = sts.issued.at(-1)!
    assert.equal(c.accessKeyId, handed.accessKeyId)
    assert.equal(c.secretAccessKey, handed.secretAccessKey)
    assert.equal(c.sessionToken, handed.sessionToken)
    assert.equal(c.region, 'eu-west-1')
    const expires = Date.parse(c.expiresAt)
    assert.ok(expires > before && expires <= Date.now() + 3600_000, 'expires within the hour')
    const sent = sts.requests.at(-1)!
    assert.equal(sent.status, 200)
    assert.equal(sent.params.ExternalId, externalId)
    assert.equal(sent.params.DurationSeconds, '3600')
    assert.equal(sent.params.RoleArn, ROLE_ARN)
    // The session names the actor (the Owner's email, within STS's alphabet).
    assert.match(sent.params.RoleSessionName!, /^coffer-owner[\w+=,.@-]*$/)
    assert.equal(c.sessionName, sent.params.RoleSessionName)
    assert.match(c.assumedRoleArn, /:assumed-role\/coffer-read-only\/coffer-/)

    const short = await owner.post(`${R}/readonly/credentials`, { durationSeconds: 900 })
    assert.equal(short.status, 201)
    assert.equal(sts.requests.at(-1)!.params.DurationSeconds, '900')
    assert.ok(Date.parse(short.body.credentials.expiresAt) <= Date.now() + 900_000)

    const entries = await auditRows('aws.credentials_issue')
    assert.equal(entries.length, 2)
    const d = JSON.parse(entries[0]!.details)
    const details = typeof d === 'string' ? JSON.parse(d) : d
    const flat = JSON.stringify(details)
    for (const want of [ROLE_ARN, 'readonly', c.sessionName]) assert.ok(flat.includes(want), `the entry names ${want}`)
    assert.ok(flat.includes('expiresAt'), 'the entry has the expiry')
    const all = JSON.stringify(await h.db.selectFrom('audit_entries').selectAll().execute())
    for (const issuedKeys of sts.issued)
      for (const secret of [issuedKeys.accessKeyId, issuedKeys.secretAccessKey, issuedKeys.sessionToken])
        assert.ok(!all.includes(secret), 'no issued key in the audit log')

    // A session longer than the role allows, or than an hour, is refused before STS is asked.
    const asked = sts.requests.length
    assert.equal((await owner.post(`${R}/readonly/credentials`, { durationSeconds: 7200 })).status, 400)
    assert.equal((await owner.post(R, { name: 'short', roleArn: ROLE_ARN, maxDurationSeconds: 900 })).status, 201)
    const tooLong = await owner.post(`${R}/short/credentials`, { durationSeconds: 1800 })
    assert.equal(tooLong.status, 400)
    assert.equal(tooLong.body.error.code, 'ERR_VALIDATION')
    assert.equal(sts.requests.length, asked, 'STS was not asked')
    for (const body of [
      { name: 'bad', roleArn: 'arn:aws:iam::123:role/x' },
      { name: 'bad', roleArn: 'arn:aws:s3:::bucket' },
      { name: 'bad', roleArn: ROLE_ARN, region: 'moon-1' },
      { name: 'bad', roleArn: ROLE_ARN, maxDurationSeconds: 7200 },
    ]) {
      const r = await owner.post(R, body)
      assert.equal(r.status, 400, JSON.stringify(body))
      assert.equal(r.body.error.code, 'ERR_VALIDATION')
    }
  })

  test('a rotated external ID: STS refuses the role until its stack is updated, as a clear ERR_AWS_ASSUME_ROLE', async () => {
    const old = (await owner.get(`${W}/external-id`)).body.externalId
    const rotated = record(await owner.post(`${W}/external-id/rotate`, {}))
    assert.equal(rotated.status, 200)
    assert.notEqual(rotated.body.externalId, old)
    assert.equal(rotated.body.version, 2)
    assert.equal((await owner.get(`${W}/external-id`)).body.externalId, rotated.body.externalId)
    const rotations = await auditRows('aws.external_id_rotate')
    assert.equal(rotations.length, 1)
    assert.ok(!rotations[0]!.details.includes(old) && !rotations[0]!.details.includes(rotated.body.externalId))

    // The stack still trusts the old ID: Coffer now sends the new one, and "STS" refuses.
    const refused = await owner.post(`${R}/readonly/credentials`, {})
    assert.equal(refused.status, 502, JSON.stringify(refused.body))
    assert.equal(refused.body.error.code, 'ERR_AWS_ASSUME_ROLE')
    assert.equal(sts.requests.at(-1)!.params.ExternalId, rotated.body.externalId, 'the old ID is never sent again')
    assert.match(refused.body.error.message, /AccessDenied/)
    assert.match(refused.body.error.message, /not authorized to perform: sts:AssumeRole/, "STS's message holds no secret: passed on")
    assert.ok(!refused.body.error.message.includes(rotated.body.externalId) && !refused.body.error.message.includes(old))

    // The stack updated with the new ID: it works again.
    sts.roles.set(ROLE_ARN, { externalId: rotated.body.externalId })
    assert.equal((await owner.post(`${R}/readonly/credentials`, {})).status, 201)
  })

  test("the server's own AWS key refused by STS (a wrong secret): ERR_AWS_ASSUME_ROLE, naming no key", async () => {
    const real = sts.keys.secretAccessKey
    sts.keys.secretAccessKey = 'not-the-key-coffer-signs-with'
    try {
      const r = await owner.post(`${R}/readonly/credentials`, {})
      assert.equal(r.status, 502)
      assert.equal(r.body.error.code, 'ERR_AWS_ASSUME_ROLE')
      assert.match(r.body.error.message, /own AWS credentials/)
      assert.equal(sts.requests.at(-1)!.code, 'SignatureDoesNotMatch', 'the stand-in checked the signature')
      assert.ok(!r.body.error.message.includes(real) && !r.body.error.message.includes(sts.keys.accessKeyId))
    } finally {
      sts.keys.secretAccessKey = real
    }
  })

  test('who may ask: reveal rights in the environment; roles are managed by project admins', async () => {
    const viewer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: projectId, role: 'viewer' } })
    const developer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: projectId, role: 'developer' } })
    const outsider = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
    const asked = sts.requests.length
    const v = await api(h.app, viewer.token).post(`${R}/readonly/credentials`, {})
    assert.equal(v.status, 403)
    assert.equal(v.body.error.code, 'ERR_FORBIDDEN')
    assert.equal((await api(h.app, viewer.token).get(R)).status, 200, 'a viewer lists the roles')
    assert.equal((await api(h.app, outsider.token).post(`${R}/readonly/credentials`, {})).status, 404)
    // Production starts restricted: a developer lists it but may not reveal there.
    const prod = `/v1/workspaces/${h.a.slug}/projects/shop/environments/production/aws-roles`
    assert.equal((await owner.post(prod, { name: 'prod', roleArn: ROLE_ARN })).status, 201)
    assert.equal((await api(h.app, developer.token).post(`${prod}/prod/credentials`, {})).status, 403)
    assert.equal(sts.requests.length, asked, 'STS was not asked for anyone refused')
    // A developer may not register or delete roles (project admins may).
    assert.equal((await api(h.app, developer.token).post(R, { name: 'mine', roleArn: ROLE_ARN })).status, 403)
    assert.equal((await api(h.app, developer.token).del(`${R}/short`)).status, 403)
    // A developer in an unrestricted environment may reveal, so may ask.
    const dev = await api(h.app, developer.token).post(`${R}/readonly/credentials`, {})
    assert.equal(dev.status, 201)
    assert.match(dev.body.credentials.sessionName, /^coffer-member-[0-9a-f]{8}@people\.test$/)
    // A machine identity scoped to read the environment may ask too; its session names it.
    const m = await owner.post(`/v1/workspaces/${h.a.slug}/machines`, {
      name: 'ci deploy',
      scopes: [{ project: projectId, environments: '*', access: 'read' }],
    })
    assert.equal(m.status, 201)
    const x = await h.app.inject({
      method: 'POST',
      url: '/v1/machine/token',
      payload: { clientId: m.body.clientId, clientSecret: m.body.clientSecret },
    })
    const machine = await api(h.app, JSON.parse(x.body).accessToken).post(`${R}/readonly/credentials`, {})
    assert.equal(machine.status, 201)
    assert.equal(machine.body.credentials.sessionName, 'coffer-machine-ci-deploy')
  })

  test('a sealed environment: people get a session only through a break-glass grant; integrations keep their scope', async () => {
    const staging = `/v1/workspaces/${h.a.slug}/projects/shop/environments/staging`
    assert.equal((await owner.post(`${staging}/aws-roles`, { name: 'sealed', roleArn: ROLE_ARN })).status, 201)
    assert.equal((await owner.put(`${staging}/seal`, { sealed: true })).status, 200)
    const asked = sts.requests.length
    const r = await owner.post(`${staging}/aws-roles/sealed/credentials`, {})
    assert.equal(r.status, 403)
    assert.equal(r.body.error.code, 'ERR_BREAK_GLASS_REQUIRED')
    assert.equal(sts.requests.length, asked, 'STS was not asked')
    const t = await owner.post(`/v1/workspaces/${h.a.slug}/service-tokens`, {
      name: 'sealed reader',
      scopes: [{ project: projectId, environments: '*', access: 'read' }],
    })
    assert.equal(t.status, 201)
    const svc = await api(h.app, t.body.token).post(`${staging}/aws-roles/sealed/credentials`, {})
    assert.equal(svc.status, 201, JSON.stringify(svc.body))
    assert.equal(svc.body.credentials.sessionName, 'coffer-token-sealed-reader')
    assert.equal((await owner.put(`${staging}/seal`, { sealed: false })).status, 200)
  })

  test("another workspace's roles and external ID answer 404", async () => {
    const other = api(h.app, h.b.token)
    for (const r of [
      await other.get(R),
      await other.post(`${R}/readonly/credentials`, {}),
      await other.del(`${R}/readonly`),
      await other.post(R, { name: 'x', roleArn: ROLE_ARN }),
      await other.get(`${W}/external-id`),
      await other.get(`${W}/template`),
      await other.post(`${W}/external-id/rotate`, {}),
    ]) {
      assert.equal(r.status, 404)
      assert.equal(r.body.error.code, 'ERR_NOT_FOUND')
    }
    // B's own environment with the same names holds no role of A's.
    assert.equal((await other.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Shop', slug: 'shop' })).status, 201)
    const bR = `/v1/workspaces/${h.b.slug}/projects/shop/environments/development/aws-roles`
    assert.deepEqual((await other.get(bR)).body.roles, [])
    assert.equal((await other.post(`${bR}/readonly/credentials`, {})).status, 404)
  })

  test('nothing long-lived in any answer, the audit log, an export or a backup; deleting a role forgets it', async () => {
    const longLived = [sts.keys.accessKeyId, sts.keys.secretAccessKey]
    answers.push(JSON.stringify((await owner.get(R)).body))
    answers.push(JSON.stringify((await owner.get(`/v1/workspaces/${h.a.slug}/audit/entries?limit=500`)).body))
    answers.push(JSON.stringify((await owner.get('/v1/account/export')).body))
    for (const a of answers) for (const s of longLived) assert.ok(!a.includes(s), 'no Coffer AWS key in an answer')
    const dir = mkdtempSync(join(tmpdir(), 'coffer-aws-backup-'))
    try {
      const { path } = await createBackup(
        { database: h.ctx.config.database, store: h.ctx.store, auditTree: h.ctx.auditTree, clock: h.ctx.clock },
        { dir, trigger: 'manual' },
      )
      const bytes = readFileSync(path)
      for (const s of longLived) assert.ok(!bytes.includes(Buffer.from(s)), 'no Coffer AWS key in the backup')
      for (const issued of sts.issued)
        for (const s of [issued.secretAccessKey, issued.sessionToken, issued.accessKeyId])
          assert.ok(!bytes.includes(Buffer.from(s)), 'no issued credential in the backup')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    const roles = await h.db.selectFrom('aws_roles').selectAll().execute()
    assert.deepEqual(Object.keys(roles[0]!).sort(), [
      'created_at',
      'created_by',
      'environment_id',
      'id',
      'max_duration_seconds',
      'name',
      'project_id',
      'region',
      'role_arn',
      'workspace_id',
    ])
    const deleted = await owner.del(`${R}/readonly`)
    assert.equal(deleted.status, 200)
    assert.equal((await owner.post(`${R}/readonly/credentials`, {})).status, 404)
    assert.equal((await auditRows('aws.role_delete')).length, 1)
  })
}

describeEachEngine(suite)
