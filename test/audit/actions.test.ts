// The audit action table: one entry per action, each a dotted lower-case name, so that the
// type AuditEvent.action is checked against is a list a reader can trust.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { AUDIT_ACTIONS } from '../../src/audit/actions.js'

test('every audit action is listed once', () => {
  const seen = new Set<string>()
  const twice = AUDIT_ACTIONS.filter((a) => seen.has(a) || !seen.add(a))
  assert.deepEqual(twice, [])
})

test('every audit action is a dotted lower-case name', () => {
  for (const a of AUDIT_ACTIONS) assert.match(a, /^[a-z_]+(\.[a-z_-]+)+$/, a)
})
