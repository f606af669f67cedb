// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are Coffer references (${KEY}), not templates
// References (`${KEY}`, `${env.KEY}`, `${project.env.KEY}`), imports and personal overrides,
// from the reader's side and the attacker's: a member who may not read production references
// it and gets an error naming the reference, never the value; references to another
// workspace's project are not found; cycles, depth and malformed references are errors;
// `$${` escapes; another member (admins included) never sees my override — not in the list,
// a reveal, the environment fetch, history or an export — and a machine never does.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { addPerson, type TestPerson } from '../helpers/principals.js'

const PROD_SECRET = 'prod-db-password-7f3a9c'
const MY_OVERRIDE = 'my-own-local-db-b81d2e'

type Api = ReturnType<typeof api>

function suite(engine: EngineName): void {
  let h: Harness
  let owner: Api
  let dev: TestPerson // developer on "web": writes development, cannot read production
  let other: TestPerson // another developer on "web"
  let admin: TestPerson // workspace Admin
  let W: string
  let webId: string
  const envIds: Record<string, string> = {}

  const fetchAll = (who: Api, env: string, q = '') => who.get(`${W}/web/environments/${env}/secrets?reveal=true${q}`)
  const reveal = (who: Api, env: string, key: string, q = '') => who.get(`${W}/web/environments/${env}/secrets/${key}?reveal=true${q}`)
  const valuesOf = (body: { secrets: Array<{ key: string; value?: string }> }) =>
    Object.fromEntries(body.secrets.map((s) => [s.key, s.value]))

  before(async () => {
    h = await startHarness(engine)
    owner = api(h.app, h.a.token)
    W = `/v1/workspaces/${h.a.slug}/projects`
    const web = await owner.post(W, { name: 'Web' })
    assert.equal(web.status, 201)
    webId = web.body.project.id
    for (const e of web.body.environments as Array<{ slug: string; id: string }>) envIds[e.slug] = e.id
    assert.equal((await owner.post(W, { name: 'Api' })).status, 201)
    const theirs = await api(h.app, h.b.token).post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Theirs' })
    assert.equal(theirs.status, 201)
    await api(h.app, h.b.token).put(`/v1/workspaces/${h.b.slug}/projects/theirs/environments/development/secrets/B_SECRET`, {
      value: 'other-tenant',
    })
    dev = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: webId, role: 'developer' }, label: 'dev' })
    other = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: webId, role: 'developer' }, label: 'other' })
    admin = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'admin' })

    const put = async (who: Api, url: string, value: string) => assert.equal((await who.put(url, { value })).status, 200, url)
    await put(owner, `${W}/web/environments/production/secrets/DB_PASSWORD`, PROD_SECRET)
    await put(owner, `${W}/web/environments/staging/secrets/API_HOST`, 'staging.example')
    await put(owner, `${W}/api/environments/development/secrets/TOKEN`, 'api-dev-token')
    await put(owner, `${W}/web/environments/development/secrets/DB_HOST`, 'localhost')
    await put(owner, `${W}/web/environments/development/secrets/DB_PASSWORD`, 'dev-password')
    await put(owner, `${W}/web/environments/development/secrets/DB_URL`, 'postgres://app:${DB_PASSWORD}@${DB_HOST}/app')
    await put(owner, `${W}/web/environments/development/secrets/UPSTREAM`, 'https://${staging.API_HOST}/v1')
    await put(owner, `${W}/web/environments/development/secrets/API_TOKEN`, '${api.development.TOKEN}')
    await put(owner, `${W}/web/environments/development/secrets/LITERAL`, 'echo $${HOME} costs $5')
    await put(owner, `${W}/web/environments/development/secrets/PLAIN`, 'plain')
  })
  after(() => h?.close())

  test('references resolve in the environment fetch and a reveal; raw=true shows them as stored; $${ escapes', async () => {
    const all = await fetchAll(owner, 'development')
    assert.equal(all.status, 200, JSON.stringify(all.body))
    const v = valuesOf(all.body)
    assert.equal(v.DB_URL, 'postgres://app:dev-password@localhost/app')
    assert.equal(v.UPSTREAM, 'https://staging.example/v1')
    assert.equal(v.API_TOKEN, 'api-dev-token')
    assert.equal(v.LITERAL, 'echo ${HOME} costs $5')
    assert.equal(v.PLAIN, 'plain')
    const one = await reveal(owner, 'development', 'DB_URL')
    assert.equal(one.body.secret.value, 'postgres://app:dev-password@localhost/app')
    const raw = await fetchAll(owner, 'development', '&raw=true')
    assert.equal(valuesOf(raw.body).DB_URL, 'postgres://app:${DB_PASSWORD}@${DB_HOST}/app')
    assert.equal(valuesOf(raw.body).LITERAL, 'echo $${HOME} costs $5')
    assert.equal((await reveal(owner, 'development', 'UPSTREAM', '&raw=true')).body.secret.value, 'https://${staging.API_HOST}/v1')
    // The other tests read development as members without a role on "api" and as tokens scoped to one environment.
    assert.equal((await owner.del(`${W}/web/environments/development/secrets/API_TOKEN`)).status, 200)
    assert.equal((await owner.del(`${W}/web/environments/development/secrets/UPSTREAM`)).status, 200)
  })

  test('attacker: a developer who may not read production references ${production.KEY} and gets an error, not the value', async () => {
    const me = api(h.app, dev.token)
    // Production is restricted: the developer cannot reveal it directly.
    assert.equal((await reveal(me, 'production', 'DB_PASSWORD')).status, 403)
    assert.equal((await me.put(`${W}/web/environments/development/secrets/STEAL`, { value: 'x${production.DB_PASSWORD}x' })).status, 200)
    for (const r of [await fetchAll(me, 'development'), await reveal(me, 'development', 'STEAL')]) {
      assert.equal(r.status, 403)
      assert.equal(r.body.error.code, 'ERR_REFERENCE_FORBIDDEN')
      assert.match(r.body.error.message, /\$\{production\.DB_PASSWORD\}/, 'the error names the reference')
      assert.ok(!JSON.stringify(r.body).includes(PROD_SECRET), 'never the value')
    }
    // Nor through raw=true (which resolves nothing) or a key that does not exist there (the same answer as for one that does).
    assert.equal(valuesOf((await fetchAll(me, 'development', '&raw=true')).body).STEAL, 'x${production.DB_PASSWORD}x')
    await me.put(`${W}/web/environments/development/secrets/STEAL`, { value: '${production.NO_SUCH_KEY}' })
    assert.equal((await reveal(me, 'development', 'STEAL')).body.error.code, 'ERR_REFERENCE_FORBIDDEN', 'no hint whether the key exists')
    // The owner, who may read production, gets the value through the same reference.
    await owner.put(`${W}/web/environments/development/secrets/STEAL`, { value: 'x${production.DB_PASSWORD}x' })
    assert.equal((await reveal(owner, 'development', 'STEAL')).body.secret.value, `x${PROD_SECRET}x`)
    // A sealed environment needs a break-glass grant, even for the owner.
    assert.equal((await owner.put(`${W}/web/environments/production/seal`, { sealed: true })).status, 200)
    const sealed = await reveal(owner, 'development', 'STEAL')
    assert.equal(sealed.body.error.code, 'ERR_REFERENCE_FORBIDDEN')
    assert.ok(!JSON.stringify(sealed.body).includes(PROD_SECRET))
    // With an active read grant (approved as break-glass.ts requires) the reference resolves, and the use is audited.
    const ownerUser = await h.db.selectFrom('users').select('id').where('email', '=', 'owner@acme.test').executeTakeFirstOrThrow()
    const now = Date.now()
    await h.db
      .insertInto('breakglass_requests')
      .values({
        id: '11111111-1111-4111-8111-111111111111',
        workspace_id: h.a.id,
        requester_id: ownerUser.id,
        project_id: webId,
        environment_id: envIds.production!,
        access: 'read',
        reason: 'incident',
        duration_minutes: 5,
        approvals_required: 1,
        state: 'active',
        created_at: new Date(now).toISOString(),
        activated_at: new Date(now).toISOString(),
        expires_at: new Date(now + 5 * 60_000).toISOString(),
        ended_at: null,
        ended_by: null,
      })
      .execute()
    assert.equal((await reveal(owner, 'development', 'STEAL')).body.secret.value, `x${PROD_SECRET}x`)
    await h.settle()
    const uses = await h.db
      .selectFrom('audit_entries')
      .select('details')
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'breakglass.use')
      .execute()
    assert.equal(uses.length, 1, 'the grant use is audited')
    assert.equal(JSON.parse(uses[0]!.details).environment, envIds.production)
    await h.db
      .updateTable('breakglass_requests')
      .set({ state: 'revoked' })
      .where('id', '=', '11111111-1111-4111-8111-111111111111')
      .execute()
    assert.equal((await owner.put(`${W}/web/environments/production/seal`, { sealed: false })).status, 200)
    await owner.del(`${W}/web/environments/development/secrets/STEAL`)
  })

  test('attacker: a project without a role, a missing one and another workspace’s project are all "not found"', async () => {
    const me = api(h.app, dev.token)
    const answers: string[] = []
    for (const ref of ['${api.development.TOKEN}', '${nope.development.TOKEN}', '${theirs.development.B_SECRET}', '${nowhere.KEY}']) {
      assert.equal((await me.put(`${W}/web/environments/development/secrets/PROBE`, { value: ref })).status, 200)
      const r = await reveal(me, 'development', 'PROBE')
      assert.equal(r.status, 422, ref)
      assert.equal(r.body.error.code, 'ERR_REFERENCE_NOT_FOUND', ref)
      assert.ok(!JSON.stringify(r.body).includes('api-dev-token') && !JSON.stringify(r.body).includes('other-tenant'))
      answers.push(r.body.error.message.replace(ref, 'REF'))
    }
    assert.equal(new Set(answers).size, 1, 'the answers do not tell a hidden project from a missing one')
    // Even the owner of A cannot reach B's project: tenants never meet.
    await owner.put(`${W}/web/environments/development/secrets/PROBE`, { value: '${theirs.development.B_SECRET}' })
    assert.equal((await reveal(owner, 'development', 'PROBE')).body.error.code, 'ERR_REFERENCE_NOT_FOUND')
    await owner.put(`${W}/web/environments/development/secrets/PROBE`, { value: '${MISSING_KEY}' })
    assert.equal((await reveal(owner, 'development', 'PROBE')).body.error.code, 'ERR_REFERENCE_NOT_FOUND')
    await owner.del(`${W}/web/environments/development/secrets/PROBE`)
  })

  test('cycles, depth and malformed references are clear errors, and a malformed one is not echoed', async () => {
    const S = `${W}/api/environments/staging/secrets`
    await owner.put(`${S}/A`, { value: 'a-${B}' })
    await owner.put(`${S}/B`, { value: 'b-${A}' })
    const cyc = await owner.get(`${W}/api/environments/staging/secrets?reveal=true`)
    assert.equal(cyc.status, 422)
    assert.equal(cyc.body.error.code, 'ERR_REFERENCE_CYCLE')
    await owner.del(`${S}/A`)
    await owner.del(`${S}/B`)
    // A chain of 7: deeper than 5.
    for (let i = 0; i < 7; i++) await owner.put(`${S}/L${i}`, { value: i === 6 ? 'end' : `\${L${i + 1}}` })
    const deep = await owner.get(`${S}/L0?reveal=true`)
    assert.equal(deep.body.error.code, 'ERR_REFERENCE_DEPTH')
    assert.equal((await owner.get(`${S}/L2?reveal=true`)).body.secret.value, 'end', 'a chain of 4 resolves')
    for (let i = 0; i < 7; i++) await owner.del(`${S}/L${i}`)
    await owner.put(`${S}/BAD`, { value: 'pw=${hunter2:-secretpart}' })
    const bad = await owner.get(`${S}/BAD?reveal=true`)
    assert.equal(bad.body.error.code, 'ERR_REFERENCE_INVALID')
    assert.ok(!bad.body.error.message.includes('secretpart') && !bad.body.error.message.includes('hunter2'))
    await owner.put(`${S}/BAD`, { value: 'unclosed ${KEY' })
    assert.equal((await owner.get(`${S}/BAD?reveal=true`)).body.error.code, 'ERR_REFERENCE_INVALID')
    await owner.del(`${S}/BAD`)
  })

  test('a service token scoped to development cannot reach production through a reference', async () => {
    const t = await owner.post(`/v1/workspaces/${h.a.slug}/service-tokens`, {
      name: 'dev only',
      scopes: [{ project: webId, environments: [envIds.development], access: 'read' }],
    })
    assert.equal(t.status, 201)
    const svc = api(h.app, t.body.token)
    assert.equal((await fetchAll(svc, 'development')).status, 200)
    await owner.put(`${W}/web/environments/development/secrets/LEAK`, { value: '${production.DB_PASSWORD}' })
    const r = await fetchAll(svc, 'development')
    assert.equal(r.body.error.code, 'ERR_REFERENCE_NOT_FOUND', 'outside its scope: not found, like a URL naming it')
    assert.ok(!JSON.stringify(r.body).includes(PROD_SECRET))
    await owner.del(`${W}/web/environments/development/secrets/LEAK`)
  })

  test('referenced reads are audited: the entry names the reference and environment, never a value', async () => {
    assert.equal(
      (await owner.put(`${W}/web/environments/staging/secrets/UPSTREAM`, { value: 'https://${staging.API_HOST}/v1' })).status,
      200,
    )
    assert.equal((await owner.put(`${W}/web/environments/development/secrets/UPSTREAM`, { value: '${staging.UPSTREAM}' })).status, 200)
    assert.equal((await reveal(owner, 'development', 'UPSTREAM')).body.secret.value, 'https://staging.example/v1')
    await h.settle()
    const rows = await h.db
      .selectFrom('audit_entries')
      .select(['action', 'details'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'secret.reveal')
      .execute()
    const last = rows.map((r) => JSON.parse(r.details)).find((d) => d.key === 'UPSTREAM' && d.references)
    assert.ok(last, 'an audited reveal naming its references')
    assert.deepEqual(last.references, [{ reference: '${staging.UPSTREAM}', key: 'UPSTREAM', environment: envIds.staging }])
    const everything = JSON.stringify(rows)
    assert.ok(!everything.includes('staging.example') && !everything.includes(PROD_SECRET))
    await owner.del(`${W}/web/environments/development/secrets/UPSTREAM`)
    await owner.del(`${W}/web/environments/staging/secrets/UPSTREAM`)
  })

  test('imports: all keys of the imported environment, local keys win; readers are checked; cycles refused', async () => {
    const I = `${W}/web/environments/staging/imports`
    assert.equal((await owner.put(I, { imports: [{ environment: 'development' }] })).status, 200)
    await owner.put(`${W}/web/environments/staging/secrets/DB_HOST`, { value: 'staging-db' })
    const s = await fetchAll(owner, 'staging')
    assert.equal(s.status, 200, JSON.stringify(s.body))
    const v = valuesOf(s.body)
    assert.equal(v.DB_HOST, 'staging-db', 'local keys win')
    assert.equal(v.PLAIN, 'plain', 'imported')
    assert.equal(v.DB_URL, 'postgres://app:dev-password@localhost/app', 'resolved where it lives')
    assert.equal(s.body.secrets.find((x: { key: string }) => x.key === 'PLAIN').importedFrom, 'web/development')
    assert.equal((await reveal(owner, 'staging', 'PLAIN')).body.secret.value, 'plain', 'one imported key')
    // A cycle is refused when set.
    const cyc = await owner.put(`${W}/web/environments/development/imports`, { imports: [{ environment: 'staging' }] })
    assert.equal(cyc.status, 400)
    // Development importing production: a developer fetching development is refused, with no value.
    assert.equal((await owner.put(`${W}/web/environments/development/imports`, { imports: [{ environment: 'production' }] })).status, 200)
    const r = await fetchAll(api(h.app, dev.token), 'development')
    assert.equal(r.body.error.code, 'ERR_REFERENCE_FORBIDDEN')
    assert.ok(!JSON.stringify(r.body).includes(PROD_SECRET))
    assert.equal(valuesOf((await fetchAll(owner, 'development')).body).DB_PASSWORD, 'dev-password', 'local wins over the import')
    assert.equal((await owner.put(`${W}/web/environments/development/imports`, { imports: [] })).status, 200)
    assert.equal((await owner.put(I, { imports: [] })).status, 200)
    assert.equal((await owner.del(`${W}/web/environments/staging/secrets/DB_HOST`)).status, 200)
  })

  test('personal overrides: only mine, never in restricted environments, never for machines or other members', async () => {
    const me = api(h.app, dev.token)
    const them = api(h.app, other.token)
    const adm = api(h.app, admin.token)
    const P = `${W}/web/environments/development/secrets/DB_PASSWORD/personal`
    // Off by default.
    assert.equal((await me.put(P, { value: MY_OVERRIDE })).body.error.code, 'ERR_PERSONAL_OVERRIDE_NOT_ALLOWED')
    // Only a project admin turns the setting on.
    assert.equal((await me.put(`${W}/web/environments/development/personal-overrides`, { allowed: true })).status, 403)
    assert.equal((await owner.put(`${W}/web/environments/development/personal-overrides`, { allowed: true })).status, 200)
    const set = await me.put(P, { value: MY_OVERRIDE })
    assert.equal(set.status, 200, JSON.stringify(set.body))
    assert.deepEqual(Object.keys(set.body.override).sort(), ['key', 'updatedAt', 'version'])

    // I see it: the fetch, a reveal, references through it, the listing's mark.
    const mine = await fetchAll(me, 'development')
    assert.equal(valuesOf(mine.body).DB_PASSWORD, MY_OVERRIDE)
    assert.equal(valuesOf(mine.body).DB_URL, `postgres://app:${MY_OVERRIDE}@localhost/app`, 'references resolve through my override')
    assert.equal((await reveal(me, 'development', 'DB_PASSWORD')).body.secret.overridden, true)
    // raw=true is the shared value as stored (what an editor starts from), even for me.
    assert.equal((await reveal(me, 'development', 'DB_PASSWORD', '&raw=true')).body.secret.value, 'dev-password')
    assert.equal(valuesOf((await fetchAll(me, 'development', '&raw=true')).body).DB_PASSWORD, 'dev-password')
    const listed = await me.get(`${W}/web/environments/development/secrets`)
    assert.equal(listed.body.secrets.find((s: { key: string }) => s.key === 'DB_PASSWORD').overridden, true)

    // Nobody else does: another member, an Admin, the Owner, a machine — not in a list, a reveal, the fetch, history.
    const t = await owner.post(`/v1/workspaces/${h.a.slug}/service-tokens`, {
      name: 'reader',
      scopes: [{ project: webId, environments: '*', access: 'read' }],
    })
    for (const [who, label] of [
      [them, 'another member'],
      [adm, 'an admin'],
      [owner, 'the owner'],
      [api(h.app, t.body.token), 'a service token'],
    ] as const) {
      const all = await fetchAll(who, 'development')
      assert.equal(valuesOf(all.body).DB_PASSWORD, 'dev-password', label)
      assert.equal(valuesOf(all.body).DB_URL, 'postgres://app:dev-password@localhost/app', label)
      const bodies = [
        all,
        await reveal(who, 'development', 'DB_PASSWORD'),
        await who.get(`${W}/web/environments/development/secrets`),
        await who.get(`${W}/web/environments/development/secrets/DB_PASSWORD/versions?reveal=true`),
        await fetchAll(who, 'development', '&raw=true'),
      ]
      for (const b of bodies) {
        assert.ok(!JSON.stringify(b.body).includes(MY_OVERRIDE), `${label} never sees my override`)
        assert.ok(!JSON.stringify(b.body).includes('"overridden"'), `${label} is not told I hold one`)
      }
    }
    // My own history holds no override either: it is not a version.
    assert.ok(
      !JSON.stringify((await me.get(`${W}/web/environments/development/secrets/DB_PASSWORD/versions?reveal=true`)).body).includes(
        MY_OVERRIDE,
      ),
    )
    // Stored encrypted; the row bound to me: moved to another member, it does not decrypt for them.
    const rows = await h.db.selectFrom('personal_overrides').selectAll().where('workspace_id', '=', h.a.id).execute()
    assert.equal(rows.length, 1)
    assert.ok(!Buffer.from(rows[0]!.value_ct).includes(Buffer.from(MY_OVERRIDE)), 'ciphertext only')
    await h.db.updateTable('personal_overrides').set({ user_id: other.userId }).where('id', '=', rows[0]!.id).execute()
    const moved = await fetchAll(them, 'development')
    assert.equal(moved.status, 500)
    assert.equal(moved.body.error.code, 'ERR_DECRYPTION_FAILED')
    assert.ok(!JSON.stringify(moved.body).includes(MY_OVERRIDE))
    await h.db.updateTable('personal_overrides').set({ user_id: dev.userId }).where('id', '=', rows[0]!.id).execute()
    assert.equal(valuesOf((await fetchAll(me, 'development')).body).DB_PASSWORD, MY_OVERRIDE)

    // The audit entry names the key, never a value or a fingerprint of it.
    await h.settle()
    const audit = await h.db
      .selectFrom('audit_entries')
      .select(['details'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'secret.personal_set')
      .execute()
    assert.equal(audit.length, 1)
    assert.deepEqual(Object.keys(JSON.parse(audit[0]!.details)).sort(), ['environment', 'key', 'overrideVersion'])

    // Never in restricted (or sealed) environments; never for machines.
    const prod = await owner.put(`${W}/web/environments/production/personal-overrides`, { allowed: true })
    assert.equal(prod.status, 200)
    const inProd = await owner.put(`${W}/web/environments/production/secrets/DB_PASSWORD/personal`, { value: 'x' })
    assert.equal(inProd.body.error.code, 'ERR_PERSONAL_OVERRIDE_NOT_ALLOWED')
    const svcSet = await api(h.app, t.body.token).put(P, { value: 'x' })
    assert.notEqual(svcSet.status, 200)
    // An override replaces a value; it adds no key.
    assert.equal((await me.put(`${W}/web/environments/development/secrets/NO_SUCH/personal`, { value: 'x' })).status, 404)

    // Removing it brings the shared value back.
    assert.equal((await me.del(P)).status, 200)
    assert.equal(valuesOf((await fetchAll(me, 'development')).body).DB_PASSWORD, 'dev-password')
    assert.equal((await me.del(P)).status, 404)
  })

  test('a key rotation reseals overrides before the old key version is destroyed', async () => {
    const A = `${W}/api/environments/development`
    assert.equal((await owner.put(`${A}/personal-overrides`, { allowed: true })).status, 200)
    assert.equal((await owner.put(`${A}/secrets/TOKEN/personal`, { value: MY_OVERRIDE })).status, 200)
    const r = await owner.post(`${A}/keys/rotate`, {})
    assert.equal(r.status, 202)
    const end = Date.now() + 20_000
    let job = r.body.job
    while (job.state === 'running' && Date.now() < end) {
      await new Promise((ok) => setTimeout(ok, 20))
      job = (await owner.get(`/v1/workspaces/${h.a.slug}/key-jobs/${job.id}`)).body.job
    }
    assert.equal(job.state, 'done')
    const keys = (await owner.get(`${A}/keys`)).body
    assert.deepEqual(
      keys.versions.map((v: { version: number }) => v.version),
      [2],
      'version 1 is destroyed',
    )
    const row = await h.db.selectFrom('personal_overrides').select('dek_version').where('key', '=', 'TOKEN').executeTakeFirstOrThrow()
    assert.equal(row.dek_version, 2)
    assert.equal((await owner.get(`${A}/secrets/TOKEN?reveal=true`)).body.secret.value, MY_OVERRIDE)
    assert.equal((await owner.del(`${A}/secrets/TOKEN/personal`)).status, 200)
  })

  test('deleting an environment removes it from the imports of others', async () => {
    assert.equal((await owner.post(`${W}/web/environments`, { name: 'Scratch' })).status, 201)
    assert.equal((await owner.put(`${W}/web/environments/staging/imports`, { imports: [{ environment: 'scratch' }] })).status, 200)
    const del = await h.app.inject({
      method: 'DELETE',
      url: `${W}/web/environments/scratch`,
      headers: { authorization: `Bearer ${h.a.token}` },
      payload: { confirm: 'scratch', force: true },
    })
    assert.equal(del.statusCode, 200, del.body)
    const staging = await owner.get(`${W}/web/environments`)
    assert.deepEqual(staging.body.environments.find((e: { slug: string }) => e.slug === 'staging').imports, [])
    assert.equal((await fetchAll(owner, 'staging')).status, 200)
  })

  test('a removed member’s overrides go with them', async () => {
    const me = api(h.app, dev.token)
    assert.equal((await me.put(`${W}/web/environments/development/secrets/PLAIN/personal`, { value: 'mine' })).status, 200)
    assert.equal((await owner.del(`/v1/workspaces/${h.a.slug}/members/${dev.userId}`)).status, 200)
    const left = await h.db.selectFrom('personal_overrides').select('id').where('user_id', '=', dev.userId).execute()
    assert.equal(left.length, 0)
  })
}

describeEachEngine(suite)
