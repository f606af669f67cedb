// The rate-limit and TLS settings: defaults, and ERR_CONFIG naming the setting on bad values.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from '../../src/errors.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'

const cfg = (env: Record<string, string>) => buildConfig(readEnv({ COFFER_DATA_DIR: '/tmp/coffer-cfg', ...env }), {}, '/work')

test('defaults: memory counters, limits on, monthly cap off, no TLS', () => {
  const c = cfg({})
  assert.deepEqual(c.rateLimit, {
    keyPrefix: 'coffer:rl:',
    authPerIp: 30,
    authPerAccount: 10,
    authWindowMs: 900_000,
    lockoutMaxMs: 86_400_000,
    badTokenPerIp: 30,
    tokenPerMinute: 6000,
    tokenPerMonth: 0,
    redisTimeoutMs: 200,
  })
  assert.equal(c.trustProxy, false)
  assert.equal(c.tls, undefined)
})

test('settings are read, and relative TLS paths resolve against the working directory', () => {
  const c = cfg({
    REDIS_URL: 'redis://cache:6379/2',
    COFFER_RATE_KEY_PREFIX: 'prod:rl:',
    COFFER_RATE_AUTH_PER_IP: '5',
    COFFER_RATE_AUTH_PER_ACCOUNT: '0',
    COFFER_RATE_AUTH_WINDOW: '60',
    COFFER_RATE_LOCKOUT_MAX: '600',
    COFFER_RATE_BAD_TOKEN_PER_IP: '7',
    COFFER_RATE_TOKEN_PER_MINUTE: '100',
    COFFER_RATE_TOKEN_PER_MONTH: '100000',
    COFFER_TLS_CERT: 'tls/cert.pem',
    COFFER_TLS_KEY: '/etc/coffer/key.pem',
  })
  assert.equal(c.rateLimit.redisUrl, 'redis://cache:6379/2')
  assert.equal(c.rateLimit.authPerAccount, 0)
  assert.equal(c.rateLimit.lockoutMaxMs, 600_000)
  assert.equal(c.rateLimit.tokenPerMonth, 100_000)
  assert.deepEqual(c.tls, { certPath: '/work/tls/cert.pem', keyPath: '/etc/coffer/key.pem' })
})

test('bad values stop start-up with ERR_CONFIG naming the setting', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ REDIS_URL: 'cache:6379' }, 'REDIS_URL'],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL'],
    [{ COFFER_RATE_KEY_PREFIX: 'has space' }, 'COFFER_RATE_KEY_PREFIX'],
    [{ COFFER_RATE_AUTH_PER_IP: '-1' }, 'COFFER_RATE_AUTH_PER_IP'],
    [{ COFFER_RATE_AUTH_PER_ACCOUNT: 'ten' }, 'COFFER_RATE_AUTH_PER_ACCOUNT'],
    [{ COFFER_RATE_AUTH_WINDOW: '0' }, 'COFFER_RATE_AUTH_WINDOW'],
    [{ COFFER_RATE_AUTH_WINDOW: '600', COFFER_RATE_LOCKOUT_MAX: '60' }, 'COFFER_RATE_LOCKOUT_MAX'],
    [{ COFFER_RATE_BAD_TOKEN_PER_IP: '1.5' }, 'COFFER_RATE_BAD_TOKEN_PER_IP'],
    [{ COFFER_RATE_TOKEN_PER_MINUTE: '99999999999' }, 'COFFER_RATE_TOKEN_PER_MINUTE'],
    [{ COFFER_RATE_TOKEN_PER_MONTH: 'lots' }, 'COFFER_RATE_TOKEN_PER_MONTH'],
    [{ COFFER_TLS_CERT: '/a/cert.pem' }, 'COFFER_TLS_KEY'],
    [{ COFFER_TLS_KEY: '/a/key.pem' }, 'COFFER_TLS_CERT'],
  ]
  for (const [env, setting] of cases) {
    assert.throws(
      () => cfg(env),
      (e: unknown) => e instanceof ConfigError && e.code === 'ERR_CONFIG' && e.setting === setting && e.message.startsWith(`${setting}:`),
      JSON.stringify(env),
    )
  }
})

test('COFFER_TRUST_PROXY: off, a hop count, or proxies; trusting everyone and bad entries stop start-up naming it', () => {
  assert.equal(cfg({ COFFER_TRUST_PROXY: 'off' }).trustProxy, false)
  assert.equal(cfg({ COFFER_TRUST_PROXY: '1' }).trustProxy, 1)
  assert.deepEqual(cfg({ COFFER_TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,fd00::/8,loopback' }).trustProxy, [
    '10.0.0.0/8',
    '192.168.1.7',
    'fd00::/8',
    'loopback',
  ])
  for (const bad of ['true', '*', '11', '10.0.0.0/33', '10.0.0/8', 'proxy.example.com', '10.0.0.1,,', '::1/129'])
    assert.throws(
      () => cfg({ COFFER_TRUST_PROXY: bad }),
      (e: unknown) => e instanceof ConfigError && e.setting === 'COFFER_TRUST_PROXY',
      `COFFER_TRUST_PROXY=${bad}`,
    )
  assert.throws(
    () => cfg({ COFFER_REDIS_TIMEOUT: '5' }),
    (e: unknown) => e instanceof ConfigError && e.setting === 'COFFER_REDIS_TIMEOUT',
  )
})
