// The environment fetch (`GET …/secrets?reveal=true`, what `coffer run` and `export` read):
// one query, each data key looked up once, and an answer written by a serializer compiled from
// the route's response schema. These tests hold it to exactly the documented shape and to
// the same values the single-secret reads give.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { secretListResponse } from '../../src/api/secrets.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'

// Every property of a secret in the list, in the order the answer writes them.
const FIELDS = ['id', 'key', 'version', 'deleted', 'tags', 'createdAt', 'updatedAt']

const EDGE_VALUES: Record<string, string> = {
  EMPTY: '',
  UNICODE: 'naïve café — 東京 — 🔑🗝️ — ǅ — e\u0301',
  ESCAPES: 'quote " backslash \\ slash / newline \n tab \t cr \r nul \u0000 bell \u0007 del \u007f',
  SEPARATORS: 'line\u2028para\u2029end',
  JSON_LIKE: '{"secrets":[{"value":"not really"}]}',
  LARGE: `${'x'.repeat(64 * 1024 - 4)}🔑`, // exactly 64 KiB of UTF-8, the largest value allowed
}

function suite(engine: EngineName): void {
  let h: Harness
  let a: ReturnType<typeof api>
  let E: string
  const raw = async (url: string) => {
    const r = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${h.a.token}` } })
    return { status: r.statusCode, text: r.body, type: r.headers['content-type'] }
  }

  before(async () => {
    h = await startHarness(engine)
    a = api(h.app, h.a.token)
    assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Fetch' })).status, 201)
    E = `/v1/workspaces/${h.a.slug}/projects/fetch/environments`
    for (const [key, value] of Object.entries(EDGE_VALUES))
      assert.equal((await a.put(`${E}/development/secrets/${key}`, { value })).status, 200)
    assert.equal(
      (await a.put(`${E}/development/secrets/WITH_COMMENT`, { value: 'v', comment: 'a comment — ✓', tags: ['db', 'team:core'] })).status,
      200,
    )
    assert.equal((await a.put(`${E}/development/secrets/UPDATED`, { value: 'one' })).status, 200)
    assert.equal((await a.put(`${E}/development/secrets/UPDATED`, { value: 'two' })).status, 200)
    assert.equal((await a.put(`${E}/development/secrets/GONE`, { value: 'was here' })).status, 200)
    assert.equal((await a.del(`${E}/development/secrets/GONE`)).status, 200)
  })
  after(() => h?.close())

  test('answers exactly the schema: the documented properties, in order, with every value as stored', async () => {
    const r = await raw(`${E}/development/secrets?reveal=true`)
    assert.equal(r.status, 200)
    assert.match(String(r.type), /^application\/json/)
    const body = JSON.parse(r.text) as { secrets: Array<Record<string, unknown>> }
    assert.ok(r.text === JSON.stringify(body), 'plain JSON, as JSON.stringify would write it')
    assert.equal(secretListResponse.safeParse(body).success, true)
    assert.deepEqual(
      body.secrets.map((s) => s.key),
      [...Object.keys(EDGE_VALUES), 'UPDATED', 'WITH_COMMENT'].sort(),
      'live secrets only, sorted by key',
    )
    for (const s of body.secrets) {
      assert.deepEqual(Object.keys(s), [...FIELDS, 'value', 'comment'], `properties of ${String(s.key)}`)
      const expected = EDGE_VALUES[s.key as string]
      if (expected !== undefined) assert.ok(s.value === expected, `${String(s.key)} reads back exactly`)
    }
    const large = body.secrets.find((s) => s.key === 'LARGE')
    assert.equal(Buffer.byteLength(large?.value as string, 'utf8'), 64 * 1024)
  })

  test('each secret is what the single-secret read answers (version, tags, comment, times, value)', async () => {
    const list = JSON.parse((await raw(`${E}/development/secrets?reveal=true`)).text) as { secrets: Array<Record<string, unknown>> }
    for (const s of list.secrets) {
      const one = await a.get(`${E}/development/secrets/${String(s.key)}?reveal=true`)
      assert.equal(one.status, 200)
      assert.ok(JSON.stringify(one.body.secret) === JSON.stringify(s), `${String(s.key)}: list and single read agree`)
    }
    const updated = list.secrets.find((s) => s.key === 'UPDATED')
    assert.equal(updated?.version, 2)
    assert.ok(updated?.value === 'two', 'the current version')
    const commented = list.secrets.find((s) => s.key === 'WITH_COMMENT')
    assert.deepEqual(commented?.tags, ['db', 'team:core'])
    assert.ok(commented?.comment === 'a comment — ✓', 'comment decrypted')
    assert.equal(list.secrets.find((s) => s.key === 'EMPTY')?.comment, null, 'no comment: null')
  })

  test('without reveal no value or comment property; deleted secrets only when asked, never with a value', async () => {
    const plain = JSON.parse((await raw(`${E}/development/secrets`)).text) as { secrets: Array<Record<string, unknown>> }
    for (const s of plain.secrets) assert.deepEqual(Object.keys(s), FIELDS)
    const withDeleted = JSON.parse((await raw(`${E}/development/secrets?reveal=true&includeDeleted=true`)).text) as {
      secrets: Array<Record<string, unknown>>
    }
    const gone = withDeleted.secrets.find((s) => s.key === 'GONE')
    assert.ok(gone, 'the deleted secret is listed')
    assert.deepEqual(Object.keys(gone), FIELDS, 'a deleted secret has no value')
    assert.equal(gone.deleted, true)
    assert.equal(withDeleted.secrets.length, plain.secrets.length + 1)
  })

  test('an empty environment answers an empty list', async () => {
    const r = await raw(`${E}/staging/secrets?reveal=true`)
    assert.equal(r.status, 200)
    assert.equal(r.text, '{"secrets":[]}')
  })

  test('a ciphertext moved onto another secret of the environment fails the whole fetch, revealing nothing', async () => {
    assert.equal((await a.put(`${E}/production/secrets/FIRST`, { value: 'first-value-canary' })).status, 200)
    assert.equal((await a.put(`${E}/production/secrets/SECOND`, { value: 'second-value-canary' })).status, 200)
    const rows = await h.db
      .selectFrom('secret_versions')
      .innerJoin('secrets', 'secrets.id', 'secret_versions.secret_id')
      .select(['secrets.key', 'secrets.id', 'secret_versions.value_ct'])
      .where('secrets.key', 'in', ['FIRST', 'SECOND'])
      .where('secrets.workspace_id', '=', h.a.id)
      .execute()
    const first = rows.find((x) => x.key === 'FIRST')!
    const second = rows.find((x) => x.key === 'SECOND')!
    await h.db.updateTable('secret_versions').set({ value_ct: first.value_ct }).where('secret_id', '=', second.id).execute()
    const r = await raw(`${E}/production/secrets?reveal=true`)
    assert.equal(r.status, 500)
    assert.equal(JSON.parse(r.text).error.code, 'ERR_DECRYPTION_FAILED')
    assert.ok(!r.text.includes('canary'), 'no value in the error')
  })
}

describeEachEngine((engine) => describe('environment fetch', () => suite(engine)))
