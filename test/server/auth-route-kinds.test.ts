// The route × caller check for the routes outside /v1/workspaces/:workspace (AUTH_ROUTES:
// sign-in, links, OIDC, a person's own account, CLI login). Two kinds, each with its rule:
//   public  — no credential needed: never 401, whoever calls;
//   account — any signed-in person (session cookie, or a personal token where the route
//             accepts one: else 403 ERR_SESSION_REQUIRED), whatever their role: 401 without a
//             credential, never 403 for a person; integrations are not people.
// A route of another kind, or one whose action is not `public` or a `person` rule, fails.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ACTIONS, ROLES, type Role } from '../../src/access/policy.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { AUTH_ROUTES } from '../../src/server/app.js'
import type { AnyAuthRoute } from '../../src/server/auth-route.js'
import { browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'
import { fillUrl } from '../helpers/routes.js'

const PUBLIC_URL = 'http://coffer.test'
const NIL = '00000000-0000-4000-8000-000000000000'
const PASSWORD = 'route-kinds-password-1'

function suite(engine: EngineName): void {
  let h: Harness
  before(async () => {
    h = await startHarness(engine, { COFFER_PUBLIC_URL: PUBLIC_URL })
  })
  after(() => h?.close())

  /** A body that passes the schema where the route is ours to know; {} otherwise (a 400 after the policy is fine). */
  function bodyFor(r: AnyAuthRoute, email: string): unknown {
    if (r.method === 'GET') return undefined
    const samples: Record<string, unknown> = {
      'POST /v1/account/password': { currentPassword: PASSWORD, newPassword: `${PASSWORD}-next` },
      'POST /v1/account/delete': { confirmEmail: email },
    }
    const s = samples[`${r.method} ${r.url}`] ?? {}
    return r.body && !r.body.safeParse(s).success ? {} : s
  }

  async function call(r: AnyAuthRoute, headers: Record<string, string>, email = 'nobody@people.test') {
    const url = fillUrl(r.url, { session: NIL, token: NIL, request: NIL, id: NIL, code: NIL, invitation: NIL })
    const body = bodyFor(r, email)
    const res = await h.app.inject({ method: r.method, url, headers, ...(body === undefined ? {} : { payload: body as object }) })
    return { status: res.statusCode, code: res.body ? (JSON.parse(res.body) as { error?: { code?: string } }).error?.code : undefined }
  }

  test('every route is of a known kind, and its action fits the kind', () => {
    assert.ok(AUTH_ROUTES.length >= 15, 'the sign-in and account routes are registered')
    for (const r of AUTH_ROUTES) {
      assert.ok(r.scope === 'public' || r.scope === 'account', `${r.method} ${r.url}: kind ${String(r.scope)}`)
      const rule = ACTIONS[r.action] as { scope: string }
      assert.equal(
        rule.scope,
        r.scope === 'public' ? 'public' : 'person',
        `${r.method} ${r.url}: action ${r.action} fits a ${r.scope} route`,
      )
      assert.ok(!r.url.startsWith('/v1/workspaces/'), `${r.url} is not a workspace route`)
    }
  })

  test('without a credential: public routes answer, account routes say 401', async () => {
    for (const r of AUTH_ROUTES) {
      const res = await call(r, {})
      if (r.scope === 'public') assert.notEqual(res.status, 401, `${r.method} ${r.url} needs no credential (got ${res.status} ${res.code})`)
      else assert.deepEqual([res.status, res.code], [401, 'ERR_UNAUTHENTICATED'], `${r.method} ${r.url} needs a person`)
    }
  })

  test('every account route, for a person of every role, by token and by session cookie', async () => {
    const hash = await hashPassword(PASSWORD)
    for (const role of ROLES as readonly Role[]) {
      for (const r of AUTH_ROUTES.filter((x) => x.scope === 'account')) {
        for (const via of ['token', 'session'] as const) {
          // A fresh person per call: some of these routes end sessions or delete the account.
          const p = await addPerson(h, { workspaceId: h.a.id, role, label: `kinds-${role}` })
          await h.ctx.committer.run((tx) =>
            tx
              .updateTable('users')
              .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
              .where('id', '=', p.userId)
              .execute(),
          )
          let headers: Record<string, string>
          if (via === 'token') {
            headers = { authorization: `Bearer ${p.token}` }
          } else {
            const br = browser(h.app, PUBLIC_URL)
            const s = await br.post('/v1/auth/password/sign-in', { email: p.email, password: PASSWORD })
            assert.equal(s.status, 200)
            headers = {
              cookie: `coffer_session=${br.cookie('coffer_session')}`,
              'x-csrf-token': s.json.csrfToken,
              origin: PUBLIC_URL,
              'sec-fetch-site': 'same-origin',
            }
          }
          const res = await call(r, headers, p.email)
          const what = `${role} by ${via}: ${r.method} ${r.url} (got ${res.status} ${res.code ?? ''})`
          // A personal token is a credential of one workspace: only the routes that accept one
          // (ending sessions, a password change with the current password) take it.
          if (via === 'token' && !r.acceptsToken) assert.deepEqual([res.status, res.code], [403, 'ERR_SESSION_REQUIRED'], what)
          else assert.ok(res.status !== 401 && res.status !== 403 && res.status < 500, what)
        }
      }
    }
  })
}

describeEachEngine(suite)
