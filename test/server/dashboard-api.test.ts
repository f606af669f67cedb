// The /v1 additions the web dashboard needs (issue 14): project and environment rename and
// delete (crypto-shredding), the environment matrix with keyed fingerprints, the `.env` apply
// with its preview and check-and-set, and copying keys between environments — each from the
// user's side and from an attacker's (another workspace, a weaker role, bad input).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { readInScope } from '../../src/storage/tenant-scope.js'
import { describeEachEngine } from '../helpers/engines.js'
import { startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
/** Parsed JSON of an answer or an audit entry's details: its shape is what the assertions check. */
type Parsed = ReturnType<typeof JSON.parse>

async function call(h: Harness, token: string, method: Method, url: string, payload?: unknown) {
  const res = await h.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  })
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, raw: res.body }
}

function assertCode(r: { status: number; body: { error?: { code: string } } }, status: number, code: string, what = ''): void {
  assert.equal(r.status, status, `${what} ${JSON.stringify(r.body)}`)
  assert.equal(r.body.error?.code, code, what)
}

/** The audit entries of workspace A with `action`, oldest first, details parsed. */
async function entries(h: Harness, action: string): Promise<Array<{ action: string; target: { id: string }; details: Parsed }>> {
  const out: Array<{ action: string; target: { id: string }; details: Parsed }> = []
  let after = 0
  for (;;) {
    const r = await call(h, h.a.token, 'GET', `/v1/workspaces/${h.a.slug}/audit/entries?after=${after}&limit=1000`)
    assert.equal(r.status, 200)
    for (const e of r.body.entries)
      if (e.action === action) out.push({ action: e.action, target: e.target, details: JSON.parse(e.details) })
    if (r.body.next === null) return out
    after = r.body.next
  }
}

function suite(engine: EngineName): void {
  let h: Harness
  let W: string
  const P = (slug: string) => `${W}/projects/${slug}`
  const E = (project: string, env: string) => `${P(project)}/environments/${env}`

  async function project(name: string, slug: string): Promise<{ id: string; envs: Record<string, string> }> {
    const r = await call(h, h.a.token, 'POST', `${W}/projects`, { name, slug })
    assert.equal(r.status, 201)
    return { id: r.body.project.id, envs: Object.fromEntries(r.body.environments.map((e: Parsed) => [e.slug, e.id])) }
  }
  async function put(token: string, p: string, env: string, key: string, value: string, extra: object = {}) {
    const r = await call(h, token, 'PUT', `${E(p, env)}/secrets/${key}`, { value, ...extra })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body.secret
  }
  async function reveal(p: string, env: string, key: string) {
    const r = await call(h, h.a.token, 'GET', `${E(p, env)}/secrets/${key}?reveal=true`)
    return r.status === 200 ? r.body.secret : null
  }

  before(async () => {
    h = await startHarness(engine)
    W = `/v1/workspaces/${h.a.slug}`
  })
  after(() => h?.close())

  describe('renaming projects and environments', () => {
    test('the name changes, the slug does not; audited; a viewer, a developer and another workspace cannot', async () => {
      const p = await project('Rename Me', 'rename-me')
      const viewer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'viewer' } })
      const developer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'developer' } })
      const r = await call(h, h.a.token, 'PATCH', P('rename-me'), { name: 'Renamed <b>' })
      assert.equal(r.status, 200)
      assert.deepEqual([r.body.project.slug, r.body.project.name], ['rename-me', 'Renamed <b>'])
      assert.equal((await call(h, h.a.token, 'GET', P('rename-me'))).body.project.name, 'Renamed <b>')
      const e = (await entries(h, 'project.rename')).at(-1)
      assert.deepEqual([e?.details.from, e?.details.to], ['Rename Me', 'Renamed <b>'])

      const env = await call(h, h.a.token, 'PATCH', E('rename-me', 'staging'), { name: 'Pre-production' })
      assert.equal(env.status, 200)
      assert.deepEqual([env.body.environment.slug, env.body.environment.name], ['staging', 'Pre-production'])
      assert.equal((await entries(h, 'environment.rename')).at(-1)?.details.to, 'Pre-production')

      assertCode(await call(h, viewer.token, 'PATCH', P('rename-me'), { name: 'x' }), 403, 'ERR_FORBIDDEN', 'a viewer')
      assertCode(await call(h, developer.token, 'PATCH', E('rename-me', 'staging'), { name: 'x' }), 403, 'ERR_FORBIDDEN', 'a developer')
      // Another workspace's Owner, by slug and by id: not found, never forbidden.
      assertCode(await call(h, h.b.token, 'PATCH', P('rename-me'), { name: 'x' }), 404, 'ERR_NOT_FOUND', 'another workspace')
      assertCode(
        await call(h, h.b.token, 'PATCH', `/v1/workspaces/${h.b.slug}/projects/${p.id}`, { name: 'x' }),
        404,
        'ERR_NOT_FOUND',
        "another workspace's id under its own workspace",
      )
      // Bad bodies: clear validation errors.
      assertCode(await call(h, h.a.token, 'PATCH', P('rename-me'), { name: '   ' }), 400, 'ERR_VALIDATION', 'blank')
      assertCode(await call(h, h.a.token, 'PATCH', P('rename-me'), { name: 'x'.repeat(129) }), 400, 'ERR_VALIDATION', 'too long')
      assertCode(await call(h, h.a.token, 'PATCH', P('rename-me'), { name: 'x', slug: 'other' }), 400, 'ERR_VALIDATION', 'slug')
      const bad = await h.app.inject({
        method: 'PATCH',
        url: P('rename-me'),
        headers: { authorization: `Bearer ${h.a.token}`, 'content-type': 'application/json' },
        payload: '{"name":',
      })
      assert.equal(JSON.parse(bad.body).error.code, 'ERR_MALFORMED_BODY')
      assert.equal((await call(h, h.a.token, 'GET', P('rename-me'))).body.project.name, 'Renamed <b>', 'nothing else changed it')
    })
  })

  describe('deleting an environment', () => {
    test('confirm, force, a sealed environment, roles and other tenants are checked before anything goes', async () => {
      const p = await project('Env Delete Rules', 'env-delete-rules')
      const admin = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'admin' } })
      const developer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'developer' } })
      await put(h.a.token, 'env-delete-rules', 'staging', 'KEEP', 'kept-value')
      const url = E('env-delete-rules', 'staging')
      assertCode(await call(h, developer.token, 'DELETE', url, { confirm: 'staging', force: true }), 403, 'ERR_FORBIDDEN', 'a developer')
      assertCode(await call(h, h.b.token, 'DELETE', url, { confirm: 'staging', force: true }), 404, 'ERR_NOT_FOUND', 'another tenant')
      assertCode(await call(h, h.a.token, 'DELETE', url, { confirm: 'Staging', force: true }), 400, 'ERR_CONFIRMATION_MISMATCH')
      assertCode(await call(h, h.a.token, 'DELETE', url, { confirm: 'staging' }), 409, 'ERR_NOT_EMPTY', 'holds a secret')
      assertCode(await call(h, h.a.token, 'DELETE', url), 400, 'ERR_VALIDATION', 'no body')
      assertCode(await call(h, h.a.token, 'DELETE', url, { confirm: 'staging', force: 'yes' }), 400, 'ERR_VALIDATION', 'force is a boolean')
      // Sealed: nobody deletes it until an Owner or Admin unseals it.
      assert.equal((await call(h, h.a.token, 'PUT', `${url}/seal`, { sealed: true })).status, 200)
      assertCode(await call(h, h.a.token, 'DELETE', url, { confirm: 'staging', force: true }), 409, 'ERR_ENVIRONMENT_SEALED', 'the Owner')
      assertCode(
        await call(h, admin.token, 'DELETE', url, { confirm: 'staging', force: true }),
        409,
        'ERR_ENVIRONMENT_SEALED',
        'a project admin',
      )
      assertCode(await call(h, admin.token, 'PUT', `${url}/seal`, { sealed: false }), 403, 'ERR_FORBIDDEN', 'a project admin cannot unseal')
      assert.equal((await reveal('env-delete-rules', 'staging', 'KEEP'))?.value, undefined, 'sealed: no reveal without a grant')
      assert.equal((await call(h, h.a.token, 'PUT', `${url}/seal`, { sealed: false })).status, 200)
      assert.equal((await reveal('env-delete-rules', 'staging', 'KEEP'))?.value, 'kept-value', 'nothing was deleted')
      // An empty environment needs no force, and a project admin (a Member) may delete it.
      const empty = await call(h, admin.token, 'DELETE', E('env-delete-rules', 'development'), { confirm: 'development' })
      assert.equal(empty.status, 200, JSON.stringify(empty.body))
      assert.equal(empty.body.environment.secrets, 0)
    })

    test('its data key is destroyed at once (audited with its id), its rows go, and its slug can be used again', async () => {
      const p = await project('Env Delete', 'env-delete')
      for (let i = 0; i < 5; i++) await put(h.a.token, 'env-delete', 'staging', `K${i}`, `staging-value-${i}`)
      await put(h.a.token, 'env-delete', 'staging', 'K0', 'staging-value-0b', { comment: 'second' })
      await put(h.a.token, 'env-delete', 'development', 'K0', 'dev-value-0')
      const stagingId = p.envs.staging!
      const keysBefore = await h.db
        .selectFrom('data_keys')
        .select(['id', 'version', 'wrapped'])
        .where('environment_id', '=', stagingId)
        .execute()
      assert.equal(keysBefore.length, 1)
      const wrapped = Buffer.from(keysBefore[0]!.wrapped)
      assert.ok(wrapped.length > 32)
      // Rotate so that two versions exist (the old one still used by versions not yet resealed, or retired).
      const rot = await call(h, h.a.token, 'POST', `${E('env-delete', 'staging')}/keys/rotate`, {})
      assert.ok(rot.status >= 200 && rot.status < 300, JSON.stringify(rot.body))
      assert.equal(rot.body.job.state, 'running', 'deleted while its reseal job runs')

      const r = await call(h, h.a.token, 'DELETE', E('env-delete', 'staging'), { confirm: 'staging', force: true })
      assert.equal(r.status, 200, JSON.stringify(r.body))
      assert.equal(r.body.environment.id, stagingId)
      assert.equal(r.body.environment.secrets, 5)
      assert.equal(r.body.environment.versions, 6)
      assert.equal(r.body.environment.dataKey.id, keysBefore[0]!.id)
      assert.ok(r.body.environment.dataKey.versions.includes(1))

      // Every row of the environment is gone; the other environment is untouched.
      for (const table of ['data_keys', 'secrets', 'secret_versions', 'key_jobs', 'environment_grants'] as const) {
        const left = await h.db.selectFrom(table).select('workspace_id').where('environment_id', '=', stagingId).execute()
        assert.equal(left.length, 0, `${table} rows left`)
      }
      assert.equal((await h.db.selectFrom('environments').select('id').where('id', '=', stagingId).execute()).length, 0)
      assertCode(await call(h, h.a.token, 'GET', `${E('env-delete', 'staging')}/secrets`), 404, 'ERR_NOT_FOUND', 'the environment is gone')
      assertCode(await call(h, h.a.token, 'GET', `${E('env-delete', stagingId)}/secrets`), 404, 'ERR_NOT_FOUND', 'by id too')
      assert.equal((await reveal('env-delete', 'development', 'K0'))?.value, 'dev-value-0')

      const e = (await entries(h, 'environment.delete')).find((x) => x.details.dataKey === keysBefore[0]!.id)
      assert.ok(e, 'the deletion is audited with the data key id')
      assert.deepEqual([e.details.slug, e.details.secrets, e.details.versions], ['staging', 5, 6])
      assert.equal(JSON.stringify(e.details).includes('staging-value'), false, 'no value in the audit log')

      if (engine === 'sqlite') {
        // The wrapped key was zeroed and the log checkpointed: no copy of the files holds it.
        const files = (await readdir(h.dataDir)).filter((f) => f.startsWith('coffer.db'))
        for (const f of files) assert.equal((await readFile(join(h.dataDir, f))).indexOf(wrapped), -1, `${f} still holds the wrapped key`)
      }

      // The slug is free again, with a new data key; the old values do not come back.
      const again = await call(h, h.a.token, 'POST', `${P('env-delete')}/environments`, { name: 'Staging', slug: 'staging' })
      assert.equal(again.status, 201)
      assert.notEqual(again.body.environment.id, stagingId)
      assert.equal((await call(h, h.a.token, 'GET', `${E('env-delete', 'staging')}/secrets`)).body.secrets.length, 0)
      await put(h.a.token, 'env-delete', 'staging', 'K0', 'fresh')
      assert.equal((await reveal('env-delete', 'staging', 'K0'))?.value, 'fresh')
    })
  })

  describe('deleting a project', () => {
    test('Owners and Admins only, with its slug and force; every environment shredded; invitations revoked', async () => {
      const p = await project('Project Delete', 'project-delete')
      const projectAdmin = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'admin' } })
      const wsAdmin = await addPerson(h, { workspaceId: h.a.id, role: 'admin' })
      await put(h.a.token, 'project-delete', 'development', 'A', 'value-a')
      await put(h.a.token, 'project-delete', 'production', 'B', 'value-b')
      const inv = await call(h, h.a.token, 'POST', `${W}/invitations`, {
        email: 'joiner@people.test',
        project: p.id,
        projectRole: 'viewer',
      })
      assert.equal(inv.status, 201, JSON.stringify(inv.body))
      const body = { confirm: 'project-delete', force: true }
      assertCode(await call(h, projectAdmin.token, 'DELETE', P('project-delete'), body), 403, 'ERR_FORBIDDEN', 'a project admin')
      assertCode(await call(h, h.b.token, 'DELETE', P('project-delete'), body), 404, 'ERR_NOT_FOUND', 'another tenant')
      assertCode(await call(h, h.b.token, 'DELETE', `/v1/workspaces/${h.b.slug}/projects/${p.id}`, body), 404, 'ERR_NOT_FOUND', 'by id')
      assertCode(await call(h, wsAdmin.token, 'DELETE', P('project-delete'), { confirm: 'project-delete' }), 409, 'ERR_NOT_EMPTY')
      assertCode(
        await call(h, wsAdmin.token, 'DELETE', P('project-delete'), { confirm: p.id, force: true }),
        400,
        'ERR_CONFIRMATION_MISMATCH',
      )
      assert.equal((await reveal('project-delete', 'development', 'A'))?.value, 'value-a', 'nothing was deleted')

      const r = await call(h, wsAdmin.token, 'DELETE', P('project-delete'), body)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      assert.deepEqual(r.body.environments.map((e: { slug: string }) => e.slug).sort(), ['development', 'production', 'staging'])
      assert.equal(r.body.invitationsRevoked, 1)
      for (const table of ['data_keys', 'secrets', 'secret_versions', 'environments', 'project_members'] as const) {
        const left = await h.db.selectFrom(table).select('workspace_id').where('project_id', '=', p.id).execute()
        assert.equal(left.length, 0, `${table} rows left`)
      }
      assertCode(await call(h, h.a.token, 'GET', P('project-delete')), 404, 'ERR_NOT_FOUND')
      const invitation = await h.db
        .selectFrom('invitations')
        .select(['revoked_at', 'project_id'])
        .where('id', '=', inv.body.invitation.id)
        .executeTakeFirst()
      assert.ok(invitation?.revoked_at)
      assert.equal(invitation?.project_id, null)
      const audited = (await entries(h, 'project.delete')).find((e) => e.target.id === p.id || e.details.slug === 'project-delete')
      assert.ok(audited)
      assert.equal(audited.details.secrets, 2)
      assert.equal((await entries(h, 'environment.delete')).filter((e) => e.details.project === p.id).length, 3)
      // The slug is free again.
      assert.equal((await call(h, h.a.token, 'POST', `${W}/projects`, { name: 'Project Delete', slug: 'project-delete' })).status, 201)
    })
  })

  describe('the environment matrix', () => {
    let p: { id: string; envs: Record<string, string> }
    before(async () => {
      p = await project('Matrix', 'matrix')
      await put(h.a.token, 'matrix', 'development', 'SAME', 'same-everywhere')
      await put(h.a.token, 'matrix', 'staging', 'SAME', 'same-everywhere')
      await put(h.a.token, 'matrix', 'production', 'SAME', 'same-everywhere')
      await put(h.a.token, 'matrix', 'development', 'DIFF', 'dev-only-value')
      await put(h.a.token, 'matrix', 'production', 'DIFF', 'prod-only-value')
      await put(h.a.token, 'matrix', 'development', 'DEV_ONLY', 'x')
      await put(h.a.token, 'matrix', 'staging', 'GONE', 'y')
      assert.equal((await call(h, h.a.token, 'DELETE', `${E('matrix', 'staging')}/secrets/GONE`)).status, 200)
    })

    const cellOf = (m: Parsed, key: string, env: string) => {
      const i = m.environments.findIndex((e: { slug: string }) => e.slug === env)
      return m.keys.find((k: { key: string }) => k.key === key)?.cells[i]
    }

    test('present, missing, versions and keyed fingerprints — never values', async () => {
      const r = await call(h, h.a.token, 'GET', `${P('matrix')}/matrix`)
      assert.equal(r.status, 200)
      const m = r.body
      assert.deepEqual(
        m.environments.map((e: { slug: string }) => e.slug),
        ['development', 'staging', 'production'],
      )
      assert.deepEqual(
        m.keys.map((k: { key: string }) => k.key),
        ['DEV_ONLY', 'DIFF', 'SAME'],
        'a deleted key is missing everywhere',
      )
      for (const v of ['same-everywhere', 'dev-only-value', 'prod-only-value'])
        assert.equal(r.raw.includes(v), false, 'no value in the answer')
      const same = ['development', 'staging', 'production'].map((e) => cellOf(m, 'SAME', e))
      assert.ok(same.every((c) => c.present && c.version === 1 && typeof c.fingerprint === 'string'))
      assert.equal(new Set(same.map((c) => c.fingerprint)).size, 1, 'equal values, equal fingerprints')
      assert.notEqual(cellOf(m, 'DIFF', 'development').fingerprint, cellOf(m, 'DIFF', 'production').fingerprint)
      assert.deepEqual(cellOf(m, 'DIFF', 'staging'), { present: false })
      assert.deepEqual(cellOf(m, 'DEV_ONLY', 'production'), { present: false })
      // Keyed: not a plain hash of the value, and another workspace's key gives another fingerprint.
      const plain = createHash('sha256').update('same-everywhere').digest('base64url')
      assert.notEqual(same[0].fingerprint, plain)
      const bp = await call(h, h.b.token, 'POST', `/v1/workspaces/${h.b.slug}/projects`, { name: 'Matrix', slug: 'matrix' })
      assert.equal(bp.status, 201)
      const bEnv = `/v1/workspaces/${h.b.slug}/projects/matrix/environments/development`
      assert.equal((await call(h, h.b.token, 'PUT', `${bEnv}/secrets/SAME`, { value: 'same-everywhere' })).status, 200)
      const bm = await call(h, h.b.token, 'GET', `/v1/workspaces/${h.b.slug}/projects/matrix/matrix`)
      assert.notEqual(cellOf(bm.body, 'SAME', 'development').fingerprint, same[0].fingerprint, 'per-workspace key')
    })

    test('versions written before migration 10 (no stored fingerprint) get the same fingerprint', async () => {
      const before = cellOf((await call(h, h.a.token, 'GET', `${P('matrix')}/matrix`)).body, 'DIFF', 'production')
      await h.db.updateTable('secret_versions').set({ value_fingerprint: null }).where('environment_id', '=', p.envs.production!).execute()
      const afterwards = cellOf((await call(h, h.a.token, 'GET', `${P('matrix')}/matrix`)).body, 'DIFF', 'production')
      assert.deepEqual(afterwards, before)
    })

    test('fingerprints only where the caller may reveal; no access is shown, not left out; sealed hides them', async () => {
      const developer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'developer' } })
      const viewer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'viewer' } })
      const auditor = await addPerson(h, { workspaceId: h.a.id, role: 'auditor' })
      const outsider = await addPerson(h, { workspaceId: h.a.id, role: 'member' })

      const d = (await call(h, developer.token, 'GET', `${P('matrix')}/matrix`)).body
      assert.deepEqual(
        d.environments.map((e: Parsed) => [e.slug, e.access, e.fingerprints]),
        [
          ['development', 'write', true],
          ['staging', 'write', true],
          ['production', 'list', false],
        ],
      )
      // Production is restricted: the developer lists it, and sees no fingerprint that would
      // tell them a production value equals one they can read.
      assert.deepEqual(cellOf(d, 'SAME', 'production'), { present: true, version: 1, fingerprint: null })
      assert.equal(typeof cellOf(d, 'SAME', 'development').fingerprint, 'string')

      const v = (await call(h, viewer.token, 'GET', `${P('matrix')}/matrix`)).body
      assert.ok(v.environments.every((e: Parsed) => e.access === 'list' && e.fingerprints === false))
      assert.ok(v.keys.every((k: Parsed) => k.cells.every((c: Parsed) => c.present === false || c.fingerprint === null)))

      const a = await call(h, auditor.token, 'GET', `${P('matrix')}/matrix`)
      assert.equal(a.status, 200)
      assert.equal(a.body.environments.length, 3, 'environments the auditor cannot read are shown')
      assert.ok(a.body.environments.every((e: Parsed) => e.access === 'none'))
      assert.deepEqual(a.body.keys, [], 'and no key of theirs')

      assertCode(await call(h, outsider.token, 'GET', `${P('matrix')}/matrix`), 404, 'ERR_NOT_FOUND', 'no project role')
      assertCode(await call(h, h.b.token, 'GET', `${P('matrix')}/matrix`), 404, 'ERR_NOT_FOUND', 'another workspace')
      assertCode(await call(h, h.b.token, 'GET', `/v1/workspaces/${h.b.slug}/projects/${p.id}/matrix`), 404, 'ERR_NOT_FOUND', 'by id')

      // An integration sees the environments of its scope only, as everywhere else.
      const svc = await call(h, h.a.token, 'POST', `${W}/service-tokens`, {
        name: 'matrix',
        scopes: [{ project: p.id, environments: [p.envs.development], access: 'read' }],
      })
      const s = (await call(h, svc.body.token, 'GET', `${P('matrix')}/matrix`)).body
      assert.deepEqual(
        s.environments.map((e: Parsed) => [e.slug, e.access, e.fingerprints]),
        [['development', 'read', true]],
      )

      // Sealed: people see presence and versions only, even the Owner.
      assert.equal((await call(h, h.a.token, 'PUT', `${E('matrix', 'staging')}/seal`, { sealed: true })).status, 200)
      const o = (await call(h, h.a.token, 'GET', `${P('matrix')}/matrix`)).body
      assert.deepEqual(cellOf(o, 'SAME', 'staging'), { present: true, version: 1, fingerprint: null })
      assert.equal(o.environments.find((e: Parsed) => e.slug === 'staging').sealed, true)
      assert.equal((await call(h, h.a.token, 'PUT', `${E('matrix', 'staging')}/seal`, { sealed: false })).status, 200)
    })
  })

  describe('applying a pasted .env', () => {
    test('the preview lists adds, changes, deletes and unchanged by key and version; the apply writes exactly that', async () => {
      await project('Apply', 'apply')
      const url = `${E('apply', 'development')}/secrets/apply`
      await put(h.a.token, 'apply', 'development', 'KEEP', 'same', { comment: 'kept comment', tags: ['team:a'] })
      await put(h.a.token, 'apply', 'development', 'CHANGE', 'old', { comment: 'change comment', tags: ['team:b'] })
      await put(h.a.token, 'apply', 'development', 'DROP', 'bye')
      const paste = {
        upserts: [
          { key: 'KEEP', value: 'same' },
          { key: 'CHANGE', value: 'new' },
          { key: 'ADD', value: 'added' },
        ],
        replace: true,
      }
      const preview = await call(h, h.a.token, 'POST', url, { ...paste, dryRun: true })
      assert.equal(preview.status, 200, JSON.stringify(preview.body))
      const keys = (l: Array<{ key: string }>) => l.map((e) => e.key)
      assert.deepEqual(
        [keys(preview.body.adds), keys(preview.body.changes), keys(preview.body.deletes), keys(preview.body.unchanged)],
        [['ADD'], ['CHANGE'], ['DROP'], ['KEEP']],
      )
      assert.deepEqual(preview.body.changes[0], { key: 'CHANGE', version: 1, newVersion: null })
      assert.equal(preview.body.newState, null)
      for (const v of ['same', 'new', 'added', 'bye', '"old"']) assert.equal(preview.raw.includes(`"${v.replaceAll('"', '')}"`), false)
      assert.equal(await reveal('apply', 'development', 'ADD'), null, 'a preview writes nothing')

      const applied = await call(h, h.a.token, 'POST', url, { ...paste, ifState: preview.body.state })
      assert.equal(applied.status, 200, JSON.stringify(applied.body))
      assert.deepEqual(applied.body.changes[0], { key: 'CHANGE', version: 1, newVersion: 2 })
      assert.deepEqual(applied.body.unchanged[0], { key: 'KEEP', version: 1, newVersion: null })
      assert.notEqual(applied.body.newState, applied.body.state)
      const keep = await reveal('apply', 'development', 'KEEP')
      assert.equal(keep.version, 1, 'an identical value makes no new version')
      const change = await reveal('apply', 'development', 'CHANGE')
      assert.deepEqual(
        [change.value, change.version, change.comment, change.tags],
        ['new', 2, 'change comment', ['team:b']],
        'comment and tags kept',
      )
      assert.equal((await reveal('apply', 'development', 'ADD'))?.value, 'added')
      assert.equal(await reveal('apply', 'development', 'DROP'), null)

      // Audited per secret, plus one summary entry; fingerprints, never values.
      const summary = (await entries(h, 'secrets.apply')).at(-1)
      assert.deepEqual([summary?.details.adds, summary?.details.changes, summary?.details.deletes], [['ADD'], ['CHANGE'], ['DROP']])
      const update = (await entries(h, 'secret.update')).at(-1)
      assert.equal(update?.details.key, 'CHANGE')
      assert.match(String(update?.details.after), /^hmac-sha256:/)

      // The same paste again changes nothing and makes no version.
      const again = await call(h, h.a.token, 'POST', url, paste)
      assert.deepEqual([again.body.adds, again.body.changes, again.body.deletes], [[], [], []])
      assert.equal(again.body.newState, again.body.state)
    })

    test('a change made after the preview makes the apply 409 and writes nothing', async () => {
      await project('Apply CAS', 'apply-cas')
      const url = `${E('apply-cas', 'development')}/secrets/apply`
      await put(h.a.token, 'apply-cas', 'development', 'A', 'one')
      const preview = await call(h, h.a.token, 'POST', url, {
        upserts: [
          { key: 'A', value: 'two' },
          { key: 'B', value: 'b' },
        ],
        dryRun: true,
      })
      await put(h.a.token, 'apply-cas', 'development', 'A', 'someone-else')
      const r = await call(h, h.a.token, 'POST', url, {
        upserts: [
          { key: 'A', value: 'two' },
          { key: 'B', value: 'b' },
        ],
        ifState: preview.body.state,
      })
      assertCode(r, 409, 'ERR_ENVIRONMENT_CHANGED')
      assert.equal((await reveal('apply-cas', 'development', 'A'))?.value, 'someone-else', 'not clobbered')
      assert.equal(await reveal('apply-cas', 'development', 'B'), null, 'all or nothing')
      // A deletion elsewhere in the environment moves its state too.
      const p2 = await call(h, h.a.token, 'POST', url, { upserts: [], dryRun: true })
      await put(h.a.token, 'apply-cas', 'development', 'C', 'c')
      assertCode(await call(h, h.a.token, 'POST', url, { upserts: [], ifState: p2.body.state }), 409, 'ERR_ENVIRONMENT_CHANGED')
    })

    test('roles, other tenants and bad input answer clear errors; a refused apply writes nothing', async () => {
      const p = await project('Apply Rules', 'apply-rules')
      const viewer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'viewer' } })
      const developer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'developer' } })
      const url = `${E('apply-rules', 'development')}/secrets/apply`
      const one = { upserts: [{ key: 'A', value: 'a' }], dryRun: true }
      assertCode(await call(h, viewer.token, 'POST', url, one), 403, 'ERR_FORBIDDEN', 'a viewer, even for a preview')
      assertCode(
        await call(h, developer.token, 'POST', `${E('apply-rules', 'production')}/secrets/apply`, one),
        403,
        'ERR_FORBIDDEN',
        'a developer in restricted production: a preview compares values',
      )
      assertCode(await call(h, h.b.token, 'POST', url, one), 404, 'ERR_NOT_FOUND', 'another workspace')
      assertCode(await call(h, h.a.token, 'POST', url, { upserts: [{ key: 'BAD-KEY', value: 'x' }] }), 400, 'ERR_VALIDATION', 'a bad key')
      const many = Array.from({ length: 1001 }, (_, i) => ({ key: `K${i}`, value: 'v' }))
      assertCode(await call(h, h.a.token, 'POST', url, { upserts: many }), 400, 'ERR_VALIDATION', 'over 1000 upserts')
      assertCode(await call(h, h.a.token, 'POST', url, { upserts: [], extra: 1 }), 400, 'ERR_VALIDATION', 'an unknown field')
      const dup = {
        upserts: [
          { key: 'FIRST', value: 'x' },
          { key: 'DUP', value: 'x' },
          { key: 'DUP', value: 'y' },
        ],
      }
      assertCode(await call(h, h.a.token, 'POST', url, dup), 400, 'ERR_VALIDATION', 'a key twice')
      const both = { upserts: [{ key: 'FIRST', value: 'x' }], deletes: ['FIRST'] }
      assertCode(await call(h, h.a.token, 'POST', url, both), 400, 'ERR_VALIDATION', 'set and deleted')
      assert.equal(await reveal('apply-rules', 'development', 'FIRST'), null, 'nothing written')
      const huge = { upserts: Array.from({ length: 40 }, (_, i) => ({ key: `H${i}`, value: 'x'.repeat(60_000) })) }
      assertCode(await call(h, h.a.token, 'POST', url, huge), 413, 'ERR_PAYLOAD_TOO_LARGE', 'over the body limit')
      const tooLong = { upserts: [{ key: 'L', value: 'x'.repeat(64 * 1024 + 1) }] }
      assertCode(await call(h, h.a.token, 'POST', url, tooLong), 400, 'ERR_VALIDATION', 'a value over 64 KiB')
    })
  })

  describe('copying keys between environments', () => {
    test('within a project and to another project: value, comment and tags; identical ones untouched; conflicts 409', async () => {
      await project('Copy', 'copy')
      await project('Copy Target', 'copy-target')
      await put(h.a.token, 'copy', 'development', 'A', 'value-a', { comment: 'about a', tags: ['t:1'] })
      await put(h.a.token, 'copy', 'development', 'B', 'value-b')
      await put(h.a.token, 'copy', 'staging', 'B', 'other-b')
      const url = `${E('copy', 'development')}/secrets/copy`
      const r = await call(h, h.a.token, 'POST', url, { keys: ['A'], to: { environment: 'staging' } })
      assert.equal(r.status, 200, JSON.stringify(r.body))
      assert.deepEqual(r.body.adds, [{ key: 'A', version: 0, newVersion: 1 }])
      const a = await reveal('copy', 'staging', 'A')
      assert.deepEqual([a.value, a.comment, a.tags], ['value-a', 'about a', ['t:1']])
      assert.equal(r.raw.includes('value-a'), false)

      assertCode(await call(h, h.a.token, 'POST', url, { keys: ['A', 'B'], to: { environment: 'staging' } }), 409, 'ERR_ALREADY_EXISTS')
      assert.equal((await reveal('copy', 'staging', 'B'))?.value, 'other-b', 'nothing written')
      const o = await call(h, h.a.token, 'POST', url, { keys: ['A', 'B'], to: { environment: 'staging' }, overwrite: true })
      assert.equal(o.status, 200)
      assert.deepEqual(o.body.unchanged, [{ key: 'A', version: 1, newVersion: null }], 'identical: no new version')
      assert.deepEqual(o.body.changes, [{ key: 'B', version: 1, newVersion: 2 }])
      assert.equal((await reveal('copy', 'staging', 'B'))?.value, 'value-b')

      const x = await call(h, h.a.token, 'POST', url, { keys: ['A'], to: { project: 'copy-target', environment: 'production' } })
      assert.equal(x.status, 200, JSON.stringify(x.body))
      assert.equal((await reveal('copy-target', 'production', 'A'))?.value, 'value-a')
      const summary = (await entries(h, 'secrets.copy')).at(-1)
      assert.deepEqual(summary?.details.adds, ['A'])
      const created = (await entries(h, 'secret.create')).at(-1)
      assert.equal(created?.details.copiedFrom.version, 1)

      assertCode(
        await call(h, h.a.token, 'POST', url, { keys: ['NOPE'], to: { environment: 'staging' } }),
        404,
        'ERR_NOT_FOUND',
        'no such key',
      )
      assertCode(
        await call(h, h.a.token, 'POST', url, { keys: ['A'], to: { environment: 'development' } }),
        400,
        'ERR_VALIDATION',
        'itself',
      )
      assertCode(await call(h, h.a.token, 'POST', url, { keys: [], to: { environment: 'staging' } }), 400, 'ERR_VALIDATION', 'no keys')
    })

    test('read on the source and write on the target; another workspace or an invisible project is not found', async () => {
      const p = await project('Copy Rules', 'copy-rules')
      const hidden = await project('Copy Hidden', 'copy-hidden')
      const developer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.id, role: 'developer' } })
      await put(h.a.token, 'copy-rules', 'development', 'A', 'dev-a')
      await put(h.a.token, 'copy-rules', 'production', 'P', 'prod-p')
      const from = (env: string) => `${E('copy-rules', env)}/secrets/copy`
      // The developer cannot reveal restricted production, so cannot copy out of it …
      assertCode(
        await call(h, developer.token, 'POST', from('production'), { keys: ['P'], to: { environment: 'development' } }),
        403,
        'ERR_FORBIDDEN',
      )
      // … nor write into it.
      assertCode(
        await call(h, developer.token, 'POST', from('development'), { keys: ['A'], to: { environment: 'production' } }),
        403,
        'ERR_FORBIDDEN',
      )
      assertCode(
        await call(h, developer.token, 'POST', from('development'), {
          keys: ['A'],
          to: { project: hidden.id, environment: 'development' },
        }),
        404,
        'ERR_NOT_FOUND',
        'a project the developer holds no role in',
      )
      const bp = await call(h, h.b.token, 'POST', `/v1/workspaces/${h.b.slug}/projects`, { name: 'Theirs' })
      const theirs = { project: bp.body.project.id, environment: bp.body.environments[0].id }
      assertCode(
        await call(h, h.a.token, 'POST', from('development'), { keys: ['A'], to: theirs }),
        404,
        'ERR_NOT_FOUND',
        "another workspace's ids",
      )
      assertCode(
        await call(h, h.b.token, 'POST', from('development'), { keys: ['A'], to: { environment: 'staging' } }),
        404,
        'ERR_NOT_FOUND',
        'another workspace copying out',
      )
      assert.equal(
        (
          await call(
            h,
            h.b.token,
            'GET',
            `/v1/workspaces/${h.b.slug}/projects/${theirs.project}/environments/${theirs.environment}/secrets`,
          )
        ).body.secrets.length,
        0,
      )
      // A sealed target needs a person's break-glass grant, even the Owner's.
      assert.equal((await call(h, h.a.token, 'PUT', `${E('copy-rules', 'staging')}/seal`, { sealed: true })).status, 200)
      assertCode(
        await call(h, h.a.token, 'POST', from('development'), { keys: ['A'], to: { environment: 'staging' } }),
        403,
        'ERR_BREAK_GLASS_REQUIRED',
      )
      assertCode(
        await call(h, h.a.token, 'POST', from('staging'), { keys: ['A'], to: { environment: 'development' } }),
        403,
        'ERR_BREAK_GLASS_REQUIRED',
        'a sealed source',
      )
      const rows = await readInScope(h.ctx.store, h.a.id, (db) =>
        db.selectFrom('secrets').select('key').where('environment_id', '=', p.envs.staging!).execute(),
      )
      assert.equal(rows.length, 0, 'nothing was copied')
    })
  })

  test('the OpenAPI document lists every addition with its policy action', async () => {
    const doc = JSON.parse((await h.app.inject({ method: 'GET', url: '/v1/openapi.json' })).body)
    const want: Array<[string, string, string]> = [
      ['/v1/workspaces/{workspace}/projects/{project}', 'patch', 'project.manage'],
      ['/v1/workspaces/{workspace}/projects/{project}', 'delete', 'project.delete'],
      ['/v1/workspaces/{workspace}/projects/{project}/environments/{environment}', 'patch', 'environment.manage'],
      ['/v1/workspaces/{workspace}/projects/{project}/environments/{environment}', 'delete', 'environment.delete'],
      ['/v1/workspaces/{workspace}/projects/{project}/matrix', 'get', 'project.read'],
      ['/v1/workspaces/{workspace}/projects/{project}/environments/{environment}/secrets/apply', 'post', 'secret.write'],
      ['/v1/workspaces/{workspace}/projects/{project}/environments/{environment}/secrets/copy', 'post', 'secret.reveal'],
    ]
    for (const [path, method, action] of want) {
      assert.equal(doc.paths[path]?.[method]?.['x-coffer-action'], action, `${method} ${path}`)
    }
  })
}

describeEachEngine(suite)
