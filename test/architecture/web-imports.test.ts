// The dashboard (web/) is a client of the public API: it may import its own files, the UI
// libraries, and — as types only — the API's contract in src/api. Nothing else of the server
// (no runtime import of src/ at all), so no server code or secret handling ends up in the bundle.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const PACKAGES = /^(react|react-dom|react\/jsx-runtime|react-dom\/client|@tanstack\/(react-router|react-query|react-virtual))$/

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|tsx)$/.test(e.name) ? [join(dir, e.name)] : [],
  )
}

test('web/ imports only itself, the UI libraries, and src/api as types', () => {
  const problems: string[] = []
  const sources = files(join(ROOT, 'web', 'src'))
  assert.ok(sources.length > 5, 'the dashboard sources are found')
  for (const file of sources) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)) {
      const typeOnly = Boolean(m[2])
      const spec = m[3] ?? m[4]!
      const where = `${relative(ROOT, file)}: ${spec}`
      if (!spec.startsWith('.')) {
        if (!PACKAGES.test(spec)) problems.push(`${where} (a package the dashboard does not use)`)
        continue
      }
      const target = relative(ROOT, normalize(join(dirname(file), spec)))
      if (target.startsWith('web/')) continue
      if (!target.startsWith('src/api/')) problems.push(`${where} (outside web/ and src/api)`)
      else if (!typeOnly) problems.push(`${where} (src/api only as \`import type\`)`)
    }
    if (/dangerouslySetInnerHTML|\binnerHTML\b|\beval\(|new Function\(/.test(text))
      problems.push(`${relative(ROOT, file)}: writes markup or code from strings`)
  }
  assert.deepEqual(problems, [])
})
