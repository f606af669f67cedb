// src/api is a leaf that anyone may import: it imports zod and itself only. The client takes
// its types from it without loading it (import type), and the core takes its limits from the
// files that load no zod, so the bundled CLI never loads zod.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import assert from 'node:assert/strict'

const SRC = join(import.meta.dirname, '..', '..', 'src')
const API = join(SRC, 'api')

/** Every `import … from '…'` and `export … from '…'` of a file: whether it is type-only, and its specifier. */
function importsOf(file: string): Array<{ typeOnly: boolean; from: string }> {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/^(import|export)\s+(type\s+)?[^;'"]*?from\s+'([^']+)'/gms)].map((m) => ({
    typeOnly: m[2] !== undefined,
    from: m[3] ?? '',
  }))
}

test('src/api imports nothing but zod and its own files', () => {
  const files = readdirSync(API).filter((f) => f.endsWith('.ts'))
  assert.ok(files.length > 5)
  const outside = files.flatMap((f) =>
    importsOf(join(API, f))
      .filter((i) => i.from !== 'zod' && !/^\.\/[a-z-]+\.js$/.test(i.from))
      .map((i) => `${f} imports ${i.from}`),
  )
  assert.deepEqual(outside, [])
})

test('the limits and names the core shares with the API load no zod', () => {
  for (const f of ['limits.ts', 'roles.ts']) assert.deepEqual(importsOf(join(API, f)), [], f)
})

test('the client takes the API types as types only', () => {
  const api = importsOf(join(SRC, 'client', 'client.ts')).filter((i) => i.from.startsWith('../api/') || i.from === 'zod')
  assert.ok(api.length > 5)
  assert.deepEqual(
    api.filter((i) => !i.typeOnly).map((i) => i.from),
    [],
  )
})
