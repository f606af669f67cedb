// The dashboard with an environment of 10,000 secrets, in Chromium against a real server.
//
//   npm run build && node --import tsx bench/dashboard.ts [--secrets 10000] [--runs 15] [--scroll-seconds 5]
//
// Starts a server on SQLite listening on 127.0.0.1 (a fresh data dir), seeds one environment
// with --secrets secrets through POST …/secrets/apply (1,000 per request), then measures:
//   - the list request's server time: GET …/secrets (keys, tags, versions; no values) through
//     the whole pipeline with app.inject, median and p90 of --runs;
//   - the first render of the grid after the data arrives: in the page, from the list
//     response's responseEnd (Resource Timing) to the first frame after the grid's first row
//     is in the document (MutationObserver, then requestAnimationFrame);
//   - a scroll of --scroll-seconds: the grid's scrollTop moves every frame, about 130 rows a
//     second, and every frame's time is taken with requestAnimationFrame in the page; beside
//     it, the same page's frames while idle for as long (what the machine's load costs alone);
//   - filter keystrokes: from the input event to the first frame that shows the new count,
//     for each of "9", "99", "999", "9999" typed one character at a time;
//   - the initial JavaScript the browser loads (index.html's scripts and module preloads), gzip -9.
// Prints each figure beside its target. Not a test: it fails only if something does not answer.
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { hashPassword } from '../src/identity/passwords.js'
import { findWebDir } from '../src/server/web-app.js'
import { launchChromium } from '../test/helpers/chromium.js'
import { startHarness } from '../test/helpers/harness.js'
import { args, printTable, type Cell } from './lib/harness.js'

const A = args()
const SECRETS = Number(A.get('secrets') ?? 10_000)
const RUNS = Number(A.get('runs') ?? 15)
const SCROLL_SECONDS = Number(A.get('scroll-seconds') ?? 5)

const keyOf = (i: number) => `BENCH_KEY_${String(i).padStart(5, '0')}`

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!
}

async function main(): Promise<void> {
  const webDir = findWebDir()
  if (!webDir) throw new Error('the dashboard is not built: run npm run build first')
  const h = await startHarness('sqlite', { COFFER_HOST: '127.0.0.1' })
  const chromium = await launchChromium()
  try {
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    const W = `/v1/workspaces/${h.a.slug}`
    const inject = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
      const res = await h.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${h.a.token}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      })
      if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body.slice(0, 200)}`)
      return res
    }

    // Seed: one project, SECRETS secrets in development.
    await inject('POST', `${W}/projects`, { name: 'Bench', slug: 'bench' })
    const E = `${W}/projects/bench/environments/development`
    const t0 = performance.now()
    for (let from = 0; from < SECRETS; from += 1000) {
      const upserts = Array.from({ length: Math.min(1000, SECRETS - from) }, (_, j) => ({
        key: keyOf(from + j),
        value: `value-${from + j}-${'x'.repeat(32)}`,
      }))
      await inject('POST', `${E}/secrets/apply`, { upserts })
    }
    console.log(`seeded ${SECRETS.toLocaleString('en-US')} secrets in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

    // (1) The list request's server time.
    const ms: number[] = []
    let bytes = 0
    await inject('GET', `${E}/secrets`)
    for (let i = 0; i < RUNS; i++) {
      const s = performance.now()
      const res = await inject('GET', `${E}/secrets`)
      ms.push(performance.now() - s)
      bytes = res.body.length
    }

    // A person who signs in with a password, as in the browser suites.
    const password = `bench-${Math.random().toString(36).slice(2)}`
    const hash = await hashPassword(password)
    await h.ctx.committer.run((tx) =>
      tx
        .updateTable('users')
        .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
        .where('email', '=', 'owner@acme.test')
        .execute(),
    )
    const ctx = await chromium.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await ctx.newPage()
    // The functions below are compiled with their names kept (a `__name` helper): give the page that helper.
    await page.addInitScript('window.__name = (f) => f')
    const path = `/w/${h.a.slug}/projects/bench/development`
    await page.goto(`${base}${path}`)
    await page.fill('#email', 'owner@acme.test')
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${base}${path}`)
    await page.locator('.grid tbody tr').first().waitFor()

    // (2) First render after the data arrives: a fresh load of the screen, observed from the start.
    await page.addInitScript(() => {
      const w = window as unknown as { __gridPainted?: number }
      const obs = new MutationObserver(() => {
        if (w.__gridPainted === undefined && document.querySelector('.grid tbody tr.grid-row td.key')) {
          obs.disconnect()
          requestAnimationFrame(() => {
            w.__gridPainted = performance.now()
          })
        }
      })
      obs.observe(document, { childList: true, subtree: true })
    })
    const renders: number[] = []
    for (let i = 0; i < 3; i++) {
      await page.reload()
      await page.waitForFunction(() => (window as unknown as { __gridPainted?: number }).__gridPainted !== undefined)
      renders.push(
        await page.evaluate(() => {
          const list = performance
            .getEntriesByType('resource')
            .filter((e) => /\/environments\/[^/]+\/secrets$/.test(new URL(e.name).pathname)) as PerformanceResourceTiming[]
          return (window as unknown as { __gridPainted: number }).__gridPainted - list[0]!.responseEnd
        }),
      )
    }

    // (3) Scrolling: every frame's duration while the grid scrolls for SCROLL_SECONDS — and, as
    // the baseline of this machine's load, the same page's frames for as long with nothing to do.
    const idle = await page.evaluate(async (seconds) => {
      const times: number[] = []
      return await new Promise<number[]>((resolve) => {
        let last = performance.now()
        const end = last + seconds * 1000
        const step = (now: number) => {
          times.push(now - last)
          last = now
          if (now < end) requestAnimationFrame(step)
          else resolve(times.slice(1))
        }
        requestAnimationFrame(step)
      })
    }, SCROLL_SECONDS)
    const frames = await page.evaluate(async (seconds) => {
      const el = document.querySelector('.grid-scroll') as HTMLElement
      const times: number[] = []
      return await new Promise<number[]>((resolve) => {
        let last = performance.now()
        const end = last + seconds * 1000
        const step = (now: number) => {
          times.push(now - last)
          last = now
          // About 130 rows of 44 px a second: a fast, steady wheel scroll.
          el.scrollTop += 96
          if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) el.scrollTop = 0
          if (now < end) requestAnimationFrame(step)
          else resolve(times.slice(1))
        }
        requestAnimationFrame(step)
      })
    }, SCROLL_SECONDS)

    // (4) Filter keystrokes: the input event → the first frame showing the new count.
    const typed = ['9', '99', '999', '9999']
    const keystrokes: number[] = []
    const expected = (q: string) => {
      let n = 0
      for (let i = 0; i < SECRETS; i++) if (keyOf(i).toLowerCase().includes(q)) n++
      return n === SECRETS ? `${SECRETS} secrets` : `${n} of ${SECRETS} secrets`
    }
    for (const q of typed) {
      keystrokes.push(
        await page.evaluate(
          async ({ q, want }) => {
            const input = document.querySelector('input[type=search]') as HTMLInputElement
            const count = document.querySelector('.toolbar .count') as HTMLElement
            const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!
            const start = performance.now()
            setter.call(input, q)
            input.dispatchEvent(new Event('input', { bubbles: true }))
            await new Promise<void>((resolve) => {
              const check = () => (count.textContent === want ? resolve() : requestAnimationFrame(check))
              requestAnimationFrame(check)
            })
            return performance.now() - start
          },
          { q, want: expected(q) },
        ),
      )
    }
    await ctx.close()

    // (5) The initial JavaScript.
    const index = readFileSync(join(webDir, 'index.html'), 'utf8')
    const js = [
      ...index.matchAll(/<script[^>]*\bsrc="([^"]+)"/g),
      ...index.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g),
    ].map((m) => m[1]!)
    const gz = js.reduce((n, url) => n + gzipSync(readFileSync(join(webDir, url)), { level: 9 }).length, 0)

    const f = (x: number) => x.toFixed(1)
    const rows: Cell[][] = [
      [
        `list request, server time (median / p90 of ${RUNS}; ${(bytes / 1024).toFixed(0)} kB JSON)`,
        `${f(percentile(ms, 0.5))} / ${f(percentile(ms, 0.9))} ms`,
        '≤ 300 ms',
      ],
      ['first render of the grid after the data arrives (each of 3 loads)', `${renders.map(f).join(', ')} ms`, '≤ 1,000 ms'],
      [
        `scroll ${SCROLL_SECONDS} s: frames, longest, p99, frames over 50 ms`,
        `${frames.length}, ${f(Math.max(...frames))} ms, ${f(percentile(frames, 0.99))} ms, ${frames.filter((t) => t > 50).length}`,
        'no frame over 50 ms',
      ],
      [
        `baseline: the same page idle ${SCROLL_SECONDS} s (frames, longest, p99, over 50 ms)`,
        `${idle.length}, ${f(Math.max(...idle))} ms, ${f(percentile(idle, 0.99))} ms, ${idle.filter((t) => t > 50).length}`,
        '',
      ],
      [`filter keystroke → grid updated (${typed.map((q) => `"${q}"`).join(', ')})`, `${keystrokes.map(f).join(', ')} ms`, '≤ 100 ms each'],
      [`initial JavaScript (${js.length} file${js.length === 1 ? '' : 's'}), gzip -9`, `${(gz / 1024).toFixed(1)} kB`, '≤ 200 kB'],
    ]
    printTable(
      `The dashboard with ${SECRETS.toLocaleString('en-US')} secrets in one environment (SQLite, Chromium headless)`,
      ['measure', 'figure', 'target'],
      rows,
    )
  } finally {
    await chromium.close()
    await h.close()
  }
}

await main()
