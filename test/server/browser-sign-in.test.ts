// The sign-in pages in a real browser (Chromium via playwright-core): a wrong password comes
// back as a message, the right one lands on the account page, the account page's forms
// (CSRF hidden field, same-origin Origin header) work, and the pages load no script and
// break no CSP rule. Chromium is required (Debian package `chromium`); this suite never skips.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium, type BrowserContext } from 'playwright-core'
import { hashPassword } from '../../src/identity/passwords.js'
import { startHarness, type Harness } from '../helpers/harness.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

describe('sign-in pages in Chromium', () => {
  let h: Harness
  let ctx: BrowserContext
  let dir: string
  let base: string
  const password = `browser-${randomBytes(8).toString('hex')}`
  const problems: string[] = []

  before(async () => {
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1' })
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    const hash = await hashPassword(password)
    await h.ctx.committer.run((tx) =>
      tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('email', '=', 'owner@acme.test')
        .execute(),
    )
    dir = await mkdtemp(join(tmpdir(), 'coffer-chromium-'))
    ctx = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS })
  })
  after(async () => {
    await ctx?.close()
    await h?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  test('sign in with a form, use the account page, sign out', async () => {
    const page = await ctx.newPage()
    page.on('console', (m) => {
      if (m.type() === 'error' && !/favicon/.test(m.location().url)) problems.push(m.text())
    })
    page.on('pageerror', (e) => problems.push(e.message))

    await page.goto(`${base}/sign-in`)
    assert.equal(await page.locator('script').count(), 0, 'no script on the page')
    assert.notEqual(
      await page.evaluate(() => getComputedStyle(document.querySelector('main')!).maxWidth),
      'none',
      'the stylesheet applies under the CSP',
    )

    await page.fill('#email', 'owner@acme.test')
    await page.fill('#password', 'not-the-password')
    await Promise.all([page.waitForURL('**/sign-in?error=ERR_INVALID_CREDENTIALS'), page.click('button[type=submit]')])
    assert.ok((await page.textContent('.msg.error'))?.includes('The email or password is wrong.'))

    // The account page sends a signed-out visitor to sign-in, and back after it.
    await page.goto(`${base}/account`)
    assert.equal(page.url(), `${base}/sign-in?returnTo=%2Faccount`)
    await page.fill('#email', 'owner@acme.test')
    await page.fill('#password', password)
    await Promise.all([page.waitForURL(`${base}/account`), page.click('button[type=submit]')])
    assert.ok((await page.textContent('main'))?.includes('owner@acme.test'))
    const cookie = (await ctx.cookies(base)).find((c) => c.name === 'coffer_session')
    assert.ok(cookie?.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/', 'HttpOnly, SameSite=Lax, Path=/')
    assert.equal(await page.evaluate(() => document.cookie.includes('coffer_session')), false, 'scripts cannot read it')

    // A form of the account page: the browser's own Origin and the hidden CSRF field pass.
    await page.fill('#current', 'wrong-current-password')
    await page.fill('#new', 'a-new-password-123')
    await Promise.all([
      page.waitForURL('**/account?error=ERR_INVALID_CREDENTIALS'),
      page.click('form[action="/v1/account/password"] button'),
    ])

    await Promise.all([page.waitForURL('**/sign-in?notice=signed-out'), page.click('form[action="/v1/account/sign-out"] button')])
    assert.ok((await page.textContent('.msg.notice'))?.includes('signed out'))
    await page.goto(`${base}/account`)
    assert.ok(page.url().startsWith(`${base}/sign-in`), 'the account page needs a session again')
    assert.deepEqual(problems, [], 'no console errors or CSP violations')
  })
})
