import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { canonicalJson, type Json } from '../../src/audit/canonical-json.js'
import { entryBytes, entryBytesReference, type AuditRecord } from '../../src/audit/entry.js'

const json: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.maxSafeInteger(), fc.string({ unit: 'binary' }),
    fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ unit: 'binary' }), tie('v'), { maxKeys: 4 })),
})).v

const record: fc.Arbitrary<AuditRecord> = fc.record({
  workspaceId: fc.string({ unit: 'binary' }), seq: fc.maxSafeNat(), id: fc.string({ unit: 'binary' }), time: fc.string(),
  actor: fc.record({ type: fc.string(), id: fc.string({ unit: 'binary' }), ip: fc.string(), userAgent: fc.string({ unit: 'binary' }) }),
  requestId: fc.string(), action: fc.string({ unit: 'binary' }), target: fc.record({ type: fc.string(), id: fc.string({ unit: 'binary' }) }),
  details: fc.dictionary(fc.string({ unit: 'binary' }), json, { maxKeys: 6 }).map((d) => canonicalJson(d)),
})

test('the fast entry serialisation is byte for byte the canonical JSON of the entry', () => {
  fc.assert(fc.property(record, (r) => entryBytes(r).equals(entryBytesReference(r))), { numRuns: 2000 })
})

test('any change to a field changes the entry bytes', () => {
  fc.assert(fc.property(record, fc.string({ minLength: 1 }), (r, extra) => {
    const variants: AuditRecord[] = [
      { ...r, action: r.action + extra }, { ...r, id: r.id + extra }, { ...r, requestId: r.requestId + extra },
      { ...r, seq: r.seq === 0 ? 1 : r.seq - 1 }, { ...r, actor: { ...r.actor, ip: r.actor.ip + extra } },
      { ...r, target: { ...r.target, id: r.target.id + extra } }, { ...r, details: `{"x":${JSON.stringify(extra)}}` === r.details ? '{}' : `{"x":${JSON.stringify(extra)}}` },
    ]
    const base = entryBytes(r)
    return variants.every((v) => !entryBytes(v).equals(base))
  }))
})
