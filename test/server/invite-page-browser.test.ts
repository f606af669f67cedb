// The invite page in a real browser (Chromium via playwright-core): the link from a real mail
// opened signed out, sign-in, back on the invitation, Accept, the success page — with no
// script, no CSP violation, and the token never sent on as a referrer (not even to this
// server). Chromium is required (Debian package `chromium`); this suite never skips.
// COFFER_SCREENSHOT_DIR=dir keeps a screenshot of the invitation page for a person to look at.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium, type BrowserContext } from 'playwright-core'
import { ensureUser } from '../../src/identity/identity-service.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { startMailbox, type Mailbox } from '../helpers/mailbox.js'

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

/** A free loopback port (COFFER_PUBLIC_URL must name the address the mailed link opens). */
async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

describe('the invite page in Chromium', () => {
  let h: Harness
  let mailbox: Mailbox
  let ctx: BrowserContext
  let dir: string
  let base: string
  const password = `invitee-${randomBytes(8).toString('hex')}`
  const email = `invitee-${randomBytes(4).toString('hex')}@people.test`

  before(async () => {
    mailbox = await startMailbox()
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1', COFFER_PUBLIC_URL: base, COFFER_SMTP_URL: mailbox.url })
    await h.app.listen({ host: '127.0.0.1', port })
    const hash = await hashPassword(password)
    await h.ctx.committer.run(async (tx) => {
      const u = await ensureUser(tx, email, new Date())
      await tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('id', '=', u.id)
        .execute()
    })
    dir = await mkdtemp(join(tmpdir(), 'coffer-chromium-'))
    ctx = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ARGS })
  })
  after(async () => {
    await ctx?.close()
    await h?.close()
    await mailbox?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  test('open the mailed link, sign in, accept, see the workspace named', async () => {
    const owner = api(h.app, h.a.token)
    const name = (await owner.get('/v1/me')).body.workspace.name as string
    const inv = await owner.post(`/v1/workspaces/${h.a.slug}/invitations`, { email, role: 'admin' })
    assert.equal(inv.status, 201)
    const token = inv.body.token as string
    const link = mailbox.linkIn(await mailbox.waitFor(email), '/invite')
    assert.equal(link, `${base}/invite?token=${token}`)

    const page = await ctx.newPage()
    const problems: string[] = []
    const leaks: string[] = []
    page.on('console', (m) => {
      if (m.type() === 'error' && !/favicon/.test(m.location().url)) problems.push(m.text())
    })
    page.on('pageerror', (e) => problems.push(e.message))
    page.on('request', (r) => {
      const referer = r.headers().referer ?? ''
      if (referer.includes(token.slice(11, 43)) || referer.includes('token'))
        leaks.push(`${r.method()} ${r.url().split('?')[0]} referer ${referer.split('?')[0]}?…`)
    })

    await page.goto(link)
    assert.equal(await page.locator('script').count(), 0, 'no script on the page')
    assert.ok((await page.textContent('main'))?.includes('Someone invited you'))
    assert.ok(!(await page.textContent('main'))?.includes(name), 'signed out, the workspace is not named')
    await Promise.all([page.waitForURL(/\/sign-in\?returnTo=/), page.click('a.button:has-text("Sign in")')])
    await page.fill('#email', email)
    await page.fill('#password', password)
    await Promise.all([page.waitForURL(link), page.click('button[type=submit]')])
    const text = await page.textContent('main')
    assert.ok(text?.includes(name) && text.includes('Admin') && text.includes(email), 'the invitation names workspace, role and account')
    if (process.env.COFFER_SCREENSHOT_DIR)
      await page.screenshot({ path: join(process.env.COFFER_SCREENSHOT_DIR, 'invite-page.png'), fullPage: true })

    await Promise.all([
      page.waitForURL(`${base}/invite/accepted?workspace=${h.a.slug}`),
      page.click('form[action="/v1/account/invitations/accept"] button'),
    ])
    assert.ok((await page.textContent('.msg.notice'))?.includes(`You joined the workspace ${name} as Admin.`))
    if (process.env.COFFER_SCREENSHOT_DIR)
      await page.screenshot({ path: join(process.env.COFFER_SCREENSHOT_DIR, 'invite-accepted.png'), fullPage: true })
    const members = await owner.get(`/v1/workspaces/${h.a.slug}/members`)
    assert.ok(JSON.stringify(members.body).includes(email), 'a member now')

    assert.deepEqual(problems, [], 'no console errors or CSP violations')

    // Opening the link again: the one message for a used invitation (a 404, which the console reports).
    const again = await page.goto(link)
    assert.equal(again?.status(), 404)
    assert.ok((await page.textContent('.msg.error'))?.includes('cannot be used'))
    assert.deepEqual(leaks, [], 'no request carried the token as a referrer')
  })
})
