// The Auditor workspace role (issue 5), from the attacker's side: a compliance reviewer who
// reads the whole audit log (entries, verification, checkpoints, proofs) and the metadata
// needed to read it, and never a secret — not by listing, revealing or writing, in any
// environment, restricted, open or sealed, whatever an Owner tries to grant; who cannot
// grant themself anything, change roles, invite, or approve break-glass; who cannot be given
// a project role (ERR_AUDITOR_PROJECT_ROLE); and whom an invitation with role auditor makes.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { BREAK_GLASS_ROLES } from '../../src/access/break-glass-requests.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import type { JsonBody } from '../helpers/json-body.js'
import { addPerson, type TestPerson } from '../helpers/principals.js'

type Reply = { status: number; body: JsonBody }

const canary = (label: string) => `${label}-${randomBytes(12).toString('hex')}`

function code(r: Reply, status: number, c: string, what = c): void {
  assert.equal(r.status, status, `${what}: status (got ${r.status} ${r.body?.error?.code ?? ''})`)
  assert.equal(r.body?.error?.code, c, what)
}

function suite(engine: EngineName): void {
  let h: Harness
  let W: string
  let P: string
  let auditor: TestPerson
  let admin: TestPerson
  const values = { development: canary('dev'), staging: canary('staging'), production: canary('prod') }
  const ENVS = ['development', 'staging', 'production'] as const
  const owner = () => api(h.app, h.a.token)
  const as = (p: TestPerson) => api(h.app, p.token)

  before(async () => {
    // Two approvals: the Owner and one Admin are the only possible approvers here.
    h = await startHarness(engine, { COFFER_BREAKGLASS_APPROVALS: '2' })
    W = `/v1/workspaces/${h.a.slug}`
    P = `${W}/projects/ledger`
    assert.equal((await owner().post(`${W}/projects`, { name: 'Ledger' })).status, 201)
    for (const env of ENVS)
      assert.equal((await owner().put(`${P}/environments/${env}/secrets/DB_PASSWORD`, { value: values[env] })).status, 200)
    // production starts restricted; staging is sealed on top.
    assert.equal((await owner().put(`${P}/environments/staging/seal`, { sealed: true })).status, 200)
    admin = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'admin' })
    auditor = await addPerson(h, { workspaceId: h.a.id, role: 'auditor', label: 'auditor' })
  })
  after(() => h?.close())

  /** Every way to read or change the secrets of `env`, as the auditor. */
  async function secretAttempts(env: string): Promise<Array<[string, Reply]>> {
    const a = as(auditor)
    const E = `${P}/environments/${env}`
    return [
      ['list keys', await a.get(`${E}/secrets`)],
      ['list with values', await a.get(`${E}/secrets?reveal=true`)],
      ['read one', await a.get(`${E}/secrets/DB_PASSWORD`)],
      ['reveal one', await a.get(`${E}/secrets/DB_PASSWORD?reveal=true`)],
      ['versions', await a.get(`${E}/secrets/DB_PASSWORD/versions`)],
      ['versions with values', await a.get(`${E}/secrets/DB_PASSWORD/versions?reveal=true`)],
      ['write', await a.put(`${E}/secrets/DB_PASSWORD`, { value: 'overwritten' })],
      ['bulk write', await a.post(`${E}/secrets`, { secrets: [{ key: 'NEW_KEY', value: 'x' }] })],
      ['delete', await a.del(`${E}/secrets/DB_PASSWORD`)],
      ['rollback', await a.post(`${E}/secrets/DB_PASSWORD/rollback`, { version: 1 })],
    ]
  }

  async function assertNoSecretAccess(when: string): Promise<void> {
    for (const env of ENVS) {
      for (const [what, r] of await secretAttempts(env)) {
        // The auditor sees the project and the environment, and has no access to their secrets: 403, never 404.
        code(r, 403, 'ERR_FORBIDDEN', `${when}: ${what} in ${env}`)
        const text = JSON.stringify(r.body)
        assert.ok(
          !text.includes('DB_PASSWORD') && !Object.values(values).some((v) => text.includes(v)),
          `${when}: ${what} in ${env} shows nothing`,
        )
      }
    }
    // The values are still what the Owner wrote.
    for (const env of ['development', 'production'] as const) {
      const r = await owner().get(`${P}/environments/${env}/secrets/DB_PASSWORD?reveal=true`)
      assert.equal(r.status, 200)
      assert.ok(r.body.secret.value === values[env], `${env} unchanged`)
    }
  }

  describe('what an auditor may read', () => {
    test('the whole audit log: entries, verification, checkpoints and proofs', async () => {
      const a = as(auditor)
      const entries = await a.get(`${W}/audit/entries`)
      assert.equal(entries.status, 200)
      const list = entries.body.entries as Array<{ seq: number; id: string; action: string; details: string }>
      assert.ok(
        list.some((e) => e.action === 'secret.create'),
        'the auditor sees that secrets were written',
      )
      assert.ok(!Object.values(values).some((v) => JSON.stringify(list).includes(v)), 'never their values')
      const verify = await a.get(`${W}/audit/verify`)
      assert.equal(verify.status, 200)
      assert.equal(verify.body.ok, true)
      const issued = await a.post(`${W}/audit/checkpoints`)
      assert.equal(issued.status, 201, 'an on-demand checkpoint only signs the current tree head')
      const latest = await a.get(`${W}/audit/checkpoint`)
      assert.equal(latest.status, 200)
      assert.equal(latest.body.checkpoint.treeSize, issued.body.checkpoint.treeSize)
      assert.equal(
        latest.body.publicKey,
        (await h.app.inject({ method: 'GET', url: '/v1/audit/public-key' }).then((r) => JSON.parse(r.body))).publicKey,
      )
      const size = issued.body.checkpoint.treeSize as number
      const inclusion = await a.get(`${W}/audit/proofs/inclusion?id=${list[0]!.id}&treeSize=${size}`)
      assert.equal(inclusion.status, 200)
      assert.equal(inclusion.body.treeSize, size)
      const consistency = await a.get(`${W}/audit/proofs/consistency?from=1&to=${size}`)
      assert.equal(consistency.status, 200)
      // The auditor's own checkpoint is in the log, under their name.
      const mine = (await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string; actor: { id: string } }>
      assert.ok(mine.some((e) => e.action === 'audit.checkpoint' && e.actor.id === auditor.userId))
    })

    test('the metadata needed to read it: workspace, members, projects, environments, keys, break-glass', async () => {
      const a = as(auditor)
      const me = await a.get('/v1/me')
      assert.equal(me.body.role, 'auditor')
      assert.equal((await a.get(W)).status, 200)
      const members = await a.get(`${W}/members`)
      assert.equal(members.status, 200)
      assert.ok(members.body.members.some((m: { userId: string; role: string }) => m.userId === auditor.userId && m.role === 'auditor'))
      assert.deepEqual(
        (await a.get(`${W}/projects`)).body.projects.map((p: { slug: string }) => p.slug),
        ['ledger'],
        'every project, with no project role',
      )
      assert.equal((await a.get(P)).status, 200)
      const envs = await a.get(`${P}/environments`)
      assert.equal(envs.status, 200)
      assert.deepEqual(envs.body.environments.map((e: { slug: string }) => e.slug).sort(), [...ENVS].sort())
      assert.equal((await a.get(`${P}/members`)).status, 200)
      const keys = await a.get(`${P}/environments/production/keys`)
      assert.equal(keys.status, 200)
      assert.ok(keys.body.versions.length >= 1)
      assert.equal((await a.get(`${W}/break-glass`)).status, 200)
      // Their own tokens.
      const t = await a.post(`${W}/tokens`, { name: 'review' })
      assert.equal(t.status, 201)
      const again = api(h.app, t.body.token)
      assert.equal((await again.get(`${W}/audit/verify`)).status, 200, "a token the auditor made is an auditor's token")
      code(await again.get(`${P}/environments/development/secrets`), 403, 'ERR_FORBIDDEN', 'and no more')
    })
  })

  describe('what an auditor never gets', () => {
    test('secrets: refused listing, revealing and writing in every environment, restricted, open or sealed', async () => {
      await assertNoSecretAccess('as made')
    })

    test('an Owner cannot give an auditor a project role, and grants need one; rows slipped into the database change nothing', async () => {
      for (const role of ['admin', 'developer', 'viewer']) {
        code(await owner().put(`${P}/members/${auditor.userId}`, { role }), 409, 'ERR_AUDITOR_PROJECT_ROLE', `project role ${role}`)
      }
      code(
        await owner().put(`${P}/environments/production/grants/${auditor.userId}`, { access: 'write' }),
        404,
        'ERR_NOT_FOUND',
        'a grant needs a project role',
      )
      assert.equal((await h.db.selectFrom('project_members').select('user_id').where('user_id', '=', auditor.userId).execute()).length, 0)
      assert.equal(
        (await h.db.selectFrom('environment_grants').select('user_id').where('user_id', '=', auditor.userId).execute()).length,
        0,
      )
      await assertNoSecretAccess('after the attempts')

      // A project-admin row and a write grant written straight into the database (the API never would).
      const projectId = (await owner().get(P)).body.project.id as string
      const production = ((await owner().get(`${P}/environments`)).body.environments as Array<{ slug: string; id: string }>).find(
        (e) => e.slug === 'production',
      )!.id
      const stray = await addPerson(h, {
        workspaceId: h.a.id,
        role: 'auditor',
        label: 'stray',
        project: { id: projectId, role: 'admin' },
        grant: { projectId, environmentId: production, access: 'write' },
      })
      for (const env of ENVS) {
        code(
          await as(stray).get(`${P}/environments/${env}/secrets/DB_PASSWORD?reveal=true`),
          403,
          'ERR_FORBIDDEN',
          `stray rows: reveal in ${env}`,
        )
        code(await as(stray).get(`${P}/environments/${env}/secrets`), 403, 'ERR_FORBIDDEN', `stray rows: list in ${env}`)
        code(
          await as(stray).put(`${P}/environments/${env}/secrets/DB_PASSWORD`, { value: 'x' }),
          403,
          'ERR_FORBIDDEN',
          `stray rows: write in ${env}`,
        )
      }
      code(
        await as(stray).put(`${P}/environments/production/restriction`, { restricted: false }),
        403,
        'ERR_FORBIDDEN',
        'stray rows: manage the project',
      )
    })

    test('no grant for themself, no role changes, no invitations, no management', async () => {
      const a = as(auditor)
      const E = `${P}/environments/production`
      const attempts: Array<[string, Reply]> = [
        ['grant themself read', await a.put(`${E}/grants/${auditor.userId}`, { access: 'read' })],
        ['lift the restriction', await a.put(`${E}/restriction`, { restricted: false })],
        ['list grants', await a.get(`${E}/grants`)],
        ['give themself a project role', await a.put(`${P}/members/${auditor.userId}`, { role: 'viewer' })],
        ['make themself admin', await a.put(`${W}/members/${auditor.userId}`, { role: 'admin' })],
        ['make themself member', await a.put(`${W}/members/${auditor.userId}`, { role: 'member' })],
        ['demote the admin', await a.put(`${W}/members/${admin.userId}`, { role: 'auditor' })],
        ['remove the admin', await a.del(`${W}/members/${admin.userId}`)],
        ['invite a friend as admin', await a.post(`${W}/invitations`, { email: 'friend@people.test', role: 'admin' })],
        ['invite a friend as auditor', await a.post(`${W}/invitations`, { email: 'friend@people.test', role: 'auditor' })],
        ['list invitations', await a.get(`${W}/invitations`)],
        ['create a project', await a.post(`${W}/projects`, { name: 'Mine' })],
        ['create an environment', await a.post(`${P}/environments`, { name: 'Mine' })],
        ['unseal staging', await a.put(`${P}/environments/staging/seal`, { sealed: false })],
        ['rotate a key', await a.post(`${E}/keys/rotate`, {})],
        [
          'make a service token',
          await a.post(`${W}/service-tokens`, { name: 'exfil', scopes: [{ project: 'ledger', environments: '*', access: 'read' }] }),
        ],
        [
          'make a machine identity',
          await a.post(`${W}/machines`, { name: 'exfil', scopes: [{ project: 'ledger', environments: '*', access: 'read' }] }),
        ],
        ['issue a sign-in link', await a.post(`${W}/auth-links`, { email: 'owner@acme.test', purpose: 'reset' })],
        ['delete the workspace', await a.del(W)],
      ]
      for (const [what, r] of attempts) code(r, 403, 'ERR_FORBIDDEN', what)
      assert.equal(
        (await owner().get(`${W}/members`)).body.members.find((m: { userId: string }) => m.userId === auditor.userId).role,
        'auditor',
      )
    })

    test('break-glass: no request, no approval, not counted among approvers', async () => {
      assert.deepEqual([...BREAK_GLASS_ROLES], ['owner', 'admin'])
      const a = as(auditor)
      code(
        await a.post(`${W}/break-glass`, {
          project: 'ledger',
          environment: 'staging',
          access: 'read',
          reason: 'audit sample',
          durationMinutes: 5,
        }),
        403,
        'ERR_FORBIDDEN',
        'request',
      )
      // The Admin asks; besides them only the Owner may approve: one approver, two needed — auditors do not count.
      code(
        await as(admin).post(`${W}/break-glass`, {
          project: 'ledger',
          environment: 'staging',
          access: 'read',
          reason: 'incident',
          durationMinutes: 5,
        }),
        409,
        'ERR_BREAK_GLASS_NO_APPROVERS',
        'auditors are no approvers',
      )
      // With a second Admin there are two approvers; the auditor still cannot approve, deny or revoke.
      const admin2 = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'admin2' })
      const req = await as(admin).post(`${W}/break-glass`, {
        project: 'ledger',
        environment: 'staging',
        access: 'read',
        reason: 'incident',
        durationMinutes: 5,
      })
      assert.equal(req.status, 201)
      const id = req.body.request.id as string
      code(await a.post(`${W}/break-glass/${id}/approve`, {}), 403, 'ERR_FORBIDDEN', 'approve')
      code(await a.post(`${W}/break-glass/${id}/deny`, {}), 403, 'ERR_FORBIDDEN', 'deny')
      code(await a.post(`${W}/break-glass/${id}/revoke`, {}), 403, 'ERR_FORBIDDEN', 'revoke')
      const seen = await a.get(`${W}/break-glass/${id}`)
      assert.equal(seen.status, 200, 'the auditor reads the request')
      assert.equal(seen.body.request.approvals, 0)
      assert.equal((await as(admin2).post(`${W}/break-glass/${id}/approve`, {})).status, 200)
      assert.equal((await owner().post(`${W}/break-glass/${id}/approve`, {})).status, 200)
      assert.equal(
        (await as(admin).get(`${P}/environments/staging/secrets/DB_PASSWORD?reveal=true`)).status,
        200,
        'the grant works for its requester',
      )
      code(await a.get(`${P}/environments/staging/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_FORBIDDEN', 'and for nobody else')
    })
  })

  describe('making auditors', () => {
    test('an invitation with role auditor yields an auditor; with a project it is refused', async () => {
      const outsider = await addPerson(h, { workspaceId: h.b.id, role: 'member', label: 'reviewer' })
      code(
        await owner().post(`${W}/invitations`, { email: outsider.email, role: 'auditor', project: 'ledger', projectRole: 'viewer' }),
        409,
        'ERR_AUDITOR_PROJECT_ROLE',
        'invite with a project',
      )
      code(
        await owner().post(`${W}/invitations`, { email: outsider.email, role: 'auditor', projectRole: 'viewer' }),
        409,
        'ERR_AUDITOR_PROJECT_ROLE',
        'invite with a project role',
      )
      const inv = await as(admin).post(`${W}/invitations`, { email: outsider.email, role: 'auditor' })
      assert.equal(inv.status, 201, 'an Admin invites an auditor')
      assert.equal(inv.body.invitation.role, 'auditor')
      const accepted = await as(outsider).post('/v1/invitations/accept', { token: inv.body.token, tokenName: 'acme' })
      assert.equal(accepted.status, 201)
      assert.equal(accepted.body.role, 'auditor')
      assert.equal(accepted.body.project, null)
      const inA = api(h.app, accepted.body.token)
      assert.equal((await inA.get('/v1/me')).body.role, 'auditor')
      assert.equal((await inA.get(`${W}/audit/entries`)).status, 200)
      code(await inA.get(`${P}/environments/development/secrets`), 403, 'ERR_FORBIDDEN', 'the invited auditor lists no keys')
      const added = ((await owner().get(`${W}/audit/entries?limit=5000`)).body.entries as Array<{ action: string; details: string }>)
        .filter((e) => e.action === 'member.add')
        .map((e) => JSON.parse(e.details))
        .find((d) => d.email === outsider.email)
      assert.equal(added?.role, 'auditor')
    })

    test('making a member auditor takes their project roles and grants away; the last Owner stays Owner', async () => {
      const projectId = (await owner().get(P)).body.project.id as string
      const dev = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'dev' })
      assert.equal((await owner().put(`${P}/members/${dev.userId}`, { role: 'developer' })).status, 200)
      assert.equal((await owner().put(`${P}/environments/production/grants/${dev.userId}`, { access: 'read' })).status, 200)
      assert.equal(
        (await as(dev).get(`${P}/environments/production/secrets/DB_PASSWORD?reveal=true`)).status,
        200,
        'before: a granted developer reveals',
      )
      const r = await as(admin).put(`${W}/members/${dev.userId}`, { role: 'auditor' })
      assert.equal(r.status, 200)
      assert.equal(r.body.member.role, 'auditor')
      code(await as(dev).get(`${P}/environments/production/secrets/DB_PASSWORD?reveal=true`), 403, 'ERR_FORBIDDEN', 'after: no reveal')
      code(await as(dev).get(`${P}/environments/development/secrets`), 403, 'ERR_FORBIDDEN', 'after: no listing')
      assert.equal(
        (
          await h.db
            .selectFrom('project_members')
            .select('user_id')
            .where('user_id', '=', dev.userId)
            .where('project_id', '=', projectId)
            .execute()
        ).length,
        0,
      )
      assert.equal((await h.db.selectFrom('environment_grants').select('user_id').where('user_id', '=', dev.userId).execute()).length, 0)
      const change = (
        (await as(auditor).get(`${W}/audit/entries?limit=5000`)).body.entries as Array<{
          action: string
          target: { id: string }
          details: string
        }>
      )
        .filter((e) => e.action === 'member.role_change' && e.target.id === dev.userId)
        .map((e) => JSON.parse(e.details))
        .at(-1)
      assert.deepEqual(
        { from: change.from, to: change.to, removedProjectRoles: change.removedProjectRoles, removedGrants: change.removedGrants },
        { from: 'member', to: 'auditor', removedProjectRoles: 1, removedGrants: 1 },
      )
      // Made a Member again, they start from nothing: the old project role did not come back.
      assert.equal((await as(admin).put(`${W}/members/${dev.userId}`, { role: 'member' })).status, 200)
      code(await as(dev).get(P), 404, 'ERR_NOT_FOUND', 'a Member without a project role sees no project')

      // Only an Owner unmakes an Owner, and the last Owner is never demoted — to auditor neither.
      const ownerId = (await owner().get('/v1/me')).body.user.id as string
      code(await as(admin).put(`${W}/members/${ownerId}`, { role: 'auditor' }), 403, 'ERR_FORBIDDEN', 'an Admin demoting the Owner')
      code(await owner().put(`${W}/members/${ownerId}`, { role: 'auditor' }), 409, 'ERR_LAST_OWNER', 'the last Owner')
      // An auditor's account is an Admin's to help with, like a Member's.
      assert.equal((await as(admin).post(`${W}/auth-links`, { email: auditor.email, purpose: 'verify' })).status, 201)
    })
  })
}

describeEachEngine(suite)
