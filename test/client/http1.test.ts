// The client's HTTP/1.1 transport (src/client/http1.ts) against scripted TCP servers: every way
// an answer can be framed, cut into pieces anywhere, connections kept and dropped, and the
// failures a user sees (refused, reset, timed out, not HTTP).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import fc from 'fast-check'
import { AnswerReader, Http1Connections } from '../../src/client/http1.js'

interface Scripted {
  url: string
  /** Connections accepted so far. */
  connections: number
  /** Every request's bytes, as received. */
  requests: string[]
  server: Server
}

/**
 * A TCP server that answers the n-th request (across connections) with `answers[n]`: the bytes
 * to write, in pieces (a number: a pause of that many ms), and whether to close the connection afterwards.
 */
async function scripted(answers: Array<{ pieces: Array<string | Buffer | number>; close?: boolean } | 'silent'>): Promise<Scripted> {
  const s: Scripted = { url: '', connections: 0, requests: [], server: createServer() }
  const sockets = new Set<Socket>()
  s.server.on('connection', (socket) => {
    s.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let buf = ''
    socket.on('data', async (d) => {
      buf += d.toString('latin1')
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        s.requests.push(buf.slice(0, end + 4 + length))
        buf = buf.slice(end + 4 + length)
        const answer = answers[s.requests.length - 1]
        if (answer === undefined || answer === 'silent') continue
        for (const p of answer.pieces) {
          if (typeof p === 'number') await new Promise((r) => setTimeout(r, p))
          else socket.write(p)
          await new Promise((r) => setImmediate(r))
        }
        if (answer.close) socket.end()
      }
    })
  })
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r))
  const address = s.server.address()
  assert.ok(address && typeof address === 'object')
  s.url = `http://127.0.0.1:${address.port}`
  servers.push(() => {
    for (const socket of sockets) socket.destroy()
    s.server.close()
  })
  return s
}
const servers: Array<() => void> = []
after(() => {
  for (const stop of servers) stop()
})

const json = (body: string, extra = '') =>
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`

describe('HTTP/1.1 transport', () => {
  test('sends the request line, Host, the headers and the body as written', async () => {
    const s = await scripted([{ pieces: [json('{}')] }])
    const c = new Http1Connections(`${s.url}/prefix`)
    const body = Buffer.from('{"value":"é"}')
    await c.send('PUT', '/v1/x%20y?reveal=true', { accept: 'application/json', 'content-length': String(body.length) }, body)
    assert.equal(
      s.requests[0],
      `PUT /v1/x%20y?reveal=true HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nConnection: keep-alive\r\naccept: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.toString('latin1')}`,
    )
    c.close()
  })

  test('a Content-Length answer, cut into single bytes, and the connection reused', async () => {
    const text = JSON.stringify({ key: 'API_KEY', value: 'ünïcode ✓' })
    const bytes = Buffer.from(json(text))
    const s = await scripted([{ pieces: [...bytes].map((b) => Buffer.from([b])) }, { pieces: [json('{"n":2}')] }])
    const c = new Http1Connections(s.url)
    assert.deepEqual(await c.send('GET', '/a', {}), { status: 200, text })
    assert.deepEqual(await c.send('GET', '/b', {}), { status: 200, text: '{"n":2}' })
    assert.equal(s.connections, 1, 'one kept-alive connection for both')
    c.close()
  })

  test('a chunked answer with extensions and trailers', async () => {
    const s = await scripted([
      {
        pieces: [
          'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n',
          '5;name=value\r\nhello\r\n',
          '1',
          '\r\n \r\n',
          '6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n',
        ],
      },
      { pieces: [json('"again"')] },
    ])
    const c = new Http1Connections(s.url)
    assert.deepEqual(await c.send('POST', '/a', { 'content-length': '0' }), { status: 201, text: 'hello world!' })
    assert.deepEqual(await c.send('GET', '/b', {}), { status: 200, text: '"again"' })
    assert.equal(s.connections, 1)
    c.close()
  })

  test('an answer framed by the end of the connection, then a new connection', async () => {
    const s = await scripted([{ pieces: ['HTTP/1.1 200 OK\r\n\r\n', 'up to ', 'the end'], close: true }, { pieces: [json('1')] }])
    const c = new Http1Connections(s.url)
    assert.deepEqual(await c.send('GET', '/a', {}), { status: 200, text: 'up to the end' })
    assert.deepEqual(await c.send('GET', '/b', {}), { status: 200, text: '1' })
    assert.equal(s.connections, 2)
    c.close()
  })

  test('Connection: close and HTTP/1.0 answers are not reused; 204 has no body; interim 1xx answers are skipped', async () => {
    const s = await scripted([
      { pieces: [json('"a"', 'Connection: close\r\n')] },
      { pieces: [json('"b"').replace('HTTP/1.1', 'HTTP/1.0')] },
      { pieces: ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n', json('"c"')] },
      { pieces: ['HTTP/1.1 204 No Content\r\n\r\n'] },
      { pieces: [json('"d"')] },
    ])
    const c = new Http1Connections(s.url)
    assert.equal((await c.send('GET', '/1', {})).text, '"a"')
    assert.equal((await c.send('GET', '/2', {})).text, '"b"')
    assert.equal((await c.send('GET', '/3', {})).text, '"c"')
    assert.deepEqual(await c.send('DELETE', '/4', {}), { status: 204, text: '' })
    assert.equal((await c.send('GET', '/5', {})).text, '"d"')
    assert.equal(s.connections, 3, 'a new connection after each of the first two, then one kept')
    c.close()
  })

  test('an idle connection the server closed is dropped, and the next request connects again', async () => {
    const s = await scripted([{ pieces: [json('1')], close: true }, { pieces: [json('2')] }])
    const c = new Http1Connections(s.url)
    // The server closes after the answer although it did not say so: the connection is kept,
    // then dropped when its end arrives.
    assert.equal((await c.send('GET', '/a', {})).text, '1')
    await new Promise((r) => setTimeout(r, 50))
    assert.equal((await c.send('GET', '/b', {})).text, '2')
    assert.equal(s.connections, 2)
    c.close()
  })

  test('an idle connection that receives anything unasked is dropped', async () => {
    const s = await scripted([{ pieces: [json('1'), 20, 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nunasked'] }, { pieces: [json('2')] }])
    const c = new Http1Connections(s.url)
    assert.equal((await c.send('GET', '/a', {})).text, '1')
    await new Promise((r) => setTimeout(r, 50))
    assert.equal((await c.send('GET', '/b', {})).text, '2')
    assert.equal(s.connections, 2)
    c.close()
  })

  test('failures: refused, reset mid-answer, not HTTP, a bad Content-Length, a timeout', async () => {
    const refused = await scripted([])
    const refusedUrl = refused.url
    await new Promise((r) => refused.server.close(r))
    await assert.rejects(new Http1Connections(refusedUrl).send('GET', '/', {}), { code: 'ECONNREFUSED' })

    const s = await scripted([
      { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'], close: true },
      { pieces: ['SSH-2.0-OpenSSH_9.2\r\n\r\n'] },
      { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc'] },
      'silent',
    ])
    const c = new Http1Connections(s.url, { timeoutMs: 300 })
    await assert.rejects(c.send('GET', '/1', {}), { code: 'ECONNRESET' })
    await assert.rejects(c.send('GET', '/2', {}), /not valid HTTP\/1\.1 \(the status line\)/)
    await assert.rejects(c.send('GET', '/3', {}), /not valid HTTP\/1\.1 \(Content-Length\)/)
    await assert.rejects(c.send('GET', '/4', {}), /the request timed out/)
    c.close()
  })

  test('a header value with CR or LF is refused before anything is sent (no header injection)', async () => {
    const s = await scripted([])
    const c = new Http1Connections(s.url)
    await assert.rejects(c.send('GET', '/', { authorization: 'Bearer x\r\nX-Injected: 1' }), { code: 'ERR_INVALID_CHAR' })
    await assert.rejects(c.send('GET', '/a b', {}), { code: 'ERR_UNESCAPED_CHARACTERS' })
    await assert.rejects(c.send('GET', '/', { 'bad name': 'x' }), { code: 'ERR_INVALID_HTTP_TOKEN' })
    assert.equal(s.connections, 0)
  })

  test('a large answer from node:http (chunked, many writes) arrives whole', async () => {
    const value = 'x'.repeat(1000)
    const rows = Array.from({ length: 2000 }, (_, i) => ({ key: `K${i}`, value }))
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      for (let i = 0; i < rows.length; i += 100) res.write(`${i ? ',' : '['}${rows.slice(i, i + 100).map((r) => JSON.stringify(r))}`)
      res.end(']')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    servers.push(() => server.close())
    const { port } = server.address() as { port: number }
    const c = new Http1Connections(`http://127.0.0.1:${port}`)
    const answer = await c.send('GET', '/', {})
    assert.equal(answer.status, 200)
    assert.ok(answer.text.length > 2_000_000)
    assert.deepEqual(JSON.parse(answer.text), rows)
    c.close()
  })

  test('an idle connection does not keep the process alive', async () => {
    const s = await scripted([{ pieces: [json('{}')] }])
    const script = `import { Http1Connections } from ${JSON.stringify(new URL('../../src/client/http1.ts', import.meta.url).pathname)}
      const c = new Http1Connections(${JSON.stringify(s.url)})
      await c.send('GET', '/', {})`
    const started = Date.now()
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' })
    const code = await new Promise((r) => child.once('exit', r))
    assert.equal(code, 0)
    assert.equal(s.connections, 1)
    assert.ok(Date.now() - started < 4_000, 'the process ended without waiting for the server to close')
  })

  test('any cut of a Content-Length or chunked answer reads the same', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.boolean(), fc.array(fc.nat({ max: 400 }), { maxLength: 12 }), (text, chunked, cuts) => {
        const body = Buffer.from(text)
        let wire: Buffer
        if (chunked) {
          const half = Math.floor(body.length / 2)
          const parts = [body.subarray(0, half), body.subarray(half)].filter((p) => p.length)
          wire = Buffer.concat([
            Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
            ...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]),
            Buffer.from('0\r\n\r\n'),
          ])
        } else wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])
        const reader = new AnswerReader()
        let at = 0
        for (const cut of [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)) {
          reader.push(wire.subarray(at, cut))
          at = cut
        }
        reader.push(wire.subarray(at))
        assert.ok(reader.complete)
        assert.equal(reader.text(), text)
        assert.ok(reader.reusable)
      }),
      { numRuns: 500 },
    )
  })
})
