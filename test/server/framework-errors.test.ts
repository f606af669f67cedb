// Answers that Fastify's router or Node's HTTP parser give before any route runs use the
// error envelope with a stable code, echo none of the input, and carry the security headers —
// as every route's answer does. Sent over a raw socket: no client library tidies them first.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, test } from 'node:test'
import { startHarness, type Harness } from '../helpers/harness.js'

let h: Harness
let port = 0
before(async () => {
  h = await startHarness('sqlite')
  port = Number(new URL(await h.app.listen({ port: 0, host: '127.0.0.1' })).port)
})
after(() => h?.close())

/** Sends `request` as bytes and returns the status, lower-cased headers and body of the answer. */
function raw(request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request))
    let buf = ''
    s.on('data', (d) => {
      buf += d.toString('latin1')
    })
    s.on('error', reject)
    s.on('close', () => {
      const [head = '', body = ''] = buf.split('\r\n\r\n', 2)
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body })
    })
    setTimeout(() => s.destroy(), 5000)
  })
}

const canary = 'zz-canary-zz'
const cases: Array<[string, string, number, string]> = [
  [
    'an invalid percent-encoding',
    `GET /v1/workspaces/%ff${canary} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    400,
    'ERR_MALFORMED_REQUEST',
  ],
  [
    'a 5,000-character path segment',
    `GET /v1/workspaces/${canary}${'a'.repeat(5000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    414,
    'ERR_URI_TOO_LONG',
  ],
  ['a garbage request line', `${canary} \u0001\r\n\r\n`, 400, 'ERR_MALFORMED_REQUEST'],
  ['oversized headers', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${canary}${'a'.repeat(20000)}\r\n\r\n`, 431, 'ERR_HEADERS_TOO_LARGE'],
]

for (const [what, request, status, code] of cases) {
  test(`${what}: ${status} ${code} in the envelope, with the security headers, echoing nothing`, async () => {
    const r = await raw(request)
    assert.equal(r.status, status)
    const body = JSON.parse(r.body) as { error: { code: string; message: string; requestId: string } }
    assert.equal(body.error.code, code)
    assert.match(body.error.requestId, /^[0-9a-f-]{36}$/)
    assert.equal(r.headers['x-request-id'], body.error.requestId)
    assert.ok(!r.body.includes(canary), 'the answer echoes none of the request')
    assert.match(r.headers['strict-transport-security'] ?? '', /max-age=\d+; includeSubDomains; preload/)
    assert.equal(r.headers['x-content-type-options'], 'nosniff')
    assert.equal(r.headers['cache-control'], 'no-store')
    assert.match(r.headers['content-security-policy'] ?? '', /default-src 'none'.*frame-ancestors 'none'/)
    assert.match(r.headers['content-type'] ?? '', /^application\/json/)
  })
}

test('the server keeps serving after each of them', async () => {
  const r = await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.equal(r.status, 200)
})
