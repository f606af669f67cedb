// The /docs page on its own: every operation it is given, grouped by tag, counted as listed,
// and every string of the document rendered as text.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { docsPage } from '../../src/server/docs-page.js'

const op = (summary: string, tag: string) => ({
  summary,
  tags: [tag],
  parameters: [{ name: 'key', in: 'path', required: true }],
  'x-coffer-action': 'secret.read',
})

describe('docsPage', () => {
  test('lists every operation under its tag and prints that count', () => {
    const page = docsPage({
      paths: {
        '/v1/a/{key}': { get: op('Read a', 'alpha'), put: op('Write a', 'alpha') },
        '/v1/b': { post: op('Make b', 'beta') },
        '/v1/c': { delete: op('Drop c', 'alpha') },
      },
    })
    assert.match(page, /<p>4 endpoints under/)
    assert.equal([...page.matchAll(/<section>/g)].length, 4)
    assert.equal([...page.matchAll(/<h2>/g)].length, 2, 'one heading per tag')
    const alpha = page.slice(page.indexOf('<h2>alpha</h2>'), page.indexOf('<h2>beta</h2>'))
    for (const s of ['Read a', 'Write a', 'Drop c']) assert.ok(alpha.includes(s), `${s} is under alpha`)
  })

  test('renders every string of the document as text', () => {
    const page = docsPage({ paths: { '/v1/x': { get: op('<script>alert(1)</script> & "q"', '<img src=x onerror=y>') } } })
    assert.ok(!page.includes('<script'), 'no script element')
    assert.ok(!page.includes('<img'), 'no injected element')
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;'))
  })
})
