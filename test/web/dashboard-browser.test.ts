// The dashboard end to end in Chromium against a real server: sign in → the app → create a
// project → open an environment → add, reveal (audited), filter, edit and delete secrets.
// Attacker strings render as text (no dialog, no CSP report); another workspace's URLs show
// "not found"; axe finds no serious or critical problem on any screen; the suite takes the
// README's screenshots from a seeded demo workspace. Chromium is required; this suite never skips.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { bootstrapWorkspace } from '../../src/context.js'
import { APP_CSP } from '../../src/server/web-app.js'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { axeFindings, setPassword as setTestPassword, watchPage } from '../helpers/web.js'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
const XSS = ['<img src=x onerror=alert(1)>', '"><script>alert(1)</script>']

describe('the dashboard in Chromium', () => {
  let h: Harness
  let chromium: Browser
  let base: string
  const password = `web-${randomBytes(8).toString('hex')}`

  /** Everything a page did that it must not: console errors (CSP reports are errors), uncaught errors, dialogs. */
  const problems: string[] = []
  function watch(page: Page): Page {
    problems.length = 0
    return watchPage(page, problems)
  }

  async function setPassword(email: string): Promise<void> {
    await setTestPassword(h.ctx, email, password)
  }

  /** Opens `path` signed out, signs in on the sign-in page it leads to, and waits to be back. */
  async function signIn(page: Page, email: string, path = '/'): Promise<void> {
    await page.goto(`${base}${path}`)
    assert.ok(page.url().startsWith(`${base}/sign-in?returnTo=`), `signed out, ${path} leads to sign-in`)
    await page.fill('#email', email)
    await page.fill('#password', password)
    await page.click('button[type=submit]')
  }

  async function addSecret(page: Page, s: { key: string; value: string; comment?: string; tags?: string }): Promise<void> {
    await page.getByRole('button', { name: 'Add secret' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.getByLabel(/^Key/).fill(s.key)
    await dialog.getByLabel('Value', { exact: true }).fill(s.value)
    if (s.comment) await dialog.getByLabel(/^Comment/).fill(s.comment)
    if (s.tags) await dialog.getByLabel(/^Tags/).fill(s.tags)
    await dialog.getByRole('button', { name: 'Add secret' }).click()
  }

  before(async () => {
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1' })
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    await setPassword('owner@acme.test')
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    await h?.close()
  })

  test('sign in, land in the app, create a project, add secrets, reveal one (audited), filter, edit, delete', async () => {
    const ctx = await chromium.newContext()
    const page = watch(await ctx.newPage())
    await signIn(page, 'owner@acme.test')
    await page.waitForURL(`${base}/w/${h.a.slug}`)
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor()

    await page.getByRole('button', { name: 'New project' }).click()
    await page.getByRole('dialog').getByLabel('Name', { exact: true }).fill('Payments API')
    await page.getByRole('dialog').getByRole('button', { name: 'Create project' }).click()
    await page.waitForURL(`${base}/w/${h.a.slug}/projects/payments-api`)
    await page.getByRole('heading', { name: 'Payments API', level: 1 }).waitFor()
    for (const env of ['Development', 'Staging', 'Production']) await page.getByRole('link', { name: env }).waitFor()

    await page.getByRole('link', { name: 'Development' }).click()
    await page.waitForURL(`${base}/w/${h.a.slug}/projects/payments-api/development`)
    await page.getByText('No secrets yet').waitFor()

    const stripe = `sk_test_${randomBytes(12).toString('hex')}`
    await addSecret(page, { key: 'STRIPE_KEY', value: stripe, comment: 'the test-mode key', tags: 'billing' })
    await page.getByText('Saved STRIPE_KEY (version 1).').waitFor()
    await addSecret(page, { key: 'DATABASE_URL', value: 'postgres://app@db/payments' })
    await page.getByText('2 secrets').waitFor()
    assert.ok(!(await page.content()).includes(stripe), 'values stay masked until revealed')

    await page.getByRole('button', { name: 'Reveal STRIPE_KEY' }).click()
    await page.getByText(stripe).waitFor()
    await page.getByText('the test-mode key').waitFor()
    const entries = await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/audit/entries?limit=1000`)
    const reveals = (entries.body.entries as Array<{ action: string; details: string }>).filter((e) => e.action === 'secret.reveal')
    assert.equal(reveals.length, 1, 'one reveal, one audit entry')
    assert.match(reveals[0]!.details, /STRIPE_KEY/)
    assert.ok(!JSON.stringify(entries.body).includes(stripe), 'the value is not in the audit log')

    await page.getByRole('button', { name: 'Hide STRIPE_KEY' }).click()
    assert.ok(!(await page.content()).includes(stripe), 'hidden again')

    await page.getByLabel('Filter secrets by key or tag').fill('data')
    await page.getByText('1 of 2 secrets').waitFor()
    assert.equal(await page.getByRole('button', { name: 'Reveal STRIPE_KEY' }).count(), 0)
    await page.getByLabel('Filter secrets by key or tag').fill('BILLING')
    await page.getByText('1 of 2 secrets').waitFor()
    await page.getByRole('button', { name: 'Reveal STRIPE_KEY' }).waitFor()
    await page.getByLabel('Filter secrets by key or tag').fill('')

    await page.getByRole('button', { name: 'Edit DATABASE_URL' }).click()
    const editor = page.getByRole('dialog')
    assert.equal(
      await editor.getByLabel('Value', { exact: true }).inputValue(),
      'postgres://app@db/payments',
      'the editor opens with the value',
    )
    await editor.getByLabel('Value', { exact: true }).fill('postgres://app@db-2/payments')
    await editor.getByRole('button', { name: 'Save new version' }).click()
    await page.getByText('Saved DATABASE_URL (version 2).').waitFor()
    await page.getByText('v2').waitFor()

    await page.getByRole('button', { name: 'Delete STRIPE_KEY' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click()
    await page.getByText('Deleted STRIPE_KEY.').waitFor()
    await page.getByText('1 secret', { exact: true }).waitFor()
    const left = await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/projects/payments-api/environments/development/secrets`)
    assert.deepEqual(
      left.body.secrets.map((s: { key: string; version: number }) => [s.key, s.version]),
      [['DATABASE_URL', 2]],
    )

    const res = await page.goto(`${base}/w/${h.a.slug}`)
    assert.equal(res?.headers()['content-security-policy'], APP_CSP)
    assert.deepEqual(problems, [], 'no console error, CSP violation or dialog')
    await ctx.close()
  })

  test('attacker strings render as text; another workspace shows "not found"', async () => {
    const ctx = await chromium.newContext()
    const page = watch(await ctx.newPage())
    await signIn(page, 'owner@acme.test', `/w/${h.a.slug}`)
    await page.waitForURL(`${base}/w/${h.a.slug}`)
    for (const name of XSS) {
      await page.getByRole('button', { name: 'New project' }).click()
      await page.getByRole('dialog').getByLabel('Name', { exact: true }).fill(name)
      await page.getByRole('dialog').getByRole('button', { name: 'Create project' }).click()
      await page.getByRole('heading', { name, level: 1 }).waitFor()
      assert.equal(await page.locator('h1').textContent(), name, 'the name is text')
      await page.getByRole('link', { name: 'Projects' }).first().click()
      await page.getByRole('link', { name }).waitFor()
    }
    await page.getByRole('link', { name: XSS[0]! }).click()
    await page.getByRole('link', { name: 'Staging' }).click()
    // A key cannot hold markup: the API refuses it, and the refusal is shown as text.
    await addSecret(page, { key: XSS[0]!, value: 'x' })
    await page.getByRole('dialog').getByRole('alert').waitFor()
    assert.match((await page.getByRole('dialog').getByRole('alert').textContent()) ?? '', /ERR_VALIDATION/)
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click()
    await addSecret(page, { key: 'XSS_PROBE', value: XSS[1]!, comment: XSS[0]!, tags: 'a:b/c' })
    await page.getByRole('button', { name: 'Reveal XSS_PROBE' }).click()
    await page.getByText(XSS[1]!).waitFor()
    await page.getByText(XSS[1]!).waitFor()
    assert.equal(await page.locator('td.value .comment').textContent(), XSS[0], 'the comment is text')
    assert.equal(await page.locator('td.value code').textContent(), XSS[1], 'the value is text')
    assert.equal(await page.locator('main img, main script, body > script:not([src])').count(), 0, 'no element was made from a string')

    // The CSP holds in the page: an inline script put there is refused, and the refusal is reported.
    const before = problems.length
    await page.evaluate(() => {
      const el = document.createElement('script')
      el.textContent = 'window.__injected = true'
      document.body.append(el)
    })
    assert.equal(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected), undefined, 'inline script blocked')
    await page.waitForTimeout(100)
    assert.ok(
      problems.slice(before).some((p) => /Content Security Policy/.test(p)),
      'the violation shows in the console, so the checks below would see one',
    )
    problems.splice(before)

    // Workspace B is another tenant: its URLs look exactly like missing ones.
    const bProject = await api(h.app, h.b.token).post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Hidden' })
    assert.equal(bProject.status, 201)
    for (const path of [
      `/w/${h.b.slug}`,
      `/w/${h.b.slug}/projects/hidden/development`,
      `/w/${h.a.slug}/projects/${bProject.body.project.id}`,
      `/w/${h.a.slug}/projects/${bProject.body.project.id}/development`,
      `/w/${h.a.slug}/projects/hidden`,
    ]) {
      await page.goto(`${base}${path}`)
      await page.getByRole('heading', { name: 'Not found' }).waitFor()
      assert.ok(!(await page.content()).includes('Hidden'), `${path} tells nothing of B`)
    }
    // The API's refusals above (the markup key: 400; B's project: 404) are expected; anything else — a CSP report, a dialog — is not.
    assert.deepEqual(
      problems.filter((p) => !/^response: (400|404) \/v1\/|^console: Failed to load resource: .* status of (400|404) /.test(p)),
      [],
      'no dialog, no CSP violation, no error',
    )
    await ctx.close()
  })

  test('every screen: axe finds no serious or critical problem; the README screenshots from a seeded demo', async () => {
    // A demo workspace of its own, seeded through the API as a team would have it.
    const demo = await bootstrapWorkspace(h.ctx, { name: 'Northwind', ownerEmail: 'demo@northwind.test' })
    await setPassword('demo@northwind.test')
    const d = api(h.app, demo.token)
    const W = `/v1/workspaces/${demo.workspace.slug}`
    for (const name of ['Storefront', 'Payments API', 'Data Pipeline', 'Internal Tools'])
      assert.equal((await d.post(`${W}/projects`, { name })).status, 201)
    const services = [
      'STRIPE',
      'SENDGRID',
      'SENTRY',
      'ALGOLIA',
      'S3',
      'REDIS',
      'POSTGRES',
      'OPENAI',
      'TWILIO',
      'GITHUB',
      'SLACK',
      'DATADOG',
    ]
    const fields = ['API_KEY', 'SECRET', 'URL']
    const secrets = services.flatMap((svc, i) =>
      fields.map((f, j) => ({
        key: `${svc}_${f}`,
        value: `demo-${randomBytes(12).toString('hex')}`,
        comment: `${svc.toLowerCase()} ${f.toLowerCase().replace('_', ' ')} for production`,
        tags: [
          ['payments', 'mail', 'observability', 'search', 'storage', 'cache', 'database', 'ai', 'sms', 'ci', 'chat', 'observability'][i]!,
          ...(j === 1 ? ['rotate:90d'] : []),
        ],
      })),
    )
    const E = `${W}/projects/storefront/environments`
    assert.equal((await d.post(`${E}/production/secrets`, { secrets })).status, 200)
    assert.equal((await d.post(`${E}/development/secrets`, { secrets: secrets.slice(0, 20) })).status, 200)

    const shots = await chromium.newContext({ viewport: { width: 1280, height: 760 } })
    const axeCtx = await chromium.newContext({ viewport: { width: 1280, height: 760 }, bypassCSP: true })
    const page = watch(await shots.newPage())
    const axePage = await axeCtx.newPage()
    await signIn(page, 'demo@northwind.test')
    await page.waitForURL(`${base}/w/${demo.workspace.slug}`)
    await signIn(axePage, 'demo@northwind.test')
    await axePage.waitForURL(`${base}/w/${demo.workspace.slug}`)

    const findings: string[] = []
    /** Runs axe on what `axePage` shows (axe is injected as a script: this context bypasses the CSP for it alone). */
    async function audit(screen: string): Promise<void> {
      findings.push(...(await axeFindings(axePage, screen)))
    }
    const both = async (f: (p: Page) => Promise<unknown>) => {
      await f(page)
      await f(axePage)
    }

    await both((p) => p.getByRole('link', { name: 'Storefront' }).waitFor())
    await page.screenshot({ path: join(SCREENSHOTS, 'projects.png') })
    await audit('projects')

    await both(async (p) => {
      await p.getByRole('link', { name: 'Storefront' }).click()
      await p.getByRole('link', { name: 'Production' }).waitFor()
    })
    await page.screenshot({ path: join(SCREENSHOTS, 'project.png') })
    await audit('project')

    await both(async (p) => {
      await p.getByRole('link', { name: 'Production' }).click()
      await p.getByText('36 secrets').waitFor()
      await p.getByRole('button', { name: 'Reveal OPENAI_API_KEY' }).click()
      await p.getByText('openai api key for production').waitFor()
    })
    await page.screenshot({ path: join(SCREENSHOTS, 'environment.png') })
    await audit('environment')

    await both(async (p) => {
      await p.getByLabel('Filter secrets by key or tag').fill('observ')
      await p.getByText('6 of 36 secrets').waitFor()
    })
    await audit('environment, filtered')

    await both(async (p) => {
      await p.getByLabel('Filter secrets by key or tag').fill('')
      await p.getByRole('button', { name: 'Add secret' }).click()
      const dialog = p.getByRole('dialog')
      await dialog.getByLabel(/^Key/).fill('SHOPIFY_WEBHOOK_SECRET')
      await dialog.getByLabel('Value', { exact: true }).fill('whsec_demo')
      await dialog.getByLabel(/^Tags/).fill('payments, webhooks')
    })
    await page.screenshot({ path: join(SCREENSHOTS, 'add-secret.png') })
    await audit('add a secret')

    await both(async (p) => {
      await p.keyboard.press('Escape')
      await p.goto(`${base}/w/${demo.workspace.slug}/projects/nope`)
      await p.getByRole('heading', { name: 'Not found' }).waitFor()
    })
    await audit('not found')

    assert.deepEqual(findings, [], 'no serious or critical accessibility problem')
    assert.deepEqual(
      problems.filter((p) => !/^response: 404 \/v1\/|^console: Failed to load resource: .* status of 404 /.test(p)),
      [],
    )
    await shots.close()
    await axeCtx.close()
  })
})
