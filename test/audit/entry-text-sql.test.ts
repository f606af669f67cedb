// The canonical text the database builds for full verification's threads (entryTextSql) is
// entryText byte for byte, on both engines, for any values the columns can hold; a column of
// another type gives NULL or an error, never a text that could pass.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import fc from 'fast-check'
import pg from 'pg'
import { canonicalJson, type Json } from '../../src/audit/canonical-json.js'
import { entryText, entryTextSql, type AuditRecord } from '../../src/audit/entry.js'
import { createTestDatabase } from '../helpers/pg.js'
import { describePostgres } from '../helpers/engines.js'

const COLUMNS = 'workspace_id, seq, id, time, actor_type, actor_id, actor_ip, actor_ua, request_id, action, target_type, target_id, details'

// Any well-formed text: every code point from NUL up, astral planes included. (A lone surrogate
// cannot be stored as text on either engine; PostgreSQL text cannot hold NUL.)
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const text = (noNul: boolean) =>
  fc.string({ unit: 'binary', maxLength: 24 }).filter((s) => !LONE_SURROGATE.test(s) && !(noNul && s.includes('\0')))
const json = (noNul: boolean): fc.Arbitrary<Json> =>
  fc.letrec<{ v: Json }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.maxSafeInteger(),
      text(noNul),
      fc.array(tie('v'), { maxLength: 3 }),
      fc.dictionary(text(noNul), tie('v'), { maxKeys: 3 }),
    ),
  })).v
const record = (noNul: boolean): fc.Arbitrary<AuditRecord> =>
  fc.record({
    workspaceId: text(noNul),
    seq: fc.maxSafeNat(),
    id: text(noNul),
    time: text(noNul),
    actor: fc.record({ type: text(noNul), id: text(noNul), ip: text(noNul), userAgent: text(noNul) }),
    requestId: text(noNul),
    action: text(noNul),
    target: fc.record({ type: text(noNul), id: text(noNul) }),
    details: fc.dictionary(text(noNul), json(noNul), { maxKeys: 5 }).map((d) => canonicalJson(d)),
  })
const values = (r: AuditRecord) => [
  r.workspaceId,
  r.seq,
  r.id,
  r.time,
  r.actor.type,
  r.actor.id,
  r.actor.ip,
  r.actor.userAgent,
  r.requestId,
  r.action,
  r.target.type,
  r.target.id,
  r.details,
]
const EDGES: AuditRecord = {
  workspaceId: 'ws',
  seq: Number.MAX_SAFE_INTEGER,
  id: 'quote " backslash \\ slash /',
  time: '\u0000\u0001\u001f\u007f\u0080',
  actor: { type: '\b\f\n\r\t', id: '\u2028\u2029', ip: '😀 𝌆', userAgent: 'ünïcødé ß İ' },
  requestId: "it's",
  action: '',
  target: { type: '\ud83d\ude00', id: '\uffff\ufffe' },
  details: '{"a":"\\u0000","b":[1,2,{}]}',
}

describe('entryTextSql is entryText (SQLite)', () => {
  const db = new BetterSqlite3(':memory:')
  db.exec(`CREATE TABLE audit_entries (workspace_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, time TEXT NOT NULL,
    actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_ip TEXT NOT NULL, actor_ua TEXT NOT NULL, request_id TEXT NOT NULL,
    action TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL, details TEXT NOT NULL)`)
  const insert = db.prepare(
    `INSERT INTO audit_entries (${COLUMNS}) VALUES (${COLUMNS.split(',')
      .map(() => '?')
      .join(', ')})`,
  )
  const select = db.prepare(`SELECT ${entryTextSql('sqlite')} FROM audit_entries`).pluck()
  const roundTrip = (r: AuditRecord): unknown => {
    db.exec('DELETE FROM audit_entries')
    insert.run(...values(r))
    return select.get()
  }

  test('byte for byte, for the edge cases and for random entries', () => {
    assert.equal(roundTrip(EDGES), entryText(EDGES))
    fc.assert(
      fc.property(record(false), (r) => roundTrip(r) === entryText(r)),
      { numRuns: 1500 },
    )
  })

  test('a details or seq of another type gives NULL; a blob where text belongs is an error', () => {
    const base = values(EDGES)
    db.exec('DELETE FROM audit_entries')
    insert.run(...base.slice(0, 12), Buffer.from('{}'))
    assert.equal(select.get(), null, 'details as a blob')
    db.exec('DELETE FROM audit_entries')
    insert.run(base[0], 'not a number', ...base.slice(2))
    assert.equal(select.get(), null, 'seq as text')
    db.exec('DELETE FROM audit_entries')
    insert.run(...base.slice(0, 9), Buffer.from('secret.update'), ...base.slice(10))
    assert.throws(() => select.get(), /JSON cannot hold BLOB/)
  })
})

describePostgres('entryTextSql is entryText (PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let client: pg.Client
  before(async () => {
    database = await createTestDatabase()
    client = new pg.Client({ connectionString: database.url })
    await client.connect()
    await client.query(`CREATE TABLE audit_entries (workspace_id TEXT NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL, time TEXT NOT NULL,
      actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_ip TEXT NOT NULL, actor_ua TEXT NOT NULL, request_id TEXT NOT NULL,
      action TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL, details TEXT NOT NULL)`)
  })
  after(async () => {
    await client?.end()
    await database?.drop()
  })

  test('byte for byte, for the edge cases and for random entries', async () => {
    const roundTrip = async (records: AuditRecord[]): Promise<string[]> => {
      await client.query('DELETE FROM audit_entries')
      const params: unknown[] = []
      const rows = records.map(
        (r, i) =>
          `(${values(r)
            .map((v, j) => {
              params.push(v)
              return `$${i * 13 + j + 1}`
            })
            .join(', ')}, ${i})`,
      )
      await client.query(`ALTER TABLE audit_entries ADD COLUMN IF NOT EXISTS n INT`)
      await client.query(`INSERT INTO audit_entries (${COLUMNS}, n) VALUES ${rows.join(', ')}`, params)
      return (await client.query<{ t: string }>(`SELECT ${entryTextSql('postgres')} AS t FROM audit_entries ORDER BY n`)).rows.map(
        (r) => r.t,
      )
    }
    const edges = { ...EDGES, time: EDGES.time.replace('\u0000', '') }
    assert.deepEqual(await roundTrip([edges]), [entryText(edges)])
    // Batches of random entries, so the property costs a few round trips, not thousands.
    const batches = fc.sample(fc.array(record(true), { minLength: 50, maxLength: 50 }), { numRuns: 30, seed: 42 })
    for (const batch of batches) assert.deepEqual(await roundTrip(batch), batch.map(entryText))
  })
})
