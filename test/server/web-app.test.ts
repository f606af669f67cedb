// The web dashboard as the server serves it (through app.inject): the app's HTML only to a
// session (anyone else goes to sign-in and back), its strict CSP, hashed files cached for a
// year, unknown app paths falling back to the app while API and file paths keep their JSON
// 404, and the initial JavaScript within its budget. Needs the build (npm test builds first).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync, gunzipSync } from 'node:zlib'
import { after, before, describe, test } from 'node:test'
import { hashPassword } from '../../src/identity/passwords.js'
import { APP_CSP, findWebDir, IMMUTABLE } from '../../src/server/web-app.js'
import { browser, type Browser } from '../helpers/browser.js'
import { startHarness, type Harness } from '../helpers/harness.js'

const ORIGIN = 'http://127.0.0.1:8700'
const WEB_DIR = findWebDir()

/** The files index.html loads at once: its module scripts, module preloads and stylesheets. */
function initialFiles(indexHtml: string): { js: string[]; css: string[] } {
  const js = [
    ...indexHtml.matchAll(/<script[^>]*\bsrc="([^"]+)"/g),
    ...indexHtml.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g),
  ]
  const css = [...indexHtml.matchAll(/<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"/g)]
  return { js: js.map((m) => m[1]!), css: css.map((m) => m[1]!) }
}

describe('the web dashboard, served', () => {
  let h: Harness
  let br: Browser
  const password = `web-${randomBytes(8).toString('hex')}`

  before(async () => {
    assert.ok(WEB_DIR, 'the dashboard is built (npm run build)')
    h = await startHarness('sqlite', { COFFER_PUBLIC_URL: ORIGIN })
    const hash = await hashPassword(password)
    await h.ctx.committer.run((tx) =>
      tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('email', '=', 'owner@acme.test')
        .execute(),
    )
    br = browser(h.app, ORIGIN)
  })
  after(() => h?.close())

  test('signed out, every app path goes to sign-in and comes back after it', async () => {
    for (const [path, back] of [
      ['/', '%2F'],
      [`/w/${h.a.slug}/projects/web?x=1`, encodeURIComponent(`/w/${h.a.slug}/projects/web?x=1`)],
    ] as const) {
      const r = await br.get(path)
      assert.equal(r.status, 303, path)
      assert.equal(r.headers.location, `/sign-in?returnTo=${back}`, path)
    }
    const signIn = await br.form('/v1/auth/password/sign-in', { email: 'owner@acme.test', password })
    assert.equal(signIn.status, 303)
    assert.equal(signIn.headers.location, '/', 'a sign-in with nowhere else to go lands in the dashboard')
  })

  test('with a session, the app at / and at any unknown app path: strict CSP, never cached, no inline script', async () => {
    const index = readFileSync(join(WEB_DIR!, 'index.html'), 'utf8')
    for (const path of ['/', `/w/${h.a.slug}`, `/w/${h.a.slug}/projects/nope/development`, '/anything/else']) {
      const r = await br.get(path)
      assert.equal(r.status, 200, path)
      assert.match(String(r.headers['content-type']), /^text\/html/, path)
      assert.equal(r.body, index, path)
      assert.equal(r.headers['content-security-policy'], APP_CSP, path)
      assert.equal(r.headers['cache-control'], 'no-store', path)
      assert.equal(r.headers['referrer-policy'], 'strict-origin', `${path}: the API calls' Origin header stays the page's`)
      assert.equal(r.headers['x-frame-options'], 'DENY', path)
    }
    assert.doesNotMatch(index, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
    assert.doesNotMatch(index, /<style|\sstyle=/, 'no inline style')
    for (const rule of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"])
      assert.ok(APP_CSP.split('; ').includes(rule), rule)
    assert.doesNotMatch(APP_CSP, /unsafe|\*/)
  })

  test('hashed files: a year-long immutable cache, the CSP, gzip when asked; a missing one is 404', async () => {
    const index = readFileSync(join(WEB_DIR!, 'index.html'), 'utf8')
    const { js, css } = initialFiles(index)
    assert.ok(js.length >= 1 && css.length >= 1, 'index.html loads scripts and a stylesheet')
    for (const url of [...js, ...css]) {
      assert.match(url, /^\/assets\/app\/[\w.-]+-[\w-]{8,}\.(js|css)$/, `${url} carries a content hash`)
      const plain = await h.app.inject({ method: 'GET', url })
      assert.equal(plain.statusCode, 200, url)
      assert.equal(plain.headers['cache-control'], IMMUTABLE, url)
      assert.equal(plain.headers['content-security-policy'], APP_CSP, url)
      assert.match(String(plain.headers['content-type']), url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/)
      assert.equal(plain.body, readFileSync(join(WEB_DIR!, url)).toString('utf8'), url)
      const gz = await h.app.inject({ method: 'GET', url, headers: { 'accept-encoding': 'gzip, br' } })
      if (gz.headers['content-encoding'] === 'gzip') assert.equal(gunzipSync(gz.rawPayload).toString('utf8'), plain.body, url)
    }
    const big = js[0]!
    const gz = await h.app.inject({ method: 'GET', url: big, headers: { 'accept-encoding': 'gzip' } })
    assert.equal(gz.headers['content-encoding'], 'gzip', 'the app script is sent compressed')
    assert.equal(gz.headers.vary, 'accept-encoding')
    for (const url of ['/assets/app/missing-12345678.js', '/assets/app/../index.html', '/favicon.ico']) {
      const r = await br.get(url)
      assert.equal(r.status, 404, url)
      assert.equal(r.json.error.code, 'ERR_ROUTE_NOT_FOUND', url)
      assert.equal(r.headers['cache-control'], 'no-store', url)
    }
  })

  test('API, documents and pages keep their own answers, with or without a session', async () => {
    for (const url of ['/v1/nope', '/v1', '/v2/me', '/v1/workspaces/x/nope']) {
      const r = await br.get(url)
      assert.equal(r.status, 404, url)
      assert.match(String(r.headers['content-type']), /^application\/json/, url)
      assert.equal(r.json.error.code, 'ERR_ROUTE_NOT_FOUND', url)
    }
    const expect: Array<[string, number, RegExp]> = [
      ['/healthz', 200, /^application\/json/],
      ['/readyz', 200, /^application\/json/],
      ['/metrics', 200, /^text\/plain/],
      ['/docs', 200, /^text\/html/],
      ['/v1/openapi.json', 200, /^application\/json/],
      ['/sign-in', 200, /^text\/html/],
      ['/account', 200, /^text\/html/],
      ['/v1/account', 200, /^application\/json/],
    ]
    for (const [url, status, type] of expect) {
      const r = await br.get(url)
      assert.equal(r.status, status, url)
      assert.match(String(r.headers['content-type']), type, url)
      assert.doesNotMatch(r.body, /assets\/app\//, `${url} is not the app`)
    }
    const account = await br.get('/v1/account')
    assert.match(account.json.csrfToken, /^[\w-]{43}$/, 'the app learns its CSRF token from GET /v1/account')
    assert.ok(account.json.workspaces.some((w: { slug: string }) => w.slug === h.a.slug))
  })

  test('the initial JavaScript is at most 200 kB gzip', () => {
    const { js } = initialFiles(readFileSync(join(WEB_DIR!, 'index.html'), 'utf8'))
    const bytes = js.reduce((n, url) => n + gzipSync(readFileSync(join(WEB_DIR!, url)), { level: 9 }).length, 0)
    assert.ok(bytes <= 200 * 1024, `initial JavaScript: ${(bytes / 1024).toFixed(1)} kB gzip`)
  })
})
