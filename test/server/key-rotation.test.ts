// Data-key rotation, live: a rotation makes a new key version primary at once, the resealer
// moves every older version onto it in the background while reads and writes keep working,
// then destroys the old key version. Automatic rotation by age and by usage count. The
// database itself refuses to lose a key that a ciphertext still names.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { keyRefOf } from '../../src/crypto/envelope.js'
import { keyRotationJob } from '../../src/jobs/jobs.js'
import { Metrics } from '../../src/ops/metrics.js'
import { Resealer } from '../../src/vault/resealer.js'
import type { Transaction } from 'kysely'
import type { Database } from '../../src/storage/schema.js'
import { SYSTEM_SCOPE, writeInScope } from '../../src/storage/tenant-scope.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'

const canary = (label: string) => `canary-${label}-${randomBytes(6).toString('hex')}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function suite(engine: EngineName) {
  describe('data-key rotation', () => {
    let h: Harness
    let a: ReturnType<typeof api>
    let E: string
    let scope: { workspaceId: string; projectId: string; environmentId: string }

    async function waitJob(id: string, ms = 20_000) {
      const end = Date.now() + ms
      for (;;) {
        const j = (await a.get(`/v1/workspaces/${h.a.slug}/key-jobs/${id}`)).body.job
        if (j.state !== 'running' || Date.now() > end) return j
        await sleep(20)
      }
    }

    async function keyVersionsInUse() {
      const rows = await inScope((d) =>
        d
          .selectFrom('secret_versions')
          .select(['dek_version', 'value_ct'])
          .where('environment_id', '=', scope.environmentId)
          .where('value_ct', 'is not', null)
          .execute(),
      )
      for (const r of rows) assert.equal(keyRefOf(r.value_ct!).version, r.dek_version, 'the header names the key the row records')
      return [...new Set(rows.map((r) => r.dek_version))].sort()
    }

    /** Direct SQL as an operator would run it: every workspace (row-level security on PostgreSQL). */
    const inScope = <T>(fn: (d: Transaction<Database>) => Promise<T>) => writeInScope(h.ctx.store, h.ctx.store.db, SYSTEM_SCOPE, fn)

    async function auditEntries(): Promise<
      Array<{ action: string; actor: { type: string }; target: { type: string; id: string }; details: Record<string, unknown> }>
    > {
      const out = []
      let after = 0
      for (;;) {
        const r = (await a.get(`/v1/workspaces/${h.a.slug}/audit/entries?after=${after}&limit=1000`)).body
        for (const e of r.entries) out.push({ ...e, details: JSON.parse(e.details) })
        if (r.next === null) return out
        after = r.next
      }
    }

    before(async () => {
      // The resealer runs only when asked (the API kicks it), so each test sees each step.
      h = await startHarness(engine, { COFFER_KEY_ROTATION_CHECK_INTERVAL: '0', COFFER_RESEAL_BATCH: '7', COFFER_RESEAL_LEASE_MS: '2000' })
      a = api(h.app, h.a.token)
      assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Keys App' })).status, 201)
      E = `/v1/workspaces/${h.a.slug}/projects/keys-app/environments/development`
      const env = await inScope((d) =>
        d
          .selectFrom('environments')
          .select(['id', 'project_id'])
          .where('workspace_id', '=', h.a.id)
          .where('slug', '=', 'development')
          .where('project_id', 'in', (eb) => eb.selectFrom('projects').select('id').where('slug', '=', 'keys-app'))
          .executeTakeFirstOrThrow(),
      )
      scope = { workspaceId: h.a.id, projectId: env.project_id, environmentId: env.id }
    })
    after(() => h?.close())

    test('a rotation makes a new version primary at once, reseals every version and destroys the old key', async () => {
      const values = new Map<string, string[]>()
      for (let i = 0; i < 20; i++) {
        const key = `K${i}`
        for (let v = 0; v < 3; v++) {
          const value = canary(`${key}-${v}`)
          assert.equal((await a.put(`${E}/secrets/${key}`, { value, ...(v === 1 ? { comment: canary('comment') } : {}) })).status, 200)
          values.set(key, [...(values.get(key) ?? []), value])
        }
      }
      assert.equal((await a.del(`${E}/secrets/K0`)).status, 200, 'a tombstone has no ciphertext and no key')
      const before = (await a.get(`${E}/keys`)).body
      assert.equal(before.versions.length, 1)
      assert.equal(before.versions[0].state, 'primary')
      assert.equal(before.versions[0].encryptions, 20 * 3 + 20, 'every value and comment encrypted is counted')
      assert.deepEqual(await keyVersionsInUse(), [1])

      const r = await a.post(`${E}/keys/rotate`, {})
      assert.equal(r.status, 202)
      assert.equal(r.body.key.version, 2)
      assert.equal(r.body.key.previousVersion, 1)
      assert.equal(r.body.job.total, 60)
      assert.ok(!JSON.stringify(r.body).includes('canary'), 'no value in the response')

      // New writes use version 2 at once, whatever the resealer has done.
      const fresh = canary('fresh')
      assert.equal((await a.put(`${E}/secrets/FRESH`, { value: fresh })).status, 200)
      const freshRow = await inScope((d) =>
        d
          .selectFrom('secret_versions')
          .innerJoin('secrets', 'secrets.id', 'secret_versions.secret_id')
          .select(['secret_versions.dek_version'])
          .where('secrets.key', '=', 'FRESH')
          .where('secrets.environment_id', '=', scope.environmentId)
          .executeTakeFirstOrThrow(),
      )
      assert.equal(freshRow.dek_version, 2)

      const job = await waitJob(r.body.job.id)
      assert.equal(job.state, 'done')
      assert.equal(job.done, 60)
      assert.deepEqual(await keyVersionsInUse(), [2])
      const after = (await a.get(`${E}/keys`)).body
      assert.deepEqual(
        after.versions.map((v: { version: number; state: string }) => [v.version, v.state]),
        [[2, 'primary']],
        'version 1 is destroyed',
      )
      assert.equal(
        await inScope((d) =>
          d
            .selectFrom('data_keys')
            .select('id')
            .where('environment_id', '=', scope.environmentId)
            .where('version', '=', 1)
            .executeTakeFirst(),
        ),
        undefined,
      )

      // Every version of every secret still reads back exactly.
      h.ctx.dataKeys.clearCache()
      for (const [key, vs] of values) {
        const hist = (await a.get(`${E}/secrets/${key}/versions?reveal=true`)).body.versions as Array<{
          version: number
          value: string | null
          deleted: boolean
        }>
        const written = hist
          .filter((v) => !v.deleted)
          .sort((x, y) => x.version - y.version)
          .map((v) => v.value)
        assert.ok(written.length === vs.length && written.every((w, i) => w === vs[i]), `${key}: every version reads back after the reseal`)
      }
      assert.equal((await a.get(`${E}/secrets/FRESH?reveal=true`)).body.secret.value === fresh, true)

      const entries = await auditEntries()
      const rotated = entries.find((e) => e.action === 'key.rotated')
      const resealed = entries.find((e) => e.action === 'key.resealed')
      assert.ok(rotated && rotated.details.reason === 'manual' && rotated.details.version === 2)
      assert.ok(resealed && resealed.actor.type === 'system')
      assert.deepEqual(resealed.details.destroyedVersions, [1])
      assert.equal((await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)).body.ok, true)
    })

    test('the database refuses to delete a key a ciphertext names, or to store a ciphertext naming a missing key', async () => {
      const key = await inScope((d) =>
        d
          .selectFrom('data_keys')
          .select(['id', 'version'])
          .where('environment_id', '=', scope.environmentId)
          .where('state', '=', 'primary')
          .executeTakeFirstOrThrow(),
      )
      await assert.rejects(inScope((d) => d.deleteFrom('data_keys').where('id', '=', key.id).where('version', '=', key.version).execute()))
      const row = await inScope((d) =>
        d
          .selectFrom('secret_versions')
          .selectAll()
          .where('environment_id', '=', scope.environmentId)
          .where('dek_id', 'is not', null)
          .limit(1)
          .executeTakeFirstOrThrow(),
      )
      await assert.rejects(
        inScope((d) =>
          d
            .insertInto('secret_versions')
            .values({ ...row, version: 999, dek_version: 77 })
            .execute(),
        ),
      )
      await assert.rejects(
        inScope((d) =>
          d
            .updateTable('secret_versions')
            .set({ dek_version: 77 })
            .where('secret_id', '=', row.secret_id)
            .where('version', '=', row.version)
            .execute(),
        ),
      )
      assert.ok(
        await inScope((d) =>
          d.selectFrom('data_keys').select('id').where('id', '=', key.id).where('version', '=', key.version).executeTakeFirst(),
        ),
      )
    })

    test('reads and writes keep succeeding while a reseal runs', async () => {
      const load = `/v1/workspaces/${h.a.slug}/projects/keys-app/environments/staging`
      const expected = new Map<string, string>()
      for (let b = 0; b < 4; b++) {
        const secrets = Array.from({ length: 100 }, (_, i) => ({ key: `L${b}_${i}`, value: canary(`l${b}-${i}`) }))
        assert.equal((await a.post(`${load}/secrets`, { secrets })).status, 200)
        for (const s of secrets) expected.set(s.key, s.value)
      }
      const r = await a.post(`${load}/keys/rotate`, {})
      assert.equal(r.status, 202)
      let failed = 0
      let requests = 0
      let done = false
      const worker = async (n: number) => {
        for (let i = 0; !done; i++) {
          requests++
          if (i % 3 === 0) {
            const key = `W${n}_${i % 10}`
            const value = canary(`w${n}`)
            const res = await a.put(`${load}/secrets/${key}`, { value })
            if (res.status !== 200) failed++
            else expected.set(key, value)
          } else {
            const res = await a.get(`${load}/secrets?reveal=true`)
            if (res.status !== 200) failed++
            else
              for (const s of res.body.secrets as Array<{ key: string; value: string }>)
                if (expected.has(s.key) && s.key.startsWith('L') && s.value !== expected.get(s.key)) failed++
          }
        }
      }
      const workers = Array.from({ length: 4 }, (_, n) => worker(n))
      const job = await waitJob(r.body.job.id, 60_000)
      done = true
      await Promise.all(workers)
      assert.equal(job.state, 'done')
      assert.ok(requests > 20, `load ran during the reseal (${requests} requests)`)
      assert.equal(failed, 0, `0 of ${requests} requests failed during the reseal`)
      h.ctx.dataKeys.clearCache()
      const all = (await a.get(`${load}/secrets?reveal=true`)).body.secrets as Array<{ key: string; value: string }>
      const got = new Map(all.map((s) => [s.key, s.value]))
      for (const [k, v] of expected) assert.ok(got.get(k) === v, `${k} reads back`)
    })

    test('a version that does not decrypt stops the reseal, keeps the old key and is audited', async () => {
      const env = `/v1/workspaces/${h.a.slug}/projects/keys-app/environments/production`
      const pv = [canary('p0'), canary('p1'), canary('p2')]
      for (let i = 0; i < 3; i++) assert.equal((await a.put(`${env}/secrets/P${i}`, { value: pv[i] })).status, 200)
      const prod = await inScope((d) =>
        d
          .selectFrom('environments')
          .select('id')
          .where('workspace_id', '=', h.a.id)
          .where('slug', '=', 'production')
          .where('project_id', '=', scope.projectId)
          .executeTakeFirstOrThrow(),
      )
      const victim = await inScope((d) =>
        d
          .selectFrom('secret_versions')
          .innerJoin('secrets', 'secrets.id', 'secret_versions.secret_id')
          .select(['secret_versions.secret_id', 'secret_versions.version', 'secret_versions.value_ct'])
          .where('secrets.key', '=', 'P1')
          .where('secrets.environment_id', '=', prod.id)
          .executeTakeFirstOrThrow(),
      )
      const tampered = Buffer.from(victim.value_ct!)
      tampered[tampered.length - 1]! ^= 1
      await inScope((d) =>
        d
          .updateTable('secret_versions')
          .set({ value_ct: tampered })
          .where('secret_id', '=', victim.secret_id)
          .where('version', '=', victim.version)
          .execute(),
      )
      const r = await a.post(`${env}/keys/rotate`, {})
      const job = await waitJob(r.body.job.id)
      assert.equal(job.state, 'failed')
      assert.match(job.error, /does not decrypt/)
      const versions = (await a.get(`${env}/keys`)).body.versions.map((v: { version: number; state: string }) => [v.version, v.state])
      assert.deepEqual(
        versions,
        [
          [2, 'primary'],
          [1, 'active'],
        ],
        'the old key is kept',
      )
      assert.ok((await auditEntries()).some((e) => e.action === 'key.reseal_failed'))
      h.ctx.dataKeys.clearCache()
      for (const i of [0, 2]) assert.ok((await a.get(`${env}/secrets/P${i}?reveal=true`)).body.secret.value === pv[i], `P${i} still reads`)
      assert.equal((await a.get(`${env}/secrets/P1?reveal=true`)).body.error.code, 'ERR_DECRYPTION_FAILED')
    })

    test('keys rotate by themselves on age and on usage, once across several nodes', async () => {
      const metrics = new Metrics()
      const log = { info() {}, error() {} } as never
      // Age: the development key is made to look 31 days old.
      await inScope((d) =>
        d
          .updateTable('data_keys')
          .set({ created_at: new Date(Date.now() - 31 * 86_400_000).toISOString() })
          .where('environment_id', '=', scope.environmentId)
          .where('state', '=', 'primary')
          .execute(),
      )
      const ctxAged = {
        ...h.ctx,
        config: { ...h.ctx.config, keys: { ...h.ctx.config.keys, rotationDays: 30, maxEncryptions: 2_000_000_000 } },
      }
      // Two "nodes" run the job at once: the key rotates once.
      await Promise.all([keyRotationJob(ctxAged, metrics, log).run(), keyRotationJob(ctxAged, metrics, log).run()])
      let status = (await a.get(`${E}/keys`)).body
      assert.equal(status.versions[0].version, 3, `rotated once (2 → 3): ${JSON.stringify(status)}`)
      assert.equal(status.versions[0].state, 'primary')
      assert.equal(status.jobs[0].reason, 'schedule')
      assert.equal(metrics.keysRotated.get({ reason: 'schedule' }), 1)
      await waitJob(status.jobs[0].id)

      // Usage: a low ceiling (the reseal's own encryptions count too), then one more write crosses it.
      const used = (await a.get(`${E}/keys`)).body.versions[0].encryptions as number
      const ctxUsage = { ...h.ctx, config: { ...h.ctx.config, keys: { ...h.ctx.config.keys, rotationDays: 0, maxEncryptions: used + 1 } } }
      await keyRotationJob(ctxUsage, metrics, log).run()
      assert.equal((await a.get(`${E}/keys`)).body.versions[0].version, 3, 'below the ceiling: no rotation')
      assert.equal((await a.put(`${E}/secrets/USAGE`, { value: canary('usage') })).status, 200)
      // A one-key write counts its encryption at its batch's end (DataKeys.countAtEnd): exactly one.
      assert.equal((await a.get(`${E}/keys`)).body.versions[0].encryptions, used + 1)
      await keyRotationJob(ctxUsage, metrics, log).run()
      status = (await a.get(`${E}/keys`)).body
      assert.equal(status.versions[0].version, 4)
      assert.equal(status.jobs[0].reason, 'usage')
      await waitJob(status.jobs[0].id)
      const entries = await auditEntries()
      const here = entries.filter((e) => e.action === 'key.rotated' && e.target.id === scope.environmentId)
      assert.deepEqual(
        here.map((e) => e.details.reason),
        ['manual', 'schedule', 'usage'],
      )
    })

    test('two resealers on one job: one holds the lease, the work is done once and right', async () => {
      const env = `/v1/workspaces/${h.a.slug}/projects/keys-app/environments/development`
      const secrets = Array.from({ length: 50 }, (_, i) => ({ key: `TWO_${i}`, value: canary(`two-${i}`) }))
      assert.equal((await a.post(`${env}/secrets`, { secrets })).status, 200)
      await h.ctx.resealer.stop()
      const make = () =>
        new Resealer({
          store: h.ctx.store,
          committer: h.ctx.committer,
          dataKeys: h.ctx.dataKeys,
          audit: h.ctx.audit,
          batchSize: 5,
          leaseMs: 5000,
          clock: h.ctx.clock,
        })
      const r = await a.post(`${env}/keys/rotate`, {})
      const [x, y] = [make(), make()]
      const [fx, fy] = await Promise.all([x.runPending(), y.runPending()])
      assert.equal(fx + fy, 1, 'the job finished exactly once')
      const job = (await a.get(`/v1/workspaces/${h.a.slug}/key-jobs/${r.body.job.id}`)).body.job
      assert.equal(job.state, 'done')
      const entries = await auditEntries()
      assert.equal(entries.filter((e) => e.action === 'key.resealed' && e.details.resealJob === r.body.job.id).length, 1)
      h.ctx.dataKeys.clearCache()
      const got = new Map(
        ((await a.get(`${env}/secrets?reveal=true`)).body.secrets as Array<{ key: string; value: string }>).map((s) => [s.key, s.value]),
      )
      for (const s of secrets) assert.ok(got.get(s.key) === s.value)
    })
  })
}

describeEachEngine(suite)
