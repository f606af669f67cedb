import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import {
  HEADER_LENGTH,
  NONCE_LENGTH,
  OVERHEAD,
  TAG_LENGTH,
  associatedData,
  keyRefOf,
  open,
  seal,
  type Binding,
  type DataKey,
} from '../../src/crypto/envelope.js'
import { CofferError, DecryptionError } from '../../src/errors.js'

// Keys and plaintexts must never reach the test output, even when a test fails: byte
// comparisons go through assert.ok(a.equals(b), 'value-free message'), and property failures
// are reported by seed and path only (see `holds`).

// ---- vectors

interface EnvelopeVector {
  name: string
  dekKey: string
  dekId: string
  dekVersion: number
  binding: { workspaceId: string; projectId: string; environmentId: string; recordId: string; recordVersion: string; field: string }
  nonce: string
  plaintext: string
  aad: string
  ciphertext: string
}

const VECTORS_PATH = fileURLToPath(new URL('../vectors/envelope-v1.json', import.meta.url))
const vectors = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as { envelope: EnvelopeVector[] }
const hex = (s: string): Buffer => Buffer.from(s, 'hex')
const dekOf = (v: EnvelopeVector): DataKey => ({ id: v.dekId, version: v.dekVersion, key: hex(v.dekKey) })
const bindingOf = (v: EnvelopeVector): Binding => ({ ...v.binding, recordVersion: BigInt(v.binding.recordVersion) })

// ---- an independent implementation of the documented layout (DESIGN.md, test/vectors/README.md)

function refLp(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8')
  const len = Buffer.alloc(2)
  len.writeUInt16BE(bytes.length)
  return Buffer.concat([len, bytes])
}

function refHeader(dekId: string, dekVersion: number): Buffer {
  const h = Buffer.alloc(22)
  h[0] = 0x01
  h[1] = 0x01
  Buffer.from(dekId.replaceAll('-', ''), 'hex').copy(h, 2)
  h.writeUInt32BE(dekVersion, 18)
  return h
}

function refAad(header: Buffer, b: Binding): Buffer {
  const version = Buffer.alloc(8)
  version.writeBigUInt64BE(BigInt(b.recordVersion))
  return Buffer.concat([
    Buffer.from('coffer/v1', 'utf8'),
    header,
    refLp(b.workspaceId),
    refLp(b.projectId),
    refLp(b.environmentId),
    refLp(b.recordId),
    version,
    refLp(b.field),
  ])
}

// ---- helpers

const REFERENCE = new DecryptionError()

/** Runs `fn`, which must fail with exactly the one decryption error; returns what it threw. */
function expectDecryptionFailure(fn: () => unknown, what: string): DecryptionError {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown !== undefined, `${what}: expected a decryption failure, but it opened`)
  assert.ok(thrown instanceof CofferError, `${what}: threw something other than a CofferError`)
  assert.equal(thrown.code, 'ERR_DECRYPTION_FAILED', what)
  assert.equal(thrown.constructor, DecryptionError, what)
  assert.equal(thrown.message, REFERENCE.message, what)
  assert.equal(thrown.status, REFERENCE.status, what)
  assert.equal(thrown.cause, undefined, `${what}: the error carries a cause`)
  return thrown as DecryptionError
}

/** fc.assert, but a failure reports only the seed, the path and a value-free reason. */
function holds<Ts extends [unknown, ...unknown[]]>(prop: fc.IProperty<Ts>, params: fc.Parameters<Ts> = {}): void {
  const out = fc.check(prop, params)
  if (!out.failed) return
  const err = out.errorInstance
  const why =
    err instanceof assert.AssertionError
      ? err.message
      : err instanceof CofferError
        ? `${err.name} ${err.code}`
        : err instanceof Error
          ? err.name
          : 'a non-error was thrown'
  throw new Error(`property failed after ${out.numRuns} runs; replay with { seed: ${out.seed}, path: "${out.counterexamplePath}" }: ${why}`)
}

const arbKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b))
const arbDek: fc.Arbitrary<DataKey> = fc.record({
  id: fc.uuid(),
  version: fc.integer({ min: 1, max: 0xffffffff }),
  key: arbKey,
})
const arbText = fc.string({ unit: 'binary', maxLength: 40 })
const arbRecordVersion = fc.oneof(fc.maxSafeNat(), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
const arbBinding: fc.Arbitrary<Binding> = fc.record({
  workspaceId: arbText,
  projectId: arbText,
  environmentId: arbText,
  recordId: arbText,
  recordVersion: arbRecordVersion,
  field: arbText,
})
const arbPlaintext = fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b))

interface Sealed {
  dek: DataKey
  binding: Binding
  plaintext: Buffer
  ct: Buffer
}
const arbSealed: fc.Arbitrary<Sealed> = fc
  .record({ dek: arbDek, binding: arbBinding, plaintext: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)) })
  .map(({ dek, binding, plaintext }) => ({ dek, binding, plaintext, ct: seal(dek, plaintext, binding) }))

const flipBit = (buf: Buffer, bit: number): Buffer => {
  const out = Buffer.from(buf)
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7))
  return out
}

const sampleDek = (): DataKey => ({ id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', version: 4, key: randomBytes(32) })
const sampleBinding: Binding = {
  workspaceId: 'ws-1',
  projectId: 'proj-1',
  environmentId: 'env-1',
  recordId: 'rec-1',
  recordVersion: 9,
  field: 'value',
}

// ---- (a) known answers

describe('envelope v1 known-answer vectors', () => {
  test('the vector file covers what the format must pin', () => {
    const vs = vectors.envelope
    assert.ok(vs.length >= 8, 'at least 8 envelope vectors')
    const lengths = new Set(vs.map((v) => v.plaintext.length / 2))
    for (const n of [0, 1, 1000]) assert.ok(lengths.has(n), `a ${n}-byte plaintext vector`)
    assert.ok(
      vs.some((v) => /\P{ASCII}/u.test(hex(v.plaintext).toString('utf8'))),
      'a UTF-8 multibyte plaintext vector',
    )
    assert.ok(
      vs.some((v) => BigInt(v.binding.recordVersion) === 2n ** 40n),
      'a record version 2^40 vector',
    )
    assert.ok(
      vs.some((v) => BigInt(v.binding.recordVersion) > BigInt(Number.MAX_SAFE_INTEGER)),
      'a record version beyond 2^53',
    )
  })

  for (const v of vectors.envelope) {
    describe(v.name, () => {
      test('seal yields the expected bytes and AAD; open returns the plaintext', () => {
        const dek = dekOf(v)
        const binding = bindingOf(v)
        const ct = seal(dek, hex(v.plaintext), binding, hex(v.nonce))
        assert.ok(ct.equals(hex(v.ciphertext)), 'seal output differs from the vector')
        assert.equal(ct.length, OVERHEAD + v.plaintext.length / 2)
        assert.ok(associatedData(ct.subarray(0, HEADER_LENGTH), binding).equals(hex(v.aad)), 'associatedData differs from the vector')
        assert.deepEqual(keyRefOf(ct), { id: v.dekId, version: v.dekVersion })
        assert.ok(open(dek, hex(v.ciphertext), binding).equals(hex(v.plaintext)), 'open did not return the plaintext')
      })

      test('a safe-integer record version given as a number encodes like the bigint', () => {
        const rv = BigInt(v.binding.recordVersion)
        if (rv > BigInt(Number.MAX_SAFE_INTEGER)) return
        const ct = seal(dekOf(v), hex(v.plaintext), { ...bindingOf(v), recordVersion: Number(rv) }, hex(v.nonce))
        assert.ok(ct.equals(hex(v.ciphertext)), 'number and bigint record versions encode differently')
      })

      test('an independent AES-256-GCM over the documented layout agrees', () => {
        const binding = bindingOf(v)
        const header = refHeader(v.dekId, v.dekVersion)
        const aad = refAad(header, binding)
        assert.ok(aad.equals(hex(v.aad)), 'documented AAD layout differs from the vector')
        const nonce = hex(v.nonce)
        const c = createCipheriv('aes-256-gcm', hex(v.dekKey), nonce, { authTagLength: 16 })
        c.setAAD(aad)
        const body = Buffer.concat([c.update(hex(v.plaintext)), c.final()])
        const expected = Buffer.concat([header, nonce, body, c.getAuthTag()])
        assert.ok(expected.equals(hex(v.ciphertext)), 'documented layout differs from the vector')

        const ct = hex(v.ciphertext)
        assert.ok(ct.subarray(0, 22).equals(header), 'bytes 0..21 are the header')
        assert.ok(ct.subarray(22, 34).equals(nonce), 'bytes 22..33 are the nonce')
        const d = createDecipheriv('aes-256-gcm', hex(v.dekKey), ct.subarray(22, 34), { authTagLength: 16 })
        d.setAAD(aad)
        d.setAuthTag(ct.subarray(ct.length - 16))
        const pt = Buffer.concat([d.update(ct.subarray(34, ct.length - 16)), d.final()])
        assert.ok(pt.equals(hex(v.plaintext)), 'independent decryption did not return the plaintext')
      })

      test("another vector's binding does not open it", () => {
        for (const other of vectors.envelope) {
          if (other === v || JSON.stringify(other.binding) === JSON.stringify(v.binding)) continue
          expectDecryptionFailure(() => open(dekOf(v), hex(v.ciphertext), bindingOf(other)), `binding of "${other.name}"`)
        }
      })
    })
  }

  test('the committed vectors are what the generator produces', () => {
    const script = fileURLToPath(new URL('../../scripts/gen-envelope-vectors.ts', import.meta.url))
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--check'], { encoding: 'utf8' })
    assert.equal(
      r.status,
      0,
      'gen-envelope-vectors --check failed: the vectors are stale, or src/crypto disagrees with the generator (run node --import tsx scripts/gen-envelope-vectors.ts)',
    )
  })
})

// ---- (b) properties

describe('envelope v1 properties', () => {
  test('round-trips any plaintext (0..4096 bytes) under any binding', () => {
    holds(
      fc.property(arbDek, arbBinding, arbPlaintext, (dek, binding, plaintext) => {
        const ct = seal(dek, plaintext, binding)
        assert.equal(ct.length, plaintext.length + OVERHEAD)
        assert.deepEqual(keyRefOf(ct), { id: dek.id, version: dek.version })
        assert.ok(open(dek, ct, binding).equals(plaintext), 'round trip lost the plaintext')
      }),
    )
  })

  test('opens a ciphertext that sits inside a larger buffer', () => {
    const dek = sampleDek()
    const ct = seal(dek, Buffer.from('inner'), sampleBinding)
    const backing = new Uint8Array(ct.length + 37)
    backing.set(ct, 19)
    assert.ok(open(dek, backing.subarray(19, 19 + ct.length), sampleBinding).equals(Buffer.from('inner')), 'offset view did not open')
  })

  test('flipping any single bit of a ciphertext makes open fail', () => {
    const arb = arbSealed.chain((s) => fc.record({ s: fc.constant(s), bit: fc.nat({ max: s.ct.length * 8 - 1 }) }))
    holds(
      fc.property(arb, ({ s, bit }) => {
        expectDecryptionFailure(() => open(s.dek, flipBit(s.ct, bit), s.binding), `bit ${bit} of ${s.ct.length * 8}`)
      }),
      { numRuns: 500 },
    )
  })

  test('flipping each bit of a short ciphertext, one at a time, makes open fail', () => {
    const dek = sampleDek()
    const ct = seal(dek, Buffer.from('k'), sampleBinding)
    for (let bit = 0; bit < ct.length * 8; bit++) {
      expectDecryptionFailure(() => open(dek, flipBit(ct, bit), sampleBinding), `bit ${bit}`)
    }
  })

  const FIELDS = ['workspaceId', 'projectId', 'environmentId', 'recordId', 'recordVersion', 'field'] as const
  for (const field of FIELDS) {
    test(`changing the binding's ${field} makes open fail`, () => {
      const arbOther = field === 'recordVersion' ? arbRecordVersion : arbText
      holds(
        fc.property(arbSealed, arbOther, (s, other) => {
          const before = s.binding[field]
          const same =
            field === 'recordVersion'
              ? BigInt(before) === BigInt(other as number | bigint)
              : Buffer.from(before as string, 'utf8').equals(Buffer.from(other as string, 'utf8'))
          fc.pre(!same)
          expectDecryptionFailure(() => open(s.dek, s.ct, { ...s.binding, [field]: other }), `changed ${field}`)
        }),
      )
    })
  }

  test('moving a value between adjacent binding fields makes open fail', () => {
    const dek = sampleDek()
    const b: Binding = { workspaceId: 'ab', projectId: 'c', environmentId: 'e', recordId: 'r', recordVersion: 1, field: 'value' }
    const ct = seal(dek, Buffer.from('x'), b)
    expectDecryptionFailure(() => open(dek, ct, { ...b, workspaceId: 'a', projectId: 'bc' }), 'shifted boundary')
  })

  test('a wrong key makes open fail', () => {
    holds(
      fc.property(arbSealed, arbKey, (s, key) => {
        fc.pre(!key.equals(s.dek.key))
        expectDecryptionFailure(() => open({ ...s.dek, key }, s.ct, s.binding), 'wrong key')
      }),
    )
  })

  test('a key of another version or id makes open fail, even with the right bytes', () => {
    holds(
      fc.property(arbSealed, fc.integer({ min: 1, max: 0xffffffff }), fc.uuid(), (s, version, id) => {
        fc.pre(version !== s.dek.version && id !== s.dek.id)
        expectDecryptionFailure(() => open({ ...s.dek, version }, s.ct, s.binding), 'wrong version')
        expectDecryptionFailure(() => open({ ...s.dek, id }, s.ct, s.binding), 'wrong id')
      }),
    )
  })

  test('a key of the wrong length makes open fail', () => {
    const dek = sampleDek()
    const ct = seal(dek, Buffer.from('x'), sampleBinding)
    expectDecryptionFailure(() => open({ ...dek, key: dek.key.subarray(0, 16) }, ct, sampleBinding), 'short key')
  })

  test('truncated input makes open fail', () => {
    const arb = arbSealed.chain((s) => fc.record({ s: fc.constant(s), len: fc.nat({ max: s.ct.length - 1 }) }))
    holds(
      fc.property(arb, ({ s, len }) => {
        expectDecryptionFailure(() => open(s.dek, s.ct.subarray(0, len), s.binding), `truncated to ${len}`)
      }),
    )
    expectDecryptionFailure(() => open(sampleDek(), Buffer.alloc(0), sampleBinding), 'empty input')
    expectDecryptionFailure(() => keyRefOf(Buffer.alloc(OVERHEAD - 1, 1)), 'keyRefOf of a short input')
  })

  test('trailing bytes make open fail', () => {
    holds(
      fc.property(arbSealed, fc.uint8Array({ minLength: 1, maxLength: 32 }), (s, extra) => {
        expectDecryptionFailure(() => open(s.dek, Buffer.concat([s.ct, extra]), s.binding), 'appended bytes')
      }),
    )
  })

  test('a wrong format or algorithm byte makes open fail', () => {
    const notOne = fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x01)
    holds(
      fc.property(arbSealed, notOne, fc.constantFrom(0, 1), (s, value, offset) => {
        const ct = Buffer.from(s.ct)
        ct[offset] = value
        expectDecryptionFailure(() => open(s.dek, ct, s.binding), `byte ${offset}`)
        expectDecryptionFailure(() => keyRefOf(ct), `keyRefOf, byte ${offset}`)
      }),
    )
  })

  test('10,000 seals use 10,000 distinct nonces', () => {
    const dek = sampleDek()
    const nonces = new Set<string>()
    for (let i = 0; i < 10_000; i++) {
      const ct = seal(dek, Buffer.of(i & 0xff), sampleBinding)
      nonces.add(ct.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH).toString('hex'))
    }
    assert.equal(nonces.size, 10_000)
  })

  test('seal refuses bad keys, nonces, DEK versions and ids with a TypeError', () => {
    const dek = sampleDek()
    const pt = Buffer.from('x')
    assert.throws(() => seal({ ...dek, key: Buffer.alloc(16) }, pt, sampleBinding), TypeError)
    assert.throws(() => seal(dek, pt, sampleBinding, Buffer.alloc(NONCE_LENGTH - 1)), TypeError)
    for (const version of [0, -1, 1.5, 2 ** 32]) assert.throws(() => seal({ ...dek, version }, pt, sampleBinding), TypeError)
    assert.throws(() => seal({ ...dek, id: dek.id.toUpperCase() }, pt, sampleBinding), TypeError)
    assert.throws(() => seal(dek, pt, { ...sampleBinding, recordVersion: -1 }), TypeError)
    assert.throws(() => seal(dek, pt, { ...sampleBinding, recordVersion: 2n ** 64n }), TypeError)
    assert.throws(() => seal(dek, pt, { ...sampleBinding, field: 'x'.repeat(0x10000) }), TypeError)
  })

  test('the tag is the last 16 bytes and the body is as long as the plaintext', () => {
    const ct = seal(sampleDek(), Buffer.alloc(100), sampleBinding)
    assert.equal(ct.length, HEADER_LENGTH + NONCE_LENGTH + 100 + TAG_LENGTH)
  })
})

// ---- (c) every failure looks the same

describe('decryption failures reveal nothing', () => {
  test('every kind of failure throws the same class, code, status and message', () => {
    const dek = sampleDek()
    const plaintext = Buffer.from('sk_live_do_not_print')
    const ct = seal(dek, plaintext, sampleBinding)
    const otherKey = { ...dek, key: randomBytes(32) }
    const cases: Array<[string, () => unknown]> = [
      ['format byte', () => open(dek, flipBit(ct, 0), sampleBinding)],
      ['algorithm byte', () => open(dek, flipBit(ct, 8), sampleBinding)],
      ['DEK id', () => open(dek, flipBit(ct, 2 * 8 + 3), sampleBinding)],
      ['DEK version', () => open(dek, flipBit(ct, 21 * 8), sampleBinding)],
      ['nonce', () => open(dek, flipBit(ct, 22 * 8), sampleBinding)],
      ['body', () => open(dek, flipBit(ct, 34 * 8 + 5), sampleBinding)],
      ['tag', () => open(dek, flipBit(ct, ct.length * 8 - 1), sampleBinding)],
      ['workspace', () => open(dek, ct, { ...sampleBinding, workspaceId: 'ws-2' })],
      ['record version', () => open(dek, ct, { ...sampleBinding, recordVersion: 10 })],
      ['field', () => open(dek, ct, { ...sampleBinding, field: 'comment' })],
      ['wrong key', () => open(otherKey, ct, sampleBinding)],
      ['wrong version', () => open({ ...dek, version: 5 }, ct, sampleBinding)],
      ['truncated', () => open(dek, ct.subarray(0, ct.length - 1), sampleBinding)],
      ['empty', () => open(dek, Buffer.alloc(0), sampleBinding)],
      ['too long a binding field', () => open(dek, ct, { ...sampleBinding, field: 'x'.repeat(0x10000) })],
    ]
    const errors = cases.map(([what, fn]) => expectDecryptionFailure(fn, what))
    const shape = (e: DecryptionError) =>
      JSON.stringify({
        name: e.name,
        code: e.code,
        status: e.status,
        message: e.message,
        keys: Object.keys(e),
        props: Object.getOwnPropertyNames(e).sort(),
      })
    const first = shape(errors[0] as DecryptionError)
    for (const [i, e] of errors.entries()) assert.equal(shape(e), first, `case "${cases[i]?.[0]}" differs from "${cases[0]?.[0]}"`)

    const leaks = [dek.key.toString('hex'), dek.key.toString('base64'), dek.id, plaintext.toString('utf8'), 'ws-1', 'rec-1']
    for (const e of errors) {
      const text = `${e.message} ${JSON.stringify(e)}`
      assert.ok(!leaks.some((l) => text.includes(l)), 'a decryption error mentions a key, an id or the plaintext')
    }
  })
})
