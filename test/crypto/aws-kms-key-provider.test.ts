// AWS KMS is a mock of the remote service here: it cannot be reached from this machine.
// aws-sdk-client-mock replaces KMSClient#send with an in-memory fake that really encrypts
// (AES-256-GCM under a per-key secret the fake holds) and binds the encryption context,
// so a wrong context fails as real KMS does, with InvalidCiphertextException. Nothing here
// shows that Coffer works against the real service.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto'
import {
  DecryptCommand,
  type DecryptCommandInput,
  type DecryptCommandOutput,
  DescribeKeyCommand,
  type DescribeKeyCommandInput,
  type DescribeKeyCommandOutput,
  EncryptCommand,
  type EncryptCommandInput,
  type EncryptCommandOutput,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  KMSInvalidStateException,
  type KeyMetadata,
  KMSServiceException,
  NotFoundException,
} from '@aws-sdk/client-kms'
import { mockClient } from 'aws-sdk-client-mock'
import { AwsKmsKeyProvider } from '../../src/crypto/aws-kms-key-provider.js'
import { dataKeyAad } from '../../src/crypto/key-provider.js'
import { CofferError } from '../../src/errors.js'
import { exerciseKeyProvider } from './exercise-key-provider.js'

const REGION = 'eu-west-1'
const ACCOUNT = '111122223333'
// Text an AWS error carries; no Coffer error may show it.
const AWS_TEXT = 'aws-detail-7f3c-do-not-show'

interface FakeKey {
  readonly id: string
  readonly arn: string
  readonly secret: Buffer
  readonly meta: KeyMetadata
}

const meta = { httpStatusCode: 400, requestId: 'fake' }

/** An in-memory stand-in for KMS: keys, aliases, Encrypt/Decrypt/DescribeKey. */
class FakeKms {
  readonly #keys = new Map<string, FakeKey>()
  readonly #aliases = new Map<string, string>()

  addKey(alias: string | null, over: Partial<KeyMetadata> = {}): FakeKey {
    const id = randomUUID()
    const arn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`
    const key: FakeKey = {
      id,
      arn,
      secret: randomBytes(32),
      meta: { KeyId: id, Arn: arn, KeyState: 'Enabled', Enabled: true, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', ...over },
    }
    this.#keys.set(id, key)
    if (alias) this.#aliases.set(alias, id)
    return key
  }

  /** Resolves a key id, key ARN, alias name or alias ARN, as KMS does. */
  #resolve(keyId: string | undefined): FakeKey {
    if (!keyId) throw new NotFoundException({ message: `${AWS_TEXT}: no key`, $metadata: meta })
    const aliasName = keyId.startsWith('alias/') ? keyId : /^arn:aws:kms:[^:]+:\d+:(alias\/.+)$/.exec(keyId)?.[1]
    const id = aliasName ? this.#aliases.get(aliasName) : (/^arn:aws:kms:[^:]+:\d+:key\/(.+)$/.exec(keyId)?.[1] ?? keyId)
    const key = id ? this.#keys.get(id) : undefined
    if (!key) throw new NotFoundException({ message: `${AWS_TEXT}: key ${keyId} not found`, $metadata: meta })
    return key
  }

  #usable(key: FakeKey): void {
    if (key.meta.KeyState !== 'Enabled')
      throw new KMSInvalidStateException({ message: `${AWS_TEXT}: ${key.arn} is ${key.meta.KeyState}`, $metadata: meta })
  }

  describeKey = async (input: DescribeKeyCommandInput): Promise<DescribeKeyCommandOutput> => {
    return { KeyMetadata: { ...this.#resolve(input.KeyId).meta }, $metadata: { httpStatusCode: 200 } }
  }

  // Blob: key id (36 ASCII bytes) ‖ IV ‖ AES-256-GCM(plaintext) ‖ tag, with the key id and
  // the canonical encryption context as AAD: like a real blob, every bit is authenticated.
  encrypt = async (input: EncryptCommandInput): Promise<EncryptCommandOutput> => {
    const key = this.#resolve(input.KeyId)
    this.#usable(key)
    const iv = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', key.secret, iv)
    c.setAAD(Buffer.concat([Buffer.from(key.id, 'latin1'), canonical(input.EncryptionContext)]))
    const body = Buffer.concat([c.update(input.Plaintext!), c.final()])
    return {
      CiphertextBlob: Buffer.concat([Buffer.from(key.id, 'latin1'), iv, body, c.getAuthTag()]),
      KeyId: key.arn,
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      $metadata: { httpStatusCode: 200 },
    }
  }

  decrypt = async (input: DecryptCommandInput): Promise<DecryptCommandOutput> => {
    const blob = Buffer.from(input.CiphertextBlob ?? new Uint8Array())
    const invalid = () => new InvalidCiphertextException({ message: `${AWS_TEXT}: invalid ciphertext`, $metadata: meta })
    if (blob.length < 36 + 12 + 16) throw invalid()
    const key = this.#keys.get(blob.subarray(0, 36).toString('latin1'))
    if (!key) throw invalid()
    if (input.KeyId && this.#resolve(input.KeyId).id !== key.id)
      throw new IncorrectKeyException({ message: `${AWS_TEXT}: incorrect key`, $metadata: meta })
    this.#usable(key)
    try {
      const d = createDecipheriv('aes-256-gcm', key.secret, blob.subarray(36, 48))
      d.setAAD(Buffer.concat([blob.subarray(0, 36), canonical(input.EncryptionContext)]))
      d.setAuthTag(blob.subarray(blob.length - 16))
      const plaintext = Buffer.concat([d.update(blob.subarray(48, blob.length - 16)), d.final()])
      return { Plaintext: plaintext, KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', $metadata: { httpStatusCode: 200 } }
    } catch {
      throw invalid()
    }
  }
}

/** The encryption context in a fixed order, so equal contexts authenticate alike. */
function canonical(ctx: Record<string, string> | undefined): Buffer {
  return Buffer.from(JSON.stringify(Object.entries(ctx ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), 'utf8')
}

const fake = new FakeKms()
const keyA = fake.addKey('alias/coffer-a')
const keyB = fake.addKey('alias/coffer-b')
const disabled = fake.addKey('alias/disabled', { KeyState: 'Disabled', Enabled: false })
fake.addKey('alias/pending', { KeyState: 'PendingDeletion', Enabled: false })
const asymmetric = fake.addKey('alias/rsa', { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })
fake.addKey('alias/hmac', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })

// Every KMSClient's send is the fake's; no request leaves the process.
const kms = mockClient(KMSClient)
kms.on(DescribeKeyCommand).callsFake(fake.describeKey)
kms.on(EncryptCommand).callsFake(fake.encrypt)
kms.on(DecryptCommand).callsFake(fake.decrypt)
after(() => kms.restore())

const client = () => new KMSClient({ region: REGION })

// mockClient on one instance would undo the class-wide mock, so failures are staged by
// overriding one command on the class mock for the length of `fn`, then restoring the fake.
async function withDescribeKey<T>(behave: (b: ReturnType<typeof kms.on>) => unknown, fn: () => Promise<T>): Promise<T> {
  behave(kms.on(DescribeKeyCommand))
  try {
    return await fn()
  } finally {
    kms.on(DescribeKeyCommand).callsFake(fake.describeKey)
  }
}
async function withDecrypt<T>(behave: (b: ReturnType<typeof kms.on>) => unknown, fn: () => Promise<T>): Promise<T> {
  behave(kms.on(DecryptCommand))
  try {
    return await fn()
  } finally {
    kms.on(DecryptCommand).callsFake(fake.decrypt)
  }
}
const open = (keyId: string) => AwsKmsKeyProvider.open({ keyId, region: REGION, client: client() })

/** Awaits `p`, which must reject with a CofferError of `code` that never shows AWS error text. */
async function rejectsWith(p: Promise<unknown>, code: string, what: string, setting?: string): Promise<void> {
  let thrown: unknown
  try {
    await p
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown instanceof CofferError, `${what}: expected ${code}, got ${thrown === undefined ? 'success' : String(thrown)}`)
  assert.equal(thrown.code, code, what)
  if (setting !== undefined) assert.equal((thrown as CofferError & { setting?: string }).setting, setting, what)
  assert.ok(!thrown.message.includes(AWS_TEXT) && !String(thrown.stack).includes(AWS_TEXT), `${what}: the error shows AWS error text`)
}

describe('aws-kms (KMS is a mock of the remote service; it cannot be reached here)', () => {
  exerciseKeyProvider('AwsKmsKeyProvider against a mocked KMS (the remote service cannot be reached here)', async () => {
    const provider = await open(keyA.arn)
    const otherProvider = await open('alias/coffer-b').catch(async (err) => {
      await provider.close()
      throw err
    })
    return { provider, otherProvider, close: async () => void (await Promise.all([provider.close(), otherProvider.close()])) }
  })

  test('keyId is aws-kms:<key ARN>, also when opened by alias', async () => {
    const byAlias = await open('alias/coffer-a')
    const byArn = await open(keyA.arn)
    const byId = await open(keyA.id)
    try {
      assert.equal(byAlias.keyId, `aws-kms:${keyA.arn}`)
      assert.equal(byArn.keyId, byAlias.keyId)
      assert.equal(byId.keyId, byAlias.keyId)
      const aad = dataKeyAad(randomUUID(), 1, { workspaceId: randomUUID(), projectId: '', environmentId: '' })
      const dek = randomBytes(32)
      assert.ok((await byId.unwrap(await byAlias.wrap(dek, aad), aad)).equals(dek), 'an alias-opened and an id-opened provider disagree')
    } finally {
      await Promise.all([byAlias.close(), byArn.close(), byId.close()])
    }
  })

  test('Encrypt and Decrypt carry the key ARN and the encryption context { coffer, aad: base64(aad) }', async () => {
    const p = await open('alias/coffer-a')
    try {
      const aad = dataKeyAad(randomUUID(), 7, { workspaceId: randomUUID(), projectId: randomUUID(), environmentId: randomUUID() })
      const dek = randomBytes(32)
      kms.resetHistory()
      const wrapped = await p.wrap(dek, aad)
      const enc = kms.commandCalls(EncryptCommand)
      assert.equal(enc.length, 1)
      const encIn = enc[0]!.args[0].input
      assert.equal(encIn.KeyId, keyA.arn)
      assert.deepEqual(encIn.EncryptionContext, { coffer: 'dek/v1', aad: aad.toString('base64') })
      assert.ok(Buffer.from(encIn.Plaintext!).equals(dek), 'Encrypt was not sent the DEK')
      assert.equal(wrapped[0], 0x03)
      const encOut = (await enc[0]!.returnValue) as EncryptCommandOutput
      assert.ok(wrapped.subarray(1).equals(Buffer.from(encOut.CiphertextBlob!)), 'the wrapped form is not 0x03 ‖ CiphertextBlob')

      assert.ok((await p.unwrap(wrapped, aad)).equals(dek))
      const dec = kms.commandCalls(DecryptCommand)
      assert.equal(dec.length, 1)
      const decIn = dec[0]!.args[0].input
      assert.equal(decIn.KeyId, keyA.arn)
      assert.deepEqual(decIn.EncryptionContext, { coffer: 'dek/v1', aad: aad.toString('base64') })
      assert.ok(Buffer.from(decIn.CiphertextBlob!).equals(wrapped.subarray(1)), 'Decrypt was not sent the KMS blob')
    } finally {
      await p.close()
    }
  })

  test('a blob with another prefix byte is refused before KMS is asked', async () => {
    const p = await open(keyA.arn)
    try {
      const aad = Buffer.from('scope')
      const wrapped = await p.wrap(randomBytes(32), aad)
      kms.resetHistory()
      for (const prefix of [0x00, 0x01, 0x02, 0x04, 0xff]) {
        const t = Buffer.from(wrapped)
        t[0] = prefix
        await rejectsWith(p.unwrap(t, aad), 'ERR_DECRYPTION_FAILED', `prefix ${prefix}`)
      }
      assert.equal(kms.commandCalls(DecryptCommand).length, 0)
    } finally {
      await p.close()
    }
  })

  describe('open() refuses an unusable key with ERR_CONFIG naming the setting', () => {
    const cases: Array<[string, string, string]> = [
      ['a missing key (NotFoundException)', 'alias/no-such-key', 'COFFER_AWS_KMS_KEY_ID'],
      ['a key ARN that does not exist', `arn:aws:kms:${REGION}:${ACCOUNT}:key/${randomUUID()}`, 'COFFER_AWS_KMS_KEY_ID'],
      ['a Disabled key', disabled.arn, 'COFFER_AWS_KMS_KEY_ID'],
      ['a key pending deletion', 'alias/pending', 'COFFER_AWS_KMS_KEY_ID'],
      ['an asymmetric (RSA_2048) key', asymmetric.arn, 'COFFER_AWS_KMS_KEY_ID'],
      ['an HMAC key', 'alias/hmac', 'COFFER_AWS_KMS_KEY_ID'],
    ]
    for (const [what, keyId, setting] of cases) {
      test(what, async () => {
        await rejectsWith(open(keyId), 'ERR_CONFIG', what, setting)
      })
    }

    test('an empty key id', async () => {
      await rejectsWith(open(''), 'ERR_CONFIG', 'empty key id', 'COFFER_AWS_KMS_KEY_ID')
    })

    // These need DescribeKey to fail in ways the fake cannot.
    const failing = (err: Error, options: { endpoint?: string } = {}) =>
      withDescribeKey(
        (b) => b.rejects(err),
        () => AwsKmsKeyProvider.open({ keyId: keyA.arn, region: REGION, client: client(), ...options }),
      )
    const named = (name: string, status?: number) =>
      Object.assign(new Error(`${AWS_TEXT}: ${name}`), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) })

    test('no credentials (CredentialsProviderError) names AWS credentials', async () => {
      await rejectsWith(failing(named('CredentialsProviderError')), 'ERR_CONFIG', 'no credentials', 'AWS credentials')
    })

    test('rejected credentials name AWS credentials', async () => {
      const err = new KMSServiceException({
        name: 'UnrecognizedClientException',
        $fault: 'client',
        message: `${AWS_TEXT}: bad token`,
        $metadata: { httpStatusCode: 400 },
      })
      await rejectsWith(failing(err), 'ERR_CONFIG', 'rejected credentials', 'AWS credentials')
    })

    test('access denied names COFFER_AWS_KMS_KEY_ID', async () => {
      const err = new KMSServiceException({
        name: 'AccessDeniedException',
        $fault: 'client',
        message: `${AWS_TEXT}: denied`,
        $metadata: { httpStatusCode: 400 },
      })
      await rejectsWith(failing(err), 'ERR_CONFIG', 'access denied', 'COFFER_AWS_KMS_KEY_ID')
    })

    test('an unreachable KMS names the region, or the endpoint when one is set', async () => {
      const net = () => Object.assign(new Error(`${AWS_TEXT}: getaddrinfo ENOTFOUND`), { code: 'ENOTFOUND' })
      await rejectsWith(failing(net()), 'ERR_CONFIG', 'unreachable region', 'COFFER_AWS_REGION')
      await rejectsWith(
        failing(net(), { endpoint: 'https://kms.invalid' }),
        'ERR_CONFIG',
        'unreachable endpoint',
        'COFFER_AWS_KMS_ENDPOINT',
      )
    })
  })

  describe('unwrap turns every KMS failure into ERR_DECRYPTION_FAILED', () => {
    const aad = Buffer.from('coffer-scope')
    const svc = (name: string) =>
      new KMSServiceException({ name, $fault: 'client', message: `${AWS_TEXT}: ${name}`, $metadata: { httpStatusCode: 400 } })
    const errors: Array<[string, unknown]> = [
      ['InvalidCiphertextException', new InvalidCiphertextException({ message: `${AWS_TEXT}: invalid`, $metadata: meta })],
      ['IncorrectKeyException', new IncorrectKeyException({ message: `${AWS_TEXT}: incorrect`, $metadata: meta })],
      ['KMSInvalidStateException', new KMSInvalidStateException({ message: `${AWS_TEXT}: disabled`, $metadata: meta })],
      ['NotFoundException', new NotFoundException({ message: `${AWS_TEXT}: gone`, $metadata: meta })],
      ['AccessDeniedException', svc('AccessDeniedException')],
      ['ThrottlingException', svc('ThrottlingException')],
      ['a network error', Object.assign(new Error(`${AWS_TEXT}: socket hang up`), { code: 'ECONNRESET' })],
      ['a timeout', Object.assign(new Error(`${AWS_TEXT}: timed out`), { name: 'TimeoutError' })],
      ['CredentialsProviderError', Object.assign(new Error(`${AWS_TEXT}: no creds`), { name: 'CredentialsProviderError' })],
      ['a thrown string', `${AWS_TEXT}: a string`],
    ]

    test('each SDK error', async () => {
      const good = await open(keyA.arn)
      const wrapped = await good.wrap(randomBytes(32), aad)
      await good.close()
      const p = await open(keyA.arn)
      try {
        for (const [what, err] of errors) {
          await withDecrypt(
            (b) => b.rejects(err as Error),
            () => rejectsWith(p.unwrap(wrapped, aad), 'ERR_DECRYPTION_FAILED', what),
          )
        }
        assert.ok((await p.unwrap(wrapped, aad)).length === 32, 'the provider no longer unwraps after the failures')
      } finally {
        await p.close()
      }
    })

    test('a wrong encryption context is refused by (the fake) KMS and surfaces as ERR_DECRYPTION_FAILED', async () => {
      const p = await open(keyA.arn)
      try {
        const wrapped = await p.wrap(randomBytes(32), aad)
        kms.resetHistory()
        await rejectsWith(p.unwrap(wrapped, Buffer.from('another-scope')), 'ERR_DECRYPTION_FAILED', 'wrong context')
        const calls = kms.commandCalls(DecryptCommand)
        assert.equal(calls.length, 1)
        await assert.rejects(calls[0]!.returnValue as Promise<unknown>, (e: unknown) => e instanceof InvalidCiphertextException)
      } finally {
        await p.close()
      }
    })

    test('an answer from another key, or without a plaintext, is refused', async () => {
      const good = await open(keyA.arn)
      const wrapped = await good.wrap(randomBytes(32), aad)
      await good.close()
      const answers: Array<[string, Partial<DecryptCommandOutput>]> = [
        ['another KeyId', { Plaintext: randomBytes(32), KeyId: keyB.arn }],
        ['no KeyId', { Plaintext: randomBytes(32) }],
        ['no Plaintext', { KeyId: keyA.arn }],
      ]
      const p = await open(keyA.arn)
      try {
        for (const [what, answer] of answers) {
          await withDecrypt(
            (b) => b.resolves(answer),
            () => rejectsWith(p.unwrap(wrapped, aad), 'ERR_DECRYPTION_FAILED', what),
          )
        }
      } finally {
        await p.close()
      }
    })
  })

  test('a provider that built its own client works and refuses calls after close()', async () => {
    // No client is passed: open() builds a KMSClient, whose send is still the mocked one.
    const p = await AwsKmsKeyProvider.open({ keyId: 'alias/coffer-a', region: REGION })
    const aad = Buffer.from('x')
    const dek = randomBytes(32)
    assert.ok((await p.unwrap(await p.wrap(dek, aad), aad)).equals(dek))
    await p.close()
    await assert.rejects(p.wrap(dek, aad))
    await assert.rejects(p.unwrap(Buffer.of(3, 1, 2), aad))
  })
})
