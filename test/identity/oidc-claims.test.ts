// Claim conditions of OIDC trust rules: exact values and `*` globs, against a reference
// implementation (an anchored regular expression) on random patterns and values, and the
// issuer URLs a rule accepts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { checkIssuer, claimMatches, discoveryUrl, globMatches } from '../../src/identity/machine-oidc-rules.js'

const reference = (pattern: string, value: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
      .join('.*')}$`,
    's',
  ).test(value)

test('globs match as an anchored regular expression would', () => {
  const alphabet = fc.constantFrom('a', 'b', ':', '/', '*')
  fc.assert(
    fc.property(
      fc.string({ unit: alphabet, maxLength: 8 }),
      fc.string({ unit: fc.constantFrom('a', 'b', ':', '/'), maxLength: 10 }),
      (p, v) => {
        assert.equal(globMatches(p, v), reference(p, v), `${p} ~ ${v}`)
      },
    ),
    { numRuns: 5000 },
  )
})

test('the usual CI rules', () => {
  assert.ok(globMatches('repo:acme/web:ref:refs/heads/main', 'repo:acme/web:ref:refs/heads/main'))
  assert.ok(!globMatches('repo:acme/web:ref:refs/heads/main', 'repo:acme/web:ref:refs/heads/main2'))
  assert.ok(globMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/api:ref:refs/heads/main'))
  assert.ok(!globMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme-evil/api:ref:refs/heads/main'))
  assert.ok(!globMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/api:ref:refs/heads/main-evil'))
  // `*` spans `/` and `:` — a rule on a whole organisation still pins the branch at the end.
  assert.ok(globMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/a:ref:refs/heads/x:ref:refs/heads/main'))
  assert.ok(claimMatches('true', true))
  assert.ok(claimMatches('42', 42))
  assert.ok(claimMatches('admins', ['users', 'admins']))
  assert.ok(!claimMatches('x', undefined))
  assert.ok(!claimMatches('x', { x: 'x' }))
  assert.ok(!claimMatches('[object Object]', {}))
})

test('issuer URLs: https, or http on loopback; no credentials, query or fragment', () => {
  assert.equal(checkIssuer('https://token.actions.githubusercontent.com'), 'https://token.actions.githubusercontent.com')
  assert.equal(checkIssuer('http://127.0.0.1:8080'), 'http://127.0.0.1:8080')
  for (const bad of [
    'http://gitlab.com',
    'https://u:p@gitlab.com',
    'https://gitlab.com?x=1',
    'https://gitlab.com#x',
    'ftp://x',
    'not a url',
  ])
    assert.throws(() => checkIssuer(bad), { code: 'ERR_VALIDATION' }, bad)
  assert.equal(discoveryUrl('https://gitlab.com/'), 'https://gitlab.com/.well-known/openid-configuration')
  assert.equal(discoveryUrl('https://ex.com/tenant'), 'https://ex.com/tenant/.well-known/openid-configuration')
})
