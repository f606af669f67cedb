// A released migration must do the same thing forever, so it may depend on nothing that
// changes later: files under src/storage/migrations import only each other, kysely, node:*
// and (type-only) src/storage. Code a step needs from elsewhere is copied under ./frozen/.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { test } from 'node:test'

const MIGRATIONS_DIR = resolve('src/storage/migrations')
const STORAGE_DIR = resolve('src/storage')

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Every static import/export-from and dynamic import in `source`, and whether it is type-only. */
function importsOf(source: string): Array<{ from: string; typeOnly: boolean }> {
  const out: Array<{ from: string; typeOnly: boolean }> = []
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s+'([^']+)'/gm)) {
    out.push({ from: m[4] ?? '', typeOnly: Boolean(m[2]) })
  }
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push({ from: m[1] ?? '', typeOnly: false })
  for (const m of source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) out.push({ from: m[1] ?? '', typeOnly: false })
  return out
}

test('migrations import only each other, kysely, node:* and storage types', () => {
  const files = tsFiles(MIGRATIONS_DIR)
  assert.ok(files.length >= 10, 'the migrations were found')
  const bad: string[] = []
  for (const file of files) {
    const imports = importsOf(readFileSync(file, 'utf8'))
    assert.ok(imports.length > 0, `${file} has imports`)
    for (const { from, typeOnly } of imports) {
      if (from === 'kysely' || from.startsWith('node:')) continue
      if (from.startsWith('.')) {
        const target = resolve(dirname(file), from)
        if (target.startsWith(MIGRATIONS_DIR + sep)) continue
        if (typeOnly && target.startsWith(STORAGE_DIR + sep)) continue
      }
      bad.push(`${relative(process.cwd(), file)} imports ${typeOnly ? 'type ' : ''}'${from}'`)
    }
  }
  assert.deepEqual(bad, [])
})
