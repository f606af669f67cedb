// The project and environment screens in Chromium against a real server: rename and delete a
// project and its environments (the slug typed again; what is destroyed is said), the Compare
// matrix (present, missing, same as or differs from the neighbour, keys only; one audited reveal,
// copy), a pasted .env (preview, "changed since preview", one atomic apply), copying keys with
// conflicts, a secret's history (diff revealed on demand and audited, rollback), restoring
// deleted secrets, the access settings. Keyboard use of the dialogs, attacker strings as text,
// axe on every new screen and dialog, and the screenshots of the matrix and the paste preview.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { bootstrapWorkspace } from '../../src/context.js'
import { launchChromium } from '../helpers/chromium.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'
import { axeFindings, setPassword as setTestPassword, watchPage } from '../helpers/web.js'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
const XSS = ['<img src=x onerror=alert(1)>', '"><script>alert(1)</script>'] as const

describe('project and environment screens in Chromium', () => {
  let h: Harness
  let chromium: Browser
  let base: string
  const password = `web-${randomBytes(8).toString('hex')}`

  const problems: string[] = []
  /** Console errors (CSP reports are errors), uncaught errors, dialogs, and API refusals a test did not expect. */
  function watch(page: Page): Page {
    return watchPage(page, problems)
  }
  /** The problems seen, without the refusals the test provoked (`expected`: "409 /v1/…" patterns) and the console lines they cause. */
  function unexpected(expected: RegExp[] = []): string[] {
    return problems.filter(
      (p) =>
        !expected.some((e) => e.test(p)) &&
        !/^console: Failed to load resource: the server responded with a status of (409|403|404)/.test(p),
    )
  }

  async function setPassword(email: string): Promise<void> {
    await setTestPassword(h.ctx, email, password)
  }
  async function signIn(page: Page, email: string, path: string): Promise<void> {
    await page.goto(`${base}${path}`)
    await page.fill('#email', email)
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}${path}`)
  }
  async function newPage(email: string, path: string, opts: { bypassCSP?: boolean } = {}): Promise<{ ctx: BrowserContext; page: Page }> {
    const ctx = await chromium.newContext({ viewport: { width: 1280, height: 760 }, ...opts })
    const page = opts.bypassCSP ? await ctx.newPage() : watch(await ctx.newPage())
    await signIn(page, email, path)
    return { ctx, page }
  }
  async function auditActions(token: string, slug: string): Promise<Array<{ action: string; details: string }>> {
    const r = await api(h.app, token).get(`/v1/workspaces/${slug}/audit/entries?limit=1000`)
    return r.body.entries
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

  test('project: rename; create, rename and delete an environment; delete the project — by keyboard, the slug typed again', async () => {
    problems.length = 0
    const A = api(h.app, h.a.token)
    const W = `/v1/workspaces/${h.a.slug}`
    assert.equal((await A.post(`${W}/projects`, { name: 'Ledger', slug: 'ledger' })).status, 201)
    assert.equal((await A.put(`${W}/projects/ledger/environments/development/secrets/DB_URL`, { value: 'postgres://x' })).status, 200)
    const { ctx, page } = await newPage('owner@acme.test', `/w/${h.a.slug}/projects/ledger`)
    await page.getByRole('heading', { name: 'Ledger', level: 1 }).waitFor()

    // Rename the project: the slug (and so the URL) stays.
    await page.getByRole('button', { name: 'Rename', exact: true }).click()
    await page.getByRole('dialog').getByLabel(/^Name/).fill('Ledger Core')
    await page.getByRole('dialog').getByRole('button', { name: 'Rename' }).click()
    await page.getByRole('heading', { name: 'Ledger Core', level: 1 }).waitFor()
    assert.equal(new URL(page.url()).pathname, `/w/${h.a.slug}/projects/ledger`)

    // A new environment by keyboard only: the dialog takes focus, Tab moves on, Enter submits.
    await page.getByRole('button', { name: 'New environment' }).focus()
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'env-name', 'focus is in the dialog, on its first field')
    await page.keyboard.type('QA')
    await page.keyboard.press('Tab')
    await page.keyboard.type('qa-1')
    await page.keyboard.press('Enter')
    await page.waitForURL(`${base}/w/${h.a.slug}/projects/ledger/qa-1`)
    await page.getByRole('heading', { name: 'QA', level: 1 }).waitFor()

    await page.getByRole('link', { name: 'Ledger Core' }).click()
    await page.getByRole('button', { name: 'Rename QA' }).click()
    await page.getByRole('dialog').getByLabel(/^Name/).fill('QA box')
    await page.getByRole('dialog').getByRole('button', { name: 'Rename' }).click()
    await page.getByRole('link', { name: 'QA box' }).waitFor()

    // Escape closes a dialog and nothing is deleted.
    await page.getByRole('button', { name: 'Delete QA box' }).click()
    await page.getByRole('dialog').waitFor()
    await page.keyboard.press('Escape')
    await page.getByRole('dialog').waitFor({ state: 'detached' })

    await page.getByRole('button', { name: 'Delete QA box' }).click()
    const envDialog = page.getByRole('dialog')
    await envDialog.getByText('data key is destroyed').waitFor()
    await envDialog.getByText('0 secrets').waitFor()
    const confirmEnv = envDialog.getByRole('button', { name: 'Delete environment' })
    assert.ok(await confirmEnv.isDisabled(), 'disabled until the slug is typed')
    await envDialog.getByLabel(/to confirm/).fill('QA box')
    assert.ok(await confirmEnv.isDisabled(), 'the name is not the slug')
    await envDialog.getByLabel(/to confirm/).fill('qa-1')
    await confirmEnv.click()
    await page.getByText(/^Deleted QA box: data key \S+ destroyed, 0 secrets and 0 versions removed\.$/).waitFor()
    assert.equal(await page.getByRole('link', { name: 'QA box' }).count(), 0)

    // Deleting the project says what goes: each environment with its data key and secrets.
    await page.getByRole('button', { name: 'Delete', exact: true }).click()
    const projDialog = page.getByRole('dialog')
    await projDialog.getByText('Development — its data key and 1 secret, with every version').waitFor()
    await projDialog.getByText('Production — its data key and 0 secrets, with every version').waitFor()
    await projDialog.getByLabel(/to confirm/).fill('ledger')
    await projDialog.getByRole('button', { name: 'Delete project' }).click()
    await page.waitForURL(`${base}/w/${h.a.slug}`)
    assert.equal((await A.get(`${W}/projects/ledger`)).status, 404)
    const actions = (await auditActions(h.a.token, h.a.slug)).map((e) => e.action)
    for (const a of ['project.rename', 'environment.create', 'environment.rename', 'environment.delete', 'project.delete'])
      assert.ok(actions.includes(a), `${a} is in the audit log`)
    assert.deepEqual(unexpected(), [])
    await ctx.close()
  })

  test('rename and delete buttons only for those the API lets: Owner, project admin, developer, auditor', async () => {
    problems.length = 0
    const A = api(h.app, h.a.token)
    const W = `/v1/workspaces/${h.a.slug}`
    const P = await A.post(`${W}/projects`, { name: 'Powers', slug: 'powers' })
    assert.equal(P.status, 201)
    const projectAdmin = await addPerson(h, {
      workspaceId: h.a.id,
      role: 'member',
      project: { id: P.body.project.id, role: 'admin' },
      label: 'p-admin',
    })
    const developer = await addPerson(h, {
      workspaceId: h.a.id,
      role: 'member',
      project: { id: P.body.project.id, role: 'developer' },
      label: 'p-dev',
    })
    const auditor = await addPerson(h, { workspaceId: h.a.id, role: 'auditor', label: 'p-auditor' })
    const expectations: Array<[string, { rename: boolean; del: boolean; envs: boolean }]> = [
      ['owner@acme.test', { rename: true, del: true, envs: true }],
      [projectAdmin.email, { rename: true, del: false, envs: true }],
      [developer.email, { rename: false, del: false, envs: false }],
      [auditor.email, { rename: false, del: false, envs: false }],
    ]
    for (const [email, want] of expectations) {
      if (email !== 'owner@acme.test') await setPassword(email)
      const { ctx, page } = await newPage(email, `/w/${h.a.slug}/projects/powers`)
      await page.getByRole('link', { name: 'Development' }).waitFor()
      // The buttons appear once the person's role is known: wait for the first that should show, or for the role's answer.
      if (want.envs) await page.getByRole('button', { name: 'New environment' }).waitFor()
      else
        await page.waitForResponse((r) => /\/v1\/account$|\/projects\/powers\/members$/.test(r.url()), { timeout: 5_000 }).catch(() => {})
      await page.waitForLoadState('networkidle')
      const count = (name: string) => page.getByRole('button', { name, exact: true }).count()
      assert.equal((await count('Rename')) === 1, want.rename, `${email}: Rename the project`)
      assert.equal((await count('Delete')) === 1, want.del, `${email}: Delete the project`)
      assert.equal((await count('New environment')) === 1, want.envs, `${email}: New environment`)
      assert.equal((await count('Rename Development')) === 1, want.envs, `${email}: Rename an environment`)
      assert.equal((await count('Delete Development')) === 1, want.envs, `${email}: Delete an environment`)
      await ctx.close()
    }
    // What stays hidden, the API refuses: the project admin may not delete the project.
    const refused = await h.app.inject({
      method: 'DELETE',
      url: `${W}/projects/powers`,
      headers: { authorization: `Bearer ${projectAdmin.token}` },
      payload: { confirm: 'powers' },
    })
    assert.equal(refused.statusCode, 403)
    assert.deepEqual(unexpected(), [])
  })

  test('compare: present, missing, same as / differs from the neighbour, keys only; reveal one value (audited) and copy it; filter', async () => {
    problems.length = 0
    const A = api(h.app, h.a.token)
    const W = `/v1/workspaces/${h.a.slug}`
    const P = await A.post(`${W}/projects`, { name: 'Atlas', slug: 'atlas' })
    const E = `${W}/projects/atlas/environments`
    const secret = `sk_${randomBytes(8).toString('hex')}`
    const put = (env: string, secrets: Array<{ key: string; value: string }>) => A.post(`${E}/${env}/secrets`, { secrets })
    assert.equal(
      (
        await put('development', [
          { key: 'API_KEY', value: secret },
          { key: 'DATABASE_URL', value: 'pg://dev' },
          { key: 'SENTRY_DSN', value: 's' },
        ])
      ).status,
      200,
    )
    assert.equal(
      (
        await put('staging', [
          { key: 'API_KEY', value: secret },
          { key: 'DATABASE_URL', value: 'pg://staging' },
        ])
      ).status,
      200,
    )
    assert.equal(
      (
        await put('production', [
          { key: 'API_KEY', value: secret },
          { key: 'DATABASE_URL', value: 'pg://staging' },
          { key: 'SENTRY_DSN', value: 's' },
        ])
      ).status,
      200,
    )

    const { ctx, page } = await newPage('owner@acme.test', `/w/${h.a.slug}/projects/atlas`)
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
    await page.getByRole('link', { name: 'Compare environments' }).click()
    await page.waitForURL(`${base}/w/${h.a.slug}/compare/atlas`)
    await page.getByRole('heading', { name: 'Compare Atlas', level: 1 }).waitFor()
    await page.getByText('3 keys · 1 key missing somewhere · 1 key differing between neighbours').waitFor()
    await page.getByRole('button', { name: 'Reveal API_KEY in Staging, version 1, same value as in Development' }).waitFor()
    await page.getByRole('button', { name: 'Reveal DATABASE_URL in Staging, version 1, differs from Development' }).waitFor()
    await page.getByRole('button', { name: 'Reveal DATABASE_URL in Production, version 1, same value as in Staging' }).waitFor()
    await page.locator('td[title="SENTRY_DSN is missing in Staging"]').waitFor()
    // The key missing somewhere stands out; production's SENTRY_DSN compares with the nearest present neighbour: none.
    await page.locator('tr.gap', { hasText: 'SENTRY_DSN' }).getByText('missing in 1').waitFor()
    assert.ok(!(await page.content()).includes(secret), 'no value is on the page')

    await page.getByLabel('Only missing or differing').check()
    await page.getByText('2 of 3 keys').waitFor()
    await page.getByLabel('Only missing or differing').uncheck()
    await page.getByLabel('Filter keys').fill('sentry')
    await page.getByText('1 of 3 keys').waitFor()
    await page.getByLabel('Filter keys').fill('')

    await page.getByRole('button', { name: /^Reveal API_KEY in Production/ }).click()
    await page.getByRole('region', { name: 'Revealed value' }).getByText(secret).waitFor()
    await page.getByRole('button', { name: 'Copy API_KEY of Production' }).click()
    await page.getByText('Copied the value of API_KEY in Production.').waitFor()
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret)
    const reveals = (await auditActions(h.a.token, h.a.slug)).filter((e) => e.action === 'secret.reveal' && /API_KEY/.test(e.details))
    assert.equal(reveals.length, 1, 'one reveal (the copy used the revealed value), one audit entry')
    await page.getByRole('button', { name: 'Hide the value' }).click()
    assert.ok(!(await page.content()).includes(secret))
    await ctx.close()

    // A developer: production is restricted, so its keys are listed without fingerprints and cannot be revealed.
    const dev = await addPerson(h, {
      workspaceId: h.a.id,
      role: 'member',
      project: { id: P.body.project.id, role: 'developer' },
      label: 'dev',
    })
    await setPassword(dev.email)
    const d = await newPage(dev.email, `/w/${h.a.slug}/compare/atlas`)
    await d.page.locator('th.no-access, th', { hasText: 'Production' }).getByText('keys only').waitFor()
    await d.page.getByRole('button', { name: /^Reveal API_KEY in Staging/ }).waitFor()
    assert.equal(await d.page.getByRole('button', { name: /in Production/ }).count(), 0, 'no reveal where the person may not')
    await d.ctx.close()

    // An auditor sees the project but no environment's keys: every column says "no access".
    const auditor = await addPerson(h, { workspaceId: h.a.id, role: 'auditor', label: 'auditor' })
    await setPassword(auditor.email)
    const au = await newPage(auditor.email, `/w/${h.a.slug}/compare/atlas`)
    await au.page.getByRole('heading', { name: 'Compare Atlas', level: 1 }).waitFor()
    assert.equal(await au.page.locator('.access-note', { hasText: 'no access' }).count(), 3)
    await au.page.getByText('No key in the environments whose keys you may list.').waitFor()
    await au.ctx.close()
    assert.deepEqual(unexpected(), [])
  })

  test('environment: paste a .env (preview, changed since preview, apply), copy keys (conflicts, overwrite), history (diff, audited; rollback), restore, access', async () => {
    problems.length = 0
    const A = api(h.app, h.a.token)
    const W = `/v1/workspaces/${h.a.slug}`
    const P = await A.post(`${W}/projects`, { name: 'Orbit', slug: 'orbit' })
    const E = `${W}/projects/orbit/environments`
    const reveal = async (env: string, key: string) => (await A.get(`${E}/${env}/secrets/${key}?reveal=true`)).body.secret
    assert.equal(
      (
        await A.post(`${E}/development/secrets`, {
          secrets: [
            { key: 'KEEP', value: 'same' },
            { key: 'CHANGE', value: 'old-value-1' },
            { key: 'DROP', value: 'x' },
          ],
        })
      ).status,
      200,
    )
    assert.equal((await A.put(`${E}/staging/secrets/CHANGE`, { value: 'staging-value' })).status, 200)
    assert.equal((await A.post(`${W}/projects`, { name: 'Nebula', slug: 'nebula' })).status, 201)
    const { ctx, page } = await newPage('owner@acme.test', `/w/${h.a.slug}/projects/orbit/development`)
    await page.getByText('3 secrets').waitFor()

    // Paste → preview (keys only) → someone writes → "changed since the preview" → preview again → apply.
    await page.getByRole('button', { name: 'Paste .env' }).click()
    const paste = page.getByRole('dialog')
    await paste
      .getByLabel(/^Contents of a/)
      .fill('# from the old host\nKEEP=same\nexport CHANGE="new-value-2"\nADDED=\'a b\'\nnot a line\n')
    await paste.getByText('3 keys read · unreadable line 5').waitFor()
    await paste.getByLabel(/^Delete the keys of Development/).check()
    await paste.getByRole('button', { name: 'Preview changes' }).click()
    await paste.getByRole('region', { name: 'Added: 1' }).getByText('ADDED', { exact: true }).waitFor()
    await paste.getByRole('region', { name: 'Changed: 1' }).getByText('CHANGE', { exact: true }).waitFor()
    await paste.getByRole('region', { name: 'Deleted: 1' }).getByText('DROP', { exact: true }).waitFor()
    await paste.getByRole('region', { name: 'Unchanged: 1' }).getByText('KEEP', { exact: true }).waitFor()
    assert.ok(!(await paste.textContent())?.includes('new-value-2'), 'the preview shows no value')
    assert.equal((await reveal('development', 'CHANGE')).value, 'old-value-1', 'a preview writes nothing')
    assert.equal((await A.put(`${E}/development/secrets/KEEP`, { value: 'moved-meanwhile' })).status, 200)
    await paste.getByRole('button', { name: 'Apply as one change' }).click()
    await paste.getByText('Development changed since the preview; nothing was written. Review the changes again.').waitFor()
    assert.equal((await reveal('development', 'CHANGE')).value, 'old-value-1', 'nothing was written')
    await paste.getByRole('button', { name: 'Preview again' }).click()
    await paste.getByRole('region', { name: 'Changed: 2' }).waitFor()
    await paste.getByRole('button', { name: 'Apply as one change' }).click()
    await page.getByText('Applied the .env to Development: 1 added, 2 changed, 1 deleted, 0 unchanged.').waitFor()
    assert.equal((await reveal('development', 'CHANGE')).value, 'new-value-2')
    assert.equal((await reveal('development', 'KEEP')).value, 'same')
    assert.equal((await reveal('development', 'ADDED')).value, 'a b')
    await page.getByText('3 secrets').waitFor()

    // Copy two selected keys to staging: CHANGE holds another value there → listed; overwrite.
    await page.getByLabel('Select CHANGE').check()
    await page.getByLabel('Select ADDED').check()
    await page.getByRole('button', { name: 'Copy 2 to…' }).click()
    const copy = page.getByRole('dialog')
    await copy.getByLabel('To the environment').selectOption({ label: 'Staging' })
    await copy.getByRole('button', { name: 'Copy', exact: true }).click()
    await copy.getByText('1 key already holds another value in Staging. Nothing was copied:').waitFor()
    await copy.getByRole('listitem').getByText('CHANGE').waitFor()
    assert.equal((await A.get(`${E}/staging/secrets/ADDED`)).status, 404, 'nothing was copied')
    await copy.getByRole('button', { name: 'Overwrite and copy' }).click()
    await page.getByText('Copied to Staging: 1 added, 1 replaced, 0 already the same.').waitFor()
    assert.equal((await reveal('staging', 'CHANGE')).value, 'new-value-2')

    // Copy to another project's environment: the project is chosen first, then one of its environments.
    await page.getByLabel('Select ADDED').check()
    await page.getByRole('button', { name: 'Copy 1 to…' }).click()
    assert.equal(await copy.getByLabel('To the project').inputValue(), 'orbit', 'this project by default')
    await copy.getByLabel('To the project').selectOption({ label: 'Nebula' })
    await copy.getByLabel('To the environment').locator('option', { hasText: 'Production' }).waitFor({ state: 'attached' })
    await copy.getByLabel('To the environment').selectOption({ label: 'Staging' })
    await copy.getByRole('button', { name: 'Copy', exact: true }).click()
    await page.getByText('Copied to Nebula / Staging: 1 added, 0 replaced, 0 already the same.').waitFor()
    const nebula = (await A.get(`${W}/projects/nebula/environments/staging/secrets/ADDED?reveal=true`)).body.secret
    assert.equal(nebula.value, 'a b', 'the value reached the other project')
    assert.equal((await A.get(`${W}/projects/nebula/environments/development/secrets/ADDED`)).status, 404, 'only there')
    const nebulaId = (await A.get(`${W}/projects/nebula`)).body.project.id as string
    const copied = (await auditActions(h.a.token, h.a.slug)).filter((e) => e.action === 'secrets.copy')
    const across = copied.map((e) => JSON.parse(e.details)).filter((d) => d.to.project === nebulaId)
    assert.deepEqual(
      across.map((d) => [d.from.project, d.adds]),
      [[P.body.project.id, ['ADDED']]],
      'the copy across projects is in the log, from Orbit',
    )

    // History of CHANGE: two versions; the diff needs a reveal (audited), then roll back to v1.
    await page.getByRole('button', { name: 'History of CHANGE' }).click()
    const hist = page.getByRole('dialog')
    await hist.getByRole('cell', { name: 'v2 current' }).waitFor()
    assert.ok(!(await hist.textContent())?.includes('old-value-1'), 'no value before the reveal')
    const before = (await auditActions(h.a.token, h.a.slug)).filter((e) => e.action === 'secret.reveal_history').length
    await hist.getByText(/is recorded in the audit log/).waitFor()
    await hist.getByRole('button', { name: 'Reveal both to compare' }).click()
    await hist.locator('.value-diff mark', { hasText: 'old-value-1' }).waitFor()
    await hist.locator('.value-diff mark', { hasText: 'new-value-2' }).waitFor()
    const after = (await auditActions(h.a.token, h.a.slug)).filter((e) => e.action === 'secret.reveal_history')
    assert.equal(after.length, before + 1, 'the reveal is one audit entry')
    await hist.getByRole('button', { name: 'Roll back to v1' }).click()
    await hist.getByRole('button', { name: 'Confirm rollback to v1' }).click()
    await page.getByText('Rolled CHANGE back to the value of v1 (now version 3).').waitFor()
    assert.equal((await reveal('development', 'CHANGE')).value, 'old-value-1')
    await hist.getByRole('button', { name: 'Close' }).click()

    // Restore DROP, deleted by the apply.
    await page.getByRole('button', { name: 'Deleted', exact: true }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Restore DROP' }).click()
    await page.getByText(/^Restored DROP \(version 3\)\.$/).waitFor()
    await page.getByRole('dialog').getByText('No deleted secret.').waitFor()
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click()
    assert.equal((await reveal('development', 'DROP')).value, 'x')

    // Access: lift production's restriction is not this; restrict development, grant a developer read.
    const dev = await addPerson(h, {
      workspaceId: h.a.id,
      role: 'member',
      project: { id: P.body.project.id, role: 'developer' },
      label: 'orbit-dev',
    })
    await page.getByRole('button', { name: 'Access' }).click()
    const access = page.getByRole('dialog')
    await access.getByRole('button', { name: 'Restrict' }).click()
    await access.getByRole('button', { name: 'Lift the restriction' }).waitFor()
    await access.getByText('No grant.').waitFor()
    await access.getByLabel('Project member').selectOption({ label: `${dev.email} (developer)` })
    await access.getByLabel('Access', { exact: true }).selectOption('read')
    await access.getByRole('button', { name: 'Grant' }).click()
    await access.getByRole('listitem').getByText(dev.email).waitFor()
    const grants = await A.get(`${E}/development/grants`)
    assert.deepEqual(
      grants.body.grants.map((g: { email: string; access: string }) => [g.email, g.access]),
      [[dev.email, 'read']],
    )
    assert.equal(
      (await A.get(`${W}/projects/orbit`)).body.environments.find((e: { slug: string }) => e.slug === 'development').restricted,
      true,
    )
    await access.getByRole('button', { name: `Remove the grant of ${dev.email}` }).click()
    await access.getByText('No grant.').waitFor()
    await access.getByRole('button', { name: 'Close' }).click()
    assert.deepEqual(unexpected([/^response: 409 \/v1\/.*\/secrets\/(apply|copy)$/]), [])
    await ctx.close()
  })

  test('attacker strings render as text in the new screens and dialogs', async () => {
    problems.length = 0
    const A = api(h.app, h.a.token)
    const W = `/v1/workspaces/${h.a.slug}`
    const P = await A.post(`${W}/projects`, { name: XSS[0], slug: 'xss-proj' })
    assert.equal(P.status, 201)
    assert.equal((await A.post(`${W}/projects/xss-proj/environments`, { name: XSS[1], slug: 'xss-env' })).status, 201)
    const S = `${W}/projects/xss-proj/environments/xss-env/secrets`
    assert.equal((await A.put(`${S}/PROBE`, { value: XSS[0], comment: XSS[1] })).status, 200)
    assert.equal((await A.put(`${S}/PROBE`, { value: XSS[1] })).status, 200)
    const { ctx, page } = await newPage('owner@acme.test', `/w/${h.a.slug}/projects/xss-proj`)
    await page.getByRole('heading', { name: XSS[0], level: 1 }).waitFor()
    await page.getByRole('button', { name: `Delete ${XSS[1]}` }).click()
    assert.equal(await page.getByRole('dialog').getByRole('heading').textContent(), `Delete ${XSS[1]}?`)
    await page.keyboard.press('Escape')
    await page.getByRole('button', { name: 'Delete', exact: true }).click()
    await page.getByRole('dialog').getByText(`${XSS[1]} — its data key`, { exact: false }).waitFor()
    await page.keyboard.press('Escape')

    await page.goto(`${base}/w/${h.a.slug}/compare/xss-proj`)
    await page.getByRole('link', { name: XSS[1] }).waitFor()
    await page.getByRole('button', { name: /^Reveal PROBE in/ }).click()
    await page.getByRole('region', { name: 'Revealed value' }).locator('code.revealed').waitFor()
    assert.equal(await page.locator('code.revealed').textContent(), XSS[1], 'the value is text')

    await page.goto(`${base}/w/${h.a.slug}/projects/xss-proj/xss-env`)
    await page.getByRole('button', { name: 'History of PROBE' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Reveal both to compare' }).click()
    await page.getByRole('dialog').locator('.value-diff').waitFor()
    assert.equal(await page.getByRole('dialog').locator('.value-diff dd').first().textContent(), XSS[0])
    assert.equal(await page.getByRole('dialog').locator('.value-diff dd').last().textContent(), XSS[1])
    await page.keyboard.press('Escape')

    await page.getByRole('button', { name: 'Paste .env' }).click()
    await page
      .getByRole('dialog')
      .getByLabel(/^Contents of a/)
      .fill(`PROBE=${XSS[0]}\nNEW_ONE="${XSS[1].replaceAll('"', '\\"')}"\n`)
    await page.getByRole('dialog').getByRole('button', { name: 'Preview changes' }).click()
    await page.getByRole('dialog').getByRole('region', { name: 'Added: 1' }).getByText('NEW_ONE', { exact: true }).waitFor()
    assert.equal(await page.locator('img, script:not([src])').count(), 0, 'no element was made from a string')
    assert.deepEqual(unexpected(), [], 'no dialog, no CSP report, no error')
    await ctx.close()
  })

  test('axe finds no serious or critical problem on the new screens and dialogs; screenshots of the matrix and the paste preview', async () => {
    const demo = await bootstrapWorkspace(h.ctx, { name: 'Northwind', ownerEmail: 'env-demo@northwind.test' })
    await setPassword('env-demo@northwind.test')
    const d = api(h.app, demo.token)
    const W = `/v1/workspaces/${demo.workspace.slug}`
    assert.equal((await d.post(`${W}/projects`, { name: 'Storefront' })).status, 201)
    const E = `${W}/projects/storefront/environments`
    const services = ['STRIPE', 'SENDGRID', 'SENTRY', 'ALGOLIA', 'S3', 'REDIS', 'POSTGRES', 'OPENAI', 'TWILIO', 'GITHUB']
    const base36 = (i: number) => `demo-${i.toString(36)}-${randomBytes(10).toString('hex')}`
    const prod = services.flatMap((s, i) => ['API_KEY', 'URL'].map((f, j) => ({ key: `${s}_${f}`, value: base36(i * 2 + j) })))
    const staging = prod.filter((_, i) => i % 7 !== 3).map((s, i) => (i % 5 === 1 ? { ...s, value: `${s.value}-staging` } : s))
    const dev = staging.filter((_, i) => i % 6 !== 2).map((s, i) => (i % 3 === 0 ? { ...s, value: `${s.value}-dev` } : s))
    assert.equal((await d.post(`${E}/production/secrets`, { secrets: prod })).status, 200)
    assert.equal((await d.post(`${E}/staging/secrets`, { secrets: staging })).status, 200)
    assert.equal((await d.post(`${E}/development/secrets`, { secrets: [...dev, { key: 'DEBUG_TOOLBAR', value: 'on' }] })).status, 200)
    assert.equal((await d.put(`${E}/development/secrets/STRIPE_API_KEY`, { value: 'sk_test_rotated', comment: 'rotated' })).status, 200)

    problems.length = 0
    const shots = await newPage('env-demo@northwind.test', `/w/${demo.workspace.slug}/projects/storefront`)
    const ax = await newPage('env-demo@northwind.test', `/w/${demo.workspace.slug}/projects/storefront`, { bypassCSP: true })
    const findings: string[] = []
    async function audit(screen: string): Promise<void> {
      findings.push(...(await axeFindings(ax.page, screen)))
    }
    const both = async (f: (p: Page) => Promise<unknown>) => {
      await f(shots.page)
      await f(ax.page)
    }

    await both((p) => p.getByRole('button', { name: 'New environment' }).waitFor())
    await audit('project')
    for (const [open, name] of [
      ['Rename', 'rename project'],
      ['Delete', 'delete project'],
      ['New environment', 'new environment'],
      ['Delete Staging', 'delete environment'],
    ] as const) {
      await both(async (p) => {
        await p.getByRole('button', { name: open, exact: true }).click()
        await p.getByRole('dialog').waitFor()
      })
      await audit(name)
      await both(async (p) => {
        await p.keyboard.press('Escape')
        await p.getByRole('dialog').waitFor({ state: 'detached' })
      })
    }

    await both(async (p) => {
      await p.getByRole('link', { name: 'Compare environments' }).click()
      await p.getByRole('heading', { name: 'Compare Storefront' }).waitFor()
      await p.getByRole('button', { name: /^Reveal STRIPE_API_KEY in Development/ }).click()
      await p.getByRole('region', { name: 'Revealed value' }).waitFor()
      // Clicking scrolled the cell into view: back to the first keys.
      await p.locator('.matrix-scroll').evaluate((el) => el.scrollTo(0, 0))
    })
    await shots.page.screenshot({ path: join(SCREENSHOTS, 'compare.png') })
    await audit('compare')

    await both(async (p) => {
      await p.getByRole('link', { name: 'Staging' }).click()
      await p.getByRole('heading', { name: 'Staging', level: 1 }).waitFor()
      await p.getByRole('button', { name: 'Paste .env' }).click()
    })
    await audit('paste a .env')
    const pasted = [
      '# exported from the old host',
      ...staging.slice(0, 12).map((s, i) => `${s.key}=${i % 4 === 0 ? `${s.value}-new` : s.value}`),
      'FEATURE_CHECKOUT_V2=true',
      'SHOPIFY_WEBHOOK_SECRET="whsec_demo"',
    ].join('\n')
    await both(async (p) => {
      await p
        .getByRole('dialog')
        .getByLabel(/^Contents of a/)
        .fill(pasted)
      await p
        .getByRole('dialog')
        .getByLabel(/^Delete the keys of Staging/)
        .check()
      await p.getByRole('dialog').getByRole('button', { name: 'Preview changes' }).click()
      await p
        .getByRole('dialog')
        .getByRole('region', { name: /^Added/ })
        .waitFor()
    })
    await shots.page.screenshot({ path: join(SCREENSHOTS, 'paste-env-preview.png') })
    await audit('paste preview')
    await both(async (p) => {
      await p.keyboard.press('Escape')
      await p.getByLabel('Select STRIPE_API_KEY').check()
      await p.getByRole('button', { name: 'Copy 1 to…' }).click()
    })
    await audit('copy keys')
    await both(async (p) => {
      await p.keyboard.press('Escape')
      await p.getByRole('link', { name: 'Development' }).click()
      await p.getByRole('heading', { name: 'Development', level: 1 }).waitFor()
      await p.getByRole('button', { name: 'History of STRIPE_API_KEY' }).click()
      await p.getByRole('dialog').getByRole('button', { name: 'Reveal both to compare' }).click()
      await p.getByRole('dialog').locator('.value-diff').waitFor()
    })
    await shots.page.screenshot({ path: join(SCREENSHOTS, 'history.png') })
    await audit('history')
    for (const [open, name] of [
      ['Deleted', 'deleted secrets'],
      ['Access', 'access settings'],
    ] as const) {
      await both(async (p) => {
        await p.keyboard.press('Escape')
        await p.getByRole('dialog').waitFor({ state: 'detached' })
        await p.getByRole('button', { name: open, exact: true }).click()
        await p.getByRole('dialog').waitFor()
      })
      await audit(name)
    }
    assert.deepEqual(findings, [], 'no serious or critical accessibility problem')
    assert.deepEqual(unexpected(), [])
    await shots.ctx.close()
    await ax.ctx.close()
  })
})
