// Sign-in with OpenID Connect against a real provider (oidc-provider, in-process): the whole
// redirect flow (Coffer → provider login and consent → callback) driven with plain HTTP and
// cookies, then the attacker's side: a replayed callback, a replayed code, a wrong state, a
// state from another browser, a substituted nonce, an unverified or disallowed email, and an
// OIDC-created account trying the password form.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import Provider from 'oidc-provider'
import { browser, type Browser } from '../helpers/browser.js'
import { describeEachEngine } from '../helpers/engines.js'
import { startHarness, type EngineName, type Harness } from '../helpers/harness.js'

const PUBLIC_URL = 'http://coffer.test'
const CALLBACK = '/v1/auth/oidc/callback'

/** People the provider knows, by login. */
const PEOPLE: Record<string, { email?: string; verified: boolean }> = {
  alice: { email: 'alice@corp.test', verified: true },
  bob: { email: 'bob@corp.test', verified: true },
  mallory: { email: 'owner@acme.test', verified: false },
  eve: { email: 'eve@elsewhere.test', verified: true },
  owner: { email: 'owner@acme.test', verified: true },
}

interface Idp {
  issuer: string
  close(): Promise<void>
}

async function startProvider(): Promise<Idp> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  const server: Server = createServer((req, res) => handler!(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'coffer',
        client_secret: 'coffer-test-secret',
        redirect_uris: [`${PUBLIC_URL}${CALLBACK}`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    async findAccount(_ctx: unknown, id: string) {
      const p = PEOPLE[id]
      if (!p) return undefined
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...(p.email ? { email: p.email } : {}), email_verified: p.verified, name: id }
        },
      }
    },
    features: { devInteractions: { enabled: true } },
  })
  provider.on('server_error', () => {})
  handler = provider.callback()
  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A user agent at the provider: follows redirects, keeps cookies, fills the dev login and consent forms. */
async function atProvider(authUrl: string, login: string): Promise<string> {
  const jar = new Map<string, string>()
  let url = authUrl
  let method = 'GET'
  let body: string | undefined
  for (let i = 0; i < 20; i++) {
    if (url.startsWith(PUBLIC_URL)) return url
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      body,
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
    })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const eq = pair!.indexOf('=')
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1))
    }
    const location = res.headers.get('location')
    if (location) {
      url = new URL(location, url).href
      method = 'GET'
      body = undefined
      continue
    }
    const html = await res.text()
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1]
    assert.ok(action && prompt, `the provider showed a form (status ${res.status})`)
    url = new URL(action.replace(/&amp;/g, '&'), url).href
    method = 'POST'
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt }).toString()
  }
  throw new Error('too many redirects at the provider')
}

function suite(engine: EngineName): void {
  let idp: Idp
  let h: Harness

  before(async () => {
    idp = await startProvider()
    h = await startHarness(engine, {
      COFFER_PUBLIC_URL: PUBLIC_URL,
      COFFER_OIDC_ISSUER: idp.issuer,
      COFFER_OIDC_CLIENT_ID: 'coffer',
      COFFER_OIDC_CLIENT_SECRET: 'coffer-test-secret',
      COFFER_OIDC_ALLOWED_DOMAINS: 'corp.test, acme.test',
    })
  })
  after(async () => {
    await h?.close()
    await idp?.close()
  })

  /** Starts at Coffer, returns the provider URL (with state and nonce) and this browser. */
  async function start(br: Browser = browser(h.app, PUBLIC_URL)): Promise<{ br: Browser; authUrl: URL }> {
    const r = await br.get('/v1/auth/oidc/start?returnTo=%2Faccount')
    assert.equal(r.status, 302)
    const authUrl = new URL(String(r.headers.location))
    assert.equal(authUrl.origin, idp.issuer)
    assert.ok(br.cookie('coffer_oidc'), 'the state cookie binds the flow to this browser')
    return { br, authUrl }
  }

  async function callback(br: Browser, callbackUrl: string) {
    return br.get(callbackUrl.slice(PUBLIC_URL.length))
  }

  const errorOf = (r: { status: number; headers: Record<string, unknown> }) => {
    assert.equal(r.status, 303, 'a failed callback sends the browser back to the sign-in page')
    return new URL(String(r.headers.location), PUBLIC_URL).searchParams.get('error')
  }

  test('the whole flow: PKCE S256, state and nonce; a new account is created without a password and signed in', async () => {
    const { br, authUrl } = await start()
    const q = authUrl.searchParams
    assert.equal(q.get('response_type'), 'code')
    assert.equal(q.get('code_challenge_method'), 'S256')
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/)
    assert.ok(q.get('state') && q.get('nonce'), 'state and nonce')
    assert.equal(q.get('redirect_uri'), `${PUBLIC_URL}${CALLBACK}`)
    assert.match(q.get('scope') ?? '', /\bopenid\b.*\bemail\b/)

    const back = await atProvider(authUrl.href, 'alice')
    const r = await callback(br, back)
    assert.equal(r.status, 302)
    assert.equal(r.headers.location, '/account', 'back where the flow started')
    assert.ok(br.cookie('coffer_session'), 'signed in')
    assert.equal(br.cookie('coffer_oidc'), undefined, 'the state cookie is cleared')
    const me = await br.get('/v1/account')
    assert.equal(me.status, 200)
    assert.equal(me.json.user.email, 'alice@corp.test')
    assert.equal(me.json.user.hasPassword, false)
    assert.equal(me.json.user.createdVia, 'oidc')
    const ident = await h.db.selectFrom('user_identities').selectAll().where('subject', '=', 'alice').execute()
    assert.equal(ident.length, 1)
    assert.equal(ident[0]!.issuer, idp.issuer)
    assert.equal((await h.db.selectFrom('oidc_flows').selectAll().execute()).length, 0, 'the flow is gone once used')

    // The same person again: linked by (issuer, subject), not a second account.
    const again = await start()
    assert.equal((await callback(again.br, await atProvider(again.authUrl.href, 'alice'))).status, 302)
    assert.equal((await h.db.selectFrom('users').select('id').where('email', '=', 'alice@corp.test').execute()).length, 1)
  })

  test('an OIDC-created account cannot use the password form, nor get a reset link', async () => {
    const r = await browser(h.app, PUBLIC_URL).post('/v1/auth/password/sign-in', {
      email: 'alice@corp.test',
      password: 'whatever-it-may-be',
    })
    assert.equal(r.status, 401)
    assert.equal(r.json.error.code, 'ERR_INVALID_CREDENTIALS')
    const count = await h.db.selectFrom('email_links').select('id').execute()
    assert.equal((await browser(h.app, PUBLIC_URL).post('/v1/auth/password/forgot', { email: 'alice@corp.test' })).status, 202)
    assert.equal((await h.db.selectFrom('email_links').select('id').execute()).length, count.length, 'no reset link for an SSO account')
  })

  test('a replayed callback is refused (the flow is used once)', async () => {
    const { br, authUrl } = await start()
    const back = await atProvider(authUrl.href, 'bob')
    assert.equal((await callback(br, back)).status, 302)
    const other = browser(h.app, PUBLIC_URL)
    other.jar.set('coffer_oidc', { value: new URL(back).searchParams.get('state')!, path: CALLBACK })
    assert.equal(errorOf(await callback(other, back)), 'ERR_OIDC_STATE', 'the same callback again, even with the state cookie')
    assert.equal(other.cookie('coffer_session'), undefined)
  })

  test('a replayed code is refused by the provider, in a fresh flow of the same browser', async () => {
    const first = await start()
    const back = new URL(await atProvider(first.authUrl.href, 'bob'))
    assert.equal((await callback(first.br, back.href)).status, 302)
    // The attacker starts their own flow and pastes the used code under its state.
    const second = await start()
    const forged = new URL(`${PUBLIC_URL}${CALLBACK}`)
    forged.searchParams.set('code', back.searchParams.get('code')!)
    forged.searchParams.set('state', second.authUrl.searchParams.get('state')!)
    forged.searchParams.set('iss', idp.issuer)
    assert.equal(errorOf(await callback(second.br, forged.href)), 'ERR_OIDC_FAILED')
    assert.equal(second.br.cookie('coffer_session'), undefined)
  })

  test('a wrong state, a missing state cookie, or a state from another browser is refused', async () => {
    const { br, authUrl } = await start()
    const back = new URL(await atProvider(authUrl.href, 'bob'))
    const wrong = new URL(back)
    wrong.searchParams.set('state', 'x'.repeat(43))
    assert.equal(errorOf(await callback(br, wrong.href)), 'ERR_OIDC_STATE', 'wrong state')
    const victim = browser(h.app, PUBLIC_URL)
    assert.equal(
      errorOf(await callback(victim, back.href)),
      'ERR_OIDC_STATE',
      'login CSRF: the callback in a browser that did not start it',
    )
    assert.equal(victim.cookie('coffer_session'), undefined)
  })

  test('a substituted nonce fails the ID token check', async () => {
    const { br, authUrl } = await start()
    const tampered = new URL(authUrl)
    tampered.searchParams.set('nonce', 'attacker-chosen-nonce-value')
    const back = await atProvider(tampered.href, 'bob')
    assert.equal(errorOf(await callback(br, back)), 'ERR_OIDC_FAILED')
    assert.equal(br.cookie('coffer_session'), undefined)
  })

  test('an unverified email never links to an existing account; a domain outside the allow-list is refused', async () => {
    const m = await start()
    assert.equal(
      errorOf(await callback(m.br, await atProvider(m.authUrl.href, 'mallory'))),
      'ERR_OIDC_EMAIL_REFUSED',
      'unverified email of the Owner',
    )
    assert.equal((await h.db.selectFrom('user_identities').select('subject').where('subject', '=', 'mallory').execute()).length, 0)
    const e = await start()
    assert.equal(
      errorOf(await callback(e.br, await atProvider(e.authUrl.href, 'eve'))),
      'ERR_OIDC_EMAIL_REFUSED',
      'elsewhere.test is not allowed',
    )
    assert.equal((await h.db.selectFrom('users').select('id').where('email', '=', 'eve@elsewhere.test').execute()).length, 0)
  })

  test('a verified email links to the existing account (the bootstrap Owner) and its workspaces; audited', async () => {
    const { br, authUrl } = await start()
    assert.equal((await callback(br, await atProvider(authUrl.href, 'owner'))).status, 302)
    const me = await br.get('/v1/account')
    assert.equal(me.json.user.email, 'owner@acme.test')
    assert.ok(me.json.workspaces.some((w: { id: string }) => w.id === h.a.id))
    assert.equal((await br.get(`/v1/workspaces/${h.a.slug}/projects`)).status, 200)
    await h.settle()
    const rows = await h.db
      .selectFrom('audit_entries')
      .select(['action', 'details'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'auth.sign-in')
      .execute()
    assert.ok(rows.some((r) => /"method":"oidc"/.test(r.details) && /"linked":true/.test(r.details)))
  })

  test('the sign-in page offers SSO; failed callbacks are counted, not logged to a workspace', async () => {
    const page = await browser(h.app, PUBLIC_URL).get('/sign-in')
    assert.ok(page.body.includes('href="/v1/auth/oidc/start?returnTo=%2F"'))
    const m = await h.app.inject({ method: 'GET', url: '/metrics' })
    assert.match(m.body, /coffer_auth_failures_unattributed_total\{event="auth.oidc-callback",reason="state"\} [1-9]/)
  })

  test('returnTo only ever leads inside Coffer', async () => {
    for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example']) {
      const br = browser(h.app, PUBLIC_URL)
      const r = await br.get(`/v1/auth/oidc/start?returnTo=${encodeURIComponent(evil)}`)
      const back = await atProvider(String(r.headers.location), 'bob')
      const done = await callback(br, back)
      assert.equal(done.headers.location, '/', evil)
    }
  })
}

describe('OpenID Connect', () => {
  describeEachEngine(suite)
})
