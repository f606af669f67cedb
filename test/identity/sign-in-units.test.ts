// Units of sign-in that need no server: the settings (each bad value names its setting), the
// CSRF token's binding to its session, the OIDC domain allow-list and the returnTo filter.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { ConfigError } from '../../src/errors.js'
import { authConfig } from '../../src/ops/auth-config.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { domainAllowed } from '../../src/identity/oidc.js'
import { checkCsrfToken, csrfTokenFor } from '../../src/identity/sessions.js'
import { safeReturnTo } from '../../src/server/routes/auth-routes.js'

function fails(env: Record<string, string>, setting: string): void {
  assert.throws(
    () => authConfig(env, '127.0.0.1', 8700),
    (e: unknown) => e instanceof ConfigError && e.setting === setting && e.code === 'ERR_CONFIG',
    `${JSON.stringify(env)} names ${setting}`,
  )
}

describe('sign-in settings', () => {
  test('defaults: passwords on, no OIDC, mail off, 30 min idle, 12 h absolute, public URL from host and port', () => {
    const c = authConfig({}, '0.0.0.0', 8700)
    assert.deepEqual(c, {
      publicUrl: 'http://127.0.0.1:8700',
      publicUrlSet: false,
      password: true,
      oidc: null,
      mail: { enabled: false, from: 'Coffer <coffer@127.0.0.1>' },
      session: { idleMs: 1_800_000, absoluteMs: 43_200_000 },
    })
  })

  test('OIDC, oidc-only, mail and sessions', () => {
    const c = authConfig(
      {
        COFFER_PUBLIC_URL: 'https://vault.example.com/',
        COFFER_AUTH_MODE: 'oidc-only',
        COFFER_OIDC_ISSUER: 'https://id.example.com/',
        COFFER_OIDC_CLIENT_ID: 'coffer',
        COFFER_OIDC_ALLOWED_DOMAINS: ' Example.com, corp.example ',
        COFFER_SMTP_URL: 'smtps://u:p@mail.example.com',
        COFFER_SESSION_IDLE_TIMEOUT: '600',
        COFFER_SESSION_ABSOLUTE_TIMEOUT: '3600',
      },
      '127.0.0.1',
      8700,
    )
    assert.equal(c.publicUrl, 'https://vault.example.com')
    assert.equal(c.password, false)
    assert.deepEqual(c.oidc, {
      issuer: 'https://id.example.com',
      clientId: 'coffer',
      allowedDomains: ['example.com', 'corp.example'],
      insecureLoopback: false,
    })
    assert.deepEqual(c.mail, { enabled: true, from: 'Coffer <coffer@vault.example.com>' })
    assert.deepEqual(c.session, { idleMs: 600_000, absoluteMs: 3_600_000 })
    assert.equal(
      authConfig({ COFFER_OIDC_ISSUER: 'http://127.0.0.1:9000', COFFER_OIDC_CLIENT_ID: 'x' }, 'h', 1).oidc?.insecureLoopback,
      true,
    )
  })

  test('every bad value names its setting', () => {
    fails({ COFFER_PUBLIC_URL: 'not a url' }, 'COFFER_PUBLIC_URL')
    fails({ COFFER_PUBLIC_URL: 'https://vault.example.com/coffer' }, 'COFFER_PUBLIC_URL')
    fails({ COFFER_PUBLIC_URL: 'ftp://vault.example.com' }, 'COFFER_PUBLIC_URL')
    fails({ COFFER_AUTH_MODE: 'magic' }, 'COFFER_AUTH_MODE')
    fails({ COFFER_AUTH_MODE: 'oidc-only' }, 'COFFER_OIDC_ISSUER')
    fails({ COFFER_OIDC_ISSUER: 'http://id.example.com', COFFER_OIDC_CLIENT_ID: 'x' }, 'COFFER_OIDC_ISSUER')
    fails({ COFFER_OIDC_ISSUER: 'https://id.example.com' }, 'COFFER_OIDC_CLIENT_ID')
    fails({ COFFER_OIDC_CLIENT_ID: 'x' }, 'COFFER_OIDC_ISSUER')
    fails(
      { COFFER_OIDC_ISSUER: 'https://id.example.com', COFFER_OIDC_CLIENT_ID: 'x', COFFER_OIDC_ALLOWED_DOMAINS: 'exa mple.com' },
      'COFFER_OIDC_ALLOWED_DOMAINS',
    )
    fails({ COFFER_SMTP_URL: 'http://mail.example.com' }, 'COFFER_SMTP_URL')
    fails({ COFFER_MAIL_FROM: 'nobody' }, 'COFFER_MAIL_FROM')
    fails({ COFFER_SESSION_IDLE_TIMEOUT: '10' }, 'COFFER_SESSION_IDLE_TIMEOUT')
    fails({ COFFER_SESSION_IDLE_TIMEOUT: '30m' }, 'COFFER_SESSION_IDLE_TIMEOUT')
    fails({ COFFER_SESSION_IDLE_TIMEOUT: '7200', COFFER_SESSION_ABSOLUTE_TIMEOUT: '3600' }, 'COFFER_SESSION_ABSOLUTE_TIMEOUT')
  })

  test('the SMTP URL and the OIDC client secret are secrets: never in JSON or inspection', async () => {
    const secret = `s-${randomBytes(8).toString('hex')}`
    const s = buildSecrets({ COFFER_SMTP_URL: `smtp://u:${secret}@mail.example.com`, COFFER_OIDC_CLIENT_SECRET: secret })
    assert.ok(s.smtpUrl?.includes(secret) && s.oidcClientSecret === secret)
    const { inspect } = await import('node:util')
    assert.ok(!JSON.stringify({ s }).includes(secret) && !inspect(s).includes(secret))
  })
})

describe('CSRF tokens', () => {
  test('bound to one session, checked in constant time, refusing anything else', () => {
    const a = randomBytes(32).toString('base64url')
    const b = randomBytes(32).toString('base64url')
    const t = csrfTokenFor(a)
    assert.match(t, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(checkCsrfToken(a, t), true)
    assert.equal(checkCsrfToken(b, t), false, 'another session')
    for (const bad of [undefined, '', 'x', t.slice(1), `${t}x`, t.toUpperCase() === t ? t.toLowerCase() : t.toUpperCase()])
      assert.equal(checkCsrfToken(a, bad), false)
  })
})

describe('OIDC allow-list and returnTo', () => {
  test('domains match exactly, case-insensitively; an empty list allows any', () => {
    assert.equal(domainAllowed('a@corp.test', ['corp.test']), true)
    assert.equal(domainAllowed('a@CORP.test', ['corp.test']), true)
    assert.equal(domainAllowed('a@evil-corp.test', ['corp.test']), false)
    assert.equal(domainAllowed('a@corp.test.evil', ['corp.test']), false)
    assert.equal(domainAllowed('a@sub.corp.test', ['corp.test']), false)
    assert.equal(domainAllowed('a@anything.test', []), true)
  })

  test('returnTo is a local path or the dashboard', () => {
    assert.equal(safeReturnTo('/account?x=1'), '/account?x=1')
    for (const evil of ['https://evil.example', '//evil.example', '/\\evil.example', 'javascript:alert(1)', '/a b', 42, undefined])
      assert.equal(safeReturnTo(evil), '/', String(evil))
  })
})
