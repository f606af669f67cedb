// The packed reseal batch (src/crypto/reseal-batch.ts) and the batch primitives of the
// envelope it rests on: AadWriter writes exactly the AAD `associatedData` does, sealInto and
// openWithAad agree with seal/open and the known answers, and a batch resealed in this thread
// or on the worker threads opens under the new key with the same binding, keeps every
// ciphertext's length, and names the exact item that does not open.
//
// Keys and plaintexts never reach the test output: byte comparisons go through
// assert.ok(a.equals(b), 'value-free message'), property failures report seed and path only.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import {
  AadWriter,
  HEADER_LENGTH,
  OVERHEAD,
  associatedData,
  open,
  openWithAad,
  seal,
  sealInto,
  type Binding,
  type DataKey,
  type ScopeIds,
} from '../../src/crypto/envelope.js'
import {
  FIELD_COMMENT,
  FIELD_VALUE,
  RESEAL_FIELDS,
  ResealBatchBuilder,
  ResealItemError,
  resealBatch,
  sliceResealBatch,
  type ResealBatch,
} from '../../src/crypto/reseal-batch.js'
import { ResealWorkers } from '../../src/crypto/reseal-workers.js'
import { CofferError, DecryptionError } from '../../src/errors.js'

/** fc.assert, but a failure reports only the seed, the path and a value-free reason. */
function holds<Ts extends [unknown, ...unknown[]]>(prop: fc.IProperty<Ts>, params: fc.Parameters<Ts> = {}): void {
  const out = fc.check(prop, params)
  if (!out.failed) return
  const err = out.errorInstance
  const why = err instanceof assert.AssertionError ? err.message : err instanceof Error ? err.name : 'a non-error was thrown'
  throw new Error(`property failed after ${out.numRuns} runs; replay with { seed: ${out.seed}, path: "${out.counterexamplePath}" }: ${why}`)
}

function expectDecryptionFailure(fn: () => unknown, what: string): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown instanceof CofferError && thrown.constructor === DecryptionError, `${what}: expected the one decryption error`)
}

const dekOf = (version: number, id = '3f2504e0-4f89-41d3-9a0c-0305e82c3301'): DataKey => ({ id, version, key: randomBytes(32) })

// Strings of any code points (multi-byte UTF-8, lone surrogates), sometimes longer than the
// writer's initial room, so its buffer has to grow and then be reused for shorter ones.
const arbText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 100, maxLength: 400 }),
  fc.constantFrom('value', 'comment', 'é', '秘密', '🔑x', ''),
)
const arbRecordVersion = fc.oneof(
  fc.maxSafeNat(),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53, 2 ** 60, 2 ** 64 - 2048, 2n ** 64n - 1n),
)
const arbScope: fc.Arbitrary<ScopeIds> = fc.record({ workspaceId: arbText, projectId: arbText, environmentId: arbText })
const arbRecord = fc.record({ recordId: arbText, recordVersion: arbRecordVersion, field: arbText })
const arbDek: fc.Arbitrary<DataKey> = fc.record({
  id: fc.uuid(),
  version: fc.integer({ min: 1, max: 0xffffffff }),
  key: fc.constant(Buffer.alloc(32)),
})

describe('AadWriter', () => {
  test('writes byte for byte the AAD associatedData builds, record after record with one writer', () => {
    holds(
      fc.property(arbDek, arbScope, fc.array(arbRecord, { minLength: 1, maxLength: 8 }), (dek, scope, records) => {
        const writer = new AadWriter(dek, scope)
        const header = seal(dek, Buffer.alloc(0), { ...scope, ...records[0]! }).subarray(0, HEADER_LENGTH)
        for (const r of records) {
          const binding: Binding = { ...scope, ...r }
          assert.ok(
            writer.of(r.recordId, r.recordVersion, r.field).equals(associatedData(header, binding)),
            'AadWriter and associatedData differ',
          )
        }
      }),
      { numRuns: 300 },
    )
  })

  test('a number and the equal bigint give the same AAD, beyond 2^53 too', () => {
    const w = new AadWriter(dekOf(3), { workspaceId: 'w', projectId: 'p', environmentId: 'e' })
    for (const n of [0, 7, 2 ** 32, 2 ** 53 + 2, 2 ** 63, 2 ** 64 - 2048]) {
      const a = Buffer.from(w.of('r', n, 'value'))
      assert.ok(a.equals(w.of('r', BigInt(n), 'value')), `version ${n}`)
    }
  })

  test('refuses what associatedData refuses', () => {
    const scope = { workspaceId: 'w', projectId: 'p', environmentId: 'e' }
    const dek = dekOf(1)
    const w = new AadWriter(dek, scope)
    const header = seal(dek, Buffer.alloc(0), { ...scope, recordId: 'r', recordVersion: 1, field: 'value' }).subarray(0, HEADER_LENGTH)
    const cases: Array<[string, string, number | bigint, string]> = [
      ['negative version', 'r', -1, 'value'],
      ['version 2^64', 'r', 2n ** 64n, 'value'],
      ['version 2^64 as a number', 'r', 2 ** 64, 'value'],
      ['fractional version', 'r', 1.5, 'value'],
      ['record id over 65535 bytes', 'é'.repeat(40_000), 1, 'value'],
      ['field over 65535 bytes', 'r', 1, 'x'.repeat(70_000)],
    ]
    for (const [what, recordId, recordVersion, field] of cases) {
      assert.throws(() => associatedData(header, { ...scope, recordId, recordVersion, field }), `associatedData: ${what}`)
      assert.throws(() => w.of(recordId, recordVersion, field), `AadWriter: ${what}`)
    }
    assert.throws(() => new AadWriter(dek, { ...scope, workspaceId: 'x'.repeat(70_000) }), TypeError)
    // Still usable after refusing.
    assert.ok(
      w.of('r', 1, 'value').equals(associatedData(header, { ...scope, recordId: 'r', recordVersion: 1, field: 'value' })),
      'writer reused after an error',
    )
  })
})

interface EnvelopeVector {
  name: string
  dekKey: string
  dekId: string
  dekVersion: number
  nonce: string
  plaintext: string
  ciphertext: string
  binding: { workspaceId: string; projectId: string; environmentId: string; recordId: string; recordVersion: string; field: string }
}
const vectors = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../vectors/envelope-v1.json', import.meta.url)), 'utf8')) as { envelope: EnvelopeVector[] }
).envelope
const hex = (s: string): Buffer => Buffer.from(s, 'hex')

describe('sealInto and openWithAad', () => {
  for (const v of vectors) {
    test(`known answer: ${v.name}`, () => {
      const dek: DataKey = { id: v.dekId, version: v.dekVersion, key: hex(v.dekKey) }
      const b = v.binding
      const aad = new AadWriter(dek, b).of(b.recordId, BigInt(b.recordVersion), b.field)
      const out = Buffer.alloc(7 + v.ciphertext.length / 2 + 5, 0xaa)
      assert.equal(sealInto(dek, aad, hex(v.plaintext), hex(v.nonce), out, 7), v.ciphertext.length / 2)
      assert.ok(out.subarray(7, out.length - 5).equals(hex(v.ciphertext)), 'sealInto differs from the vector')
      assert.ok(
        out.subarray(0, 7).every((x) => x === 0xaa) && out.subarray(out.length - 5).every((x) => x === 0xaa),
        'sealInto wrote outside its range',
      )
      assert.ok(openWithAad(dek, out.subarray(7, out.length - 5), aad).equals(hex(v.plaintext)), 'openWithAad did not return the plaintext')
    })
  }

  test('agree with seal and open both ways', () => {
    const dek = dekOf(5)
    const binding: Binding = {
      workspaceId: randomUUID(),
      projectId: randomUUID(),
      environmentId: '',
      recordId: 'rec-é',
      recordVersion: 2 ** 40,
      field: 'comment',
    }
    const aad = new AadWriter(dek, binding).of(binding.recordId, binding.recordVersion, binding.field)
    const plain = randomBytes(100)
    assert.ok(openWithAad(dek, seal(dek, plain, binding), aad).equals(plain), 'openWithAad opens what seal sealed')
    const out = new Uint8Array(OVERHEAD + plain.length)
    sealInto(dek, aad, plain, randomBytes(12), out, 0)
    assert.ok(open(dek, out, binding).equals(plain), 'open opens what sealInto sealed')
  })

  test('fail like open: another key, another record, a flipped bit, a short input; AAD of another key', () => {
    const scope = { workspaceId: 'w', projectId: 'p', environmentId: 'e' }
    const dek = dekOf(2)
    const w = new AadWriter(dek, scope)
    const ct = seal(dek, randomBytes(40), { ...scope, recordId: 'r', recordVersion: 1, field: 'value' })
    const aad = Buffer.from(w.of('r', 1, 'value'))
    assert.equal(openWithAad(dek, ct, aad).length, 40)
    expectDecryptionFailure(() => openWithAad({ ...dek, key: randomBytes(32) }, ct, aad), 'wrong key bytes')
    expectDecryptionFailure(
      () => openWithAad(dekOf(3, dek.id), ct, new AadWriter(dekOf(3, dek.id), scope).of('r', 1, 'value')),
      'another key version',
    )
    expectDecryptionFailure(() => openWithAad(dek, ct, w.of('r', 2, 'value')), 'another record version')
    expectDecryptionFailure(() => openWithAad(dek, ct, w.of('r', 1, 'comment')), 'another field')
    const flipped = Buffer.from(ct)
    flipped[40] = flipped[40]! ^ 1
    expectDecryptionFailure(() => openWithAad(dek, flipped, aad), 'a flipped bit')
    expectDecryptionFailure(() => openWithAad(dek, ct.subarray(0, OVERHEAD - 1), aad), 'a short input')
    const other = dekOf(9)
    const otherAad = new AadWriter(other, scope).of('r', 1, 'value')
    expectDecryptionFailure(() => openWithAad(dek, ct, otherAad), 'AAD of another key')
    assert.throws(() => sealInto(dek, otherAad, randomBytes(4), randomBytes(12), new Uint8Array(100), 0), TypeError)
    assert.throws(() => sealInto(dek, aad, randomBytes(4), randomBytes(12), new Uint8Array(OVERHEAD + 3), 0), RangeError)
  })
})

// ---- batches

const SCOPE: ScopeIds = { workspaceId: randomUUID(), projectId: randomUUID(), environmentId: randomUUID() }

interface Item {
  recordId: string
  recordVersion: number
  field: number
  oldVersion: number
  plain: Buffer
  ct: Buffer
}

/** Items under two old key versions, with values and comments, plaintexts of 0..300 bytes. */
function makeItems(n: number, keys: Map<number, DataKey>): Item[] {
  const versions = [...keys.keys()]
  return Array.from({ length: n }, (_, i) => {
    const field = i % 3 === 2 ? FIELD_COMMENT : FIELD_VALUE
    const oldVersion = versions[i % versions.length]!
    const recordId = i % 5 === 0 ? `ré-${i}-秘` : randomUUID()
    const recordVersion = i % 7 === 0 ? 2 ** 40 + i : 1 + (i % 10)
    const plain = randomBytes(i % 11 === 0 ? 0 : (i * 37) % 300)
    const ct = seal(keys.get(oldVersion)!, plain, { ...SCOPE, recordId, recordVersion, field: RESEAL_FIELDS[field]! })
    return { recordId, recordVersion, field, oldVersion, plain, ct }
  })
}

function pack(items: Item[]): ResealBatch {
  const b = new ResealBatchBuilder(
    SCOPE,
    items.length,
    items.reduce((n, it) => n + it.ct.length, 0),
  )
  for (const it of items) b.add(it.ct, it.recordId, it.recordVersion, it.field, it.oldVersion)
  return b.build()
}

/** Every output item has its input's length and offset, and opens under `next` to the item's plaintext. */
function checkOut(batch: ResealBatch, items: Item[], out: Uint8Array, next: DataKey): void {
  assert.equal(out.length, batch.cts.length, 'the output is as long as the input')
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!
    const ct = out.subarray(batch.offsets[i]!, batch.offsets[i + 1]!)
    assert.equal(ct.length, it.ct.length, `item ${i} keeps its length`)
    assert.ok(!Buffer.from(ct).equals(it.ct), `item ${i} was resealed`)
    const plain = open(next, ct, { ...SCOPE, recordId: it.recordId, recordVersion: it.recordVersion, field: RESEAL_FIELDS[it.field]! })
    assert.ok(plain.equals(it.plain), `item ${i} opens under the new key to its plaintext`)
  }
}

function expectItemError(fn: () => unknown, index: number, what: string): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  assert.ok(thrown instanceof ResealItemError, `${what}: expected a ResealItemError`)
  assert.equal(thrown.index, index, what)
}

describe('packed reseal batch', () => {
  const old = new Map([
    [1, dekOf(1)],
    [2, dekOf(2)],
  ])
  const next = dekOf(3)

  test('the builder packs items end to end; a slice is a batch of its own', () => {
    const items = makeItems(30, old)
    const b = pack(items)
    assert.equal(b.count, 30)
    assert.equal(b.offsets[0], 0)
    assert.equal(b.offsets[30], b.cts.length)
    for (let i = 0; i < 30; i++)
      assert.ok(Buffer.from(b.cts.subarray(b.offsets[i]!, b.offsets[i + 1]!)).equals(items[i]!.ct), `item ${i} packed`)
    const s = sliceResealBatch(b, 10, 25)
    assert.equal(s.count, 15)
    assert.notEqual(s.cts.buffer, b.cts.buffer, 'a slice has its own buffers')
    for (let i = 0; i < 15; i++) {
      assert.ok(Buffer.from(s.cts.subarray(s.offsets[i]!, s.offsets[i + 1]!)).equals(items[10 + i]!.ct), `slice item ${i}`)
      assert.equal(s.recordIds[i], items[10 + i]!.recordId)
      assert.equal(s.recordVersions[i], items[10 + i]!.recordVersion)
      assert.equal(s.oldVersions[i], items[10 + i]!.oldVersion)
      assert.equal(s.fields[i], items[10 + i]!.field)
    }
    const short = new ResealBatchBuilder(SCOPE, 2, 100)
    short.add(items[1]!.ct, 'r', 1, FIELD_VALUE, 1)
    assert.throws(() => short.build(), 'fewer items than announced')
    assert.throws(() => short.add(items[1]!.ct, 'r', 1, 7, 1), TypeError)
  })

  test('round trip in this thread: every item opens under the new key, lengths and offsets kept', () => {
    const items = makeItems(200, old)
    const b = pack(items)
    const out = new Uint8Array(b.cts.length)
    resealBatch(b, old, next, out)
    checkOut(b, items, out, next)
  })

  test('an item that does not open reports its exact index: a tampered ciphertext, a moved one, an unknown key version', () => {
    for (const bad of [0, 57, 199]) {
      const items = makeItems(200, old)
      const b = pack(items)
      b.cts[b.offsets[bad + 1]! - 1]! ^= 1
      expectItemError(() => resealBatch(b, old, next, new Uint8Array(b.cts.length)), bad, `tampered item ${bad}`)
    }
    const items = makeItems(20, old)
    items[4] = { ...items[4]!, recordVersion: items[4]!.recordVersion + 1 }
    expectItemError(
      () => resealBatch(pack(items), old, next, new Uint8Array(pack(items).cts.length)),
      4,
      'an item bound to another version',
    )
    const unknown = makeItems(20, old)
    unknown[9] = { ...unknown[9]!, oldVersion: 7 }
    expectItemError(() => resealBatch(pack(unknown), old, next, new Uint8Array(pack(unknown).cts.length)), 9, 'an unknown key version')
    const wrong = makeItems(20, old)
    wrong[11] = { ...wrong[11]!, oldVersion: wrong[11]!.oldVersion === 1 ? 2 : 1 }
    expectItemError(
      () => resealBatch(pack(wrong), old, next, new Uint8Array(pack(wrong).cts.length)),
      11,
      'another key version than the header names',
    )
  })

  test('refuses an output of another length', () => {
    const b = pack(makeItems(5, old))
    assert.throws(() => resealBatch(b, old, next, new Uint8Array(b.cts.length + 1)), RangeError)
  })

  describe('on the worker threads', () => {
    const workers = new ResealWorkers(2)
    after(() => workers.close())

    test('round trip, split across the threads; the batch and the keys stay intact on this side', async () => {
      const items = makeItems(301, old)
      const b = pack(items)
      const before = Buffer.from(b.cts)
      const keysBefore = [...old.values(), next].map((k) => Buffer.from(k.key))
      const out = await workers.reseal(b, [...old.values()], next)
      checkOut(b, items, out, next)
      assert.ok(Buffer.from(b.cts).equals(before), 'the input batch is untouched')
      assert.ok(
        [...old.values(), next].every((k, i) => k.key.equals(keysBefore[i]!)),
        'the caller keeps its keys',
      )
      assert.equal((await workers.reseal(pack([]), [...old.values()], next)).length, 0)
    })

    test('an item that does not open reports its index in the whole batch, in either thread', async () => {
      for (const bad of [3, 150, 151, 300]) {
        const b = pack(makeItems(301, old))
        b.cts[b.offsets[bad]! + 30]! ^= 0x80
        await assert.rejects(
          workers.reseal(b, [...old.values()], next),
          (err: unknown) => err instanceof ResealItemError && err.index === bad,
          `item ${bad}`,
        )
      }
    })
  })
})
