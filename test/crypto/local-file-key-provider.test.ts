import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createContext } from '../../src/context.js'
import { createKeyProvider } from '../../src/crypto/create-key-provider.js'
import { dataKeyAad, type DataKeyScope } from '../../src/crypto/key-provider.js'
import { LocalFileKeyProvider, ROOT_KEY_FILE, loadOrCreateRootKeyFile } from '../../src/crypto/local-file-key-provider.js'
import { CofferError, ConfigError } from '../../src/errors.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'

// Root keys never reach the test output: they are compared with Buffer.equals inside
// assert.ok, and failures name only what differed.

const dirs: string[] = []
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'coffer-keyprov-'))
  dirs.push(d)
  return d
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** Awaits `p`, which must reject with a CofferError of `code`; returns the error. */
async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<CofferError> {
  let thrown: unknown
  try {
    await p
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown instanceof CofferError, `${what}: expected a CofferError ${code}`)
  assert.equal(thrown.code, code, what)
  return thrown
}

const SCOPE: DataKeyScope = { workspaceId: randomUUID(), projectId: randomUUID(), environmentId: randomUUID() }
const b64 = (b: Buffer): string => b.toString('base64')

describe('loadOrCreateRootKeyFile', () => {
  test('a new data directory gets a 32-byte root.key with mode 0600', async () => {
    const dataDir = join(await tempDir(), 'nested', 'data')
    const { key, created } = await loadOrCreateRootKeyFile(dataDir)
    assert.equal(created, true)
    assert.equal(key.length, 32)
    const st = await stat(join(dataDir, ROOT_KEY_FILE))
    assert.ok(st.isFile())
    assert.equal(st.mode & 0o777, 0o600)
    assert.equal(st.size, 32)
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700, 'a data directory it creates is private')
    assert.ok((await readFile(join(dataDir, ROOT_KEY_FILE))).equals(key), 'the file holds the returned key')
  })

  test('a second load returns the same key and creates nothing', async () => {
    const dataDir = await tempDir()
    const first = await loadOrCreateRootKeyFile(dataDir)
    const second = await loadOrCreateRootKeyFile(dataDir)
    assert.equal(second.created, false)
    assert.ok(second.key.equals(first.key), 'the second load returned another key')
    assert.deepEqual(await readdir(dataDir), [ROOT_KEY_FILE])
  })

  test('two data directories get different keys', async () => {
    const a = await loadOrCreateRootKeyFile(await tempDir())
    const b = await loadOrCreateRootKeyFile(await tempDir())
    assert.ok(!a.key.equals(b.key), 'two new root keys are equal')
  })

  for (const mode of [0o640, 0o604, 0o660, 0o644, 0o620, 0o602]) {
    test(`a key file with mode 0${mode.toString(8)} is refused with ERR_CONFIG naming the setting`, async () => {
      const dataDir = await tempDir()
      await loadOrCreateRootKeyFile(dataDir)
      await chmod(join(dataDir, ROOT_KEY_FILE), mode)
      const err = await rejectsWith(loadOrCreateRootKeyFile(dataDir), 'ERR_CONFIG', `mode 0${mode.toString(8)}`)
      assert.ok(err instanceof ConfigError)
      assert.equal(err.setting, 'root key file')
    })
  }

  test('mode 0400 is accepted', async () => {
    const dataDir = await tempDir()
    const first = await loadOrCreateRootKeyFile(dataDir)
    await chmod(join(dataDir, ROOT_KEY_FILE), 0o400)
    const again = await loadOrCreateRootKeyFile(dataDir)
    assert.ok(again.key.equals(first.key), 'a read-only owner file gave another key')
  })

  for (const length of [0, 16, 31, 33, 44]) {
    test(`a ${length}-byte key file is refused with ERR_CONFIG`, async () => {
      const dataDir = await tempDir()
      await writeFile(join(dataDir, ROOT_KEY_FILE), randomBytes(length), { mode: 0o600 })
      const err = await rejectsWith(loadOrCreateRootKeyFile(dataDir), 'ERR_CONFIG', `${length} bytes`)
      assert.equal((err as ConfigError).setting, 'root key file')
      assert.equal((await readFile(join(dataDir, ROOT_KEY_FILE))).length, length, 'the refused file was changed')
    })
  }

  test('the refusal does not contain the key', async () => {
    const dataDir = await tempDir()
    const { key } = await loadOrCreateRootKeyFile(dataDir)
    await chmod(join(dataDir, ROOT_KEY_FILE), 0o644)
    const err = await rejectsWith(loadOrCreateRootKeyFile(dataDir), 'ERR_CONFIG', 'mode 0644')
    assert.ok(![key.toString('hex'), key.toString('base64')].some((k) => err.message.includes(k)), 'the error shows the key')
  })
})

describe('LocalFileKeyProvider', () => {
  const aad = dataKeyAad(randomUUID(), 1, SCOPE)

  test('wrap then unwrap returns the data key; each wrap uses a fresh nonce', async () => {
    const p = new LocalFileKeyProvider(randomBytes(32))
    const dek = randomBytes(32)
    const w1 = await p.wrap(dek, aad)
    const w2 = await p.wrap(dek, aad)
    assert.equal(w1.length, 1 + 12 + 32 + 16)
    assert.equal(w1[0], 0x01)
    assert.ok(!w1.equals(w2), 'two wraps of the same key are identical')
    assert.ok((await p.unwrap(w1, aad)).equals(dek), 'unwrap lost the key')
    assert.ok((await p.unwrap(w2, aad)).equals(dek), 'unwrap lost the key')
    assert.ok(!w1.includes(dek), 'the wrapped form contains the plaintext key')
  })

  test('the known-answer wrapped DEKs unwrap (test/vectors/envelope-v1.json)', async () => {
    const path = fileURLToPath(new URL('../vectors/envelope-v1.json', import.meta.url))
    const { localWrap } = JSON.parse(readFileSync(path, 'utf8')) as {
      localWrap: Array<{
        name: string
        rootKey: string
        dekId: string
        dekVersion: number
        scope: DataKeyScope
        dek: string
        aad: string
        wrapped: string
      }>
    }
    assert.ok(localWrap.length > 0)
    for (const v of localWrap) {
      const aadV = dataKeyAad(v.dekId, v.dekVersion, v.scope)
      assert.ok(aadV.equals(Buffer.from(v.aad, 'hex')), `${v.name}: dataKeyAad differs from the vector`)
      const p = new LocalFileKeyProvider(Buffer.from(v.rootKey, 'hex'))
      assert.ok((await p.unwrap(Buffer.from(v.wrapped, 'hex'), aadV)).equals(Buffer.from(v.dek, 'hex')), `${v.name}: unwrap differs`)
    }
  })

  test('an EDEK unwrapped with the AAD of another scope, version or id fails with ERR_DECRYPTION_FAILED', async () => {
    const p = new LocalFileKeyProvider(randomBytes(32))
    const dekId = randomUUID()
    const wrapped = await p.wrap(randomBytes(32), dataKeyAad(dekId, 3, SCOPE))
    const others: Array<[string, Buffer]> = [
      ['other workspace', dataKeyAad(dekId, 3, { ...SCOPE, workspaceId: randomUUID() })],
      ['other project', dataKeyAad(dekId, 3, { ...SCOPE, projectId: randomUUID() })],
      ['other environment', dataKeyAad(dekId, 3, { ...SCOPE, environmentId: randomUUID() })],
      ['workspace scope', dataKeyAad(dekId, 3, { ...SCOPE, projectId: '', environmentId: '' })],
      ['other version', dataKeyAad(dekId, 4, SCOPE)],
      ['other DEK id', dataKeyAad(randomUUID(), 3, SCOPE)],
      ['empty AAD', Buffer.alloc(0)],
    ]
    for (const [what, otherAad] of others) await rejectsWith(p.unwrap(wrapped, otherAad), 'ERR_DECRYPTION_FAILED', what)
  })

  test('another root key fails with ERR_DECRYPTION_FAILED', async () => {
    const wrapped = await new LocalFileKeyProvider(randomBytes(32)).wrap(randomBytes(32), aad)
    await rejectsWith(new LocalFileKeyProvider(randomBytes(32)).unwrap(wrapped, aad), 'ERR_DECRYPTION_FAILED', 'other root key')
  })

  test('a flipped bit, a truncation or a wrong version byte fails with ERR_DECRYPTION_FAILED', async () => {
    const p = new LocalFileKeyProvider(randomBytes(32))
    const wrapped = await p.wrap(randomBytes(32), aad)
    for (let bit = 0; bit < wrapped.length * 8; bit++) {
      const w = Buffer.from(wrapped)
      w[bit >> 3] = (w[bit >> 3] as number) ^ (1 << (bit & 7))
      await rejectsWith(p.unwrap(w, aad), 'ERR_DECRYPTION_FAILED', `bit ${bit}`)
    }
    for (let len = 0; len < wrapped.length; len++) {
      await rejectsWith(p.unwrap(wrapped.subarray(0, len), aad), 'ERR_DECRYPTION_FAILED', `truncated to ${len}`)
    }
  })

  test('keyId is stable per key, differs between keys and does not reveal the key', () => {
    const key = randomBytes(32)
    const a = new LocalFileKeyProvider(key)
    assert.equal(a.kind, 'local')
    assert.equal(new LocalFileKeyProvider(Buffer.from(key)).keyId, a.keyId)
    assert.notEqual(new LocalFileKeyProvider(randomBytes(32)).keyId, a.keyId)
    assert.ok(!a.keyId.includes(key.toString('hex').slice(0, 8)), 'keyId contains key bytes')
  })

  test('a root key that is not 32 bytes is a TypeError', () => {
    for (const n of [0, 16, 31, 33]) assert.throws(() => new LocalFileKeyProvider(randomBytes(n)), TypeError)
  })

  test('after close, wrap refuses and unwrap fails', async () => {
    const p = new LocalFileKeyProvider(randomBytes(32))
    const wrapped = await p.wrap(randomBytes(32), aad)
    await p.close()
    await assert.rejects(p.wrap(randomBytes(32), aad), 'wrap after close must not use the zeroed key')
    await rejectsWith(p.unwrap(wrapped, aad), 'ERR_DECRYPTION_FAILED', 'unwrap after close')
  })

  test('the provider keeps its own copy of the root key', async () => {
    const key = randomBytes(32)
    const p = new LocalFileKeyProvider(key)
    const wrapped = await p.wrap(randomBytes(32), aad)
    const copy = Buffer.from(key)
    key.fill(0)
    await p.unwrap(wrapped, aad)
    await new LocalFileKeyProvider(copy).unwrap(wrapped, aad)
  })
})

describe('createKeyProvider (local)', () => {
  test('COFFER_ROOT_KEY takes precedence and creates no file', async () => {
    const dataDir = await tempDir()
    const rootKey = randomBytes(32)
    const env = readEnv({ COFFER_DATA_DIR: dataDir, COFFER_ROOT_KEY: b64(rootKey) })
    const config = buildConfig(env)
    const { provider, createdKeyFile } = await createKeyProvider(config.keyProvider, buildSecrets(env))
    assert.equal(createdKeyFile, false)
    assert.equal(provider.kind, 'local')
    assert.equal(existsSync(join(dataDir, ROOT_KEY_FILE)), false, 'a root.key file was created')
    // The provider uses exactly that key.
    const dekAad = dataKeyAad(randomUUID(), 1, SCOPE)
    const dek = randomBytes(32)
    const wrapped = await provider.wrap(dek, dekAad)
    assert.ok((await new LocalFileKeyProvider(rootKey).unwrap(wrapped, dekAad)).equals(dek), 'the provider uses another key')
    assert.equal(provider.keyId, new LocalFileKeyProvider(rootKey).keyId)
    await provider.close()
  })

  test('COFFER_ROOT_KEY wins over an existing root.key file', async () => {
    const dataDir = await tempDir()
    const fileKey = (await loadOrCreateRootKeyFile(dataDir)).key
    const envKey = randomBytes(32)
    const env = readEnv({ COFFER_DATA_DIR: dataDir, COFFER_ROOT_KEY: b64(envKey) })
    const { provider } = await createKeyProvider(buildConfig(env).keyProvider, buildSecrets(env))
    assert.equal(provider.keyId, new LocalFileKeyProvider(envKey).keyId)
    assert.notEqual(provider.keyId, new LocalFileKeyProvider(fileKey).keyId)
    await provider.close()
  })

  test('without COFFER_ROOT_KEY it creates root.key once and then reuses it', async () => {
    const dataDir = await tempDir()
    const env = readEnv({ COFFER_DATA_DIR: dataDir })
    const first = await createKeyProvider(buildConfig(env).keyProvider, buildSecrets(env))
    assert.equal(first.createdKeyFile, true)
    const second = await createKeyProvider(buildConfig(env).keyProvider, buildSecrets(env))
    assert.equal(second.createdKeyFile, false)
    assert.equal(second.provider.keyId, first.provider.keyId)
    const fileKey = await readFile(join(dataDir, ROOT_KEY_FILE))
    assert.equal(first.provider.keyId, new LocalFileKeyProvider(fileKey).keyId)
    await first.provider.close()
    await second.provider.close()
  })
})

describe('createContext root-key check', () => {
  const start = (dataDir: string, rootKey?: Buffer) => {
    const env = readEnv({ COFFER_DATA_DIR: dataDir, COFFER_LOG_LEVEL: 'silent', ...(rootKey ? { COFFER_ROOT_KEY: b64(rootKey) } : {}) })
    return createContext(buildConfig(env), buildSecrets(env))
  }

  test('a database made with key A refuses key B with ERR_ROOT_KEY_MISMATCH, and still opens with A', async () => {
    const dataDir = await tempDir()
    const keyA = randomBytes(32)
    const ctx = await start(dataDir, keyA)
    await ctx.close()
    await rejectsWith(start(dataDir, randomBytes(32)), 'ERR_ROOT_KEY_MISMATCH', 'key B')
    const again = await start(dataDir, keyA)
    await again.close()
  })

  test('a database made with the root.key file refuses a different COFFER_ROOT_KEY', async () => {
    const dataDir = await tempDir()
    const ctx = await start(dataDir)
    assert.equal(ctx.createdKeyFile, true)
    await ctx.close()
    await rejectsWith(start(dataDir, randomBytes(32)), 'ERR_ROOT_KEY_MISMATCH', 'env key over a file-key database')
    const fileKey = await readFile(join(dataDir, ROOT_KEY_FILE))
    const again = await start(dataDir, fileKey)
    assert.equal(again.createdKeyFile, false)
    await again.close()
  })
})
