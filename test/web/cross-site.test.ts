// Cross-site requests in a real browser. A person is signed in to the dashboard on
// http://127.0.0.1:P; a page on another site (http://localhost:Q) then tries, with that
// person's browser, to end their sessions with an auto-submitted form, to create a project
// with a "simple" cross-origin POST, and to read their account with a credentialed fetch.
// Nothing of it takes effect: the session still works, no project appears, nothing is read.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { setPassword, watchPage } from '../helpers/web.js'

describe('cross-site requests against a signed-in browser', () => {
  let h: Harness
  let chromium: Browser
  let base = ''
  let evil: http.Server
  let evilBase = ''
  let evilPage = ''
  const password = `web-${randomBytes(8).toString('hex')}`

  before(async () => {
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1' })
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    await setPassword(h.ctx, 'owner@acme.test', password)
    // The attacker's site: another host name, so another site for the browser.
    evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(evilPage)
    })
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
    evilBase = `http://localhost:${(evil.address() as AddressInfo).port}`
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    await new Promise((r) => evil?.close(r))
    await h?.close()
  })

  test('a form, a simple POST and a credentialed fetch from another site change and read nothing', { timeout: 60_000 }, async () => {
    const ctx = await chromium.newContext()
    const problems: string[] = []
    const page = watchPage(await ctx.newPage(), problems)
    await page.goto(`${base}/`)
    await page.fill('#email', 'owner@acme.test')
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}/w/${h.a.slug}`)
    const signedIn = async () => page.evaluate(async (b) => (await fetch(`${b}/v1/account`, { credentials: 'same-origin' })).status, base)
    assert.equal(await signedIn(), 200)

    // 1. An auto-submitted form that would end every session of the person.
    evilPage = `<!doctype html><form id=f method=post action="${base}/v1/account/sign-out-everywhere">
      <input name=csrf value=guess></form><script>document.getElementById('f').submit()</script>`
    const attacker = await ctx.newPage()
    const formAnswer = attacker.waitForResponse((r) => r.url().startsWith(`${base}/v1/account/sign-out-everywhere`))
    await attacker.goto(evilBase)
    const answered = await formAnswer
    assert.notEqual(answered.status(), 200, 'the form post is not carried out')
    assert.equal(await signedIn(), 200, 'the session survives the cross-site form')

    // 2. A "simple" cross-origin POST (no preflight) that would create a project, and
    // 3. a credentialed fetch that would read the person's account.
    evilPage = `<!doctype html><script>
      window.results = Promise.all([
        fetch('${base}/v1/workspaces/${h.a.slug}/projects', { method: 'POST', mode: 'no-cors', credentials: 'include',
          headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'Evil', slug: 'evil' }) }).then(() => 'sent', (e) => String(e)),
        fetch('${base}/v1/account', { credentials: 'include' }).then((r) => r.text(), (e) => 'blocked: ' + e),
      ])
    </script>`
    const reached = new Map<string, number>()
    attacker.on('response', (r) => {
      if (r.url().startsWith(base)) reached.set(`${r.request().method()} ${new URL(r.url()).pathname}`, r.status())
    })
    attacker.on('requestfailed', (r) => {
      if (r.url().startsWith(base)) reached.set(`failed ${r.method()} ${new URL(r.url()).pathname} ${r.failure()?.errorText}`, 0)
    })
    await attacker.goto(evilBase)
    const [, read] = await attacker.evaluate(() => (window as unknown as { results: Promise<string[]> }).results)
    // The POST reached the server and was answered (so the test shows a refusal, not a request
    // never sent): the browser saw either the refusal or an answer it then blocked itself
    // (ERR_BLOCKED_BY_RESPONSE: Coffer's Cross-Origin-Resource-Policy), and nothing was created (below).
    const post = [...reached].find(([k]) => k.includes(`POST /v1/workspaces/${h.a.slug}/projects`))
    assert.ok(post, `the cross-site POST went out: ${JSON.stringify([...reached])}`)
    assert.ok(post[1] >= 400 || /ERR_BLOCKED_BY_RESPONSE/.test(post[0]), `and was refused or its answer withheld: ${post[0]} ${post[1]}`)
    assert.match(read!, /^blocked: /, 'the browser does not let another site read the answer')
    assert.doesNotMatch(read!, /owner@acme\.test|csrfToken/)

    const projects = await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/projects`)
    assert.equal(projects.status, 200)
    assert.ok(!(projects.body.projects as Array<{ slug: string }>).some((p) => p.slug === 'evil'), 'no project was created')
    assert.equal(await signedIn(), 200, 'and the person is still signed in')
    assert.deepEqual(problems, [], 'the dashboard itself saw nothing go wrong')
    await ctx.close()
  })
})
