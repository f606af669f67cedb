// src/crypto is pure: no SQL and no storage. The rows that hold wrapped keys belong to the
// vault (src/vault/data-keys.ts); crypto gets plain values and callbacks.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

const FORBIDDEN_IMPORT =
  /\bfrom\s+'([^']*\/storage\/[^']*|kysely|pg|better-sqlite3)'|\bimport\(\s*'([^']*\/storage\/[^']*|kysely|pg|better-sqlite3)'\s*\)/
const SQL =
  /\b(selectFrom|insertInto|updateTable|deleteFrom|executeTakeFirst)\b|\bsql`|\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s+[a-z_]+\b/

test('no file in src/crypto imports storage, kysely, pg or better-sqlite3, or runs SQL', () => {
  const files = tsFiles('src/crypto')
  assert.ok(files.length > 5, 'src/crypto was found')
  const bad: string[] = []
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (FORBIDDEN_IMPORT.test(line)) bad.push(`${file}:${i + 1} imports ${line.trim()}`)
      if (SQL.test(line)) bad.push(`${file}:${i + 1} runs SQL: ${line.trim()}`)
    })
  }
  assert.deepEqual(bad, [])
})
