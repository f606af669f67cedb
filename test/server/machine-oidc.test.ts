// OIDC federation for machine identities against a real issuer on loopback (discovery and
// JWKS over HTTP, tokens signed with jose), as a CI provider's tokens look to Coffer: a valid
// token for the trusted repository and branch reads the secret; from the attacker's side a
// wrong subject, a wrong audience, an expired token, another key under the same kid,
// `alg: none`, HS256 keyed with the public key, another issuer naming this issuer's kid and a
// replay after revocation are each refused with the one code and audited with the failed
// check. Key rotation is followed (within the refetch cooldown it is not: no hammering), glob
// rules match, the access token's life is capped by the ID token's when asked, the guard
// refuses a private issuer, and the exchange is rate-limited. Both engines.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { exportSPKI, importJWK, SignJWT } from 'jose'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { signingKey, startIssuer, type TestIssuer } from '../helpers/oidc-issuer.js'

const SUB = 'repo:acme/web:ref:refs/heads/main'

/** A clock the test moves forward (the JWKS refetch cooldown follows the context's clock). */
function movableClock(): { clock: () => Date; advance(ms: number): void } {
  let offset = 0
  return { clock: () => new Date(Date.now() + offset), advance: (ms) => (offset += ms) }
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

function suite(engine: EngineName): void {
  let h: Harness
  let iss: TestIssuer
  let other: TestIssuer
  let owner: ReturnType<typeof api>
  let M: string
  let E: string
  let machine: string
  const time = movableClock()

  const exchange = async (idToken: string, clientId = machine) => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/machine/oidc-token', payload: { clientId, idToken } })
    return { status: res.statusCode, body: JSON.parse(res.body) }
  }
  const lastRefusal = async (id = machine) => {
    await h.settle()
    const rows = await h.db
      .selectFrom('audit_entries')
      .select(['id', 'action', 'details', 'target_id', 'actor_type', 'actor_id'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'machine.oidc.refused')
      .where('target_id', '=', id)
      .orderBy('seq', 'desc')
      .execute()
    return rows[0]
  }
  /** Refused with the one generic code, and the refusal recorded with `check` (and never the token). */
  const refused = async (idToken: string, check: string, id = machine) => {
    const before = (await lastRefusal(id))?.id
    const r = await exchange(idToken, id)
    assert.equal(r.status, 401, `refused (${check})`)
    assert.equal(r.body.error.code, 'ERR_OIDC_TOKEN_REJECTED')
    assert.ok(!('accessToken' in r.body))
    const entry = await lastRefusal(id)
    assert.ok(entry && entry.id !== before, `the refusal (${check}) is audited`)
    assert.equal(JSON.parse(entry.details).check, check)
    for (const part of idToken.split('.').filter((p) => p.length > 16))
      assert.ok(!entry.details.includes(part), 'the token is not in the audit entry')
    assert.equal(entry.actor_type, 'anonymous')
  }

  before(async () => {
    iss = await startIssuer()
    other = await startIssuer()
    h = await startHarness(engine, { COFFER_OUTBOUND_ALLOW: '127.0.0.1/32', COFFER_AUDIT_MERGE_DELAY: '0.1' }, { clock: time.clock })
    owner = api(h.app, h.a.token)
    M = `/v1/workspaces/${h.a.slug}/machines`
    assert.equal((await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Web', slug: 'web' })).status, 201)
    E = `/v1/workspaces/${h.a.slug}/projects/web/environments/production/secrets`
    assert.equal((await owner.put(`${E}/DATABASE_URL`, { value: 'postgres://app@db/prod' })).status, 200)
    const made = await owner.post(M, {
      name: 'web-deploy',
      scopes: [{ project: 'web', environments: ['production'], access: 'read' }],
      oidcRules: [{ issuer: iss.url, audiences: ['coffer'], claims: { sub: SUB } }],
    })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    assert.equal(made.body.clientSecret, null, 'an identity that trusts an issuer gets no client secret by default')
    assert.equal(made.body.machine.secretDisplay, '')
    machine = made.body.machine.id
  })
  after(async () => {
    await h.close()
    await iss.close()
    await other.close()
  })

  test('a valid token for the trusted repository and branch exchanges; the access token reads the secret; audited', async () => {
    const r = await exchange(await iss.token())
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.match(r.body.accessToken, /^coffer_sat_/)
    assert.ok(r.body.expiresIn > 0 && r.body.expiresIn <= 3600)
    const read = await api(h.app, r.body.accessToken).get(`${E}/DATABASE_URL?reveal=true`)
    assert.equal(read.status, 200)
    assert.equal(read.body.secret.value, 'postgres://app@db/prod')
    await h.settle()
    const issued = await h.db
      .selectFrom('audit_entries')
      .select(['details', 'actor_type', 'actor_id'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'machine.token.issue')
      .orderBy('seq', 'desc')
      .executeTakeFirstOrThrow()
    const d = JSON.parse(issued.details)
    assert.equal(d.method, 'oidc')
    assert.equal(d.issuer, iss.url)
    assert.equal(d.subject, SUB)
    const rules = await owner.get(`${M}/${machine}/oidc-rules`)
    assert.equal(d.rule, rules.body.rules[0].id, 'the matched rule is named')
    assert.equal(issued.actor_type, 'machine')
    assert.equal(issued.actor_id, machine)
    assert.ok(!issued.details.includes(r.body.accessToken))
    // The client-secret exchange is closed to an identity that has no secret.
    const cs = await h.app.inject({
      method: 'POST',
      url: '/v1/machine/token',
      payload: { clientId: machine, clientSecret: 'coffer_mcs_x' },
    })
    assert.equal(cs.statusCode, 401)
  })

  test('a wrong subject, a wrong audience, an expired token, a token not yet valid or issued in the future are refused', async () => {
    await refused(await iss.token({ sub: 'repo:acme/web:ref:refs/heads/feature' }), 'claims')
    await refused(await iss.token({ sub: 'repo:evil/web:ref:refs/heads/main' }), 'claims')
    await refused(await iss.token({ aud: 'someone-else' }), 'audience')
    await refused(await iss.token({ aud: ['a', 'b'] }), 'audience')
    const now = Math.floor(Date.now() / 1000)
    await refused(await iss.token({ iat: now - 900, exp: now - 600 }), 'expired')
    await refused(await iss.token({ nbf: now + 600 }), 'not_yet_valid')
    await refused(await iss.token({ iat: now + 600, exp: now + 900 }), 'issued_at')
    await refused('not.a.jwt', 'malformed')
  })

  test('forgeries: another key under the same kid, alg none, HS256 keyed with the public key, another issuer naming this kid', async () => {
    // Another key, published nowhere, under the issuer's own kid.
    const forger = await signingKey(iss.key.kid)
    await refused(await iss.token({}, { key: forger }), 'signature')
    // alg: none.
    const now = Math.floor(Date.now() / 1000)
    const claims = { iss: iss.url, aud: 'coffer', sub: SUB, iat: now, exp: now + 300 }
    await refused(`${b64({ alg: 'none', kid: iss.key.kid, typ: 'JWT' })}.${b64(claims)}.`, 'algorithm')
    await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, 'algorithm')
    // HS256 keyed with the public key, as JWK JSON and as PEM (the classic algorithm confusion).
    const pem = await exportSPKI((await importJWK(iss.key.publicJwk, 'RS256', { extractable: true })) as CryptoKey)
    for (const secret of [JSON.stringify(iss.key.publicJwk), pem]) {
      const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: iss.key.kid }).sign(new TextEncoder().encode(secret))
      await refused(hs, 'algorithm')
    }
    // Another issuer (not trusted) naming this issuer's kid, signed with its own key.
    const theirs = await signingKey(iss.key.kid)
    other.key = theirs
    other.published = [theirs]
    await refused(await other.token({ sub: SUB }), 'issuer')
    // …and claiming to be this issuer, signed with the other issuer's key under this kid.
    await refused(await other.token({ iss: iss.url, sub: SUB }), 'signature')
    assert.equal(other.hits.size, 0, 'an issuer no rule names is never fetched')
  })

  test('key rotation at the issuer is followed, with the refetch rate-limited', async () => {
    assert.equal((await exchange(await iss.token())).status, 200)
    const fetched = iss.hits.get('/jwks') ?? 0
    await iss.rotate()
    // Within the cooldown, an unknown kid does not make Coffer fetch again.
    const early = await iss.token()
    await refused(early, 'key')
    await refused(await iss.token({}, { kid: 'attacker-picked' }), 'key')
    assert.equal(iss.hits.get('/jwks') ?? 0, fetched, 'no refetch within the cooldown')
    time.advance(31_000)
    const r = await exchange(await iss.token({}, { now: time.clock() }))
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal(iss.hits.get('/jwks'), fetched + 1, 'one refetch for the new kid')
    // The new key stays cached: another token signs in without a fetch.
    assert.equal((await exchange(await iss.token({}, { now: time.clock() }))).status, 200)
    assert.equal(iss.hits.get('/jwks'), fetched + 1)
  })

  test('an issuer that goes down keeps its known keys: a forged kid during the outage does not lock out valid tokens', async () => {
    const flaky = await startIssuer()
    try {
      const made = await owner.post(M, {
        name: 'flaky',
        scopes: [{ project: 'web', environments: ['production'], access: 'read' }],
        oidcRules: [{ issuer: flaky.url, audiences: ['coffer'], claims: { sub: SUB } }],
      })
      assert.equal(made.status, 201)
      const id: string = made.body.machine.id
      assert.equal((await exchange(await flaky.token({}, { now: time.clock() }), id)).status, 200)
      flaky.discovery = { jwks_uri: `${flaky.url}/gone` }
      time.advance(31_000)
      // An unknown kid makes Coffer refetch; the refetch fails; the kid stays unknown.
      await refused(await flaky.token({}, { kid: 'unknown-during-outage', now: time.clock() }), 'key', id)
      assert.equal(flaky.hits.get('/gone'), 1, 'the refetch was tried')
      // A token signed with the key Coffer knows still exchanges.
      const ok = await exchange(await flaky.token({}, { now: time.clock() }), id)
      assert.equal(ok.status, 200, JSON.stringify(ok.body))
    } finally {
      await flaky.close()
    }
  })

  test('an issuer whose keys cannot be had: discovery naming another issuer, a JWKS at a metadata address, nothing listening', async () => {
    const liar = await startIssuer()
    try {
      const made = await owner.post(M, {
        name: 'liar',
        scopes: [{ project: 'web', environments: ['production'], access: 'read' }],
        oidcRules: [{ issuer: liar.url, audiences: ['coffer'], claims: { sub: SUB } }],
      })
      assert.equal(made.status, 201)
      const id: string = made.body.machine.id
      liar.discovery = { issuer: 'https://token.actions.githubusercontent.com' }
      await refused(await liar.token({}, { now: time.clock() }), 'issuer_unreachable', id)
      let entry = await lastRefusal(id)
      assert.match(JSON.parse(entry!.details).detail, /another issuer/)
      assert.equal(liar.hits.get('/jwks'), undefined, 'the JWKS of a document naming another issuer is not fetched')
      // The guard checks the JWKS address too: a discovery document cannot point Coffer at the metadata service.
      time.advance(31_000)
      liar.discovery = { jwks_uri: 'http://169.254.169.254/latest/meta-data/jwks' }
      await refused(await liar.token({}, { now: time.clock() }), 'issuer_unreachable', id)
      entry = await lastRefusal(id)
      assert.match(JSON.parse(entry!.details).detail, /ERR_OUTBOUND_REFUSED/)
      // Failures are cached for the cooldown too: a stream of tokens does not hammer the issuer.
      const asked = liar.hits.get('/.well-known/openid-configuration')
      await refused(await liar.token({}, { now: time.clock() }), 'issuer_unreachable', id)
      assert.equal(liar.hits.get('/.well-known/openid-configuration'), asked)
      // Fixed at the issuer, followed after the cooldown.
      liar.discovery = {}
      time.advance(31_000)
      assert.equal((await exchange(await liar.token({}, { now: time.clock() }), id)).status, 200)
    } finally {
      await liar.close()
    }
    // Nothing listening at a trusted issuer's address.
    const gone = await startIssuer()
    const made = await owner.post(M, {
      name: 'gone',
      scopes: [{ project: 'web', environments: ['production'], access: 'read' }],
      oidcRules: [{ issuer: gone.url, audiences: ['coffer'], claims: { sub: SUB } }],
    })
    const token = await gone.token({}, { now: time.clock() })
    await gone.close()
    await refused(token, 'issuer_unreachable', made.body.machine.id)
  })

  test('glob claim rules, several rules, rules added to and removed from an existing identity', async () => {
    const made = await owner.post(M, {
      name: 'acme-main',
      scopes: [{ project: 'web', environments: ['production'], access: 'read' }],
      clientSecret: true,
      oidcRules: [{ issuer: iss.url, audiences: ['coffer'], claims: { sub: 'repo:acme/*:ref:refs/heads/main', repository_owner: 'acme' } }],
    })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    assert.match(made.body.clientSecret, /^coffer_mcs_/, 'a client secret besides the issuer, when asked')
    const id: string = made.body.machine.id
    const at = { now: time.clock() }
    assert.equal(
      (await exchange(await iss.token({ sub: 'repo:acme/api:ref:refs/heads/main', repository_owner: 'acme' }, at), id)).status,
      200,
    )
    await refused(await iss.token({ sub: 'repo:acme/api:ref:refs/heads/dev', repository_owner: 'acme' }, at), 'claims', id)
    await refused(await iss.token({ sub: 'repo:acme/api:ref:refs/heads/main', repository_owner: 'evil' }, at), 'claims', id)
    await refused(await iss.token({ sub: 'repo:acme/api:ref:refs/heads/main' }, at), 'claims', id)
    // A second rule: GitLab-like claims, another audience.
    const added = await owner.post(`${M}/${id}/oidc-rules`, {
      rules: [
        { issuer: iss.url, audiences: ['https://coffer.example'], claims: { project_path: 'acme/infra', environment: 'production' } },
      ],
    })
    assert.equal(added.status, 201, JSON.stringify(added.body))
    assert.equal(added.body.rules.length, 2)
    const gl = await iss.token(
      { aud: 'https://coffer.example', sub: 'project_path:acme/infra', project_path: 'acme/infra', environment: 'production' },
      at,
    )
    assert.equal((await exchange(gl, id)).status, 200)
    const second: string = added.body.rules[1].id
    assert.equal((await owner.del(`${M}/${id}/oidc-rules/${second}`)).status, 200)
    await refused(gl, 'audience', id)
    // Bad rules: a condition matching everything, no condition, plain http off loopback, a private address.
    const bad = async (rule: unknown) => (await owner.post(`${M}/${id}/oidc-rules`, { rules: [rule] })).body.error.code
    assert.equal(await bad({ issuer: iss.url, audiences: ['coffer'], claims: { sub: '*' } }), 'ERR_VALIDATION')
    assert.equal(await bad({ issuer: iss.url, audiences: ['coffer'], claims: {} }), 'ERR_VALIDATION')
    assert.equal(await bad({ issuer: 'http://ci.example.com', audiences: ['coffer'], claims: { sub: 'x' } }), 'ERR_VALIDATION')
    assert.equal(await bad({ issuer: 'https://10.1.2.3', audiences: ['coffer'], claims: { sub: 'x' } }), 'ERR_OUTBOUND_REFUSED')
    assert.equal(await bad({ issuer: 'https://169.254.169.254', audiences: ['coffer'], claims: { sub: 'x' } }), 'ERR_OUTBOUND_REFUSED')
    // Another tenant sees none of it.
    const b = api(h.app, h.b.token)
    assert.equal((await b.get(`/v1/workspaces/${h.b.slug}/machines/${id}/oidc-rules`)).status, 404)
    assert.equal((await b.get(`/v1/workspaces/${h.a.slug}/machines/${id}/oidc-rules`)).status, 404)
  })

  test('the access token lives no longer than the ID token had left, when the identity asks', async () => {
    const made = await owner.post(M, {
      name: 'bounded',
      scopes: [{ project: 'web', environments: ['production'], access: 'read' }],
      oidcLimitTtl: true,
      oidcRules: [{ issuer: iss.url, audiences: ['coffer'], claims: { sub: SUB } }],
    })
    assert.equal(made.status, 201)
    assert.equal(made.body.machine.oidcLimitTtl, true)
    const now = Math.floor(time.clock().getTime() / 1000)
    const r = await exchange(await iss.token({ iat: now, exp: now + 120 }), made.body.machine.id)
    assert.equal(r.status, 200)
    assert.ok(r.body.expiresIn <= 120 && r.body.expiresIn > 0, `expiresIn ${r.body.expiresIn}`)
    // Without the setting, the identity's own lifetime.
    const full = await exchange(await iss.token({ iat: now, exp: now + 120 }, { now: time.clock() }))
    assert.equal(full.status, 200)
    assert.ok(full.body.expiresIn > 120)
  })

  test('an unknown identity is refused with the same code; a replay after revocation is refused and audited', async () => {
    const unknown = await exchange(await iss.token({}, { now: time.clock() }), '00000000-0000-4000-8000-000000000000')
    assert.equal(unknown.status, 401)
    assert.equal(unknown.body.error.code, 'ERR_OIDC_TOKEN_REJECTED')
    const token = await iss.token({}, { now: time.clock() })
    const ok = await exchange(token)
    assert.equal(ok.status, 200)
    assert.equal((await owner.del(`${M}/${machine}`)).status, 200)
    await refused(token, 'identity')
    assert.equal((await api(h.app, ok.body.accessToken).get(`${E}/DATABASE_URL`)).status, 401, 'its access tokens end with it')
    // A revoked identity takes no new rules.
    const more = await owner.post(`${M}/${machine}/oidc-rules`, { rules: [{ issuer: iss.url, audiences: ['x'], claims: { sub: 'y' } }] })
    assert.equal(more.status, 404)
  })
}

describeEachEngine(suite)

// Not about storage: once, on SQLite.
test('the exchange is rate-limited like the other authentication endpoints, and without an allow-list a loopback issuer is refused', async () => {
  const h = await startHarness('sqlite', { COFFER_RATE_AUTH_PER_IP: '5', COFFER_RATE_AUTH_PER_ACCOUNT: '5' })
  const iss = await startIssuer()
  try {
    const owner = api(h.app, h.a.token)
    assert.equal((await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Web', slug: 'web' })).status, 201)
    const made = await owner.post(`/v1/workspaces/${h.a.slug}/machines`, {
      name: 'guarded',
      scopes: [{ project: 'web', environments: '*', access: 'read' }],
      oidcRules: [{ issuer: iss.url, audiences: ['coffer'], claims: { sub: SUB } }],
    })
    assert.equal(made.status, 400)
    assert.equal(made.body.error.code, 'ERR_OUTBOUND_REFUSED', 'the guard refuses a loopback issuer unless the operator allowed it')
    const codes: number[] = []
    for (let i = 0; i < 8; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/machine/oidc-token',
        payload: { clientId: '00000000-0000-4000-8000-000000000000', idToken: await iss.token() },
      })
      codes.push(res.statusCode)
    }
    assert.ok(
      codes.slice(0, 5).every((c) => c === 401),
      codes.join(','),
    )
    assert.equal(codes.at(-1), 429)
    assert.equal(iss.hits.size, 0)
  } finally {
    await iss.close()
    await h.close()
  }
})
