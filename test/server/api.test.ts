// The HTTP API as a client sees it: the secrets lifecycle, the public endpoints and documents,
// the headers on every response, authentication on every route, and roles.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { InjectOptions } from 'fastify'
import type { Role } from '../../src/access/policy.js'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import { API_ROUTES, AUTH_ROUTES } from '../../src/server/app.js'
import type { AnyRoute } from '../../src/server/route.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { errorCode, type JsonBody } from '../helpers/json-body.js'
import { describeEachEngine } from '../helpers/engines.js'
import { fillUrl, sampleBody } from '../helpers/routes.js'

type Client = ReturnType<typeof api>
/** The parts of an OpenAPI operation object the document test reads. */
type Operation = {
  operationId: string
  responses?: Record<string, { description?: unknown }>
  parameters: Array<{ name: string; in: string; required: boolean }>
  security?: Array<Record<string, unknown>>
  requestBody?: { content?: Record<string, { schema?: unknown }> }
}
type Reply = { status: number; body: JsonBody; headers: Record<string, unknown> }

const value = (label: string) => `${label}-${randomBytes(12).toString('hex')}`

function assertCode(r: { status: number; body: unknown }, status: number, code: string, what = code): void {
  assert.equal(r.status, status, what)
  assert.equal(errorCode(r.body), code, what)
}

/** Asserts a value without printing it when it differs. */
function sameValue(actual: unknown, expected: string, what: string): void {
  assert.ok(actual === expected, `${what}: the revealed value matches`)
}

/** A user of workspace A with `role` and a token, made the way an admin command would. */
async function memberToken(h: Harness, role: Role): Promise<string> {
  const { token } = await h.ctx.committer.run(async (tx) => {
    const u = await ensureUser(tx, `${role}-${randomBytes(3).toString('hex')}@acme.test`, new Date())
    await addMember(tx, h.a.id, u.id, role, new Date())
    return issueToken(tx, { workspaceId: h.a.id, userId: u.id, name: `${role} token` }, new Date())
  })
  return token
}

const fill = fillUrl

const SAMPLE_BODIES: Record<string, unknown> = {
  'POST /v1/workspaces/:workspace/connections': {
    name: 'sample',
    authorizeUrl: 'https://203.0.113.10/authorize',
    tokenUrl: 'https://203.0.113.10/token',
    clientId: 'sample',
    clientSecret: 'sample-secret',
    apiBase: 'https://203.0.113.10/api',
    allow: ['GET /v1/*'],
  },
  // The relay takes its body as bytes.
  ...Object.fromEntries(
    ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => [
      `${m} /v1/workspaces/:workspace/connections/:connection/relay/*`,
      Buffer.from('{}'),
    ]),
  ),
  'POST /v1/workspaces/:workspace/webhooks': { url: 'http://203.0.113.10/hook', events: ['secret.updated'] },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/db-roles': {
    name: 'sample',
    adminUrl: 'postgres://u:p@203.0.113.10:5432/db',
    creationSql: 'GRANT SELECT ON t TO {{name}}',
  },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/aws-roles': {
    name: 'sample',
    roleArn: 'arn:aws:iam::123456789012:role/sample',
  },
  'POST /v1/workspaces/:workspace/tokens': { name: 'sample' },
  'POST /v1/workspaces/:workspace/projects': { name: 'Sample Project' },
  'POST /v1/workspaces/:workspace/projects/:project/environments': { name: 'Sample Env' },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key': { value: 'sample' },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets': { secrets: [{ key: 'SAMPLE', value: 'sample' }] },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key/rollback': { version: 1 },
  'PUT /v1/workspaces/:workspace/members/:user': { role: 'member' },
  'PUT /v1/workspaces/:workspace/projects/:project/members/:user': { role: 'viewer' },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/restriction': { restricted: true },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/grants/:user': { access: 'read' },
  'POST /v1/workspaces/:workspace/invitations': { email: 'invitee@acme.test' },
  'POST /v1/invitations/accept': { token: 'coffer_inv_sample' },
  'POST /v1/workspaces/:workspace/machines': { name: 'sample', scopes: [{ project: 'billing-api', environments: '*', access: 'read' }] },
  'POST /v1/workspaces/:workspace/service-tokens': {
    name: 'sample',
    scopes: [{ project: 'billing-api', environments: '*', access: 'read' }],
  },
  'POST /v1/machine/token': { clientId: '00000000-0000-4000-8000-000000000000', clientSecret: 'coffer_mcs_sample' },
  'POST /v1/machine/oidc-token': { clientId: '00000000-0000-4000-8000-000000000000', idToken: 'not.a.token' },
  // A documentation address: an allowed caller gets 400 ERR_OUTBOUND_REFUSED and nothing is made.
  'POST /v1/workspaces/:workspace/machines/:machine/oidc-rules': {
    rules: [{ issuer: 'https://203.0.113.10', audiences: ['coffer'], claims: { sub: 'repo:acme/web:ref:refs/heads/main' } }],
  },
  'POST /v1/workspaces/:workspace/auth-links': { email: 'nobody@acme.test', purpose: 'verify' },
  'DELETE /v1/workspaces/:workspace': { confirm: 'not-the-slug' },
  'PATCH /v1/workspaces/:workspace/projects/:project': { name: 'Sample' },
  'DELETE /v1/workspaces/:workspace/projects/:project': { confirm: 'not-the-slug' },
  'PATCH /v1/workspaces/:workspace/projects/:project/environments/:environment': { name: 'Sample' },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/imports': { imports: [] },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/personal-overrides': { allowed: false },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key/personal': { value: 'sample' },
  'DELETE /v1/workspaces/:workspace/projects/:project/environments/:environment': { confirm: 'not-the-slug' },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/apply': { upserts: [], dryRun: true },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/copy': {
    keys: ['SAMPLE'],
    to: { environment: 'staging' },
  },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/seal': { sealed: false },
  'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/protection': { approvals: 0 },
  'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/promote': {
    from: { environment: 'staging' },
    keys: ['SAMPLE'],
  },
  'POST /v1/workspaces/:workspace/change-requests/:request/approve': {},
  'POST /v1/workspaces/:workspace/change-requests/:request/reject': {},
  'POST /v1/workspaces/:workspace/break-glass': {
    project: 'billing-api',
    environment: 'development',
    access: 'read',
    reason: 'sample',
    durationMinutes: 5,
  },
}

const bodyFor = (r: AnyRoute) => sampleBody(r, SAMPLE_BODIES)

async function inject(h: Harness, r: AnyRoute, url: string, authorization?: string): Promise<Reply> {
  const body = bodyFor(r)
  const res = await h.app.inject({
    method: r.method,
    url,
    headers: authorization === undefined ? {} : { authorization },
    ...(body === undefined ? {} : { payload: body as object }),
  })
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, headers: res.headers }
}

function assertSecurityHeaders(headers: Record<string, unknown>, what: string): void {
  const hsts = String(headers['strict-transport-security'] ?? '')
  const maxAge = Number(/(?:^|;)\s*max-age=(\d+)/i.exec(hsts)?.[1] ?? 0)
  assert.ok(maxAge >= 15_552_000, `${what}: HSTS max-age of at least 6 months`)
  assert.match(hsts, /(?:^|;)\s*includeSubDomains\s*(?:;|$)/i, `${what}: HSTS includeSubDomains`)
  assert.match(hsts, /(?:^|;)\s*preload\s*(?:;|$)/i, `${what}: HSTS preload`)
  assert.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  const csp = String(headers['content-security-policy'] ?? '')
  assert.match(csp, /(?:^|;)\s*frame-ancestors 'none'\s*(?:;|$)/, `${what}: CSP frame-ancestors 'none'`)
  assert.match(csp, /(?:^|;)\s*default-src 'none'\s*(?:;|$)/, `${what}: CSP default-src 'none'`)
  assert.equal(headers['x-powered-by'], undefined, `${what}: no x-powered-by`)
  assert.equal(headers.server, undefined, `${what}: no server header`)
}

function suite(engine: EngineName): void {
  let h: Harness
  let a: Client
  before(async () => {
    h = await startHarness(engine)
    a = api(h.app, h.a.token)
  })
  after(() => h?.close())

  describe('projects and environments', () => {
    test('a new project has development, staging and production', async () => {
      const r = await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Billing API' })
      assert.equal(r.status, 201)
      assert.equal(r.body.project.slug, 'billing-api')
      assert.equal(r.body.project.workspaceId, h.a.id)
      assert.deepEqual(r.body.environments.map((e: { slug: string }) => e.slug).sort(), ['development', 'production', 'staging'])
      const byId = await a.get(`/v1/workspaces/${h.a.id}/projects/${r.body.project.id}`)
      assert.equal(byId.status, 200)
      assert.deepEqual(byId.body.project, r.body.project)
      assert.deepEqual(byId.body.environments.map((e: { slug: string }) => e.slug).sort(), ['development', 'production', 'staging'])
      const list = await a.get(`/v1/workspaces/${h.a.slug}/projects`)
      assert.deepEqual(
        list.body.projects.map((p: { slug: string }) => p.slug),
        ['billing-api'],
      )
    })

    test('a duplicate project slug answers 409 ERR_ALREADY_EXISTS', async () => {
      assertCode(await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Billing API' }), 409, 'ERR_ALREADY_EXISTS')
      assertCode(
        await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Other name', slug: 'billing-api' }),
        409,
        'ERR_ALREADY_EXISTS',
      )
      // The same slug in another workspace is fine.
      assert.equal((await api(h.app, h.b.token).post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Billing API' })).status, 201)
      assert.equal((await a.get(`/v1/workspaces/${h.a.slug}/projects`)).body.projects.length, 1)
    })

    test('environments can be created, listed and are unique per project', async () => {
      const r = await a.post(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments`, { name: 'QA' })
      assert.equal(r.status, 201)
      assert.equal(r.body.environment.slug, 'qa')
      const custom = await a.post(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments`, { name: 'Preview 1', slug: 'preview-1' })
      assert.equal(custom.status, 201)
      const list = await a.get(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments`)
      assert.deepEqual(list.body.environments.map((e: { slug: string }) => e.slug).sort(), [
        'development',
        'preview-1',
        'production',
        'qa',
        'staging',
      ])
      assertCode(await a.post(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments`, { name: 'QA' }), 409, 'ERR_ALREADY_EXISTS')
      assertCode(
        await a.post(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments`, { name: 'X', slug: 'Not A Slug' }),
        400,
        'ERR_VALIDATION',
      )
      assertCode(await a.post(`/v1/workspaces/${h.a.slug}/projects/nope/environments`, { name: 'X' }), 404, 'ERR_NOT_FOUND')
    })
  })

  describe('the secrets lifecycle', () => {
    let E: string
    const v1 = value('v1')
    const v2 = value('v2')
    const c1 = value('comment1')
    before(() => {
      E = `/v1/workspaces/${h.a.slug}/projects/billing-api/environments/development`
    })

    test('set, get and list: values only when revealed', async () => {
      const put = await a.put(`${E}/secrets/DB_URL`, { value: v1, comment: c1, tags: ['db', 'team:core'] })
      assert.equal(put.status, 200)
      assert.equal(put.body.secret.version, 1)
      assert.equal(put.body.secret.key, 'DB_URL')
      assert.deepEqual(put.body.secret.tags, ['db', 'team:core'])
      assert.ok(!('value' in put.body.secret), 'a write does not echo the value')

      const plain = await a.get(`${E}/secrets/DB_URL`)
      assert.equal(plain.status, 200)
      assert.ok(!('value' in plain.body.secret) && !('comment' in plain.body.secret), 'no value without reveal')
      const shown = await a.get(`${E}/secrets/DB_URL?reveal=true`)
      assert.equal(shown.status, 200)
      sameValue(shown.body.secret.value, v1, 'DB_URL')
      sameValue(shown.body.secret.comment, c1, 'DB_URL comment')

      assert.equal((await a.put(`${E}/secrets/API_KEY`, { value: value('api') })).status, 200)
      const list = await a.get(`${E}/secrets`)
      assert.deepEqual(
        list.body.secrets.map((s: { key: string }) => s.key),
        ['API_KEY', 'DB_URL'],
      )
      for (const s of list.body.secrets) assert.ok(!('value' in s), 'no values in a plain list')
      const revealed = await a.get(`${E}/secrets?reveal=true`)
      sameValue(revealed.body.secrets.find((s: { key: string }) => s.key === 'DB_URL').value, v1, 'DB_URL in list')
      // Environments are separate: the key does not exist in staging.
      assertCode(await a.get(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments/staging/secrets/DB_URL`), 404, 'ERR_NOT_FOUND')
      assertCode(await a.get(`${E}/secrets/MISSING?reveal=true`), 404, 'ERR_NOT_FOUND')
    })

    test('ifVersion makes a write check-and-set; ifVersion 0 creates only if absent', async () => {
      assertCode(await a.put(`${E}/secrets/DB_URL`, { value: v2, ifVersion: 7 }), 409, 'ERR_VERSION_CONFLICT')
      assertCode(await a.put(`${E}/secrets/DB_URL`, { value: v2, ifVersion: 0 }), 409, 'ERR_VERSION_CONFLICT')
      const ok = await a.put(`${E}/secrets/DB_URL`, { value: v2, ifVersion: 1 })
      assert.equal(ok.status, 200)
      assert.equal(ok.body.secret.version, 2)
      assertCode(await a.put(`${E}/secrets/DB_URL`, { value: v1, ifVersion: 1 }), 409, 'ERR_VERSION_CONFLICT')
      sameValue((await a.get(`${E}/secrets/DB_URL?reveal=true`)).body.secret.value, v2, 'after the conflicts')

      const created = await a.put(`${E}/secrets/ONLY_ONCE`, { value: 'first', ifVersion: 0 })
      assert.equal(created.status, 200)
      assert.equal(created.body.secret.version, 1)
      assertCode(await a.put(`${E}/secrets/ONLY_ONCE`, { value: 'second', ifVersion: 0 }), 409, 'ERR_VERSION_CONFLICT')
      assertCode(await a.del(`${E}/secrets/ONLY_ONCE?ifVersion=3`), 409, 'ERR_VERSION_CONFLICT')
      sameValue((await a.get(`${E}/secrets/ONLY_ONCE?reveal=true`)).body.secret.value, 'first', 'ONLY_ONCE')
    })

    test('bulk set is atomic: one bad item and nothing is written', async () => {
      const keysBefore = (await a.get(`${E}/secrets?includeDeleted=true`)).body.secrets.map(
        (s: { key: string; version: number }) => `${s.key}@${s.version}`,
      )
      assertCode(
        await a.post(`${E}/secrets`, {
          secrets: [
            { key: 'BULK_A', value: 'a' },
            { key: '1BAD', value: 'b' },
          ],
        }),
        400,
        'ERR_VALIDATION',
      )
      assertCode(
        await a.post(`${E}/secrets`, {
          secrets: [
            { key: 'BULK_A', value: 'a' },
            { key: 'BULK_A', value: 'b' },
          ],
        }),
        400,
        'ERR_VALIDATION',
      )
      assertCode(
        await a.post(`${E}/secrets`, {
          secrets: [
            { key: 'BULK_A', value: 'a' },
            { key: 'DB_URL', value: 'changed' },
            { key: 'BULK_B', value: '€'.repeat(30_000) },
          ],
        }),
        400,
        'ERR_VALIDATION',
      )
      assertCode(await a.post(`${E}/secrets`, { secrets: [] }), 400, 'ERR_VALIDATION')
      const keysAfter = (await a.get(`${E}/secrets?includeDeleted=true`)).body.secrets.map(
        (s: { key: string; version: number }) => `${s.key}@${s.version}`,
      )
      assert.deepEqual(keysAfter, keysBefore, 'no secret created or changed')

      const ok = await a.post(`${E}/secrets`, {
        secrets: [
          { key: 'BULK_A', value: 'a' },
          { key: 'BULK_B', value: 'b', comment: 'c', tags: ['t'] },
          { key: 'API_KEY', value: 'rotated' },
        ],
      })
      assert.equal(ok.status, 200)
      assert.deepEqual(
        ok.body.secrets.map((s: { key: string; version: number }) => [s.key, s.version]),
        [
          ['BULK_A', 1],
          ['BULK_B', 1],
          ['API_KEY', 2],
        ],
      )
      const all = await a.get(`${E}/secrets?reveal=true`)
      const byKey = Object.fromEntries(all.body.secrets.map((s: { key: string; value: string }) => [s.key, s.value]))
      assert.ok(byKey.BULK_A === 'a' && byKey.BULK_B === 'b' && byKey.API_KEY === 'rotated', 'bulk values written')
    })

    test('history lists every version, newest first; rollback writes a new equal version', async () => {
      const hist = await a.get(`${E}/secrets/DB_URL/versions`)
      assert.equal(hist.status, 200)
      assert.deepEqual(
        hist.body.versions.map((v: { version: number; origin: string }) => [v.version, v.origin]),
        [
          [2, 'set'],
          [1, 'set'],
        ],
      )
      for (const v of hist.body.versions) assert.ok(!('value' in v), 'no values without reveal')
      const shown = await a.get(`${E}/secrets/DB_URL/versions?reveal=true`)
      sameValue(shown.body.versions[0].value, v2, 'v2 in history')
      sameValue(shown.body.versions[1].value, v1, 'v1 in history')
      sameValue(shown.body.versions[1].comment, c1, 'v1 comment in history')

      const rb = await a.post(`${E}/secrets/DB_URL/rollback`, { version: 1 })
      assert.equal(rb.status, 200)
      assert.equal(rb.body.secret.version, 3)
      assert.deepEqual(rb.body.secret.tags, ['db', 'team:core'])
      const now = await a.get(`${E}/secrets/DB_URL?reveal=true`)
      sameValue(now.body.secret.value, v1, 'rolled back value')
      sameValue(now.body.secret.comment, c1, 'rolled back comment')
      const after = await a.get(`${E}/secrets/DB_URL/versions`)
      assert.deepEqual(after.body.versions[0], {
        ...after.body.versions[0],
        version: 3,
        origin: 'rollback',
        originVersion: 1,
        deleted: false,
      })
      assert.equal(after.body.versions.length, 3, 'history is never rewritten')

      assertCode(await a.post(`${E}/secrets/DB_URL/rollback`, { version: 99 }), 404, 'ERR_NOT_FOUND')
      assertCode(await a.post(`${E}/secrets/DB_URL/rollback`, { version: 0 }), 400, 'ERR_VALIDATION')
      assertCode(await a.post(`${E}/secrets/DB_URL/rollback`, { version: 2, ifVersion: 2 }), 409, 'ERR_VERSION_CONFLICT')
      assertCode(await a.post(`${E}/secrets/NOPE/rollback`, { version: 1 }), 404, 'ERR_NOT_FOUND')
    })

    test('delete, then get is 404, includeDeleted shows it, restore brings the value back', async () => {
      const del = await a.del(`${E}/secrets/DB_URL`)
      assert.equal(del.status, 200)
      assert.equal(del.body.secret.deleted, true)
      assert.equal(del.body.secret.version, 4)
      assertCode(await a.get(`${E}/secrets/DB_URL`), 404, 'ERR_NOT_FOUND')
      assertCode(await a.get(`${E}/secrets/DB_URL?reveal=true`), 404, 'ERR_NOT_FOUND')
      assertCode(await a.del(`${E}/secrets/DB_URL`), 404, 'ERR_NOT_FOUND', 'deleting twice')
      assert.ok(
        !(await a.get(`${E}/secrets`)).body.secrets.some((s: { key: string }) => s.key === 'DB_URL'),
        'hidden from the default list',
      )
      const withDeleted = await a.get(`${E}/secrets?includeDeleted=true`)
      const tomb = withDeleted.body.secrets.find((s: { key: string }) => s.key === 'DB_URL')
      assert.equal(tomb?.deleted, true)
      assert.equal(tomb?.version, 4)
      const hist = await a.get(`${E}/secrets/DB_URL/versions?reveal=true`)
      assert.equal(hist.status, 200, 'history of a deleted secret is still readable')
      assert.deepEqual([hist.body.versions[0].origin, hist.body.versions[0].deleted, hist.body.versions[0].value], ['delete', true, null])

      assertCode(await a.post(`${E}/secrets/DB_URL/rollback`, { version: 4 }), 400, 'ERR_VALIDATION', 'rollback to a deletion')

      const restored = await a.post(`${E}/secrets/DB_URL/restore`)
      assert.equal(restored.status, 200)
      assert.equal(restored.body.secret.version, 5)
      assert.equal(restored.body.secret.deleted, false)
      const back = await a.get(`${E}/secrets/DB_URL?reveal=true`)
      sameValue(back.body.secret.value, v1, 'restored value')
      const last = (await a.get(`${E}/secrets/DB_URL/versions`)).body.versions[0]
      assert.deepEqual([last.version, last.origin, last.originVersion], [5, 'restore', 3])
      assertCode(await a.post(`${E}/secrets/DB_URL/restore`), 404, 'ERR_NOT_FOUND', 'restoring a live secret')
      assertCode(await a.post(`${E}/secrets/NEVER_EXISTED/restore`), 404, 'ERR_NOT_FOUND')

      // Setting a deleted secret again continues its history.
      assert.equal((await a.del(`${E}/secrets/BULK_A`)).status, 200)
      const again = await a.put(`${E}/secrets/BULK_A`, { value: 'again' })
      assert.deepEqual([again.status, again.body.secret.version, again.body.secret.deleted], [200, 3, false])
    })
  })

  describe('public endpoints and documents', () => {
    test('/healthz and /readyz', async () => {
      const health = await h.app.inject({ method: 'GET', url: '/healthz' })
      assert.equal(health.statusCode, 200)
      assert.deepEqual(health.json(), { status: 'ok' })
      const ready = await h.app.inject({ method: 'GET', url: '/readyz' })
      assert.equal(ready.statusCode, 200)
      assert.deepEqual(ready.json(), { status: 'ready' })
    })

    test('/v1/openapi.json is an OpenAPI 3.1 document with every API route', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/v1/openapi.json' })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^application\/json/)
      const doc = res.json() as {
        openapi: string
        info: { title: string; version: string }
        paths: Record<string, Record<string, Operation>>
        components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> }
      }
      assert.match(doc.openapi, /^3\.1\.\d+$/)
      assert.equal(typeof doc.info.title, 'string')
      assert.equal(typeof doc.info.version, 'string')
      const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])
      const opIds = new Set<string>()
      let operations = 0
      for (const [path, item] of Object.entries(doc.paths)) {
        assert.match(path, /^\//, 'paths start with /')
        assert.ok(!path.includes(':'), `${path}: templated with {name}, not :name`)
        const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!)
        for (const [method, op] of Object.entries(item)) {
          assert.ok(methods.has(method), `${path}: ${method} is an HTTP method`)
          operations++
          assert.equal(typeof op.operationId, 'string')
          assert.ok(!opIds.has(op.operationId), `operationId ${op.operationId} is unique`)
          opIds.add(op.operationId)
          assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path} has responses`)
          for (const [status, response] of Object.entries(op.responses as Record<string, { description?: unknown }>)) {
            assert.match(status, /^(default|[1-5](\d\d|XX))$/, `${method} ${path}: response key ${status}`)
            assert.equal(typeof response.description, 'string', `${method} ${path} ${status}: description`)
          }
          for (const t of templated) {
            const p = (op.parameters as Array<{ name: string; in: string; required: boolean }>).find((x) => x.name === t && x.in === 'path')
            assert.ok(p, `${method} ${path}: path parameter ${t} is declared`)
            assert.equal(p.required, true, `${method} ${path}: path parameter ${t} is required`)
          }
          for (const p of op.parameters as Array<{ name: string; in: string }>) {
            assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in), `${method} ${path}: parameter ${p.name} location`)
            if (p.in === 'path') assert.ok(templated.includes(p.name), `${method} ${path}: path parameter ${p.name} is in the path`)
          }
          for (const s of op.security ?? [])
            for (const name of Object.keys(s)) assert.ok(name in doc.components.securitySchemes, `security scheme ${name} is defined`)
        }
      }
      // Every $ref points inside the document.
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!)
      for (const ref of refs) {
        assert.match(ref, /^#\//, `${ref} is local`)
        let node: unknown = doc
        for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown>)?.[part]
        assert.ok(node !== undefined, `${ref} resolves`)
      }
      // One operation per API route, each with its body schema when it takes one.
      assert.equal(operations, API_ROUTES.length + AUTH_ROUTES.length, 'every workspace, account and public route')
      for (const r of API_ROUTES) {
        const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}')
        const op = doc.paths[path]?.[r.method.toLowerCase()]
        assert.ok(op, `${r.method} ${r.url} is documented`)
        // A route that takes no credential (the machine token exchange) says so: no scheme.
        if (r.auth === 'none') assert.deepEqual(op.security, [], `${r.method} ${r.url} needs no credential`)
        else assert.ok(Array.isArray(op.security) && op.security.length > 0, `${r.method} ${r.url} declares its security`)
        if (r.body) assert.ok(op.requestBody?.content?.['application/json']?.schema, `${r.method} ${r.url} documents its body`)
      }
    })

    test('/docs is an HTML page listing every route', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/docs' })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/html/)
      assert.match(res.body, /^<!doctype html>/i)
      assert.ok(!/<script/i.test(res.body), 'no scripts')
      const csp = String(res.headers['content-security-policy'])
      assert.match(csp, /default-src 'none'/)
      assert.ok(!csp.includes('unsafe-inline') && !csp.includes('script-src'), 'no script may run on the page')
      for (const r of [...API_ROUTES, ...AUTH_ROUTES])
        assert.ok(res.body.includes(r.url.replace(/:([A-Za-z]+)/g, '{$1}')), `${r.url} is on the page`)
    })

    test('/docs lists every operation of /v1/openapi.json under its tag, and its count is the number listed', async () => {
      const doc = (await h.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as {
        paths: Record<string, Record<string, { tags: string[] }>>
      }
      const expected = Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item).map(([method, op]) => ({ method, path, tag: op.tags[0] })),
      )
      const page = (await h.app.inject({ method: 'GET', url: '/docs' })).body
      const operation = /<section><h3><span class="m ([a-z]+)">[A-Z]+<\/span> <code>([^<]+)<\/code><\/h3>/g
      const count = Number(/<p>(\d+) endpoints under/.exec(page)?.[1])
      const listed = [...page.matchAll(operation)]
      assert.equal(listed.length, count, 'the count the page prints is the number of endpoints it lists')
      assert.equal(count, expected.length, 'the page lists every operation of the document')
      assert.equal(count, API_ROUTES.length + AUTH_ROUTES.length, 'every workspace, account and public route')
      const groups = page
        .split('<h2>')
        .slice(1)
        .map((g) => ({ tag: g.slice(0, g.indexOf('</h2>')), ops: [...g.matchAll(operation)].map((m) => `${m[1]} ${m[2]}`) }))
      assert.equal(new Set(groups.map((g) => g.tag)).size, groups.length, 'one heading per tag')
      for (const e of expected) {
        const group = groups.find((g) => g.tag === e.tag)
        assert.ok(group?.ops.includes(`${e.method} ${e.path}`), `${e.method.toUpperCase()} ${e.path} is listed under ${e.tag}`)
      }
      const css = await h.app.inject({ method: 'GET', url: '/docs/style.css' })
      assert.equal(css.statusCode, 200)
      assert.match(String(css.headers['content-type']), /^text\/css/)
    })

    test('an unknown route answers 404 ERR_ROUTE_NOT_FOUND', async () => {
      for (const [method, url] of [
        ['GET', '/v1/nope'],
        ['GET', '/favicon.ico'],
        ['POST', '/v1/workspaces'],
        ['DELETE', '/healthz'],
        ['GET', '/v2/me'],
        ['PATCH', `/v1/workspaces/${h.a.slug}`],
      ] as const) {
        const res = await h.app.inject({ method, url, headers: { authorization: `Bearer ${h.a.token}` } })
        assert.equal(res.statusCode, 404, `${method} ${url}`)
        assert.equal(res.json().error.code, 'ERR_ROUTE_NOT_FOUND', `${method} ${url}`)
      }
    })

    test('security headers on every kind of response', async () => {
      const member = await memberToken(h, 'member')
      const E = `/v1/workspaces/${h.a.slug}/projects/billing-api/environments/development`
      const bearer = { authorization: `Bearer ${h.a.token}` }
      const cases: Array<[string, InjectOptions, number]> = [
        ['healthz', { method: 'GET', url: '/healthz' }, 200],
        ['readyz', { method: 'GET', url: '/readyz' }, 200],
        ['openapi', { method: 'GET', url: '/v1/openapi.json' }, 200],
        ['docs', { method: 'GET', url: '/docs' }, 200],
        ['docs css', { method: 'GET', url: '/docs/style.css' }, 200],
        ['me', { method: 'GET', url: '/v1/me', headers: bearer }, 200],
        ['write', { method: 'PUT', url: `${E}/secrets/HEADERS`, headers: bearer, payload: { value: 'h' } }, 200],
        ['reveal', { method: 'GET', url: `${E}/secrets/HEADERS?reveal=true`, headers: bearer }, 200],
        ['created', { method: 'POST', url: `/v1/workspaces/${h.a.slug}/tokens`, headers: bearer, payload: { name: 'h' } }, 201],
        ['unauthenticated', { method: 'GET', url: '/v1/me' }, 401],
        [
          'forbidden',
          {
            method: 'POST',
            url: `/v1/workspaces/${h.a.slug}/projects`,
            headers: { authorization: `Bearer ${member}` },
            payload: { name: 'No' },
          },
          403,
        ],
        ['not found', { method: 'GET', url: `/v1/workspaces/${h.b.slug}`, headers: bearer }, 404],
        ['route not found', { method: 'GET', url: '/v1/nope' }, 404],
        ['dashboard, signed out', { method: 'GET', url: '/nope' }, 303],
        ['validation', { method: 'PUT', url: `${E}/secrets/1BAD`, headers: bearer, payload: { value: 'x' } }, 400],
        [
          'malformed',
          { method: 'PUT', url: `${E}/secrets/OK`, headers: { ...bearer, 'content-type': 'application/json' }, payload: '{' },
          400,
        ],
        ['conflict', { method: 'PUT', url: `${E}/secrets/HEADERS`, headers: bearer, payload: { value: 'x', ifVersion: 9 } }, 409],
        ['media type', { method: 'PUT', url: `${E}/secrets/OK`, headers: { ...bearer, 'content-type': 'text/plain' }, payload: 'x' }, 415],
        [
          'too large',
          {
            method: 'PUT',
            url: `${E}/secrets/OK`,
            headers: { ...bearer, 'content-type': 'application/json' },
            payload: JSON.stringify({ value: 'x'.repeat(3 * 1024 * 1024) }),
          },
          413,
        ],
      ]
      for (const [what, req, status] of cases) {
        const res = await h.app.inject(req)
        assert.equal(res.statusCode, status, what)
        assertSecurityHeaders(res.headers, what)
        assert.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`)
        assert.ok(res.headers['x-request-id'], `${what}: x-request-id`)
      }
    })
  })

  describe('authentication and roles', () => {
    /** Real references in A, so a route that lets the request through finds its target. */
    let refs: Record<string, string>
    before(async () => {
      const p = await a.get(`/v1/workspaces/${h.a.slug}/projects/billing-api`)
      refs = {
        workspace: h.a.slug,
        project: p.body.project.id,
        environment: 'development',
        key: 'ROLE_KEY',
        token: '00000000-0000-4000-8000-000000000000',
        job: '00000000-0000-4000-8000-000000000000',
        user: '00000000-0000-4000-8000-000000000000',
        invitation: '00000000-0000-4000-8000-000000000000',
        request: '00000000-0000-4000-8000-000000000000',
        machine: '00000000-0000-4000-8000-000000000000',
        rule: '00000000-0000-4000-8000-000000000000',
        serviceToken: '00000000-0000-4000-8000-000000000000',
        webhook: '00000000-0000-4000-8000-000000000000',
        connection: '00000000-0000-4000-8000-000000000000',
        delivery: `msg_${'0'.repeat(32)}`,
        role: 'no-such-role',
      }
      assert.equal(
        (await a.put(`/v1/workspaces/${h.a.slug}/projects/billing-api/environments/development/secrets/ROLE_KEY`, { value: 'r' })).status,
        200,
      )
    })

    test('every API route answers 401 ERR_UNAUTHENTICATED without a valid token', async () => {
      assert.ok(API_ROUTES.length >= 16)
      for (const r of API_ROUTES) {
        const url = fill(r.url, refs)
        const wrongChecksum = `${h.a.token.slice(0, -1)}${h.a.token.endsWith('x') ? 'y' : 'x'}`
        for (const auth of [undefined, 'Bearer', `Bearer ${wrongChecksum}`, `Token ${h.a.token}`]) {
          const res = await inject(h, r, url, auth)
          assert.equal(res.status, 401, `${r.method} ${r.url} with ${auth === undefined ? 'no header' : 'a bad header'}`)
          assert.equal(res.body.error.code, 'ERR_UNAUTHENTICATED')
          assertSecurityHeaders(res.headers, `${r.method} ${r.url}`)
        }
      }
    })

    test('a member sees only projects they hold a role in; a developer uses unrestricted secrets; a viewer never reveals', async () => {
      const m = api(h.app, await memberToken(h, 'member'))
      const me = await m.get('/v1/me')
      assert.equal(me.body.role, 'member')
      const W = `/v1/workspaces/${h.a.slug}`
      const dev = `${W}/projects/billing-api/environments/development`
      const prod = `${W}/projects/billing-api/environments/production`
      // No project role: the project does not exist for them, and nothing workspace-wide is theirs to change.
      assert.deepEqual((await m.get(`${W}/projects`)).body.projects, [], 'a member with no project role lists no project')
      assertCode(await m.get(`${W}/projects/billing-api`), 404, 'ERR_NOT_FOUND')
      assertCode(await m.get(`${dev}/secrets`), 404, 'ERR_NOT_FOUND')
      assertCode(await m.put(`${dev}/secrets/MEMBER_SECRET`, { value: 'x' }), 404, 'ERR_NOT_FOUND')
      const projectsBefore = (await a.get(`${W}/projects`)).body.projects.length
      assertCode(await m.post(`${W}/projects`, { name: 'Member Project' }), 403, 'ERR_FORBIDDEN')
      assertCode(await m.get(`${W}/audit/entries`), 403, 'ERR_FORBIDDEN')
      assertCode(await m.get(`${W}/audit/verify`), 403, 'ERR_FORBIDDEN')
      assert.equal((await a.get(`${W}/projects`)).body.projects.length, projectsBefore, 'nothing was created')

      // Developer: secrets of unrestricted environments; production (restricted) lists keys only.
      assert.equal((await a.put(`${W}/projects/billing-api/members/${me.body.user.id}`, { role: 'developer' })).status, 200)
      assert.deepEqual(
        (await m.get(`${W}/projects`)).body.projects.map((p: { slug: string }) => p.slug),
        ['billing-api'],
      )
      assertCode(await m.post(`${W}/projects/billing-api/environments`, { name: 'Member Env' }), 403, 'ERR_FORBIDDEN')
      assert.ok(
        !(await a.get(`${W}/projects/billing-api/environments`)).body.environments.some((e: { slug: string }) => e.slug === 'member-env'),
      )
      const secret = value('member')
      assert.equal((await m.put(`${dev}/secrets/MEMBER_SECRET`, { value: secret })).status, 200)
      sameValue((await m.get(`${dev}/secrets/MEMBER_SECRET?reveal=true`)).body.secret.value, secret, 'member reads back')
      sameValue((await a.get(`${dev}/secrets/MEMBER_SECRET?reveal=true`)).body.secret.value, secret, "owner reads the member's write")
      assert.equal((await m.get(`${dev}/secrets?reveal=true`)).status, 200)
      const prodSecret = value('prod')
      assert.equal((await a.put(`${prod}/secrets/PROD_SECRET`, { value: prodSecret })).status, 200)
      assert.deepEqual(
        (await m.get(`${prod}/secrets`)).body.secrets.map((x: { key: string; value?: string }) => [x.key, x.value]),
        [['PROD_SECRET', undefined]],
      )
      assertCode(await m.get(`${prod}/secrets/PROD_SECRET?reveal=true`), 403, 'ERR_FORBIDDEN')
      assertCode(await m.get(`${prod}/secrets?reveal=true`), 403, 'ERR_FORBIDDEN')
      assertCode(await m.put(`${prod}/secrets/PROD_SECRET`, { value: 'overwritten' }), 403, 'ERR_FORBIDDEN')
      // A read grant on production: reveal, still no write.
      const envs = (await a.get(`${W}/projects/billing-api/environments`)).body.environments as Array<{ slug: string; id: string }>
      const prodId = envs.find((e) => e.slug === 'production')!.id
      assert.equal(
        (await a.put(`${W}/projects/billing-api/environments/${prodId}/grants/${me.body.user.id}`, { access: 'read' })).status,
        200,
      )
      sameValue((await m.get(`${prod}/secrets/PROD_SECRET?reveal=true`)).body.secret.value, prodSecret, 'a read grant reveals')
      assertCode(await m.put(`${prod}/secrets/PROD_SECRET`, { value: 'overwritten' }), 403, 'ERR_FORBIDDEN')
      sameValue((await a.get(`${prod}/secrets/PROD_SECRET?reveal=true`)).body.secret.value, prodSecret, 'production unchanged')
      // Viewer: keys and metadata, never a value.
      assert.equal((await a.put(`${W}/projects/billing-api/members/${me.body.user.id}`, { role: 'viewer' })).status, 200)
      assert.equal((await m.get(`${dev}/secrets`)).status, 200)
      assert.equal((await m.get(`${dev}/secrets/MEMBER_SECRET/versions`)).status, 200)
      assertCode(await m.get(`${dev}/secrets/MEMBER_SECRET?reveal=true`), 403, 'ERR_FORBIDDEN')
      assertCode(await m.get(`${dev}/secrets/MEMBER_SECRET/versions?reveal=true`), 403, 'ERR_FORBIDDEN')
      assertCode(await m.del(`${dev}/secrets/MEMBER_SECRET`), 403, 'ERR_FORBIDDEN')
      assert.equal((await m.get(`${W}/tokens`)).status, 200)
      // A member's token is bound to A: B stays invisible.
      assertCode(await m.get(`/v1/workspaces/${h.b.slug}/projects`), 404, 'ERR_NOT_FOUND')
    })

    // Every route against every role, project role, restriction and tenant: route-policy.test.ts.
  })
}

describeEachEngine(suite)
