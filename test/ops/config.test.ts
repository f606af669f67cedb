import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { format, inspect } from 'node:util'
import { generateToken } from '../../src/identity/token-format.js'
import { CofferError, ConfigError } from '../../src/errors.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv, type ServerEnv } from '../../src/ops/env.js'
import { scrub } from '../../src/scrub.js'
import { buildSecrets } from '../../src/ops/secrets.js'

const CWD = resolve('/srv/coffer-test-cwd')

/** `fn` must throw a ConfigError (ERR_CONFIG) whose `setting` is `setting`. */
function throwsConfig(fn: () => unknown, setting: string, what: string): ConfigError {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown instanceof ConfigError, `${what}: expected a ConfigError for ${setting}`)
  assert.ok(thrown instanceof CofferError)
  assert.equal(thrown.code, 'ERR_CONFIG', what)
  assert.equal(thrown.setting, setting, what)
  return thrown
}

const config = (env: Record<string, string>, overrides = {}) => buildConfig(readEnv(env), overrides, CWD)

describe('buildConfig defaults', () => {
  test('an empty environment gives the embedded defaults', () => {
    const c = config({})
    assert.equal(c.dataDir, join(CWD, '.coffer'))
    assert.equal(c.host, '127.0.0.1')
    assert.equal(c.port, 8700)
    assert.deepEqual(c.database, { engine: 'sqlite', path: join(CWD, '.coffer', 'coffer.db') })
    assert.deepEqual(c.keyProvider, { provider: 'local', keyFileDir: join(CWD, '.coffer') })
    assert.equal(c.logLevel, 'info')
    assert.equal(c.bodyLimit, 2 * 1024 * 1024)
    assert.deepEqual(c.dekCache, { maxEntries: 10_000, ttlMs: 300_000 })
  })

  test('cwd defaults to process.cwd()', () => {
    assert.equal(buildConfig(readEnv({})).dataDir, resolve(process.cwd(), '.coffer'))
  })

  test('a relative data directory resolves against cwd; an absolute one is kept', () => {
    assert.equal(config({ COFFER_DATA_DIR: 'var/data' }).dataDir, join(CWD, 'var', 'data'))
    const abs = config({ COFFER_DATA_DIR: '/var/lib/coffer' })
    assert.equal(abs.dataDir, '/var/lib/coffer')
    assert.deepEqual(abs.database, { engine: 'sqlite', path: '/var/lib/coffer/coffer.db' })
    assert.deepEqual(abs.keyProvider, { provider: 'local', keyFileDir: '/var/lib/coffer' })
  })

  test('readEnv treats empty strings as unset and ignores other variables', () => {
    const env = readEnv({ COFFER_PORT: '', COFFER_HOST: '0.0.0.0', HOME: '/home/x', COFFER_UNKNOWN: 'y' })
    assert.deepEqual(env, { COFFER_HOST: '0.0.0.0' })
    assert.equal(buildConfig(env, {}, CWD).port, 8700)
  })

  test('valid settings are taken', () => {
    const c = config({
      COFFER_HOST: '::1',
      COFFER_PORT: '0',
      COFFER_LOG_LEVEL: 'silent',
      COFFER_BODY_LIMIT: '1024',
      COFFER_DEK_CACHE_SIZE: '5',
      COFFER_DEK_CACHE_TTL: '2',
    })
    assert.equal(c.host, '::1')
    assert.equal(c.port, 0)
    assert.equal(c.logLevel, 'silent')
    assert.equal(c.bodyLimit, 1024)
    assert.deepEqual(c.dekCache, { maxEntries: 5, ttlMs: 2000 })
    assert.equal(config({ COFFER_PORT: '65535' }).port, 65535)
  })
})

describe('buildConfig public URL', () => {
  test('derived from the listen address: http, or https when Coffer terminates TLS itself', () => {
    assert.equal(config({ COFFER_PORT: '9000' }).auth.publicUrl, 'http://127.0.0.1:9000')
    const tls = config({ COFFER_PORT: '9443', COFFER_TLS_CERT: 'cert.pem', COFFER_TLS_KEY: 'key.pem' })
    assert.equal(tls.auth.publicUrl, 'https://127.0.0.1:9443')
    assert.equal(tls.auth.publicUrlSet, false)
  })

  test('COFFER_PUBLIC_URL wins, TLS or not', () => {
    const c = config({ COFFER_TLS_CERT: 'cert.pem', COFFER_TLS_KEY: 'key.pem', COFFER_PUBLIC_URL: 'https://coffer.example.com' })
    assert.equal(c.auth.publicUrl, 'https://coffer.example.com')
  })
})

describe('buildConfig database', () => {
  test('a postgres URL selects the postgres engine', () => {
    for (const url of ['postgres://coffer@db.internal:5432/coffer', 'postgresql://u:p@localhost/c?sslmode=require', 'POSTGRES://h/db']) {
      assert.deepEqual(config({ DATABASE_URL: url }).database, { engine: 'postgres', url })
      assert.deepEqual(config({ DATABASE_URL: url, COFFER_DATABASE_POOL_SIZE: '4' }).database, { engine: 'postgres', url, poolSize: 4 })
    }
  })

  test('COFFER_DATABASE_POOL_SIZE: 1 to 1000 connections, PostgreSQL only', () => {
    const url = 'postgres://coffer@db.internal:5432/coffer'
    assert.equal((config({ DATABASE_URL: url, COFFER_DATABASE_POOL_SIZE: '1000' }).database as { poolSize?: number }).poolSize, 1000)
    for (const value of ['0', '1001', 'ten', '2.5', '-3'])
      throwsConfig(
        () => config({ DATABASE_URL: url, COFFER_DATABASE_POOL_SIZE: value }),
        'COFFER_DATABASE_POOL_SIZE',
        `pool size ${JSON.stringify(value)}`,
      )
    throwsConfig(() => config({ COFFER_DATABASE_POOL_SIZE: '4' }), 'COFFER_DATABASE_POOL_SIZE', 'a pool size with SQLite')
  })

  test('a sqlite: URL gives a sqlite path resolved against cwd', () => {
    assert.deepEqual(config({ DATABASE_URL: 'sqlite:/abs/c.db' }).database, { engine: 'sqlite', path: '/abs/c.db' })
    assert.deepEqual(config({ DATABASE_URL: 'sqlite://rel/c.db' }).database, { engine: 'sqlite', path: join(CWD, 'rel', 'c.db') })
    assert.deepEqual(config({ DATABASE_URL: 'file:c.db' }).database, { engine: 'sqlite', path: join(CWD, 'c.db') })
  })
})

describe('buildConfig rejects every invalid setting, naming it', () => {
  const cases: Array<[keyof ServerEnv, string[]]> = [
    ['COFFER_PORT', ['abc', '70000', '-1', '65536', '80.5', '0x50', '8 700']],
    ['DATABASE_URL', ['mysql://x', 'postgres://[bad', 'sqlite:', 'db.sqlite', 'redis://localhost']],
    ['COFFER_LOG_LEVEL', ['verbose', 'INFO', 'warning']],
    ['COFFER_BODY_LIMIT', ['abc', '1023', '-5', String(64 * 1024 * 1024 + 1), '1e6']],
    ['COFFER_HOST', ['a b', 'host/path', 'h;rm', 'http://x']],
    ['COFFER_DEK_CACHE_SIZE', ['0', 'many', '1000001']],
    ['COFFER_DEK_CACHE_TTL', ['0', '86401', '1.5']],
    ['COFFER_DATA_DIR', ['/tmp/a\0b']],
  ]
  for (const [setting, values] of cases) {
    for (const value of values) {
      test(`${setting}=${JSON.stringify(value)}`, () => {
        throwsConfig(() => config({ [setting]: value }), setting, `${setting}=${JSON.stringify(value)}`)
      })
    }
  }

  test('an invalid override is named after its setting too', () => {
    throwsConfig(() => config({}, { port: 'abc' }), 'COFFER_PORT', 'port override')
    throwsConfig(() => config({}, { port: 70000 }), 'COFFER_PORT', 'numeric port override')
    throwsConfig(() => config({}, { host: 'a b' }), 'COFFER_HOST', 'host override')
  })
})

describe('overrides', () => {
  test('command-line overrides beat the environment', () => {
    const c = config(
      { COFFER_DATA_DIR: '/env/data', COFFER_HOST: '10.0.0.1', COFFER_PORT: '9000' },
      { dataDir: 'flag-data', host: '0.0.0.0', port: 9100 },
    )
    assert.equal(c.dataDir, join(CWD, 'flag-data'))
    assert.equal(c.host, '0.0.0.0')
    assert.equal(c.port, 9100)
    assert.deepEqual(c.keyProvider, { provider: 'local', keyFileDir: join(CWD, 'flag-data') })
    assert.equal(config({ COFFER_PORT: '9000' }, { port: '9200' }).port, 9200)
  })
})

describe('ServerSecrets', () => {
  test('COFFER_ROOT_KEY that is not base64 of 32 bytes throws ConfigError naming it', () => {
    const bad = [
      'not base64!',
      'AAAA AAAA',
      '%%%',
      randomBytes(16).toString('base64'),
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      randomBytes(32).toString('hex'),
    ]
    for (const [i, value] of bad.entries()) {
      throwsConfig(() => buildSecrets(readEnv({ COFFER_ROOT_KEY: value })), 'COFFER_ROOT_KEY', `bad root key #${i}`)
    }
  })

  test('the error never contains the offered key', () => {
    const value = randomBytes(16).toString('base64')
    const err = throwsConfig(() => buildSecrets(readEnv({ COFFER_ROOT_KEY: value })), 'COFFER_ROOT_KEY', '16-byte key')
    assert.ok(!err.message.includes(value), 'the error shows the key')
  })

  test('base64 and base64url of 32 bytes are accepted; no key means undefined', () => {
    const key = randomBytes(32)
    assert.ok(buildSecrets(readEnv({ COFFER_ROOT_KEY: key.toString('base64') })).rootKey?.equals(key), 'base64 key')
    assert.ok(buildSecrets(readEnv({ COFFER_ROOT_KEY: key.toString('base64url') })).rootKey?.equals(key), 'base64url key')
    assert.ok(buildSecrets(readEnv({ COFFER_ROOT_KEY: ` ${key.toString('base64')}\n` })).rootKey?.equals(key), 'padded key')
    assert.equal(buildSecrets(readEnv({})).rootKey, undefined)
  })

  test('JSON, util.inspect and format never print the key', () => {
    const key = randomBytes(32)
    const secrets = buildSecrets(readEnv({ COFFER_ROOT_KEY: key.toString('base64') }))
    assert.equal(JSON.stringify(secrets), '"[ServerSecrets]"')
    assert.equal(inspect(secrets), '[ServerSecrets]')
    const renderings = [
      JSON.stringify({ secrets }),
      inspect({ nested: { secrets } }, { depth: 10, showHidden: true }),
      format('%o %O %s %j', secrets, secrets, secrets, secrets),
      Object.keys(secrets).join(','),
    ]
    const forms = [key.toString('base64'), key.toString('hex'), key.toString('base64url'), [...key.subarray(0, 4)].join(', ')]
    for (const [i, r] of renderings.entries()) {
      assert.ok(!forms.some((f) => r.includes(f)), `rendering #${i} shows the key`)
    }
    assert.ok(inspect({ nested: { secrets } }).includes('[ServerSecrets]'))
  })
})

describe('scrub', () => {
  test('removes Coffer tokens', () => {
    const token = generateToken('pat')
    const out = scrub(`rejected token ${token} for user`)
    assert.ok(!out.includes(token), 'the token survived')
    assert.ok(!out.includes(token.slice(11, 43)), 'the token body survived')
    assert.ok(out.startsWith('rejected token ') && out.endsWith(' for user'))
  })

  test('removes credentials embedded in URLs', () => {
    const cases = [
      'connect ECONNREFUSED postgres://coffer:s3cr3t-pw@db.internal:5432/coffer',
      'postgresql://admin:hunter2@10.0.0.5/app?sslmode=require',
      'redis://:redispass@cache:6379',
      'https://user:tok@example.com/path',
    ]
    for (const [i, text] of cases.entries()) {
      const out = scrub(text)
      for (const secret of ['s3cr3t-pw', 'hunter2', 'redispass', ':tok@'])
        assert.ok(!out.includes(secret), `case #${i}: a credential survived`)
    }
    const out = scrub('postgres://coffer:s3cr3t-pw@db.internal:5432/coffer')
    assert.ok(out.includes('db.internal:5432/coffer'), 'the host was scrubbed too')
    assert.ok(!out.includes('coffer:'), 'the user name survived')
  })

  test('removes a password that contains @', () => {
    const out = scrub('postgres://app:p@ss@db.internal/app failed')
    assert.ok(!out.includes('ss@db'), 'part of the password survived')
    assert.ok(out.includes('db.internal/app failed'))
  })

  test('replaces the home directory path', () => {
    const home = homedir()
    if (!home || home === '/') return
    const out = scrub(`ENOENT: no such file ${join(home, '.config', 'coffer', 'x.json')}, again ${home}`)
    assert.ok(!out.includes(home), 'the home path survived')
    assert.ok(out.includes(join('~', '.config', 'coffer', 'x.json')))
  })

  test('leaves ordinary text alone', () => {
    const text = 'listen EADDRINUSE: address already in use 127.0.0.1:8700'
    assert.equal(scrub(text), text)
  })
})

describe('key provider settings', () => {
  const hsm = {
    COFFER_KEY_PROVIDER: 'pkcs11',
    COFFER_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
    COFFER_PKCS11_TOKEN_LABEL: 'coffer',
    COFFER_PKCS11_PIN: '1234',
  }

  test('local is the default', () => {
    assert.equal(config({}).keyProvider.provider, 'local')
  })

  test('pkcs11 takes module, token and key label; the PIN stays out of the config', () => {
    const c = config(hsm)
    assert.deepEqual(c.keyProvider, { provider: 'pkcs11', module: hsm.COFFER_PKCS11_MODULE, tokenLabel: 'coffer', keyLabel: 'coffer-root' })
    assert.ok(!JSON.stringify(c).includes('1234'), 'the PIN is not in the loggable config')
    assert.equal(buildSecrets(readEnv(hsm)).pkcs11Pin, '1234')
    assert.equal(config({ ...hsm, COFFER_PKCS11_KEY_LABEL: 'other' }).keyProvider.provider, 'pkcs11')
  })

  test('each missing or invalid setting is named', () => {
    throwsConfig(() => config({ COFFER_KEY_PROVIDER: 'vault' }), 'COFFER_KEY_PROVIDER', 'unknown provider')
    for (const name of ['COFFER_PKCS11_MODULE', 'COFFER_PKCS11_TOKEN_LABEL', 'COFFER_PKCS11_PIN'] as const) {
      const env: Record<string, string> = { ...hsm }
      delete env[name]
      throwsConfig(() => config(env), name, `missing ${name}`)
    }
  })
})

describe('aws-kms key provider settings (config only; KMS is a mock of the remote service in the provider tests)', () => {
  const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
  const kms = { COFFER_KEY_PROVIDER: 'aws-kms', COFFER_AWS_KMS_KEY_ID: arn, COFFER_AWS_REGION: 'eu-west-1' }

  test('aws-kms takes the key id and region; the endpoint is optional', () => {
    assert.deepEqual(config(kms).keyProvider, { provider: 'aws-kms', keyId: arn, region: 'eu-west-1' })
    assert.deepEqual(
      config({ ...kms, COFFER_AWS_KMS_KEY_ID: 'alias/coffer', COFFER_AWS_KMS_ENDPOINT: 'https://vpce-1.kms.eu-west-1.vpce.amazonaws.com' })
        .keyProvider,
      {
        provider: 'aws-kms',
        keyId: 'alias/coffer',
        region: 'eu-west-1',
        endpoint: 'https://vpce-1.kms.eu-west-1.vpce.amazonaws.com',
      },
    )
  })

  test('the region defaults to AWS_REGION; COFFER_AWS_REGION wins over it', () => {
    const { COFFER_AWS_REGION: _, ...noRegion } = kms
    const fromAws = config({ ...noRegion, AWS_REGION: 'us-east-2' }).keyProvider
    assert.equal(fromAws.provider === 'aws-kms' && fromAws.region, 'us-east-2')
    const both = config({ ...kms, AWS_REGION: 'us-east-2' }).keyProvider
    assert.equal(both.provider === 'aws-kms' && both.region, 'eu-west-1')
  })

  test('a missing key id or region, and an invalid region or endpoint, are named', () => {
    const { COFFER_AWS_KMS_KEY_ID: _k, ...noKey } = kms
    throwsConfig(() => config(noKey), 'COFFER_AWS_KMS_KEY_ID', 'missing key id')
    const { COFFER_AWS_REGION: _r, ...noRegion } = kms
    throwsConfig(() => config(noRegion), 'COFFER_AWS_REGION', 'missing region, no AWS_REGION')
    throwsConfig(() => config({ ...kms, COFFER_AWS_REGION: 'Europe West' }), 'COFFER_AWS_REGION', 'invalid region')
    throwsConfig(() => config({ ...kms, COFFER_AWS_KMS_ENDPOINT: 'not a url' }), 'COFFER_AWS_KMS_ENDPOINT', 'invalid endpoint')
    throwsConfig(() => config({ ...kms, COFFER_AWS_KMS_ENDPOINT: 'ftp://kms.example' }), 'COFFER_AWS_KMS_ENDPOINT', 'non-http endpoint')
  })

  test('an unknown provider is still refused, naming COFFER_KEY_PROVIDER', () => {
    throwsConfig(() => config({ ...kms, COFFER_KEY_PROVIDER: 'aws' }), 'COFFER_KEY_PROVIDER', 'unknown provider')
  })
})
