import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as errors from '../src/errors.js'
import { CofferError, ERROR_CODES } from '../src/errors.js'
import { CLI_ERROR_CODES } from '../src/cli/exit-error.js'

// docs/errors.md documents exactly ERROR_CODES, and every error class in src/errors.ts uses
// a code from ERROR_CODES, with the HTTP status the table gives.

const DOC_PATH = fileURLToPath(new URL('../docs/errors.md', import.meta.url))
const doc = readFileSync(DOC_PATH, 'utf8')
const known = new Set<string>(ERROR_CODES)
const cliKnown = new Set<string>(CLI_ERROR_CODES)
/** CLI rows: | `ERR_X` | exit code | meaning | what to do | (one or three digits, no HTTP status) */
const cliRows = doc
  .split('\n')
  .map((line) => /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*exit (\d{1,3})\s*\|(.*)\|(.*)\|\s*$/.exec(line))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => m[1] as string)

/** Table rows: | `ERR_X` | status | meaning | what to do | */
const rows = doc
  .split('\n')
  .map((line) => /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|(.*)\|(.*)\|\s*$/.exec(line))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ code: m[1] as string, status: Number(m[2]), meaning: (m[3] ?? '').trim(), action: (m[4] ?? '').trim() }))

type ErrorClass = new (...args: unknown[]) => CofferError

/** Every exported subclass of CofferError, instantiated with dummy arguments. */
const instances = Object.entries(errors)
  .filter(([, v]) => typeof v === 'function' && v !== CofferError && (v as { prototype?: unknown }).prototype instanceof CofferError)
  .map(([name, cls]) => ({ name, err: new (cls as ErrorClass)('dummy', 'dummy') }))

describe('docs/errors.md', () => {
  test('ERROR_CODES has no duplicates', () => {
    assert.equal(known.size, ERROR_CODES.length)
  })

  test('documents every code in ERROR_CODES, once', () => {
    const documented = rows.map((r) => r.code)
    for (const code of ERROR_CODES) assert.ok(documented.includes(code), `${code} is missing from docs/errors.md`)
    assert.equal(new Set(documented).size, documented.length, 'a code has two rows')
  })

  test('documents no code that is not in ERROR_CODES', () => {
    for (const r of rows) assert.ok(known.has(r.code), `docs/errors.md documents ${r.code}, which is not in ERROR_CODES`)
    for (const [code] of doc.matchAll(/\bERR_[A-Z0-9_]+\b/g)) {
      assert.ok(
        known.has(code) || cliKnown.has(code),
        `docs/errors.md mentions ${code}, which is in neither ERROR_CODES nor CLI_ERROR_CODES`,
      )
    }
  })

  test('documents every CLI code, once', () => {
    for (const code of CLI_ERROR_CODES) assert.ok(cliRows.includes(code), `CLI code ${code} is missing from docs/errors.md`)
    assert.equal(new Set(cliRows).size, cliRows.length)
    for (const code of CLI_ERROR_CODES) assert.ok(!known.has(code), `${code} is both a server and a CLI code`)
  })

  test('every row says what the code means and what to do', () => {
    for (const r of rows) {
      assert.ok(r.meaning.length > 10, `${r.code}: no meaning`)
      assert.ok(r.action.length > 10, `${r.code}: no advice`)
    }
  })

  test('describes the error envelope', () => {
    for (const field of ['"error"', '"code"', '"message"', '"requestId"', '"issues"']) {
      assert.ok(doc.includes(field), `the envelope example lacks ${field}`)
    }
  })
})

describe('src/errors.ts classes', () => {
  test('exports error classes to check', () => {
    assert.ok(instances.length >= ERROR_CODES.length, `found only ${instances.length} error classes`)
  })

  for (const { name, err } of instances) {
    test(`${name} has a documented code and the documented status`, () => {
      assert.ok(err instanceof CofferError)
      assert.equal(err.name, name)
      assert.ok(known.has(err.code), `${name} uses ${err.code}, which is not in ERROR_CODES`)
      const row = rows.find((r) => r.code === err.code)
      assert.ok(row, `${err.code} has no row in docs/errors.md`)
      assert.equal(err.status, row.status, `${name}: status differs from docs/errors.md`)
    })
  }
})
