// The code cache of `coffer run`'s bundle, from the attacker's side. V8 accepts a code cache
// made from *another* source of the same length (it checks only the length, its version and
// its flags), and runs that other code: a cache is code. So bin/coffer.js must use a cache
// only where it was made for this build and where no one else could have put it. Each case
// plants a cache made from a same-length bundle whose first lines print PLANTED, in a copy
// of the package (bin/ and dist/) that no other test touches.
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Script } from 'node:vm'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyRunPackage, runBundleBuild } from '../helpers/run-bundle.js'

describe('coffer run uses a code cache only where it is safe', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-code-cache-'))
  const pkg = join(work, 'pkg')
  const dist = join(pkg, 'dist')
  const xdg = join(work, 'xdg')
  const userDir = join(xdg, 'coffer')
  let build = ''
  let planted: Buffer

  before(() => {
    copyRunPackage(pkg)
    const source = readFileSync(join(dist, 'run.cjs'), 'latin1')
    build = runBundleBuild(dist) ?? ''
    assert.match(build, /^[0-9a-f]{16}$/, 'dist/run.cjs names its build in its first line')
    // The same bundle with its third line (the banner's __importMeta) swapped for code of the
    // same length that prints PLANTED.
    const lines = source.split('\n')
    const payload = "process.stderr.write('PLANTED\\n');const __importMeta={filename:__filename};"
    assert.ok(lines[2]!.startsWith('const __importMeta') && lines[2]!.length >= payload.length)
    lines[2] = payload.padEnd(lines[2]!.length, ' ')
    const evil = lines.join('\n')
    assert.equal(evil.length, source.length)
    const wrap = (s: string) => `(function (exports, require, module, __filename, __dirname) {${s}\n})`
    planted = new Script(wrap(evil), { filename: join(dist, 'run.cjs') }).createCachedData()
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  /** `coffer run` against no server: the bundle's top level runs, the fetch fails (exit 1). */
  const run = () => {
    const r = spawnSync(process.execPath, [join(pkg, 'bin', 'coffer.js'), 'run', '--project', 'p', '--env', 'e', '--', 'true'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: work, XDG_CACHE_HOME: xdg, COFFER_URL: 'http://127.0.0.1:1', COFFER_TOKEN: 'coffer_pat_fake' },
      timeout: 30_000,
    })
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /ERR_CONNECTION/)
    return r.stderr.includes('PLANTED')
  }
  const clear = () => {
    rmSync(join(dist, `run.cjs.${build}.cache`), { force: true })
    rmSync(userDir, { recursive: true, force: true })
  }

  test('the control: a same-length cache beside the bundle, named for its build, is run (V8 checks no more)', () => {
    clear()
    assert.equal(run(), false)
    writeFileSync(join(dist, `run.cjs.${build}.cache`), planted)
    assert.equal(run(), true, 'V8 ran the planted cache: what a cache holds is what runs')
  })

  test('a cache named for another build is not used', () => {
    clear()
    writeFileSync(join(dist, `run.cjs.${'0'.repeat(16)}.cache`), planted)
    try {
      assert.equal(run(), false)
    } finally {
      rmSync(join(dist, `run.cjs.${'0'.repeat(16)}.cache`), { force: true })
    }
  })

  test("the user's own cache folder is used when it is theirs alone", () => {
    clear()
    mkdirSync(userDir, { recursive: true, mode: 0o700 })
    chmodSync(userDir, 0o700)
    writeFileSync(join(userDir, `run.cjs.${build}.cache`), planted, { mode: 0o600 })
    assert.equal(run(), true, 'read from $XDG_CACHE_HOME/coffer')
  })

  for (const mode of [0o770, 0o707, 0o777]) {
    test(`a cache folder others may write in (mode ${mode.toString(8)}) is never read`, () => {
      clear()
      mkdirSync(userDir, { recursive: true })
      chmodSync(userDir, mode)
      writeFileSync(join(userDir, `run.cjs.${build}.cache`), planted)
      assert.equal(run(), false)
    })
  }

  test("a cache file another user owns, or others may write, is never read, even in the user's folder", () => {
    for (const [uid, mode] of [
      [65534, 0o600],
      [process.getuid!(), 0o620],
      [process.getuid!(), 0o602],
    ] as const) {
      clear()
      mkdirSync(userDir, { recursive: true, mode: 0o700 })
      chmodSync(userDir, 0o700)
      const file = join(userDir, `run.cjs.${build}.cache`)
      writeFileSync(file, planted)
      chmodSync(file, mode)
      chownSync(file, uid, uid === 65534 ? 65534 : process.getgid!())
      assert.equal(run(), false, `owner ${uid}, mode ${mode.toString(8)}`)
    }
  })

  test('a cache folder that is a symbolic link is never read', () => {
    clear()
    const elsewhere = join(work, 'elsewhere')
    mkdirSync(elsewhere, { recursive: true, mode: 0o700 })
    writeFileSync(join(elsewhere, `run.cjs.${build}.cache`), planted)
    mkdirSync(xdg, { recursive: true })
    symlinkSync(elsewhere, userDir)
    assert.equal(run(), false)
  })
})
