// What the dashboard's browser tests share: a watch on what a page must not do, axe-core's
// serious and critical findings, and a password for a seeded person.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Page } from 'playwright-core'
import type { AppContext } from '../../src/context.js'
import { hashPassword } from '../../src/identity/passwords.js'

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

/**
 * Records in `problems` what `page` did that it must not: console errors (CSP reports are
 * errors; the browser's own /favicon.ico request is not the app's), uncaught errors, dialogs
 * (dismissed), and answers of 400 or more. `allow` exempts console lines and "STATUS /path"
 * answers a test provokes on purpose.
 */
export function watchPage(page: Page, problems: string[], allow: readonly RegExp[] = []): Page {
  page.on('console', (m) => {
    if (m.type() === 'error' && !/favicon/.test(m.location().url) && !allow.some((a) => a.test(m.text())))
      problems.push(`console: ${m.text()}`)
  })
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname
    if (r.status() >= 400 && !allow.some((a) => a.test(`${r.status()} ${path}`))) problems.push(`response: ${r.status()} ${path}`)
  })
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`)
    void d.dismiss()
  })
  return page
}

/**
 * axe-core's serious and critical findings on what `page` shows, each as "screen: rule
 * (impact, N nodes)". axe is injected as a script, so `page` must be in a context that
 * bypasses the CSP (the CSP itself is tested in a normal context).
 */
export async function axeFindings(page: Page, screen: string): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: AXE })
  const violations = await page.evaluate(async () => {
    const r = await (
      window as unknown as { axe: { run(): Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } }
    ).axe.run()
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }))
  })
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${screen}: ${v.id} (${v.impact}, ${v.nodes} nodes)`)
}

/** Gives the person with `email` the password `password` and a verified address (seeding, not the product's flow). */
export async function setPassword(ctx: Pick<AppContext, 'committer'>, email: string, password: string): Promise<void> {
  const hash = await hashPassword(password)
  await ctx.committer.run((tx) =>
    tx.updateTable('users').set({ password_hash: hash, email_verified_at: new Date().toISOString() }).where('email', '=', email).execute(),
  )
}
