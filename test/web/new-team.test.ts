// Issue 14's "done means", whole, on a fresh vault: a real `coffer server` started as the README's
// quickstart starts it (the built CLI, an empty data directory, SQLite, mail off) prints the
// one-time link that sets the Owner's password → the Owner sets it in Chromium, signs in and
// lands in the dashboard → creates a project → pastes a .env into two environments (preview,
// apply) → sees the difference in Compare → invites a teammate and copies the shown link → the
// teammate, in a browser of their own, signs up through it, sees the project and creates a
// personal token → `coffer run` works with that token → the Owner rotates a key on the Keys
// screen and watches the reseal reach done → finds every step in the audit timeline, filtered by
// action. Nothing here reaches into the server's database: only what a new team would do.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { launchChromium } from '../helpers/chromium.js'
import { BIN, childEnv, ensureBuilt, stopChild } from '../helpers/child-server.js'
import { watchPage } from '../helpers/web.js'

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
/** The server's output without anything that grants access (for failure messages). */
const redact = (s: string) => s.replace(/coffer_[a-z]+_[A-Za-z0-9_-]+/g, 'coffer_…').replace(/token=[^\s&]+/g, 'token=…')

/** A port free right now: the server's default public URL (links, the CSRF origin) names its port. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Runs the built CLI without blocking this process. */
function runCli(
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** What a page did that it must not: console errors (CSP reports), uncaught errors, dialogs, failed requests. */
const watch = watchPage

describe('a new team on a fresh vault, in Chromium (issue 14)', () => {
  let server: ChildProcess | undefined
  let chromium: Browser
  let dir: string
  let base: string
  let output = ''
  let setupLink: string

  before(async () => {
    ensureBuilt()
    dir = await mkdtemp(join(tmpdir(), 'coffer-new-team-'))
    const port = await freePort()
    // `npm start` runs `node bin/coffer.js server` in the checkout: data in ./.coffer, SQLite, no mail.
    // Batches of one secret version make the reseal slow enough to watch.
    server = spawn(process.execPath, [BIN, 'server', '--port', String(port)], {
      cwd: dir,
      env: childEnv({ HOME: dir, COFFER_RESEAL_BATCH: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    setupLink = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no password link within 60 s: ${redact(output)}`)), 60_000)
      const onData = (d: Buffer) => {
        output += d.toString()
        const m = /^\s+(http:\/\/\S+\/reset-password\?token=\S+)\s*$/m.exec(output)
        if (m) {
          clearTimeout(t)
          resolve(m[1]!)
        }
      }
      server!.stdout!.on('data', onData)
      server!.stderr!.on('data', onData)
      server!.once('exit', (code) => {
        clearTimeout(t)
        reject(new Error(`the server exited (${code}): ${redact(output)}`))
      })
    })
    base = `http://127.0.0.1:${port}`
    chromium = await launchChromium()
  })
  after(async () => {
    await chromium?.close()
    if (server) await stopChild(server)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  test('set the password → dashboard → project → .env → Compare → invite → sign-up → token → coffer run → rotate → audit', async () => {
    // What the first start printed, as the README shows it.
    // @NOTE .test() with a redacted message: a failed assert.match would print the output, Owner token and all.
    const listening = new RegExp(`Coffer listening on ${base.replace(/[.:/]/g, '\\$&')} \\(sqlite, data in `)
    assert.ok(listening.test(output), redact(output))
    assert.ok(/New vault: workspace "default" with Owner owner@localhost\./.test(output), redact(output))
    assert.ok(setupLink.startsWith(`${base}/reset-password?token=`), 'the link is on this server')
    const files = await readdir(join(dir, '.coffer'))
    assert.ok(files.includes('coffer.db') && files.includes('root.key'), `a new vault in ./.coffer (${files.join(', ')})`)

    const password = `first-${randomBytes(8).toString('hex')}`
    const mateWord = `mate-${randomBytes(8).toString('hex')}`
    const ownerProblems: string[] = []
    const mateProblems: string[] = []
    const ownerCtx = await chromium.newContext({ viewport: { width: 1280, height: 800 } })
    await ownerCtx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
    const op = watch(await ownerCtx.newPage(), ownerProblems)
    op.setDefaultTimeout(30_000)

    // 1. The one-time link sets the Owner's password; then the Owner signs in and lands in the dashboard.
    await op.goto(setupLink)
    await op.fill('#password', password)
    await op.click('button[type=submit]')
    await op.waitForURL((u) => !u.pathname.startsWith('/reset-password'))
    await op.goto(`${base}/`)
    await op.waitForURL(/\/sign-in/)
    await op.fill('#email', 'owner@localhost')
    await op.fill('#password', password)
    await op.click('button[type=submit]')
    await op.waitForURL(`${base}/w/default`)
    await op.getByRole('heading', { name: 'Projects', level: 1 }).waitFor()

    // 2. A project; it starts with development, staging and production.
    await op.getByRole('button', { name: 'New project' }).click()
    const create = op.getByRole('dialog', { name: 'New project' })
    await create.getByLabel('Name', { exact: true }).fill('Web Shop')
    await create.getByRole('button', { name: 'Create project' }).click()
    await op.waitForURL(`${base}/w/default/projects/web-shop`)
    await op.getByRole('heading', { name: 'Web Shop', level: 1 }).waitFor()

    // 3. A .env pasted into Development (preview, then one atomic apply); a smaller one into Staging.
    const stripe = `sk_test_${randomBytes(16).toString('hex')}`
    const filler = Array.from({ length: 60 }, (_, i) => `SERVICE_${String(i).padStart(2, '0')}_URL=https://svc-${i}.internal`)
    const devEnv = [
      '# from the old host',
      `STRIPE_KEY=${stripe}`,
      'DATABASE_URL=postgres://dev-db/shop',
      'FEATURE_FLAGS="checkout,search"',
      ...filler,
    ].join('\n')
    async function paste(env: string, text: string, added: number): Promise<void> {
      await op.getByRole('link', { name: env, exact: true }).click()
      await op.getByRole('heading', { name: env, level: 1 }).waitFor()
      await op.getByRole('button', { name: 'Paste .env' }).click()
      const dialog = op.getByRole('dialog')
      await dialog.getByLabel(/^Contents of a/).fill(text)
      await dialog.getByRole('button', { name: 'Preview changes' }).click()
      await dialog.getByRole('region', { name: `Added: ${added}` }).waitFor()
      assert.ok(!(await dialog.textContent())?.includes(stripe), 'the preview shows keys, no value')
      await dialog.getByRole('button', { name: 'Apply as one change' }).click()
      await op.getByText(`Applied the .env to ${env}: ${added} added, 0 changed, 0 deleted, 0 unchanged.`).waitFor()
      await op.getByText(`${added} secrets`).waitFor()
      await op.getByRole('link', { name: 'Web Shop' }).click()
      await op.getByRole('heading', { name: 'Web Shop', level: 1 }).waitFor()
    }
    await paste('Development', devEnv, 63)
    await paste('Staging', `STRIPE_KEY=${stripe}\nDATABASE_URL=postgres://staging-db/shop\n`, 2)

    // 4. Compare: the keys missing in Staging (and all of them in Production), the database URL that differs, with no value on the page.
    await op.getByRole('link', { name: 'Compare environments' }).click()
    await op.waitForURL(`${base}/w/default/compare/web-shop`)
    await op.getByText('63 keys · 63 keys missing somewhere · 1 key differing between neighbours').waitFor()
    // The grid is virtualised: the filter brings each key into view.
    await op.getByLabel('Filter keys').fill('STRIPE')
    await op.getByRole('button', { name: 'Reveal STRIPE_KEY in Staging, version 1, same value as in Development' }).waitFor()
    await op.getByLabel('Filter keys').fill('DATABASE')
    await op.getByText('1 of 63 keys').waitFor()
    await op.getByRole('button', { name: 'Reveal DATABASE_URL in Staging, version 1, differs from Development' }).waitFor()
    await op.getByLabel('Filter keys').fill('FEATURE')
    await op.locator('td[title="FEATURE_FLAGS is missing in Staging"]').waitFor()
    assert.ok(!(await op.content()).includes(stripe), 'Compare shows no value')

    // 5. Invite a teammate as a developer of the project; mail is off, so the link is shown to copy.
    const teammate = `ana-${randomBytes(3).toString('hex')}@people.test`
    await op.getByRole('link', { name: 'Members' }).click()
    await op.getByRole('heading', { name: 'Members', level: 1 }).waitFor()
    await op.getByRole('button', { name: 'Invite' }).click()
    const invite = op.getByRole('dialog', { name: 'Invite a teammate' })
    await invite.getByLabel('Email').fill(teammate)
    await invite
      .getByLabel(/^Project/)
      .first()
      .selectOption({ label: 'Web Shop' })
    await invite.getByLabel('Project role').selectOption('developer')
    await invite.getByRole('button', { name: 'Invite' }).click()
    const issued = op.getByRole('dialog', { name: `Invitation for ${teammate}` })
    await issued.getByText('Mail is off on this server').waitFor()
    await issued.getByRole('button', { name: 'Copy accept link' }).click()
    await issued.getByText('Copied').waitFor()
    const acceptUrl = await op.evaluate(() => navigator.clipboard.readText())
    assert.ok(acceptUrl.startsWith(`${base}/invite?token=coffer_inv_`), 'the copied link is an accept link on this server')
    await issued.getByRole('button', { name: 'Done' }).click()
    await issued.waitFor({ state: 'detached' })

    // 6. The teammate, in a browser of their own, signs up through the link and sees the project.
    const mateCtx = await chromium.newContext({ viewport: { width: 1280, height: 800 } })
    const mp = watch(await mateCtx.newPage(), mateProblems)
    mp.setDefaultTimeout(30_000)
    await mp.goto(acceptUrl)
    await mp.getByRole('link', { name: 'Create an account' }).click()
    await mp.waitForURL(/\/invite\/sign-up\?token=/)
    await mp.fill('#name', 'Ana')
    await mp.fill('#email', teammate)
    await mp.fill('#password', mateWord)
    await mp.click('button[type=submit]')
    await mp.waitForURL(`${base}/w/default`)
    await mp.getByRole('link', { name: 'Web Shop' }).click()
    await mp.getByRole('heading', { name: 'Web Shop', level: 1 }).waitFor()
    await mp.getByRole('link', { name: 'Development' }).waitFor()

    // 7. A personal token, shown once.
    await mp.getByRole('link', { name: 'Tokens' }).click()
    await mp.getByRole('heading', { name: 'Tokens', level: 1 }).waitFor()
    await mp.getByRole('button', { name: 'New token' }).click()
    const nt = mp.getByRole('dialog', { name: 'New personal token' })
    await nt.getByLabel('Name').fill('laptop')
    await nt.getByRole('button', { name: 'Create token' }).click()
    const shown = mp.getByRole('dialog', { name: 'Token laptop' })
    await shown.getByText('shown only this once').waitFor()
    const token = await shown.getByLabel('Token', { exact: true }).inputValue()
    assert.ok(token.startsWith('coffer_pat_'), 'a personal token')
    await shown.getByRole('button', { name: 'Done' }).click()
    await shown.waitFor({ state: 'detached' })

    // 8. `coffer run` with that token: the child prints a hash and a length of the secret, never the value.
    const r = await runCli(
      [
        'run',
        '--project',
        'web-shop',
        '--env',
        'development',
        '--',
        process.execPath,
        '-e',
        "const v = process.env.STRIPE_KEY || ''; console.log(require('node:crypto').createHash('sha256').update(v).digest('hex') + ' ' + v.length + ' ' + Object.keys(process.env).filter((k) => k.startsWith('SERVICE_')).length)",
      ],
      { COFFER_URL: base, COFFER_TOKEN: token },
      dir,
    )
    assert.equal(r.code, 0, `coffer run exits 0 (${redact(r.stderr).slice(0, 300)})`)
    assert.equal(r.stdout.trim(), `${sha256(stripe)} ${stripe.length} 60`, 'every secret of Development reached the command')

    // 9. The Owner rotates Development's key on the Keys screen and watches the reseal reach done.
    await op.getByRole('link', { name: 'Keys' }).click()
    await op.getByRole('table', { name: 'Data keys of Web Shop' }).waitFor()
    await op.getByRole('button', { name: 'Rotate the data key of Web Shop / Development' }).click()
    const rotate = op.getByRole('dialog', { name: 'Rotate the data key of Web Shop / Development?' })
    await rotate.getByRole('button', { name: 'Rotate key' }).click()
    await rotate.waitFor({ state: 'detached' })
    const bar = op.getByRole('progressbar', { name: 'Reseal of Web Shop / Development' })
    await bar.waitFor()
    // Each value the bar showed, recorded in the page: it only goes forward and ends full.
    await bar.evaluate((el) => {
      const w = window as unknown as { seen: number[] }
      w.seen = [Number((el as HTMLProgressElement).value)]
      new MutationObserver(() => w.seen.push(Number((el as HTMLProgressElement).value))).observe(el, {
        attributes: true,
        attributeFilter: ['value'],
      })
    })
    await op.getByText('v2: 63 resealed').waitFor({ timeout: 120_000 })
    assert.equal(await bar.getAttribute('value'), '63')
    const seen = await op.evaluate(() => (window as unknown as { seen: number[] }).seen)
    assert.deepEqual(
      seen,
      [...seen].sort((a, b) => a - b),
      'the bar never went back',
    )

    // 10. The audit timeline, filtered by action: every step, by the right person.
    await op.getByRole('link', { name: 'Audit log' }).click()
    await op.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor()
    const timeline = op.getByRole('list', { name: 'Audit entries, newest first' })
    async function find(action: string, actor: string, count?: number): Promise<void> {
      await op.getByLabel('Action', { exact: true }).fill(action)
      await op.getByRole('button', { name: 'Apply', exact: true }).click()
      await op.getByText(/entr(y|ies) shown \(filtered\)$/).waitFor()
      await op.waitForFunction(
        (a) => {
          const codes = [...document.querySelectorAll('ul.audit-list code.audit-action')].map((c) => c.textContent)
          return codes.length > 0 && codes.every((c) => c === a)
        },
        action,
        { timeout: 30_000 },
      )
      if (count !== undefined)
        await op.getByText(`${count === 1 ? '1 entry' : `${count} entries`} shown (filtered)`, { exact: true }).waitFor()
      // The actor's name comes from the member list, refreshed when the screen opens.
      const named = await op
        .waitForFunction(
          ({ a, who }) =>
            [...document.querySelectorAll('ul.audit-list .audit-row')].some(
              (row) =>
                row.querySelector('code.audit-action')?.textContent === a &&
                row.querySelector('.audit-actor')?.textContent?.startsWith(who),
            ),
          { a: action, who: actor },
          { timeout: 30_000 },
        )
        .then(
          () => true,
          () => false,
        )
      const actors = await timeline.locator('.audit-actor').allTextContents()
      assert.ok(named, `${action} by ${actor} (${actors.join(', ')})`)
    }
    await find('project.create', 'owner@localhost', 1)
    // Each preview and each apply is recorded; each key written is a secret.create of its own.
    await find('secrets.apply', 'owner@localhost', 4)
    await find('secret.create', 'owner@localhost', 65)
    await find('invitation.create', 'owner@localhost', 1)
    await find('invitation.accept', teammate, 1)
    await find('member.add', teammate)
    // (the other token.create is the Owner token the first start printed)
    await find('token.create', teammate, 2)
    await find('secrets.reveal_all', teammate)
    await find('key.rotated', 'owner@localhost', 1)
    await find('key.resealed', 'system')
    // The teammate's reads: the actor filter narrows to them.
    await op.getByLabel(/^Actor/).selectOption({ label: teammate })
    await op.getByLabel('Action', { exact: true }).fill('secrets.reveal_all')
    await op.getByRole('button', { name: 'Apply', exact: true }).click()
    await op.getByText(/^[1-9]\d* entr(y|ies) shown \(filtered\)$/).waitFor()
    assert.ok(!(await op.content()).includes(stripe) && !(await op.content()).includes(token), 'no value or token on the page')

    assert.deepEqual(mateProblems, [], 'the teammate saw no error, dialog or CSP report')
    assert.deepEqual(ownerProblems, [], 'the Owner saw no error, dialog or CSP report')
    assert.ok(!output.includes(token) && !output.includes(stripe), 'the server logged neither the value nor the token')
    await mateCtx.close()
    await ownerCtx.close()
  })
})
