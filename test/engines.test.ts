// No dependency may declare engines that exclude a Node version Coffer declares: every
// package of package-lock.json (as installed on this platform) must run on every version of
// package.json's `engines.node`. When one does not (cookie@2 wants Node ≥ 22), pin an older
// major — or a parent that uses one — rather than widen a promise Coffer cannot keep.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { describe, test } from 'node:test'

/** The three calls of the semver package (npm's own range semantics) this test makes. */
const semver = createRequire(import.meta.url)('semver') as {
  subset(sub: string, dom: string): boolean
  intersects(a: string, b: string): boolean
  satisfies(version: string, range: string): boolean
}

const ROOT = join(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; optional?: boolean; engines?: { node?: string } | string[] }>
}

/** Packages of the lock that this platform installs: every required one, and optional ones present here. */
const installed = Object.entries(lock.packages).filter(([path, p]) => path !== '' && (!p.optional || existsSync(join(ROOT, path))))

/** The packages whose declared Node range leaves out part of `ours`. */
function excluding(ours: string): string[] {
  return installed.flatMap(([path, p]) => {
    const node = Array.isArray(p.engines) ? undefined : p.engines?.node
    if (!node || semver.subset(ours, node)) return []
    return [`${path.replace(/^.*node_modules\//, '')}@${p.version}: engines.node ${node}`]
  })
}

describe('engines', () => {
  test('package.json declares bounded Node majors, the running one among them', () => {
    assert.ok(semver.satisfies(process.version, pkg.engines.node), `${process.version} is not in ${pkg.engines.node}`)
    assert.ok(!semver.intersects(pkg.engines.node, '>=100.0.0'), 'an open upper end promises Node versions nothing was checked on')
    assert.equal(
      lock.packages['']?.engines && !Array.isArray(lock.packages[''].engines) ? lock.packages[''].engines.node : undefined,
      pkg.engines.node,
      'the lock is current',
    )
  })

  test('no installed dependency declares engines that exclude a Node version we declare', () => {
    assert.deepEqual(excluding(pkg.engines.node), [])
  })

  test('the check finds what it looks for', () => {
    assert.ok(!semver.subset('^20.19.0 || ^22.12.0', '>=22'), 'cookie@2 (>=22) excludes Node 20')
    assert.ok(!semver.subset('>=20.19', '20.x || 22.x'), 'an open range is not covered by bounded majors')
    assert.ok(semver.subset('^20.19.0 || ^22.12.0', '>=20.19.0 <22.0.0 || >=22.12.0 <23.0.0 || >=23.2.0'))
  })
})
