// Runs every test file under test/ with node's test runner (via tsx) and ends with its
// `# pass` / `# fail` summary. Arguments narrow the run: `npm test -- test/crypto`.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { ensureSystemDeps } from './system-deps.mjs'

function walk(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test']
const files = roots
  .flatMap((r) => (statSync(r).isDirectory() ? walk(r) : [r]))
  .map((f) => relative(process.cwd(), f))
  .sort()
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
// The browser, HSM and keychain suites never skip: their Debian packages come first.
try {
  ensureSystemDeps()
} catch (err) {
  console.error(`test: ${err.message}`)
  process.exit(1)
}
// The CLI tests run the bundled `coffer`: build it once here, before any test starts.
const built = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' })
if (built.status !== 0) {
  console.error('the build failed')
  process.exit(1)
}
const concurrency = process.env.COFFER_TEST_CONCURRENCY ?? '2'
const tapFile = join(mkdtempSync(join(tmpdir(), 'coffer-tap-')), 'report.tap')
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { stdio: 'inherit' },
)
// The closing summary, read from the TAP report, in the form CI and people read.
const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : ''
const count = (name) => Number((tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm')) ?? [])[1] ?? 0)
const summary = Object.fromEntries(['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'].map((k) => [k, count(k)]))
for (const [k, v] of Object.entries(summary)) console.log(`# ${k} ${v}`)
const failed = summary.fail + summary.cancelled
console.log(`${summary.pass} passed, ${failed} failed, ${summary.skipped} skipped`)
if (summary.tests === 0) {
  console.error('no test ran')
  process.exit(1)
}
process.exit(r.status === 0 && failed === 0 ? 0 : 1)
