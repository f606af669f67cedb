// Error reports (COFFER_SENTRY_DSN) from the side of whoever reads them: a local endpoint
// stands in for the error tracker, the server fails with credentials, cookies, tokens of
// every prefix, URL passwords, home directories and secret values in the request and in the
// error itself, and none of them is in what arrives — while the reports still say what failed.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { type AppContext, createContext } from '../../src/context.js'
import { ConfigError } from '../../src/errors.js'
import { generateToken, TOKEN_PREFIXES, type TokenKind } from '../../src/identity/token-format.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { NO_ERROR_REPORTS, scrubEvent, scrubText, startErrorReports } from '../../src/ops/error-reports.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'

const rand = (label: string) => `${label}-${randomBytes(12).toString('hex')}`
const KINDS = Object.keys(TOKEN_PREFIXES) as TokenKind[]

/** Canaries: each must be absent from everything a report carries. */
function makeCanaries() {
  const tokens = KINDS.map((k) => generateToken(k))
  // A cut-off token (as in a truncated log line) of every prefix.
  const cutTokens = KINDS.map((k) => `${TOKEN_PREFIXES[k]}${randomBytes(9).toString('hex')}`)
  return {
    tokens,
    cutTokens,
    bearer: generateToken('pat'),
    basicPassword: rand('basicpw'),
    sessionCookie: rand('sess'),
    otherCookie: rand('cookie'),
    apiKeyHeader: rand('apikey'),
    homeUser: rand('alice'),
    macUser: rand('bob'),
    dbUser: rand('dbuser'),
    dbPassword: rand('dbpw'),
    redisPassword: rand('redispw'),
    linkToken: rand('linktoken'),
    secretValue: rand('secretvalue'),
    forwardedFor: '203.0.113.77',
  }
}
type Canaries = ReturnType<typeof makeCanaries>

function secretsOf(c: Canaries): string[] {
  const { tokens, cutTokens, ...rest } = c
  return [...tokens, ...tokens.map((t) => t.slice(11, 43)), ...cutTokens, ...Object.values(rest)]
}

function assertNoCanary(text: string, c: Canaries, where: string): void {
  for (const s of secretsOf(c)) assert.ok(!text.includes(s), `${where} carries a canary (${s.split('-')[0]!.slice(0, 10)}…)`)
}

/** The text of an error whose message and cause are full of canaries. */
function poisonedMessage(c: Canaries): string {
  return [
    `boom: could not connect to postgres://${c.dbUser}:${c.dbPassword}@db.internal:5432/coffer`,
    `nor redis://:${c.redisPassword}@cache:6379`,
    `reading /home/${c.homeUser}/.coffer/root.key`,
    `sent Authorization: Bearer ${c.bearer}`,
    `tokens ${c.tokens.join(' ')} cut ${c.cutTokens.join(',')}`,
    `link https://vault.example.com/reset?token=${c.linkToken}`,
    `Cookie: coffer_session=${c.sessionCookie}; theme=${c.otherCookie}`,
  ].join('; ')
}

/** The parts of a received event the tests read. */
interface ReportedEvent {
  release?: string
  tags?: Record<string, string>
  request?: { method?: string; headers?: Record<string, string>; data?: unknown }
  exception?: { values?: Array<{ type: string; value: string }> }
}

/** A stand-in error tracker: records every envelope (gunzipped) it is sent. */
async function startEndpoint(): Promise<{ dsn: string; bodies: string[]; events(): ReportedEvent[]; close(): Promise<void> }> {
  const bodies: string[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (ch: Buffer) => chunks.push(ch))
    req.on('end', () => {
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      bodies.push(`${req.method} ${req.url}\n${JSON.stringify(req.headers)}\n${body.toString('utf8')}`)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    dsn: `http://publickey@127.0.0.1:${port}/1`,
    bodies,
    events() {
      const out: ReportedEvent[] = []
      for (const b of bodies) {
        const lines = b.split('\n').slice(2)
        for (let i = 1; i < lines.length - 1; i++) {
          if (!lines[i]!.startsWith('{"type":"event"')) continue
          out.push(JSON.parse(lines[i + 1]!))
        }
      }
      return out
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

describe('scrubEvent', () => {
  test('a hostile event keeps what went wrong and loses every credential, cookie, body and home path', () => {
    const c = makeCanaries()
    const event = {
      exception: {
        values: [
          {
            type: 'Error',
            value: poisonedMessage(c),
            stacktrace: {
              frames: [
                {
                  filename: `/home/${c.homeUser}/coffer/dist/chunks/app.js`,
                  abs_path: `/Users/${c.macUser}/coffer/src/server/app.ts`,
                  function: 'handler',
                  vars: { plaintext: c.secretValue },
                  context_line: `const url = "postgres://${c.dbUser}:${c.dbPassword}@db/coffer"`,
                },
              ],
            },
          },
        ],
      },
      request: {
        method: 'PUT',
        url: `https://vault.example.com/v1/things?token=${c.linkToken}&page=2`,
        query_string: `token=${c.linkToken}`,
        data: { value: c.secretValue },
        cookies: { coffer_session: c.sessionCookie },
        headers: {
          authorization: `Bearer ${c.bearer}`,
          Cookie: `coffer_session=${c.sessionCookie}`,
          'x-coffer-token': c.tokens[0],
          'x-api-key': c.apiKeyHeader,
          'x-forwarded-for': c.forwardedFor,
          'user-agent': 'coffer-cli/0.1.0',
        },
        env: { REMOTE_ADDR: c.forwardedFor },
      },
      user: { id: 'u-1', ip_address: c.forwardedFor, email: `${c.homeUser}@example.com` },
      breadcrumbs: [{ message: `GET https://${c.dbUser}:${c.dbPassword}@api.example.com/`, data: { token: c.tokens[1] } }],
      extra: { clientSecret: c.tokens[3], note: `see C:\\Users\\${c.macUser}\\coffer.log and /root/.coffer/root.key` },
    }
    const before = JSON.stringify(event)
    const out = scrubEvent(event)
    assert.equal(JSON.stringify(event), before, 'the input event is not changed')
    const text = JSON.stringify(out)
    assertNoCanary(text, c, 'the scrubbed event')
    assert.ok(!text.includes('/root/'), 'root’s home directory survived')
    // What helps a reader stays.
    assert.equal(out.exception.values[0]!.type, 'Error')
    assert.match(out.exception.values[0]!.value, /^boom: could not connect to postgres:\/\/\[redacted\]@db\.internal:5432\/coffer/)
    assert.match(out.exception.values[0]!.value, /reading ~\/\.coffer\/root\.key/)
    assert.equal(out.exception.values[0]!.stacktrace.frames[0]!.filename, '~/coffer/dist/chunks/app.js')
    assert.equal(out.request.method, 'PUT')
    assert.equal(out.request.url, 'https://vault.example.com/v1/things?token=[redacted]&page=2')
    assert.equal(out.request.headers['user-agent'], 'coffer-cli/0.1.0')
    assert.deepEqual(out.user, { id: 'u-1' })
  })

  test('a token of every prefix is scrubbed from text, whole or cut off', () => {
    for (const kind of KINDS) {
      const token = generateToken(kind)
      for (const t of [token, token.slice(0, 20), `${token}x`]) {
        const out = scrubText(`failed with ${t}.`)
        assert.ok(!out.includes(t.slice(11)), `a ${kind} token survived`)
        assert.equal(out, 'failed with coffer_[redacted].')
      }
    }
  })
})

describe('COFFER_SENTRY_DSN', () => {
  test('a DSN that is not one stops start-up, and the message does not quote it', () => {
    for (const bad of ['not a url', 'ftp://key@host/1', 'https://errors.example.com/1', `https://k@host/${'x'.repeat(3)}/`]) {
      let thrown: unknown
      try {
        buildSecrets(readEnv({ COFFER_SENTRY_DSN: bad }))
      } catch (err) {
        thrown = err
      }
      assert.ok(thrown instanceof ConfigError, bad)
      assert.equal(thrown.setting, 'COFFER_SENTRY_DSN')
      assert.ok(!thrown.message.includes(bad), 'the message quotes the DSN')
    }
    assert.equal(
      buildSecrets(readEnv({ COFFER_SENTRY_DSN: 'https://abc@o1.ingest.example.com/42' })).errorReportsDsn,
      'https://abc@o1.ingest.example.com/42',
    )
  })

  test('unset: nothing is reported, nothing is loaded', async () => {
    assert.equal(await startErrorReports(undefined, { release: '0' }), NO_ERROR_REPORTS)
    assert.equal(NO_ERROR_REPORTS.enabled, false)
  })
})

describe('error reports reach the DSN without a canary', () => {
  let endpoint: Awaited<ReturnType<typeof startEndpoint>>
  let ctx: AppContext
  let app: FastifyInstance
  let dataDir: string
  const c = makeCanaries()

  before(async () => {
    endpoint = await startEndpoint()
    dataDir = await mkdtemp(join(tmpdir(), 'coffer-reports-'))
    const e = readEnv({
      COFFER_DATA_DIR: dataDir,
      COFFER_LOG_LEVEL: 'silent',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
      COFFER_SENTRY_DSN: endpoint.dsn,
    })
    ctx = await createContext(buildConfig(e), buildSecrets(e))
    app = await buildApp(ctx)
    // A route that fails the way a bug does, with canaries in its message and its cause. The
    // app refuses routes added around its pipeline; this one says it is a public page.
    app.post('/test/boom', { config: { action: 'public', pipeline: 'page' } }, async () => {
      throw new Error(poisonedMessage(c), {
        cause: new Error(`inner failure at /Users/${c.macUser}/coffer with ${c.tokens[2]}`),
      })
    })
    app.post('/test/teapot', { config: { action: 'public', pipeline: 'page' } }, async () => {
      throw Object.assign(new Error(`client mistake ${c.tokens[0]}`), { statusCode: 400, code: 'FST_ERR_TEST' })
    })
    await app.ready()
  })
  after(async () => {
    await app?.close()
    await ctx?.close()
    await endpoint?.close()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  test('a 500 with canaries in the request and the error: reported once, scrubbed, still useful', async () => {
    assert.equal(ctx.errorReports.enabled, true)
    const requests = [
      {
        authorization: `Bearer ${c.bearer}`,
        cookie: `coffer_session=${c.sessionCookie}; theme=${c.otherCookie}`,
        'x-api-key': c.apiKeyHeader,
        'x-forwarded-for': c.forwardedFor,
      },
      { authorization: `Basic ${Buffer.from(`admin:${c.basicPassword}`).toString('base64')}`, 'x-coffer-token': c.tokens[4]! },
    ]
    const ids: string[] = []
    for (const headers of requests) {
      const res = await app.inject({
        method: 'POST',
        url: `/test/boom?token=${c.linkToken}&next=/home/${c.homeUser}`,
        headers: { ...headers, 'user-agent': 'report-test/1' },
        payload: { value: c.secretValue, password: c.basicPassword },
      })
      assert.equal(res.statusCode, 500)
      assertNoCanary(res.body, c, 'the 500 answer')
      ids.push(JSON.parse(res.body).error.requestId)
    }
    // Client errors are not reports.
    assert.equal((await app.inject({ method: 'POST', url: '/test/teapot', payload: {} })).statusCode, 400)
    assert.equal((await app.inject({ method: 'GET', url: `/v1/nowhere/${c.tokens[5]}` })).statusCode, 404)
    assert.equal(await ctx.errorReports.flush(10_000), true, 'the reports were sent')

    const events = endpoint.events()
    assert.equal(events.length, 2, `two reports, not ${events.length}`)
    for (const body of endpoint.bodies) assertNoCanary(body, c, 'a request to the error tracker')
    for (const [i, ev] of events.entries()) {
      assert.equal(ev.tags?.request_id, ids[i], 'the report names the request id the client saw')
      assert.equal(ev.tags?.route, '/test/boom')
      assert.equal(ev.request?.method, 'POST')
      assert.equal(ev.request?.headers?.['user-agent'], 'report-test/1')
      assert.equal(ev.release, 'coffer@0.1.0')
      const values = (ev.exception?.values ?? []) as Array<{ type: string; value: string }>
      assert.ok(
        values.some((v) => v.value.startsWith('boom: could not connect')),
        'the error message (scrubbed) is there',
      )
      assert.ok(
        values.some((v) => v.value.startsWith('inner failure at ~/coffer')),
        'its cause is there too',
      )
      assert.equal(ev.request?.data, undefined, 'the body is not sent')
    }
  })
})

describe('a real server error through the API is reported without the caller’s credentials', () => {
  let endpoint: Awaited<ReturnType<typeof startEndpoint>>
  let h: Harness

  before(async () => {
    endpoint = await startEndpoint()
    h = await startHarness('sqlite', { COFFER_SENTRY_DSN: endpoint.dsn })
  })
  after(async () => {
    await h?.close()
    await endpoint?.close()
  })

  test('a ciphertext that no longer decrypts: 500, one report, no token or value in it', async () => {
    const a = api(h.app, h.a.token)
    const value = rand('value')
    const p = await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Payments' })
    assert.equal(p.status, 201)
    const env = `/v1/workspaces/${h.a.slug}/projects/${p.body.project.slug}/environments/development`
    const put = await a.put(`${env}/secrets/API_KEY`, { value })
    assert.equal(put.status, 200)
    const row = await h.db
      .selectFrom('secret_versions')
      .select('value_ct')
      .where('secret_id', '=', put.body.secret.id)
      .executeTakeFirstOrThrow()
    const ct = Buffer.from(row.value_ct!)
    ct[ct.length - 20]! ^= 0x01
    await h.db.updateTable('secret_versions').set({ value_ct: ct }).where('secret_id', '=', put.body.secret.id).execute()
    const res = await a.get(`${env}/secrets/API_KEY?reveal=true`)
    assert.equal(res.status, 500)
    assert.equal(res.body.error.code, 'ERR_DECRYPTION_FAILED')
    assert.equal(await h.ctx.errorReports.flush(10_000), true)
    const events = endpoint.events()
    assert.equal(events.length, 1)
    assert.equal(events[0]!.tags?.request_id, res.body.error.requestId)
    assert.equal(events[0]!.exception?.values?.at(-1)?.type, 'DecryptionError')
    for (const body of endpoint.bodies) {
      for (const s of [h.a.token, h.a.token.slice(11, 43), value]) assert.ok(!body.includes(s), 'a report carries the token or the value')
    }
  })
})
