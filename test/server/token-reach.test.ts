// Attacker's side of issue 13 §7(a): a personal token of workspace A is a credential of A and
// nothing more. A person who is Admin of A and Owner of B, and a viewer of A who is also a
// member of B, each hand their A token to an attacker; the attacker tries every route that
// issues a link, a session, a token, a CLI login, an invitation or a machine credential, or
// changes a password — and nothing it gets works in B or for the account as a whole.
//
// Which routes must be covered is read from the route table, not from a list kept by hand:
// every route outside /v1/workspaces/:workspace (sign-in, links, OIDC, the account, CLI
// login) and every workspace route whose answer carries a credential-like field. A new such
// route without a case below fails the suite.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { z } from 'zod'
import { addMember } from '../../src/identity/identity-service.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { issueMemberLink } from '../../src/identity/member-links.js'
import { kindOf, type AnyRouteDef } from '../../src/server/pipeline.js'
import { browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { addPerson, type TestPerson } from '../helpers/principals.js'

const PUBLIC_URL = 'http://coffer.test'
const PASSWORD = 'token-reach-password-1'
const NIL = '00000000-0000-4000-8000-000000000000'

/** Answer fields that carry something to sign in or act with. */
const CREDENTIAL_FIELDS = new Set([
  'token',
  'url',
  'acceptUrl',
  'clientSecret',
  'accessToken',
  'redirect',
  'deviceCode',
  'userCode',
  'csrfToken',
  // An AWS STS session (aws-routes.ts): not a Coffer credential, but one all the same.
  'secretAccessKey',
  'sessionToken',
])

/** Every property name anywhere in a response schema. */
function fieldNames(schema: unknown): Set<string> {
  const out = new Set<string>()
  const walk = (n: unknown): void => {
    if (!n || typeof n !== 'object') return
    if (Array.isArray(n)) {
      for (const x of n) walk(x)
      return
    }
    const o = n as Record<string, unknown>
    if (o.properties && typeof o.properties === 'object')
      for (const [k, v] of Object.entries(o.properties)) {
        out.add(k)
        walk(v)
      }
    for (const k of ['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties']) walk(o[k])
  }
  walk(z.toJSONSchema(schema as z.ZodType, { io: 'output', unrepresentable: 'any' }))
  return out
}

/** The routes that can issue or change a credential, by the rule in the header. */
export function credentialRoutes(routes: readonly AnyRouteDef[]): string[] {
  const out: string[] = []
  for (const r of routes) {
    const kind = kindOf(r)
    if (kind === 'page') continue
    const def = r as { method: string; url: string; response: unknown }
    const carries = [...fieldNames(def.response)].some((f) => CREDENTIAL_FIELDS.has(f))
    if (kind === 'account' || carries) out.push(`${def.method} ${def.url}`)
  }
  return out
}

interface Reply {
  status: number
  code: string | undefined
  body: Record<string, unknown>
  cookies: string[]
}

interface Attacker {
  label: string
  person: TestPerson
  /** Whether the person is Owner/Admin in A (the elevated one) or a viewer. */
  elevated: boolean
}

function suite(engine: EngineName): void {
  let h: Harness
  let elevated: TestPerson
  let viewer: TestPerson
  let attackers: Attacker[]
  let bToken: string

  /** A request with `token` as Bearer (and a JSON body). */
  async function call(token: string, method: string, url: string, body?: unknown): Promise<Reply> {
    const res = await h.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined || method === 'GET' ? {} : { payload: body as object }),
    })
    const json = res.body ? (JSON.parse(res.body) as Record<string, unknown>) : {}
    const setCookie = res.headers['set-cookie']
    const cookies = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [String(setCookie)]
    return { status: res.statusCode, code: (json.error as { code?: string } | undefined)?.code, body: json, cookies }
  }

  /** No session cookie was handed out. */
  function noSession(r: Reply, what: string): void {
    assert.ok(!r.cookies.some((c) => c.startsWith('coffer_session=') && !c.startsWith('coffer_session=;')), `${what}: no session`)
  }

  /** A credential (a Bearer token of any kind) that must not work in workspace B. */
  async function deadInB(credential: string, what: string): Promise<void> {
    const r = await call(credential, 'GET', `/v1/workspaces/${h.b.slug}/projects`)
    assert.ok(r.status === 404 || r.status === 401, `${what}: works in B (${r.status})`)
  }

  /** The person still is what they were in B, and nothing made a link for them. */
  async function untouched(p: TestPerson, what: string): Promise<void> {
    const links = await h.db.selectFrom('email_links').select('id').where('user_id', '=', p.userId).where('used_at', 'is', null).execute()
    assert.equal(links.length, 0, `${what}: no usable link exists for the person`)
    const inB = await h.db
      .selectFrom('memberships')
      .select('role')
      .where('user_id', '=', p.userId)
      .where('workspace_id', '=', h.b.id)
      .executeTakeFirst()
    assert.ok(inB, `${what}: still a member of B`)
    const s = await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-in', { email: p.email, password: PASSWORD })
    assert.equal(s.status, 200, `${what}: the password is still the person's`)
  }

  let connectionId: string | undefined
  /** A connection of A (its endpoints are never contacted here). */
  async function reachConnection(): Promise<string> {
    if (connectionId) return connectionId
    const r = await call(h.a.token, 'POST', `${W()}/connections`, {
      name: 'reach',
      authorizeUrl: 'https://127.0.0.1:9/authorize',
      tokenUrl: 'https://127.0.0.1:9/token',
      clientId: 'reach',
      clientSecret: 'reach-client-secret',
      apiBase: 'https://127.0.0.1:9/api',
      allow: ['GET /*'],
    })
    assert.equal(r.status, 201)
    connectionId = (r.body.connection as { id: string }).id
    return connectionId
  }

  const W = () => `/v1/workspaces/${h.a.slug}`
  const WB = () => `/v1/workspaces/${h.b.slug}`

  /** One attack per route; each asserts that nothing it gets reaches B or the whole account. */
  const cases: Record<string, (a: Attacker) => Promise<void>> = {
    'POST /v1/workspaces/:workspace/tokens': async (a) => {
      assert.equal((await call(a.person.token, 'POST', `${WB()}/tokens`, { name: 'b' })).status, 404)
      const r = await call(a.person.token, 'POST', `${W()}/tokens`, { name: 'more' })
      assert.equal(r.status, 201)
      await deadInB(r.body.token as string, `${a.label}: a token made with the A token`)
    },
    'POST /v1/workspaces/:workspace/invitations': async (a) => {
      assert.equal((await call(a.person.token, 'POST', `${WB()}/invitations`, { email: 'x@people.test' })).status, 404)
      const r = await call(a.person.token, 'POST', `${W()}/invitations`, { email: a.person.email })
      assert.equal(r.status, a.elevated ? 409 : 403, 'no invitation to A for oneself, and none at all for a viewer')
    },
    'POST /v1/invitations/accept': async (a) => {
      const forged = await call(a.person.token, 'POST', '/v1/invitations/accept', { token: 'coffer_inv_forged', tokenName: 't' })
      assert.deepEqual([forged.status, forged.code], [404, 'ERR_INVITATION_INVALID'])
      // An invitation to B for someone else is not the attacker's to take.
      const inv = await call(bToken, 'POST', `${WB()}/invitations`, { email: 'someone-else@people.test' })
      const r = await call(a.person.token, 'POST', '/v1/invitations/accept', { token: inv.body.token, tokenName: 't' })
      assert.deepEqual([r.status, r.code], [403, 'ERR_INVITATION_WRONG_ACCOUNT'])
    },
    'POST /v1/workspaces/:workspace/machines': async (a) => {
      const body = { name: 'm', scopes: [{ project: 'web', environments: '*', access: 'read' }] }
      assert.equal((await call(a.person.token, 'POST', `${WB()}/machines`, body)).status, 404)
      const r = await call(a.person.token, 'POST', `${W()}/machines`, body)
      if (!a.elevated) return assert.equal(r.status, 403)
      assert.equal(r.status, 201)
      const x = await call('', 'POST', '/v1/machine/token', { clientId: r.body.clientId, clientSecret: r.body.clientSecret })
      assert.equal(x.status, 200)
      await deadInB(x.body.accessToken as string, "a machine of A's access token")
    },
    'POST /v1/machine/token': async (a) => {
      // The exchange takes client credentials only: a person's token is none.
      const r = await call(a.person.token, 'POST', '/v1/machine/token', { clientId: a.person.userId, clientSecret: a.person.token })
      assert.ok(r.status >= 400 && r.body.accessToken === undefined, `${r.status}`)
    },
    'POST /v1/machine/oidc-token': async (a) => {
      // The exchange takes a workload's ID token only: a person's token (as the ID token or as a Bearer) is none.
      for (const clientId of [a.person.userId, NIL]) {
        const r = await call(a.person.token, 'POST', '/v1/machine/oidc-token', { clientId, idToken: a.person.token })
        assert.deepEqual([r.status, r.code], [401, 'ERR_OIDC_TOKEN_REJECTED'])
        assert.equal(r.body.accessToken, undefined)
      }
    },
    'POST /v1/workspaces/:workspace/machines/:machine/oidc-rules': async (a) => {
      // Trust rules answer no credential; B's machine identities are out of reach of an A token.
      const m = await call(bToken, 'POST', `${WB()}/machines`, {
        name: 'b-m',
        scopes: [{ project: 'web', environments: '*', access: 'read' }],
      })
      const id = (m.body.machine as { id?: string } | undefined)?.id ?? NIL
      const rules = { rules: [{ issuer: 'https://ci.example.com', audiences: ['x'], claims: { sub: 'y' } }] }
      assert.equal((await call(a.person.token, 'POST', `${WB()}/machines/${id}/oidc-rules`, rules)).status, 404)
      assert.equal((await call(a.person.token, 'POST', `${W()}/machines/${id}/oidc-rules`, rules)).status, a.elevated ? 404 : 403)
    },
    'POST /v1/workspaces/:workspace/service-tokens': async (a) => {
      const body = { name: 's', scopes: [{ project: 'web', environments: '*', access: 'read' }] }
      assert.equal((await call(a.person.token, 'POST', `${WB()}/service-tokens`, body)).status, 404)
      const r = await call(a.person.token, 'POST', `${W()}/service-tokens`, body)
      if (!a.elevated) return assert.equal(r.status, 403)
      assert.equal(r.status, 201)
      await deadInB(r.body.token as string, 'a service token of A')
    },
    'POST /v1/workspaces/:workspace/auth-links': async (a) => {
      for (const purpose of ['reset', 'verify']) {
        const self = await call(a.person.token, 'POST', `${W()}/auth-links`, { email: a.person.email, purpose })
        if (a.elevated) assert.deepEqual([self.status, self.code], [403, 'ERR_LINK_REFUSED'], `a ${purpose} link for oneself`)
        else assert.deepEqual([self.status, self.code], [403, 'ERR_FORBIDDEN'])
        assert.equal(self.body.url, undefined)
        assert.equal((await call(a.person.token, 'POST', `${WB()}/auth-links`, { email: a.person.email, purpose })).status, 404)
      }
      // Nor for the other attacked person, who is also in B (one step removed).
      const other = a.person === elevated ? viewer : elevated
      const r = await call(a.person.token, 'POST', `${W()}/auth-links`, { email: other.email, purpose: 'reset' })
      assert.equal(r.status, 403)
      assert.equal(r.body.url, undefined)
    },
    'GET /v1/auth/methods': async (a) => {
      const r = await call(a.person.token, 'GET', '/v1/auth/methods')
      assert.equal(r.status, 200)
      noSession(r, 'methods')
    },
    'POST /v1/auth/password/sign-up': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/auth/password/sign-up', { email: a.person.email, password: `${PASSWORD}-x` })
      assert.equal(r.status, 202)
      noSession(r, 'sign-up')
    },
    'POST /v1/auth/password/sign-in': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/auth/password/sign-in', { email: a.person.email, password: a.person.token })
      assert.deepEqual([r.status, r.code], [401, 'ERR_INVALID_CREDENTIALS'], 'the token is no password')
      noSession(r, 'sign-in')
    },
    'POST /v1/auth/password/forgot': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/auth/password/forgot', { email: a.person.email })
      assert.equal(r.status, 202)
      assert.equal(r.body.url, undefined, 'mail is off: nothing is made, nothing handed over')
    },
    'POST /v1/auth/password/reset': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/auth/password/reset', { token: a.person.token, password: `${PASSWORD}-x` })
      assert.equal(r.status, 400)
    },
    'POST /v1/auth/email/verify': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/auth/email/verify', { token: a.person.token })
      assert.equal(r.status, 400)
    },
    'GET /v1/auth/oidc/start': async (a) => {
      const r = await call(a.person.token, 'GET', '/v1/auth/oidc/start')
      noSession(r, 'oidc start')
      assert.notEqual(r.status, 200)
    },
    'GET /v1/auth/oidc/callback': async (a) => {
      const r = await call(a.person.token, 'GET', '/v1/auth/oidc/callback?code=x&state=y')
      noSession(r, 'oidc callback')
    },
    'GET /v1/account': async (a) => {
      const r = await call(a.person.token, 'GET', '/v1/account')
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'], "the account spans every workspace: B's name, sessions")
    },
    'GET /v1/account/export': async (a) => {
      const r = await call(a.person.token, 'GET', '/v1/account/export')
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'], "the export holds the person's audit entries of B")
    },
    'POST /v1/account/sign-out': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/account/sign-out', {})
      assert.deepEqual([r.status, r.body.ended], [200, 0])
      noSession(r, 'sign-out')
    },
    'POST /v1/account/sign-out-everywhere': async (a) => {
      // Ending sessions gives nothing to whoever holds the token.
      const r = await call(a.person.token, 'POST', '/v1/account/sign-out-everywhere', {})
      assert.equal(r.status, 200)
      noSession(r, 'sign-out everywhere')
    },
    'POST /v1/account/sessions/:session/revoke': async (a) => {
      const r = await call(a.person.token, 'POST', `/v1/account/sessions/${NIL}/revoke`, {})
      assert.equal(r.status, 404)
    },
    'POST /v1/account/password': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/account/password', {
        currentPassword: 'not-the-password',
        newPassword: `${PASSWORD}-x`,
      })
      assert.deepEqual([r.status, r.code], [401, 'ERR_INVALID_CREDENTIALS'], 'a password change needs the current password')
    },
    'POST /v1/account/delete': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/account/delete', { confirmEmail: a.person.email })
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'], 'deleting the account would remove them from B')
    },
    'POST /v1/account/invitations/accept': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/account/invitations/accept', { token: 'coffer_inv_forged' })
      assert.deepEqual([r.status, r.code], [404, 'ERR_INVITATION_INVALID'])
    },
    'POST /v1/auth/invitation/sign-up': async (a) => {
      // Without an invitation's own token a workspace token makes no account and no session.
      const r = await call(a.person.token, 'POST', '/v1/auth/invitation/sign-up', {
        token: 'coffer_inv_forged',
        email: a.person.email,
        password: `${PASSWORD}-x`,
      })
      assert.deepEqual([r.status, r.code], [404, 'ERR_INVITATION_INVALID'])
      noSession(r, 'invitation sign-up')
    },
    'GET /v1/account/invitations': async (a) => {
      const r = await call(a.person.token, 'GET', '/v1/account/invitations')
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'], "the person's invitations span workspaces")
    },
    'POST /v1/account/invitations/:invitation/accept': async (a) => {
      const r = await call(a.person.token, 'POST', `/v1/account/invitations/${NIL}/accept`, {})
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'], 'joining by address alone takes the browser session')
    },
    'POST /v1/cli/login/approve': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/cli/login/approve', {
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
        redirect_uri: 'http://127.0.0.1:4567/callback',
        state: 'state-state-state-state',
        workspace: h.b.slug,
        decision: 'approve',
      })
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'], 'no CLI login code for B (or A) from a token')
      assert.equal(r.body.redirect, undefined)
    },
    'POST /v1/cli/token': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/cli/token', {
        code: a.person.token,
        codeVerifier: 'v'.repeat(43),
        redirectUri: 'http://127.0.0.1:4567/callback',
      })
      assert.ok(r.status === 400 && r.body.token === undefined, `${r.status} ${r.code}`)
    },
    'POST /v1/cli/device': async (a) => {
      // Anyone may start a device login; only a signed-in browser approves it.
      const d = await call(a.person.token, 'POST', '/v1/cli/device', { clientName: 'attacker' })
      assert.equal(d.status, 200)
      const approve = await call(a.person.token, 'POST', '/v1/cli/device/approve', {
        userCode: d.body.userCode,
        decision: 'approve',
        workspace: h.b.slug,
      })
      assert.deepEqual([approve.status, approve.code], [403, 'ERR_SESSION_REQUIRED'])
      const poll = await call('', 'POST', '/v1/cli/device/token', { deviceCode: d.body.deviceCode })
      assert.deepEqual([poll.status, poll.code], [400, 'ERR_AUTHORIZATION_PENDING'], 'still waiting: no token')
    },
    'POST /v1/cli/device/token': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/cli/device/token', { deviceCode: a.person.token })
      assert.ok(r.status >= 400 && r.body.token === undefined, `${r.status}`)
    },
    // Webhooks answer a signing secret (for the receiver, never a Coffer credential) and URLs the
    // Admin typed; dynamic database credentials are the database's, not Coffer's.
    'POST /v1/workspaces/:workspace/webhooks': async (a) => {
      const body = { url: 'http://127.0.0.1:9/reach', events: ['webhook.test'] }
      assert.equal((await call(a.person.token, 'POST', `${WB()}/webhooks`, body)).status, 404)
      const r = await call(a.person.token, 'POST', `${W()}/webhooks`, body)
      if (!a.elevated) return assert.equal(r.status, 403)
      assert.equal(r.status, 201)
      await deadInB(r.body.secret as string, 'a webhook signing secret')
      assert.equal((await call(r.body.secret as string, 'GET', `${W()}/projects`)).status, 401, 'no credential in A either')
    },
    'GET /v1/workspaces/:workspace/webhooks': async (a) => {
      assert.equal((await call(a.person.token, 'GET', `${WB()}/webhooks`)).status, 404)
      const r = await call(a.person.token, 'GET', `${W()}/webhooks`)
      assert.equal(r.status, a.elevated ? 200 : 403)
      if (a.elevated) assert.ok(!JSON.stringify(r.body).includes('whsec_'), 'no signing secret in the list')
    },
    'DELETE /v1/workspaces/:workspace/webhooks/:webhook': async (a) => {
      assert.equal((await call(a.person.token, 'DELETE', `${WB()}/webhooks/${NIL}`)).status, 404)
    },
    'POST /v1/workspaces/:workspace/webhooks/:webhook/rotate-secret': async (a) => {
      assert.equal((await call(a.person.token, 'POST', `${WB()}/webhooks/${NIL}/rotate-secret`, {})).status, 404)
      const made = await call(h.a.token, 'POST', `${W()}/webhooks`, { url: 'http://127.0.0.1:9/rot', events: ['webhook.test'] })
      const r = await call(a.person.token, 'POST', `${W()}/webhooks/${(made.body.webhook as { id: string }).id}/rotate-secret`, {})
      if (!a.elevated) return assert.equal(r.status, 403)
      assert.equal(r.status, 200)
      await deadInB(r.body.secret as string, 'a rotated webhook signing secret')
    },
    'POST /v1/workspaces/:workspace/webhooks/:webhook/enable': async (a) => {
      assert.equal((await call(a.person.token, 'POST', `${WB()}/webhooks/${NIL}/enable`, {})).status, 404)
    },
    'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/db-roles/:role/credentials': async (a) => {
      const r = await call(a.person.token, 'POST', `${WB()}/projects/web/environments/development/db-roles/any/credentials`, {})
      assert.equal(r.status, 404)
    },
    'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/aws-roles/:role/credentials': async (a) => {
      // B's roles answer 404 to an A token; in A there is no such role (nothing reaches STS).
      const r = await call(a.person.token, 'POST', `${WB()}/projects/web/environments/development/aws-roles/any/credentials`, {})
      assert.equal(r.status, 404)
      const own = await call(a.person.token, 'POST', `${W()}/projects/web/environments/development/aws-roles/any/credentials`, {})
      assert.equal(own.status, a.elevated ? 404 : 403)
    },
    // OAuth connections: `authorize` answers a provider URL whose state is single-use and only
    // good at Coffer's callback, never as a Coffer credential; the callback takes no token.
    'POST /v1/workspaces/:workspace/connections/:connection/authorize': async (a) => {
      assert.equal((await call(a.person.token, 'POST', `${WB()}/connections/${NIL}/authorize`, {})).status, 404)
      const id = await reachConnection()
      const app = await call(a.person.token, 'POST', `${W()}/connections/${id}/authorize`, { kind: 'app' })
      assert.equal(app.status, a.elevated ? 200 : 403)
      const r = await call(a.person.token, 'POST', `${W()}/connections/${id}/authorize`, {})
      assert.equal(r.status, 200)
      const state = new URL(r.body.url as string).searchParams.get('state')!
      await deadInB(state, 'an authorization state')
      assert.equal((await call(state, 'GET', `${W()}/projects`)).status, 401, 'no credential in A either')
    },
    'GET /oauth/callback': async (a) => {
      const r = await call(a.person.token, 'GET', '/oauth/callback?code=x&state=forged-state')
      assert.deepEqual([r.status, r.code], [400, 'ERR_CONNECTION_STATE'])
      noSession(r, 'connection callback')
    },
    'POST /v1/cli/device/approve': async (a) => {
      const r = await call(a.person.token, 'POST', '/v1/cli/device/approve', {
        userCode: 'ABCD-EFGH',
        decision: 'approve',
        workspace: h.b.slug,
      })
      assert.deepEqual([r.status, r.code], [403, 'ERR_SESSION_REQUIRED'])
    },
  }

  before(async () => {
    h = await startHarness(engine, { COFFER_PUBLIC_URL: PUBLIC_URL, COFFER_OUTBOUND_ALLOW: '127.0.0.1/32' })
    await h.ctx.webhooks.stop()
    bToken = h.b.token
    const project = await api(h.app, h.a.token).post(`${W()}/projects`, { name: 'Web' })
    assert.equal(project.status, 201)
    elevated = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'admin-of-a' })
    viewer = await addPerson(h, {
      workspaceId: h.a.id,
      role: 'member',
      project: { id: project.body.project.id, role: 'viewer' },
      label: 'viewer',
    })
    const hash = await hashPassword(PASSWORD)
    await h.ctx.committer.run(async (tx) => {
      await addMember(tx, h.b.id, elevated.userId, 'owner', new Date())
      await addMember(tx, h.b.id, viewer.userId, 'member', new Date())
      for (const p of [elevated, viewer])
        await tx
          .updateTable('users')
          .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
          .where('id', '=', p.userId)
          .execute()
    })
    attackers = [
      { label: 'Admin of A (Owner of B)', person: elevated, elevated: true },
      { label: 'viewer of A (member of B)', person: viewer, elevated: false },
    ]
  })
  after(() => h?.close())

  test('every route that issues a link, session, token, login, invitation or machine credential has a case', () => {
    const needed = credentialRoutes(h.app.cofferRoutes)
    assert.ok(needed.length >= 25, `the rule finds the issuing routes (${needed.length})`)
    const missing = needed.filter((id) => !(id in cases))
    assert.deepEqual(missing, [], 'a route that issues credentials has no attack case here')
    const known = new Set(h.app.cofferRoutes.map((r) => `${(r as { method: string }).method} ${(r as { url: string }).url}`))
    assert.deepEqual(
      Object.keys(cases).filter((id) => !known.has(id)),
      [],
      'every case names a registered route',
    )
  })

  for (const who of [0, 1])
    describe(who === 0 ? 'with the Admin-of-A token of an Owner of B' : "with a viewer's token of A who is also in B", () => {
      for (const id of Object.keys(cases))
        test(id, async () => {
          const a = attackers[who]!
          await cases[id]!(a)
          await deadInB(a.person.token, `${a.label}: the A token itself`)
          await untouched(a.person, `${a.label} after ${id}`)
        })
    })

  test('an Owner of A cannot hand out a link for someone who is also in B (mail is off)', async () => {
    for (const p of [elevated, viewer]) {
      const r = await api(h.app, h.a.token).post(`${W()}/auth-links`, { email: p.email, purpose: 'reset' })
      assert.deepEqual([r.status, r.body.error?.code], [403, 'ERR_LINK_REFUSED'])
      assert.equal(r.body.url, undefined)
    }
  })

  test('onboarding with mail off still works: an Owner hands a newcomer of A alone a link, which opens A only', async () => {
    const newcomer = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'newcomer' })
    const r = await api(h.app, h.a.token).post(`${W()}/auth-links`, { email: newcomer.email, purpose: 'reset' })
    assert.deepEqual([r.status, r.body.delivery], [201, 'response'])
    const br = browser(h.app, PUBLIC_URL)
    const token = new URL(r.body.url).searchParams.get('token')!
    assert.equal((await br.post('/v1/auth/password/reset', { token, password: PASSWORD })).status, 200)
    assert.equal((await br.post('/v1/auth/password/sign-in', { email: newcomer.email, password: PASSWORD })).status, 200)
    assert.equal((await br.get(`${W()}/projects`)).status, 200, 'the session works in A')
    assert.equal((await br.get(`${WB()}/projects`)).status, 404, 'and not in B, where the newcomer is not a member')
  })

  test('a handed-out link dies when its person joins another workspace before it is used', async () => {
    const late = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'late' })
    const r = await api(h.app, h.a.token).post(`${W()}/auth-links`, { email: late.email, purpose: 'reset' })
    assert.equal(r.status, 201, 'issued while the person belongs to A alone')
    // Then the person joins B (an invitation accepted), a moment later.
    await new Promise((resolve) => setTimeout(resolve, 5))
    await h.ctx.committer.run((tx) => addMember(tx, h.b.id, late.userId, 'owner', new Date()))
    const token = new URL(r.body.url).searchParams.get('token')!
    const used = await browser(h.app, PUBLIC_URL).post('/v1/auth/password/reset', { token, password: PASSWORD })
    assert.deepEqual([used.status, used.json.error?.code], [400, 'ERR_INVALID_LINK'])
    // A verification link made before joining dies the same way.
    const verify = await h.ctx.committer.run((tx) =>
      issueMemberLink(
        tx,
        { userId: late.userId, email: late.email, role: 'member', createdVia: 'invite' },
        'verify',
        PUBLIC_URL,
        new Date(Date.now() - 60_000),
      ),
    )
    const v = await browser(h.app, PUBLIC_URL).post('/v1/auth/email/verify', { token: new URL(verify.url).searchParams.get('token')! })
    assert.deepEqual([v.status, v.json.error?.code], [400, 'ERR_INVALID_LINK'])
  })

  test('the same routes with the browser session still work for the person (the session is the whole account)', async () => {
    const br = browser(h.app, PUBLIC_URL)
    const s = await br.post('/v1/auth/password/sign-in', { email: viewer.email, password: PASSWORD })
    assert.equal(s.status, 200)
    const account = await br.get('/v1/account')
    assert.equal(account.status, 200)
    assert.equal(account.json.workspaces.length, 2)
    assert.equal((await br.get('/v1/account/export')).status, 200)
  })
}

describeEachEngine(suite)
