import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { dataKeyAad, type DataKeyScope, type KeyProvider } from '../../src/crypto/key-provider.js'
import { CofferError } from '../../src/errors.js'

/** What a conformance run needs: a provider, one with a different root key, and a way to release both. */
export interface OpenedProviders {
  readonly provider: KeyProvider
  readonly otherProvider: KeyProvider
  close(): Promise<void>
}

/** Awaits `p`, which must reject with DecryptionError (ERR_DECRYPTION_FAILED). */
async function rejectsDecryption(p: Promise<unknown>, what: string): Promise<void> {
  let thrown: unknown
  try {
    await p
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown instanceof CofferError, `${what}: expected a DecryptionError, got ${thrown === undefined ? 'success' : String(thrown)}`)
  assert.equal(thrown.code, 'ERR_DECRYPTION_FAILED', what)
}

const scope = (): DataKeyScope => ({ workspaceId: randomUUID(), projectId: randomUUID(), environmentId: randomUUID() })

/**
 * The KeyProvider conformance suite. `open` is called once for the suite and again to check
 * that keyId survives a reopen; every opened pair is closed. DEKs never reach the test
 * output: they are compared with Buffer.equals inside assert.ok.
 */
export function exerciseKeyProvider(name: string, open: () => Promise<OpenedProviders>): void {
  describe(`KeyProvider conformance: ${name}`, () => {
    let opened: OpenedProviders | undefined
    const get = (): OpenedProviders => {
      assert.ok(opened, 'the providers did not open')
      return opened
    }
    before(async () => {
      opened = await open()
    })
    after(async () => {
      await opened?.close()
    })

    test('wrap/unwrap round-trips random 32-byte DEKs', async () => {
      const { provider } = get()
      for (let i = 0; i < 25; i++) {
        const dek = randomBytes(32)
        const aad = dataKeyAad(randomUUID(), i + 1, scope())
        const wrapped = await provider.wrap(dek, aad)
        assert.ok(!wrapped.includes(dek), 'the wrapped form contains the DEK')
        assert.ok((await provider.unwrap(wrapped, aad)).equals(dek), `round trip ${i} returned another DEK`)
      }
    })

    test('200 concurrent wraps and unwraps are all correct', async () => {
      const { provider } = get()
      const cases = Array.from({ length: 200 }, (_, i) => ({ dek: randomBytes(32), aad: dataKeyAad(randomUUID(), i + 1, scope()) }))
      const wrapped = await Promise.all(cases.map((c) => provider.wrap(c.dek, c.aad)))
      // Unwraps interleaved with fresh wraps, all in flight at once.
      const results = await Promise.all(
        cases.flatMap((c, i) => [
          provider.unwrap(wrapped[i]!, c.aad).then((d) => d.equals(c.dek)),
          provider
            .wrap(c.dek, c.aad)
            .then((w) => provider.unwrap(w, c.aad))
            .then((d) => d.equals(c.dek)),
        ]),
      )
      assert.equal(results.filter((ok) => !ok).length, 0, 'some concurrent round trips returned another DEK')
    })

    test('unwrap with another AAD (scope, version, DEK id) is a DecryptionError', async () => {
      const { provider } = get()
      const dekId = randomUUID()
      const s = scope()
      const aad = dataKeyAad(dekId, 3, s)
      const wrapped = await provider.wrap(randomBytes(32), aad)
      await rejectsDecryption(provider.unwrap(wrapped, dataKeyAad(dekId, 3, { ...s, environmentId: randomUUID() })), 'another environment')
      await rejectsDecryption(provider.unwrap(wrapped, dataKeyAad(dekId, 3, { ...s, projectId: randomUUID() })), 'another project')
      await rejectsDecryption(provider.unwrap(wrapped, dataKeyAad(dekId, 3, { ...s, workspaceId: randomUUID() })), 'another workspace')
      await rejectsDecryption(provider.unwrap(wrapped, dataKeyAad(dekId, 4, s)), 'another version')
      await rejectsDecryption(provider.unwrap(wrapped, dataKeyAad(randomUUID(), 3, s)), 'another DEK id')
      await rejectsDecryption(provider.unwrap(wrapped, Buffer.alloc(0)), 'no AAD')
    })

    test('a flipped bit anywhere is a DecryptionError, and the provider still works after', async () => {
      const { provider } = get()
      const dek = randomBytes(32)
      const aad = dataKeyAad(randomUUID(), 1, scope())
      const wrapped = await provider.wrap(dek, aad)
      for (let bit = 0; bit < wrapped.length * 8; bit++) {
        const t = Buffer.from(wrapped)
        t[bit >> 3]! ^= 1 << (bit & 7)
        await rejectsDecryption(provider.unwrap(t, aad), `bit ${bit} flipped`)
      }
      assert.ok((await provider.unwrap(wrapped, aad)).equals(dek), 'the untouched blob no longer unwraps')
    })

    test('a truncated or extended blob is a DecryptionError', async () => {
      const { provider } = get()
      const aad = dataKeyAad(randomUUID(), 1, scope())
      const wrapped = await provider.wrap(randomBytes(32), aad)
      for (let len = 0; len < wrapped.length; len++) {
        await rejectsDecryption(provider.unwrap(wrapped.subarray(0, len), aad), `truncated to ${len} bytes`)
      }
      await rejectsDecryption(provider.unwrap(wrapped.subarray(1), aad), 'first byte dropped')
      await rejectsDecryption(provider.unwrap(Buffer.concat([wrapped, Buffer.of(0)]), aad), 'one byte appended')
    })

    test("another provider's blob is a DecryptionError, both ways", async () => {
      const { provider, otherProvider } = get()
      const aad = dataKeyAad(randomUUID(), 1, scope())
      const dek = randomBytes(32)
      await rejectsDecryption(otherProvider.unwrap(await provider.wrap(dek, aad), aad), 'provider → otherProvider')
      await rejectsDecryption(provider.unwrap(await otherProvider.wrap(dek, aad), aad), 'otherProvider → provider')
    })

    test('wrapping the same DEK twice gives different blobs', async () => {
      const { provider } = get()
      const dek = randomBytes(32)
      const aad = dataKeyAad(randomUUID(), 1, scope())
      const a = await provider.wrap(dek, aad)
      const b = await provider.wrap(dek, aad)
      assert.ok(!a.equals(b), 'two wraps of one DEK are equal')
      assert.ok((await provider.unwrap(b, aad)).equals(dek))
    })

    test('keyId is stable across reopen and differs between root keys', async () => {
      const { provider, otherProvider } = get()
      assert.ok(provider.keyId.length > 0)
      assert.notEqual(provider.keyId, otherProvider.keyId)
      const again = await open()
      try {
        assert.equal(again.provider.keyId, provider.keyId)
        assert.equal(again.otherProvider.keyId, otherProvider.keyId)
        // The reopened provider opens what the first one wrapped.
        const aad = dataKeyAad(randomUUID(), 1, scope())
        const dek = randomBytes(32)
        assert.ok((await again.provider.unwrap(await provider.wrap(dek, aad), aad)).equals(dek), 'a reopened provider does not unwrap')
      } finally {
        await again.close()
      }
      // Closing the second pair leaves the first one working.
      const aad = dataKeyAad(randomUUID(), 1, scope())
      const dek = randomBytes(32)
      assert.ok((await provider.unwrap(await provider.wrap(dek, aad), aad)).equals(dek), 'closing a reopened pair broke the first')
    })
  })
}
