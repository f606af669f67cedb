// The relay's allow-list rules and path checks, from the attacker's side: what a rule admits,
// and every way a path could be read as leaving the API base.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { admits, parseRule, parseRules, relayPath } from '../../src/connections/allow-list.js'
import { relayTarget } from '../../src/connections/relay.js'

test('rules: literal segments, * for one segment, a final * for any rest', () => {
  const rules = parseRules(['GET /v1/*', 'POST /v1/repos/*/issues', '* /health'])
  const ok = (m: string, p: string) => admits(rules, m, relayPath(p).segments)
  assert.ok(ok('GET', '/v1/me'))
  assert.ok(ok('GET', '/v1/repos/a/b'))
  assert.ok(!ok('GET', '/v1'))
  assert.ok(!ok('POST', '/v1/me'))
  assert.ok(ok('POST', '/v1/repos/coffer/issues'))
  assert.ok(!ok('POST', '/v1/repos/coffer/issues/1'))
  assert.ok(ok('DELETE', '/health'))
  assert.ok(!ok('GET', '/v2/me'))
})

test('bad rules are refused with ERR_VALIDATION', () => {
  for (const r of ['GET v1', 'FETCH /x', 'GET /v1/../admin', 'GET /v1/a*', 'GET  /x', 'GET /x y'])
    assert.throws(
      () => parseRule(r),
      (e: { code?: string }) => e.code === 'ERR_VALIDATION',
      r,
    )
})

test('paths that could leave the base are refused with ERR_RELAY_REFUSED', () => {
  for (const p of [
    '/v1/../admin',
    '/v1/./me',
    '/v1//me',
    '/v1/%2e%2e/admin',
    '/v1/%2E/x',
    '/v1/a%2Fb',
    '/v1/a%2fb',
    '/v1/a%5Cb',
    '/v1/a\\b',
    '/v1/%00',
    '/v1/%zz',
    '/',
    '',
  ])
    assert.throws(
      () => relayPath(p),
      (e: { code?: string }) => e.code === 'ERR_RELAY_REFUSED',
      JSON.stringify(p),
    )
})

test('the target keeps the base path and the query as sent', () => {
  assert.equal(relayTarget('https://api.example/base/', '/v1/me', 'a=1&b=%20'), 'https://api.example/base/v1/me?a=1&b=%20')
  assert.equal(relayTarget('https://api.example', '/v1/me', ''), 'https://api.example/v1/me')
})
