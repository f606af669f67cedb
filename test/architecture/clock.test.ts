import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

// Server code takes its time from the context's clock (or a `now` its caller passes), so a
// test's clock decides every expiry, timestamp and id alike. src/ops/clock.ts holds the one
// read of the system clock; the CLI and the client run on the user's machine, not the server.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const ALLOWED = (file: string) => file === 'src/ops/clock.ts' || file.startsWith('src/cli/') || file.startsWith('src/client/')

/** `new Date()` (or `new Date` with no call) and `Date.now` read the system clock; `new Date(x)` parses a value. */
const SYSTEM_CLOCK = /\bnew Date\s*\(\s*\)|\bnew Date\b(?!\s*\()|\bDate\.now\b/

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') ? [path] : []
  })
}

/** Each `file:line` of `text` that reads the system clock. */
function clockReads(file: string, text: string): string[] {
  return text.split('\n').flatMap((l, i) => (SYSTEM_CLOCK.test(l) ? [`${file}:${i + 1}`] : []))
}

describe('the clock', () => {
  it('server code reads the system clock only in src/ops/clock.ts', () => {
    const found = sourceFiles('src')
      .filter((f) => !ALLOWED(f))
      .flatMap((f) => clockReads(f, readFileSync(join(ROOT, f), 'utf8')))
    assert.deepEqual(found, [], `read the context's clock (or take a \`now\`) instead:\n${found.join('\n')}`)
  })

  it('the check finds what it looks for, and only that', () => {
    assert.deepEqual(
      clockReads('x.ts', 'const a = new Date()\nconst b = Date.now()\nconst c = options.now ?? Date.now\nconst d = new Date'),
      ['x.ts:1', 'x.ts:2', 'x.ts:3', 'x.ts:4'],
    )
    assert.deepEqual(clockReads('x.ts', 'new Date(now.getTime() + ms)\nnew Date(row.created_at)\nclock().getTime()\nperformance.now()'), [])
    assert.ok(ALLOWED('src/ops/clock.ts') && ALLOWED('src/cli/main.ts') && ALLOWED('src/client/client.ts'))
    assert.ok(!ALLOWED('src/server/app.ts') && !ALLOWED('src/ops/config.ts'))
  })
})
