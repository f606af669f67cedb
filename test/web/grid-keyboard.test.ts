// The secrets grid from the keyboard alone: from the filter box, Tab reaches a row's
// checkbox and its actions in order; Space selects, Enter reveals (one audited call) and
// hides; Enter on Edit opens the editor with focus inside, and Escape closes it and gives
// focus back to the page. Nothing needs a mouse.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { setPassword, watchPage } from '../helpers/web.js'

describe('the secrets grid from the keyboard', () => {
  let h: Harness
  let chromium: Browser
  let base = ''
  const password = `web-${randomBytes(8).toString('hex')}`
  const value = `kb-${randomBytes(6).toString('hex')}`

  before(async () => {
    h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1' })
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    await setPassword(h.ctx, 'owner@acme.test', password)
    const owner = api(h.app, h.a.token)
    assert.equal((await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Keys', slug: 'keys' })).status, 201)
    const E = `/v1/workspaces/${h.a.slug}/projects/keys/environments/development/secrets`
    const r = await owner.post(E, {
      secrets: [
        { key: 'ALPHA', value },
        { key: 'BETA', value: 'b' },
      ],
    })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    await h?.close()
  })

  test('Tab through a row, select it with Space, reveal and hide with Enter, open and close the editor', { timeout: 60_000 }, async () => {
    const ctx = await chromium.newContext()
    const problems: string[] = []
    const page = watchPage(await ctx.newPage(), problems)
    await page.goto(`${base}/w/${h.a.slug}/projects/keys/development`)
    await page.fill('#email', 'owner@acme.test')
    await page.fill('#password', password)
    await page.keyboard.press('Enter')
    await page.waitForURL(`${base}/w/${h.a.slug}/projects/keys/development`)
    await page.getByText('2 secrets').waitFor()

    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.tagName)
    await page.getByPlaceholder(/Filter/).focus()
    await page.keyboard.type('ALPHA')
    await page.getByLabel('Select BETA').waitFor({ state: 'detached' })
    // Forward from the filter to the first row's checkbox, past whatever sits between.
    for (let i = 0; i < 15 && (await focused()) !== 'Select ALPHA'; i++) await page.keyboard.press('Tab')
    assert.equal(await focused(), 'Select ALPHA', 'Tab reaches the row')
    await page.keyboard.press('Space')
    assert.equal(await page.getByLabel('Select ALPHA').isChecked(), true, 'Space selects the row')

    await page.keyboard.press('Tab')
    assert.equal(await focused(), 'Reveal ALPHA')
    await page.keyboard.press('Enter')
    await page.getByText(value).waitFor()
    const hide = page.getByRole('button', { name: 'Hide ALPHA' })
    await hide.focus()
    await page.keyboard.press('Enter')
    await page.getByRole('button', { name: 'Reveal ALPHA' }).waitFor()
    assert.equal(await page.getByText(value).count(), 0, 'hidden again')

    await page.getByRole('button', { name: 'Edit ALPHA' }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), 'focus moves into the editor')
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'detached' })

    const entries = await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/audit/entries?limit=1000`)
    const reveals = (entries.body.entries as Array<{ action: string }>).filter((e) => e.action === 'secret.reveal')
    assert.ok(reveals.length >= 1, 'the keyboard reveal was audited')
    assert.deepEqual(problems, [], 'no console error, CSP report, failed request or dialog')
    await ctx.close()
  })
})
