// `coffer lockouts list|clear` against real Redis: a token guesser's address and a password
// guesser's account are locked out by a server; the operator lists them (accounts by hash),
// clears one address, one account (given as its email, in any letter case), then all.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { createContext, type AppContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { accountKey } from '../../src/server/lockouts.js'
import { BIN, childEnv, ensureBuilt } from '../helpers/child-server.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

describe('coffer lockouts', () => {
  const prefix = `coffer-lockouts:${randomBytes(6).toString('hex')}:`
  const limits = {
    COFFER_RATE_KEY_PREFIX: prefix,
    COFFER_RATE_BAD_TOKEN_PER_IP: '2',
    COFFER_RATE_AUTH_PER_ACCOUNT: '2',
    COFFER_RATE_AUTH_PER_IP: '3',
    COFFER_RATE_AUTH_WINDOW: '600',
  }
  let app: FastifyInstance
  let ctx: AppContext
  let dataDir = ''
  const guesser = '203.0.113.44'
  const victim = `Victim-${randomBytes(4).toString('hex')}@Example.com`

  const cli = (args: string[], env: Record<string, string> = { REDIS_URL, ...limits }) => {
    const r = spawnSync(process.execPath, [BIN, 'lockouts', ...args], { env: childEnv(env), encoding: 'utf8', timeout: 30_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  }
  const badToken = (ip: string) =>
    app.inject({
      method: 'GET',
      url: '/v1/me',
      remoteAddress: ip,
      headers: { authorization: `Bearer guess-${randomBytes(4).toString('hex')}` },
    })
  const signIn = (email: string, ip: string) =>
    app.inject({ method: 'POST', url: '/v1/auth/password/sign-in', remoteAddress: ip, payload: { email, password: 'not-it' } })
  const list = () => {
    const r = cli(['list', '--json'])
    assert.equal(r.status, 0, r.stderr)
    return (
      JSON.parse(r.stdout) as { lockouts: Array<{ limit: string; subject: string; count: number; max: number; retryAfterSeconds: number }> }
    ).lockouts
  }

  before(async () => {
    ensureBuilt()
    dataDir = await mkdtemp(join(tmpdir(), 'coffer-lockouts-'))
    const e = readEnv({
      COFFER_DATA_DIR: dataDir,
      COFFER_LOG_LEVEL: 'silent',
      COFFER_CHECKPOINT_INTERVAL: '0',
      COFFER_AUDIT_VERIFY_INTERVAL: '0',
      REDIS_URL,
      ...limits,
    })
    ctx = await createContext(buildConfig(e), buildSecrets(e))
    app = await buildApp(ctx)
    await app.ready()
  })

  after(async () => {
    await app?.close()
    await ctx?.close()
    const r = new Redis(REDIS_URL)
    const keys = await r.keys(`${prefix}*`)
    if (keys.length) await r.del(...keys)
    r.disconnect()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  test('lists the locked-out address and account, and clears each, then all', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await badToken(guesser)).statusCode, 401)
    assert.equal((await badToken(guesser)).statusCode, 429)
    for (let i = 0; i < 2; i++) assert.equal((await signIn(victim, `198.51.100.${i + 1}`)).statusCode, 401)
    assert.equal((await signIn(victim, '198.51.100.9')).statusCode, 429)

    const l = list()
    const byLimit = (limit: string) => l.filter((x) => x.limit === limit).map((x) => x.subject)
    assert.deepEqual(byLimit('bad-credential'), [guesser])
    assert.deepEqual(byLimit('auth-account'), [accountKey(victim)])
    assert.ok(!JSON.stringify(l).toLowerCase().includes(victim.toLowerCase()), 'the account appears only as its hash')
    for (const x of l) assert.ok(x.count > x.max && x.retryAfterSeconds > 0 && x.retryAfterSeconds <= 600, JSON.stringify(x))
    const table = cli(['list'])
    assert.equal(table.status, 0, table.stderr)
    assert.match(table.stdout, new RegExp(`bad-credential\\s+${guesser.replace(/\./g, '\\.')}`))

    // One address: its guesses are answered 401 again (the count starts afresh), the account stays locked.
    const a = cli(['clear', '--address', guesser])
    assert.equal(a.status, 0, a.stderr)
    assert.equal((await badToken(guesser)).statusCode, 401)
    assert.deepEqual(
      list().map((x) => x.limit),
      ['auth-account'],
    )
    assert.equal((await signIn(victim, '198.51.100.20')).statusCode, 429)

    // One account, named by its email in another letter case.
    const b = cli(['clear', '--account', victim.toUpperCase(), '--json'])
    assert.equal(b.status, 0, b.stderr)
    assert.ok((JSON.parse(b.stdout) as { removedKeys: number }).removedKeys >= 1)
    assert.equal((await signIn(victim, '198.51.100.21')).statusCode, 401)
    assert.deepEqual(list(), [])

    // All: lock the address out again, then clear everything.
    for (let i = 0; i < 3; i++) await badToken(guesser)
    assert.equal(list().length, 1)
    assert.equal(cli(['clear', '--all']).status, 0)
    assert.deepEqual(list(), [])
    assert.equal((await badToken(guesser)).statusCode, 401)
  })

  test('asks for exactly one target', () => {
    for (const args of [['clear'], ['clear', '--all', '--address', '192.0.2.1']]) {
      const r = cli(args)
      assert.equal(r.status, 1, args.join(' '))
      assert.match(r.stderr, /exactly one of --address/)
    }
  })

  test('without REDIS_URL it says the lockouts live in each server’s memory, and changes nothing', () => {
    const r = cli(['list'], { COFFER_DATA_DIR: dataDir })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /REDIS_URL is not set: each running server keeps its lockouts in its own memory/)
    assert.match(r.stderr, /restarts/)
  })

  test('a Redis that does not answer is named, without its password', () => {
    const r = cli(['list'], { REDIS_URL: 'redis://:hunter2-secret@127.0.0.1:1' })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /Cannot reach Redis at 127\.0\.0\.1:1/)
    assert.ok(!r.stderr.includes('hunter2-secret'))
  })
})
