// Machine identities and service tokens from the attacker's side: a token used outside its
// scope, a revoked token or client secret replayed (on another node too), an expired access
// token, an address outside the allow-list, and an integration trying to act as a member.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createContext, type AppContext } from '../../src/context.js'
import { generateToken, hashToken } from '../../src/identity/token-format.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import type { FastifyInstance } from 'fastify'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import type { JsonBody } from '../helpers/json-body.js'

type Reply = { status: number; body: JsonBody }

function code(r: Reply, status: number, c: string, what = c): void {
  assert.equal(r.status, status, `${what}: status`)
  assert.equal(r.body?.error?.code, c, what)
}

function suite(engine: EngineName): void {
  let h: Harness
  let offset = 0
  let W: string
  let P: string
  const envs: Record<string, string> = {}
  const owner = () => api(h.app, h.a.token)

  async function exchange(app: FastifyInstance, clientId: string, clientSecret: string, remoteAddress?: string): Promise<Reply> {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/machine/token',
      payload: { clientId, clientSecret },
      ...(remoteAddress ? { remoteAddress } : {}),
    })
    return { status: r.statusCode, body: JSON.parse(r.body) }
  }
  async function as(
    app: FastifyInstance,
    token: string,
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    url: string,
    payload?: unknown,
    remoteAddress?: string,
  ): Promise<Reply> {
    const r = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as object }),
      ...(remoteAddress ? { remoteAddress } : {}),
    })
    return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined }
  }
  async function machine(body: Record<string, unknown>) {
    const r = await owner().post(`${W}/machines`, { name: 'ci', ...body })
    assert.equal(r.status, 201)
    return r.body as { machine: { id: string }; clientId: string; clientSecret: string }
  }

  before(async () => {
    h = await startHarness(engine, {}, { clock: () => new Date(Date.now() + offset) })
    W = `/v1/workspaces/${h.a.slug}`
    const p = await owner().post(`${W}/projects`, { name: 'Service' })
    P = `${W}/projects/service`
    for (const e of p.body.environments as Array<{ slug: string; id: string }>) envs[e.slug] = e.id
    for (const env of ['development', 'staging', 'production']) {
      assert.equal((await owner().put(`${P}/environments/${env}/secrets/DB_URL`, { value: `${env}-db` })).status, 200)
    }
  })
  after(() => h?.close())

  describe('machine identities', () => {
    test('client secret shown once and stored hashed; the exchange gives an access token of at most an hour, within scope only', async () => {
      const m = await machine({ scopes: [{ project: 'service', environments: ['staging'], access: 'read' }], tokenTtlSeconds: 600 })
      assert.match(m.clientSecret, /^coffer_mcs_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/)
      const listed = await owner().get(`${W}/machines`)
      assert.ok(!JSON.stringify(listed.body).includes(m.clientSecret.slice(11, 43)), 'the listing shows no secret')
      const row = await h.db.selectFrom('machine_identities').selectAll().where('id', '=', m.machine.id).executeTakeFirstOrThrow()
      assert.ok(Buffer.from(row.secret_hash).equals(hashToken(m.clientSecret)))
      const x = await exchange(h.app, m.clientId, m.clientSecret)
      assert.equal(x.status, 200)
      assert.match(x.body.accessToken, /^coffer_sat_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/)
      assert.equal(x.body.tokenType, 'Bearer')
      assert.ok(x.body.expiresIn <= 600 && x.body.expiresIn > 590)
      const t = x.body.accessToken as string
      const tokenRow = await h.db.selectFrom('machine_tokens').selectAll().where('machine_id', '=', m.machine.id).executeTakeFirstOrThrow()
      assert.ok(Buffer.from(tokenRow.token_hash).equals(hashToken(t)), 'the access token is stored as a hash')

      const staging = await as(h.app, t, 'GET', `${P}/environments/staging/secrets?reveal=true`)
      assert.equal(staging.status, 200)
      assert.equal(staging.body.secrets[0].value, 'staging-db')
      code(
        await as(h.app, t, 'GET', `${P}/environments/production/secrets?reveal=true`),
        404,
        'ERR_NOT_FOUND',
        'an environment outside the scope',
      )
      code(await as(h.app, t, 'GET', `${P}/environments/development/secrets`), 404, 'ERR_NOT_FOUND', 'listing outside the scope')
      code(
        await as(h.app, t, 'PUT', `${P}/environments/staging/secrets/DB_URL`, { value: 'x' }),
        403,
        'ERR_FORBIDDEN',
        'a write with read access',
      )
      const me = await as(h.app, t, 'GET', '/v1/me')
      assert.deepEqual(
        { user: me.body.user, type: me.body.integration.type, id: me.body.integration.id, role: me.body.role },
        { user: null, type: 'machine', id: m.machine.id, role: null },
      )
      assert.deepEqual(
        (await as(h.app, t, 'GET', `${W}/projects`)).body.projects.map((x: { slug: string }) => x.slug),
        ['service'],
      )
      assert.deepEqual(
        (await as(h.app, t, 'GET', P)).body.environments.map((e: { slug: string }) => e.slug),
        ['staging'],
        'only the environments in scope',
      )

      // At most an hour, and gone after its time.
      offset = 601_000
      try {
        code(await as(h.app, t, 'GET', `${P}/environments/staging/secrets`), 401, 'ERR_UNAUTHENTICATED', 'an expired access token')
      } finally {
        offset = 0
      }
      code(
        await owner().post(`${W}/machines`, {
          name: 'long',
          scopes: [{ project: 'service', environments: '*', access: 'read' }],
          tokenTtlSeconds: 7200,
        }),
        400,
        'ERR_VALIDATION',
        'a lifetime over an hour',
      )
      const audit = (await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string; actor: { type: string; id: string } }>
      assert.ok(audit.some((e) => e.action === 'machine.create'))
      assert.ok(audit.some((e) => e.action === 'machine.token.issue' && e.actor.type === 'machine' && e.actor.id === m.machine.id))
      assert.ok(
        audit.some((e) => e.action === 'secrets.reveal_all' && e.actor.type === 'machine'),
        "the machine's reveal is audited as the machine",
      )
      assert.ok(!JSON.stringify(audit).includes(t.slice(11, 43)) && !JSON.stringify(audit).includes(m.clientSecret.slice(11, 43)))
    })

    test('bad client credentials all look alike', async () => {
      const m = await machine({ scopes: [{ project: 'service', environments: '*', access: 'read' }] })
      const wrong = generateToken('mcs')
      for (const [label, id, secret] of [
        ['wrong secret', m.clientId, wrong],
        ['unknown client', '00000000-0000-4000-8000-000000000000', m.clientSecret],
        ['a personal token as secret', m.clientId, h.a.token],
        ['no secret shape', m.clientId, 'hunter2'],
        ['not an id', 'x', m.clientSecret],
      ] as const) {
        const r = await exchange(h.app, id, secret)
        code(r, 401, 'ERR_UNAUTHENTICATED', label)
        assert.ok(!JSON.stringify(r.body).includes(m.clientSecret.slice(11, 43)))
      }
      code(await as(h.app, m.clientSecret, 'GET', '/v1/me'), 401, 'ERR_UNAUTHENTICATED', 'a client secret is not a Bearer token')
    })

    test('revoking the identity ends its live access tokens at once, on another node too, and its secret stops exchanging', async () => {
      const m = await machine({ scopes: [{ project: 'service', environments: '*', access: 'write' }] })
      const t = (await exchange(h.app, m.clientId, m.clientSecret)).body.accessToken as string
      // A second node on the same database.
      const e = readEnv(h.settings)
      const ctx2: AppContext = await createContext(buildConfig(e), buildSecrets(e))
      const app2 = await buildApp(ctx2)
      await app2.ready()
      try {
        assert.equal(
          (await as(app2, t, 'GET', `${P}/environments/production/secrets/DB_URL?reveal=true`)).status,
          200,
          'node 2 accepts the token',
        )
        const revoked = await owner().del(`${W}/machines/${m.machine.id}`)
        assert.equal(revoked.status, 200)
        assert.equal(revoked.body.liveTokens, 1)
        code(
          await as(app2, t, 'GET', `${P}/environments/production/secrets/DB_URL?reveal=true`),
          401,
          'ERR_UNAUTHENTICATED',
          'node 2 after the revocation',
        )
        code(await as(h.app, t, 'GET', `${P}/environments/production/secrets`), 401, 'ERR_UNAUTHENTICATED', 'node 1 after the revocation')
        code(await exchange(app2, m.clientId, m.clientSecret), 401, 'ERR_UNAUTHENTICATED', 'the client secret reused after revocation')
        code(await exchange(h.app, m.clientId, m.clientSecret), 401, 'ERR_UNAUTHENTICATED', 'the client secret reused after revocation')
      } finally {
        await app2.close()
        await ctx2.close()
      }
      const audit = (await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string }>
      assert.ok(audit.some((x) => x.action === 'machine.revoke'))
    })

    test('the IP allow-list applies to the exchange and to every use of the access token', async () => {
      const far = await machine({ scopes: [{ project: 'service', environments: '*', access: 'read' }], allowedCidrs: ['10.0.0.0/8'] })
      code(await exchange(h.app, far.clientId, far.clientSecret), 401, 'ERR_UNAUTHENTICATED', 'from 127.0.0.1, allowed 10/8')
      assert.equal((await exchange(h.app, far.clientId, far.clientSecret, '10.1.2.3')).status, 200, 'from 10.1.2.3')
      const near = await machine({
        scopes: [{ project: 'service', environments: '*', access: 'read' }],
        allowedCidrs: ['127.0.0.1', '::1/128'],
      })
      const t = (await exchange(h.app, near.clientId, near.clientSecret)).body.accessToken as string
      assert.equal((await as(h.app, t, 'GET', `${P}/environments/staging/secrets`)).status, 200)
      code(
        await as(h.app, t, 'GET', `${P}/environments/staging/secrets`, undefined, '192.0.2.7'),
        401,
        'ERR_UNAUTHENTICATED',
        'the access token from another address',
      )
      code(
        await owner().post(`${W}/machines`, {
          name: 'bad',
          scopes: [{ project: 'service', environments: '*', access: 'read' }],
          allowedCidrs: ['10.0.0.0/33'],
        }),
        400,
        'ERR_VALIDATION',
        'a bad CIDR',
      )
      code(
        await owner().post(`${W}/machines`, {
          name: 'bad',
          scopes: [{ project: 'service', environments: '*', access: 'read' }],
          allowedCidrs: ['example.com'],
        }),
        400,
        'ERR_VALIDATION',
        'a host name',
      )
    })
  })

  describe('service tokens', () => {
    test('scoped to one environment: works there only; expires; revoked fails at once; last use recorded once a minute', async () => {
      const created = await owner().post(`${W}/service-tokens`, {
        name: 'deploy',
        scopes: [{ project: 'service', environments: ['production'], access: 'read' }],
        expiresInDays: 1,
      })
      assert.equal(created.status, 201)
      const t = created.body.token as string
      assert.match(t, /^coffer_svc_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/)
      assert.ok(!JSON.stringify((await owner().get(`${W}/service-tokens`)).body).includes(t.slice(11, 43)))
      const prod = await as(h.app, t, 'GET', `${P}/environments/production/secrets?reveal=true`)
      assert.equal(prod.status, 200)
      assert.equal(prod.body.secrets[0].value, 'production-db', 'a service token reveals a restricted environment it is scoped to')
      code(await as(h.app, t, 'GET', `${P}/environments/staging/secrets?reveal=true`), 404, 'ERR_NOT_FOUND', 'another environment')
      code(await as(h.app, t, 'GET', `/v1/workspaces/${h.b.slug}/projects`), 404, 'ERR_NOT_FOUND', 'another workspace')

      // Last use: written within moments of the first use, not rewritten within the minute.
      const lastUsed = async () =>
        (await h.db.selectFrom('service_tokens').select('last_used_at').where('id', '=', created.body.info.id).executeTakeFirstOrThrow())
          .last_used_at
      let first: string | null = null
      for (let i = 0; i < 100 && !first; i++) {
        first = await lastUsed()
        if (!first) await new Promise((r) => setTimeout(r, 20))
      }
      assert.ok(first, 'the last use was recorded')
      await as(h.app, t, 'GET', `${P}/environments/production/secrets`)
      await new Promise((r) => setTimeout(r, 100))
      assert.equal(await lastUsed(), first, 'not rewritten within a minute')
      offset = 61_000
      try {
        await as(h.app, t, 'GET', `${P}/environments/production/secrets`)
        let later: string | null = first
        for (let i = 0; i < 100 && later === first; i++) {
          later = await lastUsed()
          if (later === first) await new Promise((r) => setTimeout(r, 20))
        }
        assert.ok(later && later > first, 'rewritten after a minute')
        offset = 2 * 86_400_000
        code(await as(h.app, t, 'GET', `${P}/environments/production/secrets`), 401, 'ERR_UNAUTHENTICATED', 'an expired service token')
      } finally {
        offset = 0
      }
      assert.equal((await owner().del(`${W}/service-tokens/${created.body.info.id}`)).status, 200)
      code(
        await as(h.app, t, 'GET', `${P}/environments/production/secrets`),
        401,
        'ERR_UNAUTHENTICATED',
        'a revoked service token replayed',
      )
      const actions = new Set(((await owner().get(`${W}/audit/entries`)).body.entries as Array<{ action: string }>).map((e) => e.action))
      assert.ok(actions.has('service_token.create') && actions.has('service_token.revoke'))
    })

    test("an Admin's integration token can never act as a member", async () => {
      const admin = (
        await owner().post(`${W}/service-tokens`, {
          name: 'all-powerful?',
          scopes: [{ project: 'service', environments: '*', access: 'write' }],
        })
      ).body.token as string
      const m = await machine({ scopes: [{ project: 'service', environments: '*', access: 'write' }] })
      const sat = (await exchange(h.app, m.clientId, m.clientSecret)).body.accessToken as string
      for (const t of [admin, sat]) {
        const attempts: Array<[string, () => Promise<Reply>]> = [
          ['list personal tokens', () => as(h.app, t, 'GET', `${W}/tokens`)],
          ['mint a personal token', () => as(h.app, t, 'POST', `${W}/tokens`, { name: 'escalate' })],
          ['list members', () => as(h.app, t, 'GET', `${W}/members`)],
          ['change a role', () => as(h.app, t, 'PUT', `${W}/members/00000000-0000-4000-8000-000000000000`, { role: 'owner' })],
          ['invite', () => as(h.app, t, 'POST', `${W}/invitations`, { email: 'mine@evil.test', role: 'owner' })],
          ['accept an invitation', () => as(h.app, t, 'POST', '/v1/invitations/accept', { token: generateToken('inv') })],
          [
            'create a machine',
            () =>
              as(h.app, t, 'POST', `${W}/machines`, { name: 'x', scopes: [{ project: 'service', environments: '*', access: 'write' }] }),
          ],
          [
            'create a service token',
            () =>
              as(h.app, t, 'POST', `${W}/service-tokens`, {
                name: 'x',
                scopes: [{ project: 'service', environments: '*', access: 'write' }],
              }),
          ],
          ['read the audit log', () => as(h.app, t, 'GET', `${W}/audit/entries`)],
          ['create a project', () => as(h.app, t, 'POST', `${W}/projects`, { name: 'Mine' })],
          ['manage the project', () => as(h.app, t, 'PUT', `${P}/members/00000000-0000-4000-8000-000000000000`, { role: 'admin' })],
          ['lift a restriction', () => as(h.app, t, 'PUT', `${P}/environments/production/restriction`, { restricted: false })],
          ['leave', () => as(h.app, t, 'POST', `${W}/leave`)],
        ]
        for (const [what, attempt] of attempts) code(await attempt(), 403, 'ERR_FORBIDDEN', what)
        // Within its scope it does what its scope says.
        assert.equal(
          (await as(h.app, t, 'PUT', `${P}/environments/production/secrets/WRITTEN_BY_INTEGRATION`, { value: 'ok' })).status,
          200,
        )
      }
      const versions = await owner().get(`${P}/environments/production/secrets/WRITTEN_BY_INTEGRATION/versions`)
      assert.ok(
        versions.body.versions.every((v: { createdBy: string }) => v.createdBy !== ''),
        'versions name the integration that wrote them',
      )
    })
  })
}

describeEachEngine(suite)
