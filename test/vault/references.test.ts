// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are Coffer references (${KEY}), not templates
// The reference syntax: what is a reference, what is text, what is an error — and that a value
// without `${` is never touched (the hot fetch path relies on it).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { mayHoldReferences, parseValue } from '../../src/vault/references.js'

test('references, escapes and text', () => {
  assert.deepEqual(parseValue('a-${KEY}-b', 'K'), ['a-', { key: 'KEY', text: '${KEY}' }, '-b'])
  assert.deepEqual(parseValue('${production.DB_URL}', 'K'), [{ environment: 'production', key: 'DB_URL', text: '${production.DB_URL}' }])
  assert.deepEqual(parseValue('${web-shop.prod-eu.X_1}', 'K'), [
    { project: 'web-shop', environment: 'prod-eu', key: 'X_1', text: '${web-shop.prod-eu.X_1}' },
  ])
  assert.deepEqual(parseValue('$${HOME} costs $5 and $$', 'K'), ['${HOME} costs $5 and $$'])
  // `$` then the escape `$${`: text all the way.
  assert.deepEqual(parseValue('$$${KEY}', 'K'), ['$${KEY}'])
  assert.deepEqual(parseValue('', 'K'), [])
})

test('anything else after ${ is an error that names the key and the position, not the text', () => {
  for (const bad of ['${}', '${HOME:-x}', '${a.b.c.KEY}', '${Prod.KEY}', '${env.}', '${1KEY}', 'x ${KEY', '${ KEY}']) {
    assert.throws(
      () => parseValue(bad, 'HOLDER'),
      (e: Error & { code?: string }) => e.code === 'ERR_REFERENCE_INVALID' && e.message.includes('HOLDER') && !e.message.includes('HOME'),
      bad,
    )
  }
})

test('a value without ${ is text, unchanged', () => {
  fc.assert(
    fc.property(
      fc.string().filter((s) => !s.includes('${')),
      (s) => {
        assert.equal(mayHoldReferences(s), false)
        assert.deepEqual(parseValue(s, 'K'), s === '' ? [] : [s])
      },
    ),
  )
})

test('escaping round-trips: $${ always reads as a literal ${', () => {
  fc.assert(
    // Strings built from `$`, `{`, `}` and letters, so `${`, `$${` and `$$${` come up on every run.
    fc.property(
      fc.array(fc.constantFrom('$', '{', '}', '${', 'a', '.', ' ')).map((xs) => xs.join('')),
      (s) => {
        // A function, not a replacement string: in one, `$$` stands for a single `$`.
        const escaped = s.replaceAll('${', () => '$${')
        const parts = parseValue(escaped, 'K')
        assert.ok(parts.every((p) => typeof p === 'string'))
        assert.equal(parts.join(''), s)
      },
    ),
  )
})
