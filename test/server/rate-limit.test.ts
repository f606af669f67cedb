// Rate limits from the attacker's side, in memory and in Redis: password guessing per account
// and per address with a lockout that doubles and stops at its cap, token guessing per
// address, per-token minute and monthly caps. Every refusal is the same 429 ERR_RATE_LIMITED
// with Retry-After, whoever the account is.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { bootstrapWorkspace, createContext, type AppContext } from '../../src/context.js'
import { addMember, ensureUser, issueToken, revokeToken } from '../../src/identity/identity-service.js'
import { hashPassword } from '../../src/identity/passwords.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { monthWindow } from '../../src/server/rate-limit.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Node {
  app: FastifyInstance
  ctx: AppContext
  token: string
  otherToken: string
  /** The Owner of workspace A (a@example.com) and the workspace's id. */
  owner: { id: string; workspaceId: string }
  close(): Promise<void>
}

/**
 * A Coffer app with `env` settings and, like an authentication endpoint of the API, a
 * sign-in route that opts into the authentication limits with one line of config.
 */
async function startNode(env: Record<string, string>): Promise<Node> {
  const dataDir = await mkdtemp(join(tmpdir(), 'coffer-rl-'))
  const e = readEnv({
    COFFER_DATA_DIR: dataDir,
    COFFER_LOG_LEVEL: 'silent',
    COFFER_CHECKPOINT_INTERVAL: '0',
    COFFER_AUDIT_VERIFY_INTERVAL: '0',
    ...env,
  })
  const ctx = await createContext(buildConfig(e), buildSecrets(e))
  const app = await buildApp(ctx)
  // A stand-in authentication endpoint that only answers, so the limits are seen alone. The
  // app refuses routes added around its pipeline; this one says it is a public page.
  app.post('/test/sign-in', { config: { action: 'public', pipeline: 'page', authRateLimit: true } }, async () => ({ ok: true }))
  await app.ready()
  const a = await bootstrapWorkspace(ctx, { name: `A ${randomBytes(3).toString('hex')}`, ownerEmail: 'a@example.com' })
  const b = await bootstrapWorkspace(ctx, { name: `B ${randomBytes(3).toString('hex')}`, ownerEmail: 'b@example.com' })
  return {
    app,
    ctx,
    token: a.token,
    otherToken: b.token,
    owner: { id: a.owner.id, workspaceId: a.workspace.id },
    async close() {
      await app.close()
      await ctx.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

interface Res {
  status: number
  code?: string
  retryAfter?: number
  body: string
}

async function send(
  app: FastifyInstance,
  opts: { method?: 'GET' | 'POST'; url: string; ip?: string; auth?: string; body?: object; headers?: Record<string, string> },
): Promise<Res> {
  const r = await app.inject({
    method: opts.method ?? 'GET',
    url: opts.url,
    remoteAddress: opts.ip ?? '198.51.100.7',
    headers: { ...(opts.auth ? { authorization: opts.auth } : {}), ...opts.headers },
    ...(opts.body ? { payload: opts.body } : {}),
  })
  const ra = r.headers['retry-after']
  let code: string | undefined
  try {
    code = (JSON.parse(r.body) as { error?: { code?: string } }).error?.code
  } catch {
    /* not JSON */
  }
  return { status: r.statusCode, code, retryAfter: ra === undefined ? undefined : Number(ra), body: r.body }
}

const signIn = (app: FastifyInstance, email: string, ip?: string) =>
  send(app, { method: 'POST', url: '/test/sign-in', body: { email, password: 'guess' }, ip })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function assertLimited(r: Res, label: string, retryAfter?: number): void {
  assert.equal(r.status, 429, `${label}: ${r.status} ${r.body.slice(0, 200)}`)
  assert.equal(r.code, 'ERR_RATE_LIMITED', label)
  assert.ok(r.retryAfter !== undefined && r.retryAfter >= 1, `${label}: Retry-After is set`)
  if (retryAfter !== undefined) assert.equal(r.retryAfter, retryAfter, `${label}: Retry-After`)
}

/** Removes every Redis key under `prefix`. */
async function dropKeys(prefix: string): Promise<number> {
  const r = new Redis(REDIS_URL)
  try {
    let n = 0
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length) n += await r.del(...keys)
    } while (cursor !== '0')
    return n
  } finally {
    r.disconnect()
  }
}

for (const backend of ['memory', 'redis'] as const) {
  describe(`rate limits (${backend})`, () => {
    const prefix = `coffer-test:${randomBytes(6).toString('hex')}:`
    const base = (): Record<string, string> => (backend === 'redis' ? { REDIS_URL, COFFER_RATE_KEY_PREFIX: prefix } : {})
    const nodes: Node[] = []
    const start = async (env: Record<string, string>) => {
      const n = await startNode({ ...base(), ...env })
      nodes.push(n)
      return n
    }

    before(async () => {
      if (backend === 'redis') {
        const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true })
        try {
          await r.connect()
          assert.equal(await r.ping(), 'PONG')
        } catch (err) {
          throw new Error(`Redis is required at ${REDIS_URL} for this suite: ${(err as Error).message}`)
        } finally {
          r.disconnect()
        }
      }
    })

    after(async () => {
      for (const n of nodes) await n.close()
      if (backend === 'redis') {
        assert.ok((await dropKeys(prefix)) > 0, 'the suite left counters in Redis under its own prefix')
        assert.equal(await dropKeys(prefix), 0)
      }
    })

    test('per account: a lockout that doubles on each further lockout and stops at the cap; other accounts unaffected', async () => {
      const n = await start({
        COFFER_RATE_AUTH_PER_ACCOUNT: '2',
        COFFER_RATE_AUTH_PER_IP: '1000',
        COFFER_RATE_AUTH_WINDOW: '1',
        COFFER_RATE_LOCKOUT_MAX: '2',
      })
      const victim = `victim-${randomBytes(4).toString('hex')}@example.com`
      // Round 1: two attempts pass, the third is locked out for one window (1 s).
      for (let i = 0; i < 2; i++) assert.equal((await signIn(n.app, victim, `203.0.113.${i + 1}`)).status, 200)
      assertLimited(await signIn(n.app, victim, '203.0.113.9'), 'third attempt, from yet another address', 1)
      assertLimited(await signIn(n.app, victim.toUpperCase(), '203.0.113.10'), 'the same account in other letter case')
      // Another account, and the same address, are not affected.
      assert.equal((await signIn(n.app, 'someone-else@example.com', '203.0.113.9')).status, 200)
      await sleep(1100)
      // Round 2: allowed again; the next lockout is twice as long.
      for (let i = 0; i < 2; i++) assert.equal((await signIn(n.app, victim)).status, 200, `round 2 attempt ${i + 1}`)
      assertLimited(await signIn(n.app, victim), 'second lockout', 2)
      await sleep(1100)
      assertLimited(await signIn(n.app, victim), 'still locked out after one window')
      await sleep(1000)
      // Round 3: the doubling stops at COFFER_RATE_LOCKOUT_MAX (2 s), not 4 s.
      for (let i = 0; i < 2; i++) assert.equal((await signIn(n.app, victim)).status, 200, `round 3 attempt ${i + 1}`)
      assertLimited(await signIn(n.app, victim), 'third lockout, capped', 2)
    })

    test('per address: many accounts from one address are locked out together; another address is not', async () => {
      const n = await start({ COFFER_RATE_AUTH_PER_IP: '4', COFFER_RATE_AUTH_PER_ACCOUNT: '1000', COFFER_RATE_AUTH_WINDOW: '60' })
      for (let i = 0; i < 4; i++) assert.equal((await signIn(n.app, `user${i}@example.com`, '192.0.2.50')).status, 200)
      const r = await signIn(n.app, 'user99@example.com', '192.0.2.50')
      assertLimited(r, 'fifth attempt from one address', 60)
      // The body of a refusal names nobody: the same for a registered and an unknown email.
      const known = await signIn(n.app, 'a@example.com', '192.0.2.50')
      const unknown = await signIn(n.app, 'nobody-here@example.com', '192.0.2.50')
      const strip = (b: string) => b.replace(/"requestId":"[^"]+"/, '')
      assert.equal(strip(known.body), strip(unknown.body))
      assert.ok(!known.body.includes('a@example.com'))
      assert.equal((await signIn(n.app, 'user99@example.com', '192.0.2.51')).status, 200)
      // Without any account in the body the address limit still applies.
      assertLimited(await send(n.app, { method: 'POST', url: '/test/sign-in', body: {}, ip: '192.0.2.50' }), 'no account named')
    })

    test('token guessing: bad credentials from one address lock out those credentials; valid ones from it keep working', async () => {
      const n = await start({ COFFER_RATE_BAD_TOKEN_PER_IP: '3', COFFER_RATE_AUTH_WINDOW: '60' })
      const ip = '198.51.100.66'
      const bad = [
        'Bearer not-a-token',
        `Bearer ${n.token.slice(0, -1)}${n.token.endsWith('A') ? 'B' : 'A'}`,
        'Bearer coffer_pat_00000000000000000000000000000000_000000',
      ]
      for (const auth of bad) assert.equal((await send(n.app, { url: '/v1/me', auth, ip })).status, 401)
      const fourth = await send(n.app, { url: '/v1/me', auth: 'Bearer guess-4', ip })
      assertLimited(fourth, 'the fourth bad token')
      for (const auth of bad) assertLimited(await send(n.app, { url: '/v1/me', auth, ip }), 'an earlier bad token, again')
      // The guesser's address is locked out for guesses only: a valid token from it goes on.
      assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}`, ip })).status, 200)
      assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}`, ip: '198.51.100.67' })).status, 200)
      // Another address is not locked out: its first bad token is a 401.
      assert.equal((await send(n.app, { url: '/v1/me', auth: 'Bearer guess-5', ip: '198.51.100.67' })).status, 401)
      // Requests without any credential are not what this limit counts (and get their 401).
      assert.equal((await send(n.app, { url: '/v1/me', ip: '198.51.100.68' })).status, 401)
      assert.ok(!fourth.body.includes(n.token.slice(11, 30)), 'the refusal echoes no token')
    })

    test('a stale CI token behind one address: 31 requests lock out that token, the Owner token from the same address still gets 200', async () => {
      const n = await start({ COFFER_RATE_AUTH_WINDOW: '60' }) // the default: 30 bad credentials per address
      const stale = await n.ctx.committer.run(async (tx) => {
        const t = await issueToken(tx, { workspaceId: n.owner.workspaceId, userId: n.owner.id, name: 'ci' }, new Date())
        await revokeToken(tx, n.owner.workspaceId, n.owner.id, t.info.id, new Date())
        return t.token
      })
      const ip = '203.0.113.200'
      const statuses: number[] = []
      for (let i = 0; i < 31; i++) statuses.push((await send(n.app, { url: '/v1/me', auth: `Bearer ${stale}`, ip })).status)
      assert.deepEqual(statuses.slice(0, 30), Array(30).fill(401), 'the first 30 answers are 401')
      assert.equal(statuses[30], 429, 'the 31st is refused')
      for (let i = 0; i < 3; i++)
        assertLimited(await send(n.app, { url: '/v1/me', auth: `Bearer ${stale}`, ip }), 'the revoked token, again')
      for (let i = 0; i < 3; i++)
        assert.equal(
          (await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}`, ip })).status,
          200,
          'the Owner token from the same address',
        )
      const projects = await send(n.app, { url: `/v1/workspaces/${n.owner.workspaceId}/projects`, auth: `Bearer ${n.token}`, ip })
      assert.equal(projects.status, 200, projects.body.slice(0, 200))
    })

    test('a password guesser is locked out, while a session and a token of the same account keep working from the same address', async () => {
      const n = await start({ COFFER_RATE_AUTH_PER_ACCOUNT: '3', COFFER_RATE_AUTH_PER_IP: '1000', COFFER_RATE_AUTH_WINDOW: '60' })
      const email = `pw-${randomBytes(4).toString('hex')}@example.com`
      const password = `pw-${randomBytes(8).toString('hex')}`
      const hash = await hashPassword(password)
      const token = await n.ctx.committer.run(async (tx) => {
        const u = await ensureUser(tx, email, new Date())
        await tx
          .updateTable('users')
          .set({ password_hash: hash, email_verified_at: new Date().toISOString() })
          .where('id', '=', u.id)
          .execute()
        await addMember(tx, n.owner.workspaceId, u.id, 'member', new Date())
        return (await issueToken(tx, { workspaceId: n.owner.workspaceId, userId: u.id, name: 'laptop' }, new Date())).token
      })
      const ip = '192.0.2.77'
      const signedIn = await n.app.inject({
        method: 'POST',
        url: '/v1/auth/password/sign-in',
        remoteAddress: ip,
        payload: { email, password },
      })
      assert.equal(signedIn.statusCode, 200, signedIn.body)
      const cookie = String(signedIn.headers['set-cookie']).split(';')[0]!
      const guess = (pw: string) => send(n.app, { method: 'POST', url: '/v1/auth/password/sign-in', ip, body: { email, password: pw } })
      // The right password above was taken back from the count (sign-in counts failures only);
      // then wrong ones until the account is locked.
      for (let i = 0; i < 3; i++) assert.equal((await guess(`wrong-${i}`)).status, 401, `guess ${i + 1}`)
      assertLimited(await guess('wrong-3'), 'the guesser, over the per-account limit')
      assertLimited(await guess(password), 'even the right password, while the account is locked out')
      const viaSession = await send(n.app, { url: '/v1/me', ip, headers: { cookie } })
      assert.equal(viaSession.status, 200, viaSession.body.slice(0, 200))
      assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${token}`, ip })).status, 200)
    })

    test('sign-in counts failures only: a team behind one address signs in all day; guesses lock out, also when sent all at once', async () => {
      const n = await start({ COFFER_RATE_AUTH_PER_ACCOUNT: '1000', COFFER_RATE_AUTH_PER_IP: '3', COFFER_RATE_AUTH_WINDOW: '60' })
      const people = await n.ctx.committer.run(async (tx) => {
        const out: Array<{ email: string; password: string }> = []
        for (let i = 0; i < 4; i++) {
          const email = `team-${i}-${randomBytes(3).toString('hex')}@example.com`
          const password = `pw-${randomBytes(8).toString('hex')}`
          const u = await ensureUser(tx, email, new Date())
          await tx
            .updateTable('users')
            .set({ password_hash: await hashPassword(password), email_verified_at: new Date().toISOString() })
            .where('id', '=', u.id)
            .execute()
          out.push({ email, password })
        }
        return out
      })
      const office = '192.0.2.150'
      const attempt = (email: string, password: string, ip = office) =>
        send(n.app, { method: 'POST', url: '/v1/auth/password/sign-in', ip, body: { email, password } })
      // Twelve successful sign-ins from one address, four times the per-address limit: all in.
      for (let round = 0; round < 3; round++)
        for (const p of people) assert.equal((await attempt(p.email, p.password)).status, 200, `${p.email}, round ${round + 1}`)
      // Through the browser's form too (a form's success is a redirect, and is taken back as well).
      for (let i = 0; i < 4; i++) {
        const r = await n.app.inject({
          method: 'POST',
          url: '/v1/auth/password/sign-in',
          remoteAddress: office,
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.1:8700' },
          payload: new URLSearchParams({ email: people[0]!.email, password: people[0]!.password }).toString(),
        })
        assert.equal(r.statusCode, 303, r.body)
        assert.doesNotMatch(String(r.headers.location), /error=/, 'a successful form sign-in')
      }
      // A guesser from another address: three failures, then locked — the right password included.
      const guesser = '203.0.113.150'
      for (let i = 0; i < 3; i++) assert.equal((await attempt(people[1]!.email, `wrong-${i}`, guesser)).status, 401)
      assertLimited(await attempt(people[1]!.email, 'wrong-3', guesser), 'the fourth guess')
      assertLimited(await attempt(people[1]!.email, people[1]!.password, guesser), 'the right password while the address is locked out')
      // Guesses sent all at once are counted before they run: no more than the limit get through to a check.
      const burstFrom = '203.0.113.151'
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(people[2]!.email, `burst-${i}`, burstFrom)))
      const checked = burst.filter((r) => r.status === 401).length
      assert.ok(checked <= 3, `${checked} of 20 parallel guesses were checked`)
      assert.equal(burst.filter((r) => r.status === 429).length, 20 - checked)
      // The office still signs in.
      assert.equal((await attempt(people[3]!.email, people[3]!.password)).status, 200)
    })

    test('per-token minute cap: the N+1th request of a token in a minute is refused; another token is not', async () => {
      const n = await start({ COFFER_RATE_TOKEN_PER_MINUTE: '5' })
      for (let i = 0; i < 5; i++)
        assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}`, ip: `10.1.0.${i}` })).status, 200)
      const r = await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}`, ip: '10.1.0.99' })
      assertLimited(r, 'sixth request of the token from another address')
      assert.ok(r.retryAfter! <= 60)
      assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.otherToken}` })).status, 200)
    })

    test('per-token monthly cap: refused until the month ends (Retry-After counts to the first of next month, UTC)', async () => {
      const n = await start({ COFFER_RATE_TOKEN_PER_MINUTE: '0', COFFER_RATE_TOKEN_PER_MONTH: '3' })
      for (let i = 0; i < 3; i++) assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}` })).status, 200)
      const r = await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}` })
      assertLimited(r, 'fourth request this month')
      const expected = Math.ceil(monthWindow(new Date()).ms / 1000)
      assert.ok(Math.abs(r.retryAfter! - expected) <= 5, `Retry-After ${r.retryAfter} ≈ ${expected}`)
      assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.otherToken}` })).status, 200)
    })
  })
}

describe('rate limits when Redis cannot be reached at start-up', () => {
  test('counters fall back to memory at once: sign-in keeps its limits, tokens their caps, the metric says so', async () => {
    const n = await startNode({
      REDIS_URL: 'redis://127.0.0.1:1',
      COFFER_RATE_TOKEN_PER_MINUTE: '5',
      COFFER_RATE_BAD_TOKEN_PER_IP: '3',
      COFFER_RATE_AUTH_PER_ACCOUNT: '2',
    })
    try {
      assert.equal(n.ctx.metrics.redisFallbackActive.get(), 1)
      const started = performance.now()
      for (let i = 0; i < 2; i++) assert.equal((await signIn(n.app, 'someone@example.com')).status, 200)
      assertLimited(await signIn(n.app, 'someone@example.com'), 'the per-account limit, counted in memory')
      for (let i = 0; i < 5; i++) assert.equal((await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}` })).status, 200)
      assertLimited(await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}` }), 'the minute cap, counted in memory')
      assert.equal((await send(n.app, { url: '/v1/me', auth: 'Bearer bad' })).status, 401)
      // Nothing waited on Redis: 12 requests in far less than one Redis timeout each.
      assert.ok(performance.now() - started < 12 * 200, `took ${Math.round(performance.now() - started)} ms`)
    } finally {
      await n.close()
    }
  })
})

describe('the client address behind a load balancer (COFFER_TRUST_PROXY)', () => {
  const badFrom = (n: Node, socket: string, xff?: string) =>
    send(n.app, {
      url: '/v1/me',
      auth: `Bearer guess-${randomBytes(4).toString('hex')}`,
      ip: socket,
      ...(xff ? { headers: { 'x-forwarded-for': xff } } : {}),
    })

  test('off (the default): a forged X-Forwarded-For does not change the address that is counted', async () => {
    const n = await startNode({ COFFER_RATE_BAD_TOKEN_PER_IP: '3', COFFER_RATE_AUTH_WINDOW: '60' })
    try {
      for (let i = 0; i < 3; i++) assert.equal((await badFrom(n, '198.51.100.10', `10.9.9.${i}`)).status, 401)
      assertLimited(await badFrom(n, '198.51.100.10', '10.9.9.99'), 'a new forged address does not escape')
      assertLimited(await badFrom(n, '198.51.100.10'), 'nor does no header')
      assert.equal((await badFrom(n, '198.51.100.11', '198.51.100.10')).status, 401, 'nor can another client be framed')
    } finally {
      await n.close()
    }
  })

  for (const [label, trust] of [
    ['one hop', '1'],
    ['the proxy CIDR', '10.0.0.0/8'],
  ] as const) {
    test(`${label} (${trust}): the client the proxy saw is counted; a spoofed left-most entry does not escape the lockout`, async () => {
      const n = await startNode({ COFFER_RATE_BAD_TOKEN_PER_IP: '3', COFFER_RATE_AUTH_WINDOW: '60', COFFER_TRUST_PROXY: trust })
      try {
        const lb = '10.0.0.5'
        // The attacker sends its own X-Forwarded-For; the proxy appends the address it saw.
        for (let i = 0; i < 3; i++) assert.equal((await badFrom(n, lb, `192.0.2.${i}, 203.0.113.66`)).status, 401)
        assertLimited(await badFrom(n, lb, '192.0.2.200, 203.0.113.66'), 'a new spoofed entry')
        assertLimited(await badFrom(n, lb, '203.0.113.66'), 'no spoofed entry')
        // Teammates behind the same proxy are other clients: not locked out.
        assert.equal((await badFrom(n, lb, '203.0.113.67')).status, 401)
        assert.equal(
          (await send(n.app, { url: '/v1/me', auth: `Bearer ${n.token}`, ip: lb, headers: { 'x-forwarded-for': '203.0.113.66' } })).status,
          200,
          'a valid token of the locked-out client goes on',
        )
      } finally {
        await n.close()
      }
    })
  }

  test('CIDR: a client outside the trusted range that sends X-Forwarded-For is counted by its own address', async () => {
    const n = await startNode({ COFFER_RATE_BAD_TOKEN_PER_IP: '3', COFFER_RATE_AUTH_WINDOW: '60', COFFER_TRUST_PROXY: '10.0.0.0/8' })
    try {
      for (let i = 0; i < 3; i++) assert.equal((await badFrom(n, '198.51.100.20', `203.0.113.${i}`)).status, 401)
      assertLimited(await badFrom(n, '198.51.100.20', '203.0.113.99'), 'the direct client, whatever it forwards')
    } finally {
      await n.close()
    }
  })
})

describe('monthWindow', () => {
  test('counts to the first day of the next month, UTC, across a year end', () => {
    assert.deepEqual(monthWindow(new Date('2026-12-31T23:59:00Z')), { label: '2026-12', ms: 60_000 })
    assert.deepEqual(monthWindow(new Date('2027-02-01T00:00:00Z')), { label: '2027-02', ms: 28 * 86_400_000 })
  })
})
