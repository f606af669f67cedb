import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { canonicalJson, type Json } from '../../src/audit/canonical-json.js'
import { chainHash, entryBytes, entryBytesReference, EntryHasher, entryText, type AuditRecord } from '../../src/audit/entry.js'
import { leafHash } from '../../src/audit/merkle.js'

const json: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string({ unit: 'binary' }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'binary' }), tie('v'), { maxKeys: 4 }),
  ),
})).v

const record: fc.Arbitrary<AuditRecord> = fc.record({
  workspaceId: fc.string({ unit: 'binary' }),
  seq: fc.maxSafeNat(),
  id: fc.string({ unit: 'binary' }),
  time: fc.string(),
  actor: fc.record({ type: fc.string(), id: fc.string({ unit: 'binary' }), ip: fc.string(), userAgent: fc.string({ unit: 'binary' }) }),
  requestId: fc.string(),
  action: fc.string({ unit: 'binary' }),
  target: fc.record({ type: fc.string(), id: fc.string({ unit: 'binary' }) }),
  details: fc.dictionary(fc.string({ unit: 'binary' }), json, { maxKeys: 6 }).map((d) => canonicalJson(d)),
})

test('the fast entry serialisation is byte for byte the canonical JSON of the entry', () => {
  fc.assert(
    fc.property(record, (r) => entryBytes(r).equals(entryBytesReference(r))),
    { numRuns: 2000 },
  )
})

test('any change to a field changes the entry bytes', () => {
  fc.assert(
    fc.property(record, fc.string({ minLength: 1 }), (r, extra) => {
      const variants: AuditRecord[] = [
        { ...r, action: r.action + extra },
        { ...r, id: r.id + extra },
        { ...r, requestId: r.requestId + extra },
        { ...r, seq: r.seq === 0 ? 1 : r.seq - 1 },
        { ...r, actor: { ...r.actor, ip: r.actor.ip + extra } },
        { ...r, target: { ...r.target, id: r.target.id + extra } },
        { ...r, details: `{"x":${JSON.stringify(extra)}}` === r.details ? '{}' : `{"x":${JSON.stringify(extra)}}` },
      ]
      const base = entryBytes(r)
      return variants.every((v) => !entryBytes(v).equals(base))
    }),
  )
})

test('EntryHasher: the string digests verification uses equal the chain and leaf hashes appends store', () => {
  const hasher = new EntryHasher()
  fc.assert(
    fc.property(record, fc.uint8Array({ minLength: 32, maxLength: 32 }), (r, prev) => {
      const chain = hasher.chainHexOfText(entryText(r), Buffer.from(prev).toString('hex'))
      const leaf = hasher.leafLatin1()
      assert.equal(chain, chainHash(prev, entryBytes(r)).toString('hex'))
      assert.equal(Buffer.from(leaf, 'latin1').toString('hex'), Buffer.from(leafHash(entryBytes(r))).toString('hex'))
      const bytes = hasher.hash(r, prev, true)
      assert.equal(bytes.chain.toString('hex'), chain)
      assert.equal(bytes.leaf!.toString('latin1'), leaf)
    }),
    { numRuns: 500 },
  )
})

test('EntryHasher refuses a previous hash that is not 64 hex digits, and a leaf with no entry hashed', () => {
  const hasher = new EntryHasher()
  const r = fc.sample(record, { numRuns: 1, seed: 7 })[0]!
  for (const bad of ['', '0'.repeat(63), '0'.repeat(65), 'g'.repeat(64), `${'0'.repeat(62)}zz`]) {
    assert.throws(() => hasher.chainHexOfText(entryText(r), bad), TypeError)
    assert.throws(() => hasher.leafLatin1(), /follows chainHexOfText/)
  }
  assert.throws(() => hasher.hash(r, new Uint8Array(31), false), TypeError)
  hasher.chainHexOfText(entryText(r), '0'.repeat(64))
  hasher.leafLatin1()
  assert.throws(() => hasher.leafLatin1(), /follows chainHexOfText/, 'one leaf per chain hash')
})
