// The operations screens in Chromium against a real server: keys (rotate, the live reseal
// progress, versions), the audit log (integrity, verify now, the activity chart, filters, entry
// detail, an inclusion proof and an export downloaded through a Blob URL under the app's CSP and
// checked offline), break-glass (request, not one's own approval, another Admin approves, the
// grant's countdown) and workspace deletion (type the slug, the signed receipt). Attacker strings
// in audit details and a break-glass reason render as text; dialogs work from the keyboard; axe
// finds no serious or critical problem on any screen; screenshots go to docs/screenshots/.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { verifyExport, verifyProofFile, type AuditExport, type InclusionProofFile } from '../../src/audit/offline.js'
import { bootstrapWorkspace } from '../../src/context.js'
import { APP_CSP } from '../../src/server/web-app.js'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'
import { axeFindings, setPassword as setTestPassword, watchPage } from '../helpers/web.js'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
const XSS = ['<img src=x onerror=alert(1)>', '"><script>alert(1)</script>']

describe('the operations screens in Chromium', () => {
  let h: Harness
  let chromium: Browser
  let base: string
  let W: string
  let downloads: string
  const password = `ops-${randomBytes(8).toString('hex')}`
  let admin: { email: string; userId: string }

  const problems: string[] = []
  function watch(page: Page): Page {
    return watchPage(page, problems)
  }

  async function setPassword(email: string): Promise<void> {
    await setTestPassword(h.ctx, email, password)
  }

  async function signIn(page: Page, email: string, path: string): Promise<void> {
    await page.goto(`${base}${path}`)
    assert.ok(page.url().startsWith(`${base}/sign-in?returnTo=`), `signed out, ${path} leads to sign-in`)
    await page.fill('#email', email)
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}${path}`)
  }

  const findings: string[] = []
  /** axe on what `page` shows (a context that bypasses the CSP, for the injected script alone). */
  async function axe(page: Page, screen: string): Promise<void> {
    findings.push(...(await axeFindings(page, screen)))
  }

  /** A context for screenshots (CSP on) and one for axe (CSP bypassed), both signed in as `email`. */
  async function contexts(email: string, path: string): Promise<{ page: Page; axePage: Page; close(): Promise<void> }> {
    const shots: BrowserContext = await chromium.newContext({ viewport: { width: 1280, height: 760 }, acceptDownloads: true })
    const axeCtx: BrowserContext = await chromium.newContext({ viewport: { width: 1280, height: 760 }, bypassCSP: true })
    const page = watch(await shots.newPage())
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
    // One approval suffices here; batches of one make the reseal slow enough to watch.
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1', COFFER_BREAKGLASS_APPROVALS: '1', COFFER_RESEAL_BATCH: '1' })
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    W = `/v1/workspaces/${h.a.slug}`
    downloads = await mkdtemp(join(tmpdir(), 'coffer-ops-downloads-'))
    await setPassword('owner@acme.test')
    const person = await addPerson(h, { workspaceId: h.a.id, role: 'admin', label: 'sam' })
    admin = { email: person.email, userId: person.userId }
    await setPassword(admin.email)

    // A team's workspace: two projects, production full of values.
    const a = api(h.app, h.a.token)
    for (const name of ['Storefront', 'Payments API']) assert.equal((await a.post(`${W}/projects`, { name })).status, 201)
    for (let batch = 0; batch < 2; batch++) {
      const secrets = Array.from({ length: 300 }, (_, i) => ({
        key: `SERVICE_${batch}_${i}_KEY`,
        value: `v-${randomBytes(8).toString('hex')}`,
      }))
      assert.equal((await a.post(`${W}/projects/payments-api/environments/production/secrets`, { secrets })).status, 200)
    }
    assert.equal(
      (await a.post(`${W}/projects/storefront/environments/staging/secrets`, { secrets: [{ key: 'CDN_TOKEN', value: 'x' }] })).status,
      200,
    )
    assert.equal((await a.get(`${W}/projects/payments-api/environments/production/secrets/SERVICE_0_1_KEY?reveal=true`)).status, 200)
    assert.equal((await a.put(`${W}/projects/storefront/environments/staging/secrets/CDN_TOKEN`, { value: 'y' })).status, 200)
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    await h?.close()
    await rm(downloads, { recursive: true, force: true })
  })

  test('keys: rotate from a dialog (keyboard), watch the reseal progress, see the versions', async () => {
    problems.length = 0
    const { page, axePage, close } = await contexts('owner@acme.test', `/w/${h.a.slug}/keys`)
    await page.getByRole('table', { name: 'Data keys of Payments API' }).waitFor()
    await page.getByRole('button', { name: 'Rotate the data key of Payments API / Production' }).waitFor()
    await axe(axePage, 'keys')

    // The dialog from the keyboard: focus moves in, Escape closes it and nothing happens.
    await page.getByRole('button', { name: 'Rotate the data key of Payments API / Production' }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'Rotate the data key of Payments API / Production?' })
    await dialog.waitFor()
    assert.equal(await page.evaluate(() => document.activeElement?.closest('dialog') !== null), true, 'focus is in the dialog')
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })
    const unchanged = await api(h.app, h.a.token).get(`${W}/projects/payments-api/environments/production/keys`)
    assert.equal(unchanged.body.jobs.length, 0, 'Escape rotated nothing')

    await axePage.getByRole('button', { name: 'Rotate the data key of Payments API / Production' }).click()
    await axePage.getByRole('dialog').waitFor()
    await axe(axePage, 'keys, rotate dialog')
    await axePage.keyboard.press('Escape')

    await page.getByRole('button', { name: 'Rotate the data key of Payments API / Production' }).click()
    await dialog.getByRole('button', { name: 'Rotate key' }).click()
    await dialog.waitFor({ state: 'detached' })
    const bar = page.getByRole('progressbar', { name: 'Reseal of Payments API / Production' })
    await bar.waitFor()
    // Caught running (batches of one), the bar shows how far it is; either way it ends done.
    const running = await page
      .getByText(/^[1-9]\d* of 600 resealed \(\d+%\)$/)
      .waitFor({ timeout: 3000 })
      .then(
        () => true,
        () => false,
      )
    if (running) await page.screenshot({ path: join(SCREENSHOTS, 'keys.png') })
    await page.getByText('v2: 600 resealed').waitFor({ timeout: 60_000 })
    assert.equal(await bar.getAttribute('value'), '600')
    if (!running) await page.screenshot({ path: join(SCREENSHOTS, 'keys.png') })
    const status = await api(h.app, h.a.token).get(`${W}/projects/payments-api/environments/production/keys`)
    assert.equal(status.body.jobs[0].state, 'done')

    await page.getByRole('button', { name: 'Versions of Payments API / Production' }).click()
    const versions = page.getByRole('table', { name: 'Key versions' })
    await versions.waitFor()
    await versions.getByText('primary').waitFor()
    const listed = (status.body.versions as Array<{ version: number }>)
      .map((v) => `v${v.version}`)
      .sort()
      .reverse()
    assert.equal(listed[0], 'v2')
    assert.deepEqual(await versions.locator('tbody tr td:first-child').allTextContents(), listed, 'every version, newest first')
    await axePage.reload()
    await axePage.getByRole('button', { name: 'Versions of Payments API / Production' }).click()
    await axePage.getByRole('table', { name: 'Key versions' }).waitFor()
    await axe(axePage, 'keys, versions')

    assert.deepEqual(problems, [], 'no console error, CSP violation or dialog')
    await close()
  })

  test('audit: integrity, verify now, activity chart, filters, entry detail as text, proof and export downloads', async () => {
    problems.length = 0
    const { page, axePage, close } = await contexts('owner@acme.test', `/w/${h.a.slug}/audit`)
    const res = await page.goto(`${base}/w/${h.a.slug}/audit`)
    assert.equal(res?.headers()['content-security-policy'], APP_CSP, 'downloads below run under the app CSP')
    await page.getByRole('status').filter({ hasText: 'Chain verified' }).waitFor()
    await page.getByRole('button', { name: /^Entry \d+ .*secret\.reveal/ }).waitFor()
    const chart = page.getByRole('img', { name: /^Audit entries per day over the last 30 days: \d+ in all/ })
    await chart.waitFor()
    assert.equal(await chart.locator('rect').count(), 30, 'one bar per day')
    const total = Number((/: (\d+) in all/.exec((await chart.getAttribute('aria-label')) ?? '') ?? [])[1])
    const all = (await api(h.app, h.a.token).get(`${W}/audit/entries?limit=5000`)).body.entries as Array<{ action: string; seq: number }>
    assert.ok(total >= all.length - 1 && total <= all.length, 'the chart counts the log (the page load added no entry)')
    await page.screenshot({ path: join(SCREENSHOTS, 'audit.png') })
    await axe(axePage, 'audit')

    // Verify now asks the server again.
    const verified = page.waitForResponse((r) => r.url().endsWith('/audit/verify') && r.status() === 200)
    await page.getByRole('button', { name: 'Verify now' }).click()
    await verified
    await page.getByRole('status').filter({ hasText: 'Chain verified' }).waitFor()

    // Filters: one action.
    await page.getByLabel('Action', { exact: true }).fill('secret.reveal')
    await page.getByRole('button', { name: 'Apply' }).click()
    await page.getByText('1 entry shown (filtered)').waitFor()
    await page.getByLabel('Action', { exact: true }).fill('secret.*')
    await page.getByRole('button', { name: 'Apply' }).click()
    const secretEntries = all.filter((e) => e.action.startsWith('secret.')).length
    // Pages of 200, newest first: "Load older entries" fetches the next through `before`.
    await page.getByText('200 entries shown (filtered)').waitFor()
    while (await page.getByRole('button', { name: 'Load older entries' }).isVisible()) {
      const shown = await page.getByText(/entries shown/).textContent()
      await page.getByRole('button', { name: 'Load older entries' }).click()
      await page.waitForFunction((t) => !document.body.textContent?.includes(t ?? ''), shown)
    }
    await page.getByText(`${secretEntries} entries shown (filtered)`).waitFor()
    await page.getByRole('button', { name: 'Clear' }).click()
    await page.getByText(/^\d+ entries shown$/).waitFor()

    // An attacker's project name lands in audit details: it is text, in the timeline and the detail.
    const a = api(h.app, h.a.token)
    for (const name of XSS) assert.equal((await a.post(`${W}/projects`, { name })).status, 201)
    await page.reload()
    await page.getByLabel('Action', { exact: true }).fill('project.create')
    await page.getByRole('button', { name: 'Apply' }).click()
    await page.getByText('4 entries shown (filtered)').waitFor()
    await page.getByText(`name=${XSS[0]}`, { exact: false }).first().waitFor()
    await page
      .getByRole('button', { name: /^Entry \d+ .*project\.create/ })
      .first()
      .focus()
    await page.keyboard.press('Enter')
    const detail = page.getByRole('dialog')
    await detail.waitFor()
    assert.ok(((await detail.locator('pre').textContent()) ?? '').includes(XSS[1]!), 'the details are text')
    assert.equal(
      await page.locator('main img, dialog img, main script, body > script:not([src])').count(),
      0,
      'no element made from a string',
    )
    await page.keyboard.press('Escape')
    await detail.waitFor({ state: 'detached' })

    // An inclusion proof of a secret change, with before/after fingerprints in the detail.
    await page.getByLabel('Action', { exact: true }).fill('secret.update')
    await page.getByRole('button', { name: 'Apply' }).click()
    await page.getByText('1 entry shown (filtered)').waitFor()
    await page.getByRole('button', { name: /^Entry \d+ .*secret\.update/ }).click()
    const change = detail.getByRole('table', { name: 'Before and after' })
    await change.waitFor()
    const [beforeFp, afterFp] = await change.locator('tbody td').allTextContents()
    assert.match(beforeFp!, /^hmac-sha256:/)
    assert.match(afterFp!, /^hmac-sha256:/)
    assert.notEqual(beforeFp, afterFp)
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-entry.png') })
    const proofDownload = page.waitForEvent('download')
    await detail.getByRole('button', { name: 'Download inclusion proof' }).click()
    const proofFile = join(downloads, 'proof.json')
    await (await proofDownload).saveAs(proofFile)
    const proof = JSON.parse(await readFile(proofFile, 'utf8')) as InclusionProofFile
    assert.equal(proof.entry.action, 'secret.update')
    const pk = (await a.get('/v1/audit/public-key')).body.publicKey as string
    assert.deepEqual(verifyProofFile(proof, pk), { ok: true, problems: [] }, 'the proof checks offline against the server key')
    await axePage.goto(`${base}/w/${h.a.slug}/audit`)
    await axePage.getByRole('button', { name: /^Entry \d+ .*secret\.update/ }).click()
    await axePage.getByRole('dialog').waitFor()
    await axe(axePage, 'audit, entry detail')
    await page.keyboard.press('Escape')

    // The export, as `coffer audit export` writes it: verified offline.
    const exportDownload = page.waitForEvent('download')
    await page.getByRole('button', { name: 'Download export' }).click()
    const exportFile = join(downloads, 'export.json')
    await (await exportDownload).saveAs(exportFile)
    await page.getByText(/^Exported \d+ entries with a checkpoint of \d+\.$/).waitFor()
    const exp = JSON.parse(await readFile(exportFile, 'utf8')) as AuditExport
    const result = verifyExport(exp, pk)
    assert.equal(result.ok, true, JSON.stringify(result.problems))
    assert.ok(exp.entries.length >= all.length + 2)

    assert.deepEqual(problems, [], 'no console error, CSP violation or dialog')
    await close()
  })

  test('break-glass: request (keyboard), no approving one’s own, another Admin approves, the grant counts down; the reason is text', async () => {
    problems.length = 0
    const a = api(h.app, h.a.token)
    assert.equal((await a.put(`${W}/projects/payments-api/environments/production/seal`, { sealed: true })).status, 200)
    const { page, axePage, close } = await contexts('owner@acme.test', `/w/${h.a.slug}/break-glass`)
    await page.getByText('No grant is active.').waitFor()

    // The request dialog from the keyboard alone.
    await page.getByRole('button', { name: 'Request access' }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'Request break-glass access' })
    await dialog.waitFor()
    await dialog.getByLabel('Project').selectOption({ label: 'Payments API' })
    await dialog.getByLabel('Environment').selectOption({ label: 'Production (sealed)' })
    await dialog.getByLabel(/^Reason/).focus()
    await page.keyboard.type('incident 4411: card payments failing since 09:12, need to check the Stripe key')
    await page.keyboard.press('Tab')
    await page.keyboard.press('Control+A')
    await page.keyboard.type('15')
    await page.keyboard.press('Enter')
    await dialog.waitFor({ state: 'detached' })
    const row = page.getByRole('table', { name: 'Break-glass requests' }).getByRole('row').filter({ hasText: 'incident 4411' })
    await row.waitFor()
    assert.equal(await row.getByRole('button', { name: /^Approve/ }).count(), 0, 'no approving one’s own request')
    await row.getByText('awaiting others').waitFor()
    const { requests } = (await a.get(`${W}/break-glass`)).body as {
      requests: Array<{ id: string; status: string; durationMinutes: number }>
    }
    assert.equal(requests[0]!.durationMinutes, 15)

    // Another Admin approves from their own browser, with a comment.
    const other = await contexts(admin.email, `/w/${h.a.slug}/break-glass`)
    const theirRow = other.page.getByRole('table', { name: 'Break-glass requests' }).getByRole('row').filter({ hasText: 'incident 4411' })
    await theirRow.getByRole('button', { name: 'Approve the request of owner@acme.test' }).click()
    const decide = other.page.getByRole('dialog')
    await decide.getByLabel(/^Comment/).fill('confirmed on the incident call')
    await axe(other.axePage, 'break-glass (pending)')
    await other.axePage.getByRole('button', { name: 'Approve the request of owner@acme.test' }).click()
    await other.axePage.getByRole('dialog').waitFor()
    await axe(other.axePage, 'break-glass, approve dialog')
    await decide.getByRole('button', { name: 'Approve' }).click()
    await decide.waitFor({ state: 'detached' })
    await other.page.getByRole('table', { name: 'Active grants' }).waitFor()
    await other.close()

    await page.reload()
    const timer = page.getByRole('timer', { name: 'Time left for owner@acme.test' })
    await timer.waitFor()
    const first = await timer.textContent()
    assert.match(first ?? '', /^1[45] min \d\d s$/)
    await page.waitForFunction((t) => document.querySelector('[role=timer]')?.textContent !== t, first, { timeout: 5000 })
    await page.getByText('Approved by').waitFor()
    await page.screenshot({ path: join(SCREENSHOTS, 'break-glass.png') })
    await axePage.reload()
    await axePage.getByRole('table', { name: 'Active grants' }).waitFor()
    await axe(axePage, 'break-glass (active grant)')

    await page.getByRole('button', { name: 'End now' }).click()
    await page.getByText('No grant is active.').waitFor()
    assert.equal(((await a.get(`${W}/break-glass?status=revoked`)).body.requests as unknown[]).length, 1)

    // An attacker's reason is text, here and in the approver's dialog; withdrawn, it is revoked.
    await page.getByRole('button', { name: 'Request access' }).click()
    await dialog.getByLabel(/^Reason/).fill(`${XSS[0]} ${XSS[1]}`)
    await dialog.getByRole('button', { name: 'Send request' }).click()
    await dialog.waitFor({ state: 'detached' })
    const hostile = page.getByRole('table', { name: 'Break-glass requests' }).getByRole('row').filter({ hasText: 'onerror' })
    assert.equal(await hostile.locator('.bg-reason').textContent(), `${XSS[0]} ${XSS[1]}`, 'the reason is text')
    assert.equal(await page.locator('main img, main script').count(), 0, 'no element made from a string')
    await hostile.getByRole('button', { name: 'Withdraw' }).click()
    await hostile.getByText('revoked').waitFor()
    assert.deepEqual(problems, [], 'no console error, CSP violation or dialog')
    await close()
  })

  test('settings: only an Owner may delete; type the slug; the signed shredding receipt', async () => {
    problems.length = 0
    // The Admin sees the settings but no delete button.
    const other = await contexts(admin.email, `/w/${h.a.slug}/settings`)
    await other.page.getByText('Only an Owner can delete the workspace.').waitFor()
    assert.equal(await other.page.getByRole('link', { name: 'account page' }).getAttribute('href'), '/account')
    await other.close()

    const doomed = await bootstrapWorkspace(h.ctx, { name: 'Old Sandbox', ownerEmail: 'owner@acme.test' })
    const slug = doomed.workspace.slug
    assert.equal((await api(h.app, doomed.token).post(`/v1/workspaces/${slug}/projects`, { name: 'Scratch' })).status, 201)
    const { page, axePage, close } = await contexts('owner@acme.test', `/w/${slug}/settings`)
    await axe(axePage, 'settings')
    await page.getByRole('button', { name: 'Delete workspace…' }).click()
    const dialog = page.getByRole('dialog', { name: 'Delete Old Sandbox?' })
    const confirm = dialog.getByRole('button', { name: 'Delete workspace' })
    assert.equal(await confirm.isDisabled(), true)
    await dialog.getByLabel(/^Type/).fill(`${slug}x`)
    assert.equal(await confirm.isDisabled(), true, 'a near miss does not do')
    await dialog.getByLabel(/^Type/).fill(slug)
    await axePage.getByRole('button', { name: 'Delete workspace…' }).click()
    await axe(axePage, 'settings, delete dialog')
    await confirm.click()
    await page.getByRole('heading', { name: 'Shredding receipt' }).waitFor()
    await page.getByText('Data keys destroyed', { exact: true }).waitFor()
    assert.match((await page.locator('pre.entry-json').textContent()) ?? '', /— /, 'the signed checkpoint note')
    assert.equal((await api(h.app, h.a.token).get(`/v1/workspaces/${slug}/projects`)).status, 404)
    await page.getByRole('button', { name: 'Done' }).click()
    await page.waitForURL((u) => u.pathname.startsWith('/w/') && !u.pathname.includes(slug))
    await close()

    // A Member sees no operations links, and the screens refuse.
    const member = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'mia' })
    await setPassword(member.email)
    const m = await contexts(member.email, `/w/${h.a.slug}/settings`)
    assert.equal(await m.page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: 'Audit log' }).count(), 0)
    await m.page.goto(`${base}/w/${h.a.slug}/audit`)
    await m.page.getByText('ERR_FORBIDDEN').first().waitFor()
    await m.close()

    assert.deepEqual(
      problems.filter((p) => !/^response: 403 \/v1\/|^console: Failed to load resource: .* status of 403 /.test(p)),
      [],
      'no error but the Member’s refusals',
    )
    assert.deepEqual(findings, [], 'no serious or critical accessibility problem')
  })
})
