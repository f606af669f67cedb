// Two real `coffer server` processes on one PostgreSQL database and one Redis: the limits are
// counted once for the deployment, not once per node. Requests alternate between the nodes;
// the N+1th over both is refused, and the lockout one node starts holds on the other.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'
import { childEnv, stopChild, waitListening } from '../helpers/child-server.js'

const ROOT = join(import.meta.dirname, '..', '..')
const BIN = join(ROOT, 'bin', 'coffer.js')
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PER_MINUTE = 6
const BAD_PER_IP = 4
const AUTH_PER_ACCOUNT = 3
const AUTH_PER_IP = 8

async function get(url: string, auth?: string): Promise<{ status: number; code?: string; retryAfter: string | null }> {
  const r = await fetch(url, { headers: auth ? { authorization: auth } : {} })
  const body = (await r.json()) as { error?: { code?: string } }
  return { status: r.status, code: body.error?.code, retryAfter: r.headers.get('retry-after') }
}

async function post(url: string, body: unknown): Promise<{ status: number; code?: string; retryAfter: string | null }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const j = (await r.json()) as { error?: { code?: string } }
  return { status: r.status, code: j.error?.code, retryAfter: r.headers.get('retry-after') }
}

describePostgres('rate limits across two nodes sharing one Redis', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-rl-nodes-'))
  const prefix = `coffer-test:${randomBytes(6).toString('hex')}:`
  const children: ChildProcess[] = []
  const urls: string[] = []
  let dropDb: (() => Promise<void>) | undefined
  let token = ''
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  process.once('exit', killAll)

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run the tests with npm test, or npm run build first')
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await redis.connect().catch((err: Error) => {
      throw new Error(`Redis is required at ${REDIS_URL}: ${err.message}`)
    })
    redis.disconnect()
    const db = await createTestDatabase()
    dropDb = db.drop
    const env = childEnv({
      DATABASE_URL: db.url,
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
      COFFER_LOG_LEVEL: 'warn',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
      REDIS_URL,
      COFFER_RATE_KEY_PREFIX: prefix,
      COFFER_RATE_TOKEN_PER_MINUTE: String(PER_MINUTE),
      COFFER_RATE_BAD_TOKEN_PER_IP: String(BAD_PER_IP),
      COFFER_RATE_AUTH_PER_ACCOUNT: String(AUTH_PER_ACCOUNT),
      COFFER_RATE_AUTH_PER_IP: String(AUTH_PER_IP),
      COFFER_RATE_AUTH_WINDOW: '60',
    })
    const init = spawnSync(process.execPath, [BIN, 'init', '--data-dir', join(work, 'node0'), '--email', 'ops@example.com', '--json'], {
      encoding: 'utf8',
      env,
      timeout: 90_000,
    })
    assert.equal(init.status, 0, init.stderr)
    token = (JSON.parse(init.stdout) as { token: string }).token
    for (let i = 0; i < 2; i++)
      children.push(
        spawn(process.execPath, [BIN, 'server', '--data-dir', join(work, `node${i}`), '--port', '0'], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
        }),
      )
    urls.push(...(await Promise.all(children.map((c, i) => waitListening(c, `node ${i + 1}`, 60_000)))))
    assert.equal(new Set(urls).size, 2, 'two nodes on two ports')
  })

  after(async () => {
    await Promise.all(children.map((c) => stopChild(c)))
    process.removeListener('exit', killAll)
    const redis = new Redis(REDIS_URL)
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length) await redis.del(...keys)
    redis.disconnect()
    if (dropDb) await dropDb()
    rmSync(work, { recursive: true, force: true })
  })

  test(`a token's ${PER_MINUTE}-per-minute cap holds over both nodes: request ${PER_MINUTE + 1} is refused on either`, async () => {
    for (let i = 0; i < PER_MINUTE; i++) {
      const r = await get(`${urls[i % 2]}/v1/me`, `Bearer ${token}`)
      assert.equal(r.status, 200, `request ${i + 1} on node ${(i % 2) + 1}`)
    }
    for (const [i, url] of urls.entries()) {
      const r = await get(`${url}/v1/me`, `Bearer ${token}`)
      assert.equal(r.status, 429, `over the cap on node ${i + 1}`)
      assert.equal(r.code, 'ERR_RATE_LIMITED')
      assert.ok(Number(r.retryAfter) >= 1 && Number(r.retryAfter) <= 60, `Retry-After ${r.retryAfter}`)
    }
  })

  test(`bad tokens are counted over both nodes: after ${BAD_PER_IP} the address is locked out on both`, async () => {
    for (let i = 0; i < BAD_PER_IP; i++) {
      const r = await get(`${urls[i % 2]}/v1/me`, `Bearer guess-${i}`)
      assert.equal(r.status, 401, `guess ${i + 1} on node ${(i % 2) + 1}`)
    }
    for (const [i, url] of urls.entries()) {
      const r = await get(`${url}/v1/me`, 'Bearer guess-next')
      assert.equal(r.status, 429, `node ${i + 1} refuses the next guess`)
      assert.equal(r.code, 'ERR_RATE_LIMITED')
      assert.ok(Number(r.retryAfter) >= 1)
    }
  })

  test(`password guessing for one account over both nodes: attempt ${AUTH_PER_ACCOUNT + 1} is locked out on either`, async () => {
    const victim = { email: 'ops@example.com', password: 'not-the-password-at-all' }
    for (let i = 0; i < AUTH_PER_ACCOUNT; i++) {
      const r = await post(`${urls[i % 2]}/v1/auth/password/sign-in`, victim)
      assert.equal(r.status, 401, `attempt ${i + 1} on node ${(i % 2) + 1}: ${r.code}`)
    }
    for (const [i, url] of urls.entries()) {
      const r = await post(`${url}/v1/auth/password/sign-in`, { ...victim, email: 'OPS@example.com' })
      assert.equal(r.status, 429, `node ${i + 1} locks the account out`)
      assert.equal(r.code, 'ERR_RATE_LIMITED')
      assert.equal(r.retryAfter, '60', 'the first lockout lasts one window')
    }
  })

  test(`code guessing at the CLI token exchange from one address over both nodes: the address is locked out on either`, async () => {
    let refusedOn = -1
    for (let i = 0; i < AUTH_PER_IP + 2 && refusedOn < 0; i++) {
      const r = await post(`${urls[i % 2]}/v1/cli/token`, {
        code: randomBytes(32).toString('base64url'),
        codeVerifier: randomBytes(32).toString('base64url'),
        redirectUri: 'http://127.0.0.1:9/cb',
      })
      if (r.status === 429) refusedOn = i
      else assert.equal(r.code, 'ERR_INVALID_GRANT')
    }
    // Every sign-in attempt above, refused ones included, counted against this address.
    assert.equal(refusedOn, AUTH_PER_IP - (AUTH_PER_ACCOUNT + 2), 'the N+1th attempt from the address over both nodes is refused')
    for (const url of urls)
      assert.equal((await post(`${url}/v1/cli/token`, { code: 'x', codeVerifier: 'y', redirectUri: 'z' })).status, 429)
  })
})
