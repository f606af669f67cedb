// The resealer packs each batch's values and comments into one reseal batch, so an item's
// index is not its row's: a version that does not decrypt must still be named exactly (secret
// and version) when the job fails, on the worker threads and in this thread, whichever field
// of which row in which batch it is. Every version before it in walk order is resealed.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { Transaction } from 'kysely'
import { keyRefOf } from '../../src/crypto/envelope.js'
import { ResealWorkers } from '../../src/crypto/reseal-workers.js'
import type { Database } from '../../src/storage/schema.js'
import { SYSTEM_SCOPE, writeInScope } from '../../src/storage/tenant-scope.js'
import { rotateDataKey } from '../../src/vault/key-rotation.js'
import { Resealer } from '../../src/vault/resealer.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'

function suite(engine: EngineName) {
  describe('a version that does not decrypt is named exactly', () => {
    let h: Harness
    let a: ReturnType<typeof api>
    const workers = new ResealWorkers(2)
    const inScope = <T>(fn: (d: Transaction<Database>) => Promise<T>) => writeInScope(h.ctx.store, h.ctx.store.db, SYSTEM_SCOPE, fn)

    before(async () => {
      // The API's resealer never runs here (no schedule, rotations made directly): each test runs its own.
      h = await startHarness(engine, { COFFER_KEY_ROTATION_CHECK_INTERVAL: '0' })
      a = api(h.app, h.a.token)
      assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Rows App' })).status, 201)
    })
    after(async () => {
      await workers.close()
      await h?.close()
    })

    const cases = [
      { env: 'development', field: 'comment_ct', threads: true, at: 9 },
      { env: 'staging', field: 'value_ct', threads: false, at: 6 },
      { env: 'production', field: 'comment_ct', threads: false, at: 0 },
    ] as const
    for (const c of cases) {
      test(`${c.field === 'comment_ct' ? 'a comment' : 'a value'} of the row at walk position ${c.at}, ${c.threads ? 'on the worker threads' : 'in this thread'}`, async () => {
        const E = `/v1/workspaces/${h.a.slug}/projects/rows-app/environments/${c.env}`
        for (let i = 0; i < 6; i++) {
          for (let v = 0; v < 2; v++) {
            const body = { value: `v-${randomBytes(4).toString('hex')}`, ...((i + v) % 2 === 0 ? { comment: `c-${i}-${v}` } : {}) }
            assert.equal((await a.put(`${E}/secrets/S${i}`, body)).status, 200)
          }
        }
        const env = await inScope((d) =>
          d
            .selectFrom('environments')
            .innerJoin('projects', 'projects.id', 'environments.project_id')
            .select(['environments.id', 'environments.project_id'])
            .where('environments.workspace_id', '=', h.a.id)
            .where('projects.slug', '=', 'rows-app')
            .where('environments.slug', '=', c.env)
            .executeTakeFirstOrThrow(),
        )
        const scope = { workspaceId: h.a.id, projectId: env.project_id, environmentId: env.id }
        // The resealer's walk order within one key version.
        const rows = await inScope((d) =>
          d
            .selectFrom('secret_versions')
            .select(['secret_id', 'version', 'value_ct', 'comment_ct'])
            .where('environment_id', '=', env.id)
            .orderBy('secret_id')
            .orderBy('version')
            .execute(),
        )
        const withField = rows.map((r, i) => ({ r, i })).filter(({ r }) => r[c.field] !== null)
        const victim = withField.find(({ i }) => i >= c.at)!.r
        const tampered = Buffer.from(victim[c.field]!)
        tampered[tampered.length - 1]! ^= 1
        await inScope((d) =>
          d
            .updateTable('secret_versions')
            .set({ [c.field]: tampered })
            .where('secret_id', '=', victim.secret_id)
            .where('version', '=', victim.version)
            .execute(),
        )

        const rotated = await h.ctx.committer.run((tx) => rotateDataKey(tx, h.ctx.dataKeys, scope, 'manual', h.ctx.clock()), h.a.id)
        const resealer = new Resealer({
          store: h.ctx.store,
          committer: h.ctx.committer,
          dataKeys: h.ctx.dataKeys,
          audit: h.ctx.audit,
          batchSize: 4,
          leaseMs: 60_000,
          clock: h.ctx.clock,
          pauseRatio: 0,
          ...(c.threads ? { workers } : {}),
        })
        assert.equal(await resealer.runPending(), 0, 'the job does not finish')
        const job = await inScope((d) =>
          d.selectFrom('key_jobs').select(['state', 'error']).where('id', '=', rotated!.job.id).executeTakeFirstOrThrow(),
        )
        assert.equal(job.state, 'failed')
        assert.equal(job.error, `secret ${victim.secret_id} version ${victim.version} does not decrypt under the key it names`)

        // Every batch before the victim's was written under the new key, the victim's row was not.
        const after = await inScope((d) =>
          d
            .selectFrom('secret_versions')
            .select(['secret_id', 'version', 'value_ct', 'dek_version'])
            .where('environment_id', '=', env.id)
            .orderBy('secret_id')
            .orderBy('version')
            .execute(),
        )
        const victimAt = after.findIndex((r) => r.secret_id === victim.secret_id && r.version === victim.version)
        for (let i = 0; i < after.length; i++) {
          const r = after[i]!
          assert.equal(keyRefOf(r.value_ct!).version, r.dek_version, 'each header names the key its row records')
          if (i < victimAt - (victimAt % 4)) assert.equal(r.dek_version, rotated!.key.version, `row ${i} was resealed`)
          if (i >= victimAt) assert.equal(r.dek_version, rotated!.key.previous, `row ${i} was not`)
        }
      })
    }
  })
}

describeEachEngine(suite)
