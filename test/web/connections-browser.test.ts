// The Connections screen in Chromium against a real server and a real authorization server
// (oidc-provider on loopback): a member sees the app's and their own link state, links their
// account through the provider's own login and consent pages and Coffer's callback, sees it
// connected, and unlinks; Owners get the app's buttons, members do not. No token reaches the
// page; axe finds no serious or critical problem.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { startThirdParty, type ThirdParty } from '../helpers/oauth-provider.js'
import { addPerson, type TestPerson } from '../helpers/principals.js'
import { axeFindings, setPassword, watchPage } from '../helpers/web.js'

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

describe('the Connections screen in Chromium', () => {
  let h: Harness
  let tp: ThirdParty
  let chromium: Browser
  let base: string
  let member: TestPerson
  const password = `conn-${randomBytes(8).toString('hex')}`
  const problems: string[] = []

  async function signIn(page: Page, email: string, path: string): Promise<void> {
    await page.goto(`${base}${path}`)
    await page.fill('#email', email)
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}${path}`)
  }

  before(async () => {
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1', COFFER_PUBLIC_URL: base, COFFER_OUTBOUND_ALLOW: '127.0.0.1/32' })
    await h.ctx.webhooks.stop()
    await h.app.listen({ host: '127.0.0.1', port })
    tp = await startThirdParty(base)
    member = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'mia' })
    await setPassword(h.ctx, member.email, password)
    await setPassword(h.ctx, 'owner@acme.test', password)
    const made = await api(h.app, h.a.token).post(`/v1/workspaces/${h.a.slug}/connections`, {
      name: 'tracker',
      authorizeUrl: `${tp.issuer}/auth`,
      tokenUrl: `${tp.issuer}/token`,
      clientId: tp.clientId,
      clientSecret: tp.clientSecret,
      scopes: ['openid', 'offline_access', 'api'],
      apiBase: tp.apiBase,
      allow: ['GET /v1/*', 'POST /v1/items'],
    })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    await h?.close()
    await tp?.close()
  })

  test('a member links their account through the provider and sees it connected, then unlinks', async () => {
    const ctx = await chromium.newContext({ viewport: { width: 1280, height: 760 } })
    const page = await ctx.newPage()
    // The provider's development login pages ask for a stylesheet on the internet, which does not resolve here.
    watchPage(page, problems, [/net::ERR_NAME_NOT_RESOLVED/])
    const path = `/w/${h.a.slug}/connections`
    await signIn(page, member.email, path)
    const row = page.locator('tr[data-connection="tracker"]')
    await row.waitFor()
    assert.match((await row.textContent()) ?? '', /not connected/)
    assert.match((await row.textContent()) ?? '', /not linked/)
    assert.equal(await page.getByRole('button', { name: 'Connect tracker app' }).count(), 0, 'no app button for a member')

    await page.getByRole('button', { name: 'Link my account to tracker' }).click()
    await page.waitForURL((u) => u.href.startsWith(tp.issuer))
    // The provider's own sign-in and consent pages (oidc-provider's development interactions).
    await page.fill('input[name=login]', 'mia-at-provider')
    await page.fill('input[name=password]', 'any')
    await page.click('button[type=submit]')
    const backHome = (u: URL) => u.href.startsWith(base) && u.pathname.endsWith('/connections')
    await page.waitForURL((u) => backHome(u) || u.pathname.includes('/interaction/'))
    if (!backHome(new URL(page.url()))) {
      await page.click('button[type=submit]')
      await page.waitForURL(backHome)
    }
    // Coffer's callback sends the browser back to the Connections screen (not a JSON answer).
    assert.match(new URL(page.url()).pathname, /^\/w\/[^/]+\/connections$/)
    await row.waitFor()
    await page.getByRole('button', { name: 'Unlink tracker' }).waitFor()
    assert.match((await row.textContent()) ?? '', /connected/)
    const html = await page.content()
    for (const t of [tp.clientSecret, ...tp.issued]) assert.ok(!html.includes(t), 'no token or client secret on the page')
    const axeCtx = await chromium.newContext({ viewport: { width: 1280, height: 760 }, bypassCSP: true })
    const axePage = await axeCtx.newPage()
    await signIn(axePage, member.email, path)
    await axePage.locator('tr[data-connection="tracker"]').waitFor()
    const findings = await axeFindings(axePage, 'connections')
    await axeCtx.close()
    assert.deepEqual(findings, [])

    await page.getByRole('button', { name: 'Unlink tracker' }).click()
    await page.getByRole('button', { name: 'Unlink tracker' }).waitFor({ state: 'detached' })
    assert.match((await row.textContent()) ?? '', /not linked/)
    await ctx.close()
  })

  test("an Owner sees the app's buttons", async () => {
    const ctx = await chromium.newContext({ viewport: { width: 1280, height: 760 } })
    const page = await ctx.newPage()
    watchPage(page, problems)
    await signIn(page, 'owner@acme.test', `/w/${h.a.slug}/connections`)
    await page.getByRole('button', { name: 'Connect tracker app' }).waitFor()
    await page.getByRole('button', { name: 'Delete tracker' }).waitFor()
    await ctx.close()
  })

  test('no console error or CSP violation on Coffer’s pages', () => {
    assert.deepEqual(problems, [])
  })
})
