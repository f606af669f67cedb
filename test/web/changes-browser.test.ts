// Protected environments and change requests in Chromium against a real server: the project
// screen marks the protected environment, a write from the secrets grid says it became a change
// request (and writes nothing), the change-requests screen lists the pending request by keys —
// never values — without approve buttons for its requester, another Admin sees the proposed
// values only through an audited reveal and approves it from the keyboard, and the value is then
// in the environment. axe finds no serious or critical problem; a screenshot goes to docs/screenshots/.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { readInScope } from '../../src/storage/tenant-scope.js'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'
import { axeFindings, setPassword, watchPage } from '../helpers/web.js'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

describe('change requests in Chromium', () => {
  let h: Harness
  let chromium: Browser
  let base: string
  let W: string
  const password = `cr-${randomBytes(8).toString('hex')}`
  let admin: { email: string }
  const proposed = `proposed-${randomBytes(10).toString('hex')}`
  const typed = `typed-${randomBytes(10).toString('hex')}`
  const problems: string[] = []
  const findings: string[] = []

  async function signIn(page: Page, email: string, path: string): Promise<void> {
    await page.goto(`${base}${path}`)
    assert.ok(page.url().startsWith(`${base}/sign-in?returnTo=`), `signed out, ${path} leads to sign-in`)
    await page.fill('#email', email)
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}${path}`)
  }

  async function contexts(email: string, path: string): Promise<{ page: Page; axePage: Page; close(): Promise<void> }> {
    const shots: BrowserContext = await chromium.newContext({ viewport: { width: 1280, height: 760 } })
    const axeCtx: BrowserContext = await chromium.newContext({ viewport: { width: 1280, height: 760 }, bypassCSP: true })
    // The one refusal the test provokes on purpose: protecting with more approvals than other Admins.
    const page = watchPage(await shots.newPage(), problems, [/^409 .*\/protection$/, /status of 409/])
    const axePage = await axeCtx.newPage()
    await signIn(page, email, path)
    await signIn(axePage, email, path)
    return {
      page,
      axePage,
      async close() {
        await shots.close()
        await axeCtx.close()
      },
    }
  }

  before(async () => {
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1' })
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    W = `/v1/workspaces/${h.a.slug}`
    await setPassword(h.ctx, 'owner@acme.test', password)
    const person = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'riley' })
    admin = { email: person.email }
    await setPassword(h.ctx, admin.email, password)
    const owner = api(h.app, h.a.token)
    assert.equal((await owner.post(`${W}/projects`, { name: 'Payments API' })).status, 201)
    const prod = `${W}/projects/payments-api/environments/production`
    assert.equal((await owner.put(`${prod}/secrets/STRIPE_KEY`, { value: 'old' })).status, 200)
    assert.equal((await owner.put(`${prod}/protection`, { approvals: 1 })).status, 200)
    // Requests made by the Owner through the API: one to change a key, one promotion.
    assert.equal((await owner.put(`${prod}/secrets/STRIPE_KEY`, { value: proposed })).status, 202)
    assert.equal(
      (await owner.put(`${W}/projects/payments-api/environments/staging/secrets/WEBHOOK_URL`, { value: 'https://x' })).status,
      200,
    )
    assert.equal((await owner.post(`${prod}/promote`, { from: { environment: 'staging' }, all: true })).status, 202)
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    await h?.close()
  })

  test('the requester sees the protection and their pending requests; a write from the grid becomes a request', async () => {
    problems.length = 0
    const { page, axePage, close } = await contexts('owner@acme.test', `/w/${h.a.slug}/projects/payments-api`)
    await page.getByText('Protected · 1 approval(s)').waitFor()

    // Adding a secret in the protected environment: the dialog says it became a change request.
    await page.goto(`${base}/w/${h.a.slug}/projects/payments-api/production`)
    await page.getByRole('button', { name: 'Add secret' }).click()
    const dialog = page.getByRole('dialog')
    await page.fill('#secret-key', 'NEW_KEY')
    await page.fill('#secret-value', typed)
    await dialog.getByRole('button', { name: 'Add secret' }).click()
    await page.getByRole('alert').filter({ hasText: 'This environment is protected: nothing was written yet' }).waitFor()
    const keyList = await api(h.app, h.a.token).get(`${W}/projects/payments-api/environments/production/secrets`)
    assert.ok(!keyList.body.secrets.some((s: { key: string }) => s.key === 'NEW_KEY'), 'nothing written')

    // Protecting staging from the Access dialog: more approvals than other Admins is refused, one works.
    await page.goto(`${base}/w/${h.a.slug}/projects/payments-api/staging`)
    await page.getByRole('button', { name: 'Access' }).click()
    const access = page.getByRole('dialog')
    await access.getByLabel('Approvals each change request needs').fill('2')
    await access.getByRole('button', { name: 'Protect' }).click()
    await access.getByRole('alert').filter({ hasText: 'ERR_CHANGE_REQUEST_NO_APPROVERS' }).waitFor()
    await access.getByLabel('Approvals each change request needs').fill('1')
    await access.getByRole('button', { name: 'Protect' }).click()
    await access.getByRole('button', { name: 'Lift the protection' }).waitFor()
    const envs = await api(h.app, h.a.token).get(`${W}/projects/payments-api/environments`)
    assert.equal(envs.body.environments.find((x: { slug: string }) => x.slug === 'staging').changeApprovals, 1)
    await access.getByRole('button', { name: 'Lift the protection' }).click()
    await access.getByRole('button', { name: 'Protect' }).waitFor()
    await page.keyboard.press('Escape')

    await page.goto(`${base}/w/${h.a.slug}/changes`)
    const table = page.getByRole('table', { name: 'Change requests' })
    await table.waitFor()
    assert.equal(await table.locator('tbody tr').count(), 3)
    assert.ok(!(await page.content()).includes(proposed), 'no value on the list')
    assert.equal(await page.getByRole('button', { name: /^Approve/ }).count(), 0, 'no approving one’s own request')
    assert.ok((await page.getByText('awaiting others').count()) >= 3)
    await axePage.goto(`${base}/w/${h.a.slug}/changes`)
    await axePage.getByRole('table', { name: 'Change requests' }).waitFor()
    findings.push(...(await axeFindings(axePage, 'changes (requester)')))
    await close()
    assert.deepEqual(problems, [], 'no console error, CSP violation or dialog')
  })

  test('another Admin reveals the proposed values (audited) and approves from the keyboard', async () => {
    problems.length = 0
    const { page, axePage, close } = await contexts(admin.email, `/w/${h.a.slug}/changes`)
    const table = page.getByRole('table', { name: 'Change requests' })
    await table.waitFor()
    await page.screenshot({ path: join(SCREENSHOTS, 'change-requests.png') })
    await axePage.getByRole('table', { name: 'Change requests' }).waitFor()
    findings.push(...(await axeFindings(axePage, 'changes (approver)')))

    const row = table.locator('tbody tr').filter({ hasText: 'STRIPE_KEY changed' })
    await row.getByRole('button', { name: /^Show values/ }).click()
    const values = page.getByRole('table', { name: 'Proposed values' })
    await values.waitFor()
    assert.ok((await values.textContent())?.includes(proposed), 'the value after an explicit reveal')
    await page.keyboard.press('Escape')
    await values.waitFor({ state: 'detached' })

    await row.getByRole('button', { name: /^Approve/ }).focus()
    await page.keyboard.press('Enter')
    await page.getByText('Yours is the last approval needed').waitFor()
    await page.getByRole('button', { name: 'Approve', exact: true }).click()
    await table.locator('tbody tr').filter({ hasText: 'STRIPE_KEY changed' }).waitFor({ state: 'detached' })
    const s = await api(h.app, h.a.token).get(`${W}/projects/payments-api/environments/production/secrets/STRIPE_KEY?reveal=true`)
    assert.equal(s.body.secret.value, proposed, 'applied')
    await close()
    assert.deepEqual(problems, [], 'no console error, CSP violation or dialog')

    await h.settle()
    const log = await readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.list(db, h.a.id, 0, 10_000))
    assert.ok(log.some((e) => e.action === 'change.reveal'))
    assert.ok(log.some((e) => e.action === 'change.apply'))
    assert.ok(!JSON.stringify(log).includes(proposed) && !JSON.stringify(log).includes(typed), 'no value in the audit log')
    assert.deepEqual(findings, [], 'no serious or critical accessibility problem')
  })
})
