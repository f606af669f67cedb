// The guarded outbound client, from the attacker's side: a user gives Coffer a URL (a webhook
// endpoint, an OAuth provider) aimed at the cloud metadata service, loopback, a private
// network, or a name or redirect that leads there. Real HTTP(S) receivers on loopback
// addresses (Linux routes all of 127/8 to lo: 127.0.0.2 and 127.0.0.3 stand in for public
// hosts the test allows), and a real DNS server on loopback for names.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ConfigError } from '../../src/errors.js'
import { AddressPolicy, parseAllowList } from '../../src/ops/address-policy.js'
import { buildConfig } from '../../src/ops/config.js'
import { OutboundClient, type OutboundOutcome } from '../../src/ops/outbound.js'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js'

interface Receiver {
  readonly url: string
  readonly port: number
  readonly hits: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>
  close(): Promise<void>
}

async function receiver(
  host: string,
  handle: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_q, res) => res.end('ok'),
  make: (fn: (req: IncomingMessage, res: ServerResponse) => void) => Server = (fn) => createServer(fn),
): Promise<Receiver> {
  const hits: Receiver['hits'] = []
  const server = make((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      handle(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://${host}:${port}`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

function allowing(list: string): AddressPolicy {
  const entries = parseAllowList(list)
  assert.ok(typeof entries !== 'string', String(entries))
  return new AddressPolicy(entries)
}

async function refused(p: Promise<unknown>, range?: RegExp): Promise<Error> {
  const err = await p.then(
    () => assert.fail('the request went through'),
    (e: unknown) => e as Error & { code?: string },
  )
  assert.equal((err as { code?: string }).code, 'ERR_OUTBOUND_REFUSED', String(err))
  if (range) assert.match(err.message, range)
  return err
}

describe('guarded outbound client', () => {
  let dns: DnsServer
  let loopback: Receiver // 127.0.0.1: what an attacker wants to reach
  let publicHost: Receiver // 127.0.0.2, allowed: stands in for a public host
  let other: Receiver // 127.0.0.3, allowed: another public host
  const outcomes: OutboundOutcome[] = []
  let client: OutboundClient

  before(async () => {
    dns = await startDnsServer()
    loopback = await receiver('127.0.0.1')
    other = await receiver('127.0.0.3')
    publicHost = await receiver('127.0.0.2', (req, res, body) => {
      const u = new URL(req.url ?? '/', 'http://x')
      if (u.pathname === '/to-loopback') res.writeHead(302, { location: `${loopback.url}/stolen` }).end()
      else if (u.pathname === '/to-loopback-by-name') res.writeHead(307, { location: `http://sneaky.test:${loopback.port}/stolen` }).end()
      else if (u.pathname === '/to-other') res.writeHead(303, { location: `${other.url}/landed` }).end()
      else if (u.pathname === '/loop') res.writeHead(302, { location: '/loop' }).end()
      else if (u.pathname === '/big') res.end(Buffer.alloc(2 * 1024 * 1024, 'a'))
      else if (u.pathname === '/big-chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        for (let i = 0; i < 40; i++) res.write(Buffer.alloc(64 * 1024, 'b'))
        res.end()
      } else if (u.pathname === '/hang') {
        // never answers
      } else res.end(JSON.stringify({ method: req.method, body }))
    })
    dns.set('hooks.test', ['127.0.0.2'])
    dns.set('internal.test', ['10.0.0.1'])
    dns.set('metadata.test', ['169.254.169.254'])
    dns.set('mixed.test', ['127.0.0.2', '10.0.0.1'])
    dns.set('sneaky.test', ['127.0.0.1'])
    dns.set('v6-loopback.test', ['::1'])
    dns.set('v6-mapped.test', ['::ffff:7f00:1'])
    client = new OutboundClient({
      policy: allowing('127.0.0.2/32,127.0.0.3'),
      resolve: (h) => dns.resolve(h),
      onOutcome: (o) => outcomes.push(o),
    })
  })

  after(async () => {
    await Promise.all([dns.close(), loopback.close(), publicHost.close(), other.close()])
  })

  test('an allowed address is reached, with method, headers and body', async () => {
    const r = await client.request(`${publicHost.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    })
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body.toString()), { method: 'POST', body: '{"a":1}' })
    assert.equal(r.address, '127.0.0.2')
  })

  test('the cloud metadata service is refused, by address and by a name resolving to it', async () => {
    await refused(client.request('http://169.254.169.254/latest/meta-data/iam/security-credentials/'), /link-local/)
    await refused(client.request('http://metadata.test/computeMetadata/v1/'), /link-local/)
  })

  test('loopback is refused unless COFFER_OUTBOUND_ALLOW lists it', async () => {
    await refused(client.request(`${loopback.url}/x`), /loopback/)
    // localhost through the system resolver (/etc/hosts), as in production.
    await refused(new OutboundClient({ policy: allowing('127.0.0.2/32') }).request(`http://localhost:${loopback.port}/x`), /loopback/)
    await refused(client.request(`http://[::1]:${loopback.port}/x`), /loopback/)
    assert.equal(loopback.hits.length, 0)
    const open = new OutboundClient({ policy: allowing('127.0.0.1/32') })
    assert.equal((await open.request(`${loopback.url}/allowed`)).status, 200)
    assert.equal(loopback.hits.length, 1)
    loopback.hits.length = 0
  })

  test('a name resolving to a private address is refused, without saying which address', async () => {
    const err = await refused(client.request('http://internal.test/'), /private/)
    assert.doesNotMatch(err.message, /10\.0\.0\.1/)
    // One private record among public ones refuses the request: no fallback to the public one.
    await refused(client.request('http://mixed.test/'), /private/)
    await refused(client.request('http://v6-loopback.test/'), /loopback/)
    await refused(client.request('http://v6-mapped.test/'), /IPv4-mapped/)
  })

  test('private, carrier-grade NAT, unique-local and other special ranges are refused', async () => {
    for (const url of [
      'http://10.1.2.3/',
      'http://172.16.0.1/',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
      'http://224.0.0.1/',
      'http://255.255.255.255/',
      'http://[fd00:ec2::254]/',
      'http://[fe80::1]/',
      'http://[64:ff9b::a00:1]/',
      'http://[2002:7f00:1::]/',
    ])
      await refused(client.request(url))
  })

  test('IPv4-mapped IPv6 is refused even when its IPv4 address is allowed', async () => {
    const open = new OutboundClient({ policy: allowing('127.0.0.1/32') })
    await refused(open.request(`http://[::ffff:127.0.0.1]:${loopback.port}/`), /IPv4-mapped/)
    await refused(open.request(`http://[::ffff:7f00:1]:${loopback.port}/`), /IPv4-mapped/)
    assert.equal(loopback.hits.length, 0)
  })

  test('non-canonical IPv4 forms are refused even when the address is allowed', async () => {
    const open = new OutboundClient({ policy: allowing('127.0.0.0/8') })
    for (const host of ['2130706433', '0x7f.1', '0x7f000001', '0177.0.0.1', '127.1', '127.0.1', '0x7F.0.0.1'])
      await refused(open.request(`http://${host}:${loopback.port}/`), /non-canonical/)
    assert.equal(loopback.hits.length, 0)
  })

  test('hosts for other protocols (a database server) pass the same checks, numeric forms included', async () => {
    const open = new OutboundClient({ policy: allowing('127.0.0.0/8') })
    for (const host of ['0x7f.1', '2130706433', '0177.0.0.1', '127.1']) await refused(open.address(host), /non-canonical/)
    await refused(client.address('169.254.169.254'), /link-local/)
    await refused(client.address('internal.test'), /private/)
    assert.deepEqual(await client.address('hooks.test'), { address: '127.0.0.2', family: 4 })
  })

  test('a redirect to loopback is refused, whether by address or by name; the redirect itself is returned when not followed', async () => {
    await refused(client.request(`${publicHost.url}/to-loopback`, { maxRedirects: 3 }), /loopback/)
    await refused(client.request(`${publicHost.url}/to-loopback-by-name`, { maxRedirects: 3 }), /loopback/)
    assert.equal(loopback.hits.length, 0)
    const r = await client.request(`${publicHost.url}/to-loopback`)
    assert.equal(r.status, 302)
    assert.equal(loopback.hits.length, 0)
  })

  test('an allowed redirect is followed: 303 turns POST into GET, and Authorization stays with its origin', async () => {
    const before = other.hits.length
    const r = await client.request(`${publicHost.url}/to-other`, {
      method: 'POST',
      body: 'x=1',
      headers: { authorization: 'Bearer not-for-you', 'content-type': 'text/plain' },
      maxRedirects: 2,
    })
    assert.equal(r.status, 200)
    assert.equal(r.url, `${other.url}/landed`)
    const hit = other.hits[before]!
    assert.equal(hit.method, 'GET')
    assert.equal(hit.body, '')
    assert.equal(hit.headers.authorization, undefined)
    assert.equal(hit.headers['content-type'], undefined)
    const loop = await client.request(`${publicHost.url}/loop`, { maxRedirects: 3 }).catch((e: { code?: string }) => e)
    assert.equal((loop as { code?: string }).code, 'ERR_OUTBOUND_FAILED')
  })

  test('the connection is pinned to the checked address: the name is resolved once, by the guard', async () => {
    // The system resolver does not know hooks.test: only the pinned address can reach the receiver.
    let calls = 0
    dns.set('rebind.test', () => (++calls <= 2 ? ['127.0.0.2'] : ['127.0.0.1']))
    const r = await client.request(`http://rebind.test:${publicHost.port}/echo`)
    assert.equal(r.status, 200)
    assert.equal(r.address, '127.0.0.2')
    assert.equal(calls, 2, 'one A and one AAAA query, nothing after the check')
    assert.equal(publicHost.hits.at(-1)?.headers.host, `rebind.test:${publicHost.port}`)
    assert.equal(loopback.hits.length, 0)
  })

  test('schemes other than http(s) and credentials in the URL are refused', async () => {
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.2/', 'gopher://127.0.0.2:70/', 'javascript:alert(1)', 'not a url'])
      await refused(client.request(url))
    await refused(client.request(`http://user:pass@127.0.0.2:${publicHost.port}/`), /user name or password/)
  })

  test('responses over the size limit are discarded, declared or streamed', async () => {
    for (const path of ['/big', '/big-chunked']) {
      const err = await client.request(`${publicHost.url}${path}`, { maxBytes: 1024 * 1024 }).catch((e: { code?: string }) => e)
      assert.equal((err as { code?: string }).code, 'ERR_OUTBOUND_RESPONSE_TOO_LARGE', path)
    }
  })

  test('a server that never answers times out; a closed port and an unknown name fail cleanly', async () => {
    const t0 = performance.now()
    const err = await client.request(`${publicHost.url}/hang`, { timeoutMs: 300 }).catch((e: { code?: string }) => e)
    assert.equal((err as { code?: string }).code, 'ERR_OUTBOUND_TIMEOUT')
    assert.ok(performance.now() - t0 < 2000)
    const closed = await receiver('127.0.0.3')
    await closed.close()
    const refusedConn = await client.request(closed.url).catch((e: { code?: string; message: string }) => e)
    assert.equal((refusedConn as { code?: string }).code, 'ERR_OUTBOUND_FAILED')
    const unknown = await client.request('http://nowhere.test/').catch((e: { code?: string }) => e)
    assert.equal((unknown as { code?: string }).code, 'ERR_OUTBOUND_FAILED')
  })

  test('HTTPS through a pinned connection still verifies the certificate against the name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coffer-outbound-tls-'))
    try {
      const r = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          'key.pem',
          '-out',
          'cert.pem',
          '-days',
          '1',
          '-subj',
          '/CN=hooks.test',
          '-addext',
          'subjectAltName=DNS:hooks.test',
        ],
        { cwd: dir, encoding: 'utf8' },
      )
      assert.equal(r.status, 0, r.stderr)
      const cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
      const key = readFileSync(join(dir, 'key.pem'), 'utf8')
      const tls = await receiver(
        '127.0.0.2',
        (_q, res) => res.end('secure'),
        (fn) => createTlsServer({ cert, key }, fn),
      )
      try {
        const trusting = new OutboundClient({ policy: allowing('127.0.0.2/32'), resolve: (h) => dns.resolve(h), ca: cert })
        const ok = await trusting.request(`https://hooks.test:${tls.port}/`)
        assert.equal(ok.body.toString(), 'secure')
        // The same server reached by another name that resolves to it: the certificate does not match.
        dns.set('other-name.test', ['127.0.0.2'])
        const bad = await trusting.request(`https://other-name.test:${tls.port}/`).catch((e: { code?: string }) => e)
        assert.equal((bad as { code?: string }).code, 'ERR_OUTBOUND_FAILED')
      } finally {
        await tls.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('every request is counted by outcome', () => {
    for (const o of ['ok', 'refused', 'failed', 'timeout', 'too-large'] as const) assert.ok(outcomes.includes(o), o)
  })
})

describe('COFFER_OUTBOUND_ALLOW', () => {
  test('addresses and CIDR ranges are accepted; anything else stops start-up naming the setting', () => {
    const c = buildConfig({ COFFER_OUTBOUND_ALLOW: '10.20.0.0/16, 127.0.0.1,fd00::/8' }, {}, tmpdir())
    assert.deepEqual(
      c.outbound.allow.map((a) => `${a.address}/${a.bits}`),
      ['10.20.0.0/16', '127.0.0.1/32', 'fd00::/8'],
    )
    assert.deepEqual(buildConfig({}, {}, tmpdir()).outbound.allow, [])
    for (const bad of ['10.0.0.0/33', 'intranet', '0x7f.1', '127.1', '10.0.0.0/8/1', '*']) {
      assert.throws(
        () => buildConfig({ COFFER_OUTBOUND_ALLOW: bad }, {}, tmpdir()),
        (e: unknown) => e instanceof ConfigError && e.setting === 'COFFER_OUTBOUND_ALLOW',
        bad,
      )
    }
  })
})
