// biome-ignore-all lint/suspicious/noTemplateCurlyInString: some strings are Coffer references (${KEY}), not templates
// Environment snapshots (migration 23, src/vault/environment-snapshots.ts): a fetch opens one
// ciphertext per environment when the environment's snapshot is current, and answers from the
// rows otherwise. What a user depends on: a fetch answers exactly what the rows hold, right
// after any kind of change, on every node; a snapshot moved, tampered with or put back never
// answers; a snapshot never blocks deleting an environment or destroying an old key.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, test } from 'node:test'
import { readInScope, writeInScope } from '../../src/storage/tenant-scope.js'
import type { SecretScope } from '../../src/vault/secret-service.js'
import { describeEachEngine, describePostgres } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'

type Listed = Array<Record<string, unknown>>

function suite(engine: EngineName): void {
  let h: Harness
  let a: ReturnType<typeof api>
  const P = () => `/v1/workspaces/${h.a.slug}/projects/snap`
  const E = (env = 'development') => `${P()}/environments/${env}`
  const scopes = new Map<string, SecretScope>()

  const lookups = (result: string) => h.ctx.metrics.environmentSnapshotLookups.get({ result }) ?? 0
  const fetchList = async (env = 'development', token = h.a.token): Promise<Listed> => {
    const r = await h.app.inject({ method: 'GET', url: `${E(env)}/secrets?reveal=true`, headers: { authorization: `Bearer ${token}` } })
    assert.equal(r.statusCode, 200, r.body)
    return (JSON.parse(r.body) as { secrets: Listed }).secrets
  }
  // The truth: the rows, read and opened one by one as before snapshots existed.
  const fromRows = async (env = 'development'): Promise<Listed> => {
    const scope = scopes.get(env) as SecretScope
    return (await readInScope(h.ctx.store, scope.workspaceId, (db) => h.ctx.secrets.list(db, scope, { reveal: true }))) as unknown as Listed
  }
  const scopeOf = async (env: string): Promise<SecretScope> => {
    const row = await h.db
      .selectFrom('environments')
      .innerJoin('projects', 'projects.id', 'environments.project_id')
      .select(['environments.id', 'environments.project_id'])
      .where('environments.workspace_id', '=', h.a.id)
      .where('projects.slug', '=', 'snap')
      .where('environments.slug', '=', env)
      .executeTakeFirstOrThrow()
    return { workspaceId: h.a.id, projectId: row.project_id, environmentId: row.id }
  }
  const snapshotRow = (env = 'development') =>
    h.db
      .selectFrom('environment_snapshots')
      .selectAll()
      .where('environment_id', '=', (scopes.get(env) as SecretScope).environmentId)
      .executeTakeFirst()
  /** Fetches until the snapshot answers (the build runs in the background after a miss). */
  const fetchFromSnapshot = async (env = 'development'): Promise<Listed> => {
    // Builds of one environment start at most every 200 ms on a node.
    for (const end = Date.now() + 5_000; Date.now() < end; ) {
      await h.ctx.snapshots.settled()
      const hits = lookups('hit')
      const list = await fetchList(env)
      if (lookups('hit') === hits + 1) return list
      await sleep(10)
    }
    assert.fail('the snapshot never answered')
  }
  const value = (list: Listed, key: string) => list.find((s) => s.key === key)?.value

  before(async () => {
    h = await startHarness(engine, { COFFER_KEY_ROTATION_CHECK_INTERVAL: '0', COFFER_RESEAL_BATCH: '5' })
    a = api(h.app, h.a.token)
    assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Snap' })).status, 201)
    for (const env of ['development', 'staging', 'production']) scopes.set(env, await scopeOf(env))
    for (let i = 0; i < 20; i++)
      assert.equal((await a.put(`${E()}/secrets/KEY_${i}`, { value: `v${i}-${randomBytes(6).toString('hex')}` })).status, 200)
    assert.equal((await a.put(`${E()}/secrets/WITH_COMMENT`, { value: 'c', comment: 'a comment ✓', tags: ['db'] })).status, 200)
    assert.equal((await a.put(`${E('staging')}/secrets/STAGING_ONLY`, { value: 'staging value' })).status, 200)
  })
  after(() => h?.close())

  test('the first fetch answers from the rows and builds; later fetches open the snapshot and answer the same bytes', async () => {
    const misses = lookups('miss')
    const text = async () => {
      const r = await h.app.inject({ method: 'GET', url: `${E()}/secrets?reveal=true`, headers: { authorization: `Bearer ${h.a.token}` } })
      assert.equal(r.statusCode, 200)
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8')
      return r.body
    }
    const firstText = await text()
    const first = JSON.parse(firstText).secrets as Listed
    assert.equal(lookups('miss'), misses + 1, 'no snapshot yet: answered from the rows')
    const second = await fetchFromSnapshot()
    assert.ok(JSON.stringify(second) === JSON.stringify(first), 'the snapshot answers exactly what the rows did')
    const hits = lookups('hit')
    assert.ok((await text()) === firstText, 'byte for byte')
    assert.equal(lookups('hit'), hits + 1)
    assert.ok(JSON.stringify(second) === JSON.stringify(await fromRows()))
    const row = await snapshotRow()
    assert.ok(row?.body_ct && row.built_generation !== null && Number(row.built_generation) === Number(row.generation))
    // Ciphertext only: no value, comment or key of the list is in the stored bytes.
    const stored = Buffer.from(row.body_ct).toString('latin1')
    for (const s of first)
      for (const f of ['value', 'comment', 'key'] as const)
        if (typeof s[f] === 'string' && (s[f] as string).length > 2) assert.ok(!stored.includes(s[f] as string))
  })

  test('every kind of change is answered at once, before any rebuild, and the rebuilt snapshot agrees', async () => {
    await fetchFromSnapshot()
    const changes: Array<[string, () => Promise<{ status: number }>, (l: Listed) => void]> = [
      ['update', () => a.put(`${E()}/secrets/KEY_0`, { value: 'updated-0' }), (l) => assert.ok(value(l, 'KEY_0') === 'updated-0')],
      ['create', () => a.put(`${E()}/secrets/NEW_KEY`, { value: 'new' }), (l) => assert.ok(value(l, 'NEW_KEY') === 'new')],
      [
        'comment and tags',
        () => a.put(`${E()}/secrets/KEY_1`, { value: 'one', comment: 'why', tags: ['t'] }),
        (l) => {
          const s = l.find((x) => x.key === 'KEY_1')
          assert.ok(s?.comment === 'why' && JSON.stringify(s.tags) === '["t"]')
        },
      ],
      ['delete', () => a.del(`${E()}/secrets/KEY_2`), (l) => assert.ok(!l.some((s) => s.key === 'KEY_2'))],
      ['restore', () => a.post(`${E()}/secrets/KEY_2/restore`, {}), (l) => assert.ok(l.some((s) => s.key === 'KEY_2'))],
      ['rollback', () => a.post(`${E()}/secrets/KEY_0/rollback`, { version: 1 }), (l) => assert.ok(value(l, 'KEY_0') !== 'updated-0')],
      [
        'bulk write',
        () =>
          a.post(`${E()}/secrets`, {
            secrets: [
              { key: 'KEY_3', value: 'bulk-3' },
              { key: 'BULK_NEW', value: 'bulk-new' },
            ],
          }),
        (l) => assert.ok(value(l, 'KEY_3') === 'bulk-3' && value(l, 'BULK_NEW') === 'bulk-new'),
      ],
      [
        'apply',
        () => a.post(`${E()}/secrets/apply`, { upserts: [{ key: 'KEY_4', value: 'applied-4' }], deletes: ['KEY_5'] }),
        (l) => assert.ok(value(l, 'KEY_4') === 'applied-4' && !l.some((s) => s.key === 'KEY_5')),
      ],
      [
        'copy into it',
        () => a.post(`${E('staging')}/secrets/copy`, { keys: ['STAGING_ONLY'], to: { environment: 'development' } }),
        (l) => assert.ok(value(l, 'STAGING_ONLY') === 'staging value'),
      ],
    ]
    for (const [name, change, check] of changes) {
      await fetchFromSnapshot()
      const r = await change()
      assert.ok(r.status >= 200 && r.status < 300, `${name}: ${r.status}`)
      const hits = lookups('hit')
      const now = await fetchList()
      assert.equal(lookups('hit'), hits, `${name}: the stale snapshot did not answer`)
      check(now)
      assert.ok(JSON.stringify(now) === JSON.stringify(await fromRows()), `${name}: the fetch is the rows`)
      const rebuilt = await fetchFromSnapshot()
      assert.ok(JSON.stringify(rebuilt) === JSON.stringify(now), `${name}: the rebuilt snapshot agrees`)
    }
  })

  test("another environment's or tenant's snapshot, a tampered one, or an older one put back never answers", async () => {
    await fetchFromSnapshot('development')
    await fetchFromSnapshot('staging')
    const dev = await snapshotRow('development')
    const staging = await snapshotRow('staging')
    assert.ok(dev?.body_ct && staging?.body_ct)
    const put = async (env: string, body: Buffer, generation?: number) => {
      const row = (await snapshotRow(env))!
      const g = generation ?? Number(row.generation)
      await h.db
        .updateTable('environment_snapshots')
        .set({ body_ct: body, generation: g, built_generation: g })
        .where('environment_id', '=', (scopes.get(env) as SecretScope).environmentId)
        .execute()
    }
    const attempts: Array<[string, () => Promise<void>]> = [
      ["development's ciphertext in staging's row", () => put('staging', Buffer.from(dev.body_ct!))],
      [
        'one flipped byte',
        () => {
          const b = Buffer.from(staging.body_ct!)
          b[b.length - 20] = (b[b.length - 20] as number) ^ 1
          return put('staging', b)
        },
      ],
      [
        "staging's own ciphertext at another generation",
        () => put('staging', Buffer.from(staging.body_ct!), Number(staging.generation) + 7),
      ],
    ]
    for (const [name, tamper] of attempts) {
      await tamper()
      const rejected = lookups('rejected')
      const list = await fetchList('staging')
      assert.equal(lookups('rejected'), rejected + 1, `${name}: refused`)
      assert.ok(JSON.stringify(list) === JSON.stringify(await fromRows('staging')), `${name}: answered from the rows`)
      assert.ok(!list.some((s) => String(s.key).startsWith('KEY_')), `${name}: no development value`)
      await h.ctx.snapshots.settled()
    }
    // Another tenant: workspace B's own environment, with A's snapshot copied into its row.
    const b = api(h.app, h.b.token)
    assert.equal((await b.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Other' })).status, 201)
    const BE = `/v1/workspaces/${h.b.slug}/projects/other/environments/development`
    assert.equal((await b.put(`${BE}/secrets/B_KEY`, { value: 'b value' })).status, 200)
    const bFetch = async () => {
      const r = await h.app.inject({ method: 'GET', url: `${BE}/secrets?reveal=true`, headers: { authorization: `Bearer ${h.b.token}` } })
      assert.equal(r.statusCode, 200)
      return (JSON.parse(r.body) as { secrets: Listed }).secrets
    }
    await bFetch()
    await h.ctx.snapshots.settled()
    const bEnv = await h.db
      .selectFrom('environment_snapshots')
      .select(['environment_id', 'generation'])
      .where('workspace_id', '=', h.b.id)
      .executeTakeFirstOrThrow()
    await h.db
      .updateTable('environment_snapshots')
      .set({ body_ct: Buffer.from(dev.body_ct), built_generation: bEnv.generation })
      .where('environment_id', '=', bEnv.environment_id)
      .execute()
    const rejected = lookups('rejected')
    const list = await bFetch()
    assert.equal(lookups('rejected'), rejected + 1)
    assert.deepEqual(
      list.map((s) => s.key),
      ['B_KEY'],
      "B reads its own secret, never A's",
    )
  })

  test('a rotation and its reseal drop the snapshot before the old key version is destroyed; fetches stay right throughout', async () => {
    const before = await fetchFromSnapshot()
    const r = await a.post(`${E()}/keys/rotate`, {})
    assert.equal(r.status, 202)
    for (let i = 0; i < 400; i++) {
      const list = await fetchList()
      assert.ok(JSON.stringify(list.map((s) => [s.key, s.value])) === JSON.stringify(before.map((s) => [s.key, s.value])))
      const job = (await a.get(`/v1/workspaces/${h.a.slug}/key-jobs/${r.body.job.id}`)).body.job
      if (job.state !== 'running') {
        assert.equal(job.state, 'done')
        break
      }
      await sleep(10)
    }
    const keys = (await a.get(`${E()}/keys`)).body
    assert.deepEqual(
      keys.versions.map((v: { version: number; state: string }) => [v.version, v.state]),
      [[2, 'primary']],
      'the old version is destroyed',
    )
    const after = await fetchFromSnapshot()
    assert.ok(JSON.stringify(after) === JSON.stringify(before), 'the same list, from a snapshot under the new version')
    const row = await snapshotRow()
    assert.equal(row?.body_ct?.readUInt32BE(18), 2, 'sealed under version 2')
  })

  test('over a current snapshot, references are resolved and personal overrides applied, for their reader only', async () => {
    assert.equal((await a.put(`${E()}/secrets/REFERRING`, { value: 'db://${KEY_6}' })).status, 200)
    const six = value(await fromRows(), 'KEY_6') as string
    const list = await fetchFromSnapshot()
    assert.ok(value(list, 'REFERRING') === `db://${six}`, 'the reference is resolved')
    const rawText = await h.app.inject({
      method: 'GET',
      url: `${E()}/secrets?reveal=true&raw=true`,
      headers: { authorization: `Bearer ${h.a.token}` },
    })
    assert.ok(value(JSON.parse(rawText.body).secrets, 'REFERRING') === 'db://${KEY_6}', 'raw: as stored')
    assert.equal((await a.put(`${E()}/personal-overrides`, { allowed: true })).status, 200)
    assert.equal((await a.put(`${E()}/secrets/KEY_7/personal`, { value: 'mine only' })).status, 200)
    const mine = await fetchFromSnapshot()
    assert.ok(value(mine, 'KEY_7') === 'mine only' && mine.find((s) => s.key === 'KEY_7')?.overridden === true, 'my override applies')
    const shared = JSON.parse(
      (
        await h.app.inject({
          method: 'GET',
          url: `${E()}/secrets?reveal=true&raw=true`,
          headers: { authorization: `Bearer ${h.a.token}` },
        })
      ).body,
    ).secrets as Listed
    assert.ok(value(shared, 'KEY_7') !== 'mine only', 'raw: the shared value')
    assert.equal((await a.put(`${E()}/personal-overrides`, { allowed: false })).status, 200)
    assert.ok(value(await fetchFromSnapshot(), 'KEY_7') !== 'mine only', 'overrides off: the shared value again')
  })

  test('a large answer read slowly over a real socket arrives intact (its plaintext is zeroed only once it has left)', async () => {
    assert.equal((await a.post(`${P()}/environments`, { name: 'Large' })).status, 201)
    scopes.set('large', await scopeOf('large'))
    // 8 MiB: more than the kernel's socket buffers take while the reader waits, so the answer is
    // still being written when the handler has long returned.
    for (let part = 0; part < 8; part++) {
      const secrets = Array.from({ length: 32 }, (_, i) => ({ key: `BIG_${part}_${i}`, value: randomBytes(16_384).toString('hex') }))
      assert.equal((await a.post(`${E('large')}/secrets`, { secrets })).status, 200)
    }
    await fetchFromSnapshot('large')
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' })
    const slowly = () =>
      new Promise<string>((resolve, reject) => {
        const req = request(`${address}${E('large')}/secrets?reveal=true`, { headers: { authorization: `Bearer ${h.a.token}` } }, (res) => {
          const chunks: Buffer[] = []
          res.pause()
          setTimeout(() => {
            res.on('data', (c: Buffer) => chunks.push(c))
            res.resume()
          }, 300)
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
          res.on('error', reject)
        })
        req.on('error', reject)
        req.end()
      })
    const hits = lookups('hit')
    const text = await slowly()
    assert.equal(lookups('hit'), hits + 1, 'answered from the snapshot')
    assert.ok(Buffer.byteLength(text) > 8_000_000, 'over 8 MB')
    let list: Listed = []
    try {
      list = JSON.parse(text).secrets as Listed
    } catch {
      // Not JSON.parse's own message: it quotes the text, values included.
      assert.fail('the answer is not valid JSON: its bytes changed while it was sent')
    }
    assert.ok(JSON.stringify(list) === JSON.stringify(await fromRows('large')), 'every byte as the rows hold it')
  })

  test('an environment written between every fetch is rebuilt at most every 200 ms on a node, and every fetch is right', async () => {
    await fetchFromSnapshot()
    const built = () => h.ctx.metrics.environmentSnapshotBuilds.get({ result: 'built' }) ?? 0
    const before = built()
    const started = Date.now()
    for (let i = 0; i < 30; i++) {
      assert.equal((await a.put(`${E()}/secrets/HOT`, { value: `hot-${i}` })).status, 200)
      assert.ok(value(await fetchList(), 'HOT') === `hot-${i}`, `fetch ${i}: the write before it`)
    }
    await h.ctx.snapshots.settled()
    const elapsed = Date.now() - started
    const builds = built() - before
    assert.ok(builds >= 1 && builds <= Math.ceil(elapsed / 200) + 1, `${builds} builds in ${elapsed} ms`)
  })

  test('an environment whose snapshot holds nothing can be deleted, and its snapshot goes with it', async () => {
    assert.equal((await a.post(`${P()}/environments`, { name: 'Empty' })).status, 201)
    scopes.set('empty', await scopeOf('empty'))
    assert.deepEqual(await fetchFromSnapshot('empty'), [])
    assert.ok(await snapshotRow('empty'))
    const r = await h.app.inject({
      method: 'DELETE',
      url: E('empty'),
      headers: { authorization: `Bearer ${h.a.token}` },
      payload: { confirm: 'empty' },
    })
    assert.equal(r.statusCode, 200, r.body)
    assert.equal(await snapshotRow('empty'), undefined)
  })

  test('the watch stream reads the snapshot too, and a fetch by a reader who may not reveal is still refused', async () => {
    await fetchFromSnapshot()
    const hits = lookups('hit')
    const r = await h.app.inject({
      method: 'GET',
      url: `${E()}/events`,
      headers: { authorization: `Bearer ${h.a.token}` },
      payloadAsStream: true,
    })
    assert.equal(r.statusCode, 200)
    r.stream().destroy()
    assert.ok(lookups('hit') > hits, 'the stream opened the snapshot')
    const other = await h.app.inject({
      method: 'GET',
      url: `${E()}/secrets?reveal=true`,
      headers: { authorization: `Bearer ${h.b.token}` },
    })
    assert.equal(other.statusCode, 404, "another tenant's token finds nothing")
  })
}

describeEachEngine(suite)

describePostgres('environment snapshots: a build and a write never cross', () => {
  let h: Harness
  let a: ReturnType<typeof api>
  let scope: SecretScope
  const E = () => `/v1/workspaces/${h.a.slug}/projects/race/environments/development`

  before(async () => {
    h = await startHarness('postgres')
    a = api(h.app, h.a.token)
    assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Race' })).status, 201)
    assert.equal((await a.put(`${E()}/secrets/K`, { value: 'first' })).status, 200)
    const row = await h.db
      .selectFrom('environments')
      .innerJoin('projects', 'projects.id', 'environments.project_id')
      .select(['environments.id', 'environments.project_id'])
      .where('projects.slug', '=', 'race')
      .where('environments.slug', '=', 'development')
      .where('environments.workspace_id', '=', h.a.id)
      .executeTakeFirstOrThrow()
    scope = { workspaceId: h.a.id, projectId: row.project_id, environmentId: row.id }
  })
  after(() => h?.close())

  const fetchValue = async () => {
    const r = await a.get(`${E()}/secrets?reveal=true`)
    assert.equal(r.status, 200)
    return (r.body.secrets as Listed).find((s) => s.key === 'K')?.value
  }

  test('a write waits for a build in progress, and the snapshot it leaves behind is stale, not served', async () => {
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    let built = false
    const build = writeInScope(h.ctx.store, h.ctx.store.db, scope.workspaceId, async (tx) => {
      built = await h.ctx.snapshots.build(tx, scope)
      await held
    })
    while (!built) await sleep(5)
    let written = false
    const write = a.put(`${E()}/secrets/K`, { value: 'second' }).then((r) => {
      written = true
      return r
    })
    await sleep(300)
    assert.equal(written, false, 'the write waits for the build to commit')
    release()
    await build
    assert.equal((await write).status, 200)
    assert.ok((await fetchValue()) === 'second', 'the write is answered, not the snapshot built before it')
  })

  test('a build during a write not yet committed: once the write commits, fetches answer it', async () => {
    await h.ctx.snapshots.settled()
    assert.equal((await a.put(`${E()}/secrets/K`, { value: 'before' })).status, 200)
    await fetchValue()
    await h.ctx.snapshots.settled()
    // A writer's transaction, held open after its change (as a slow batch would be).
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    let changed = false
    const writer = writeInScope(h.ctx.store, h.ctx.store.db, scope.workspaceId, async (tx) => {
      await tx
        .updateTable('secrets')
        .set({ updated_at: new Date(Date.UTC(2030, 0, 1)).toISOString() })
        .where('environment_id', '=', scope.environmentId)
        .execute()
      changed = true
      await held
    })
    while (!changed) await sleep(5)
    // The snapshot is current (built after 'before'): force a build beside the open write.
    await h.db
      .updateTable('environment_snapshots')
      .set({ built_generation: null, body_ct: null })
      .where('environment_id', '=', scope.environmentId)
      .execute()
    const build = writeInScope(h.ctx.store, h.ctx.store.db, scope.workspaceId, (tx) => h.ctx.snapshots.build(tx, scope))
    await sleep(200)
    release()
    await writer
    await build
    for (let i = 0; i < 5; i++) {
      const r = await a.get(`${E()}/secrets?reveal=true`)
      assert.equal((r.body.secrets as Listed)[0]?.updatedAt, '2030-01-01T00:00:00.000Z', `fetch ${i}: the committed change`)
      await h.ctx.snapshots.settled()
    }
    assert.ok((h.ctx.metrics.environmentSnapshotLookups.get({ result: 'hit' }) ?? 0) > 0)
  })

  test('concurrent writes and fetches from three clients: every fetch after a write sees it', async () => {
    for (let round = 0; round < 30; round++) {
      const v = `round-${round}`
      const [w] = await Promise.all([a.put(`${E()}/secrets/K`, { value: v }), fetchValue(), fetchValue()])
      assert.equal(w.status, 200)
      assert.ok((await fetchValue()) === v, `round ${round}: the last write is what a fetch answers`)
    }
    await h.ctx.snapshots.settled()
    assert.ok((await fetchValue()) === 'round-29')
  })

  test('the snapshot table is tenant-scoped: another workspace scope sees no row', async () => {
    const rows = await readInScope(h.ctx.store, h.b.id, (db) => db.selectFrom('environment_snapshots').select('environment_id').execute())
    assert.deepEqual(rows, [])
    const mine = await readInScope(h.ctx.store, h.a.id, (db) => db.selectFrom('environment_snapshots').select('environment_id').execute())
    assert.ok(mine.length >= 1)
  })
})
