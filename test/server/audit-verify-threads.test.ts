// Full verification on worker threads (src/audit/verify-workers.ts) gives exactly what one
// thread gives: the same result on an intact log, with and without a signed checkpoint whose
// tree ends inside a run, and a named failure for a wrong root and for rows past the head.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { AuditLog } from '../../src/audit/audit-log.js'
import { verifySourceOf, VerifyWorkers, type RunResult } from '../../src/audit/verify-workers.js'
import { readInScope } from '../../src/storage/tenant-scope.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName } from '../helpers/harness.js'

function suite(engine: EngineName): void {
  test('worker threads and one thread agree, with a checkpoint ending inside a run', async () => {
    const h = await startHarness(engine)
    const pool = new VerifyWorkers(2)
    const runs: RunResult[][] = []
    const run = pool.run.bind(pool)
    pool.run = async (tasks) => {
      const r = await run(tasks)
      runs.push(r)
      return r
    }
    try {
      const a = api(h.app, h.a.token)
      assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Many' })).status, 201)
      const E = `/v1/workspaces/${h.a.slug}/projects/many/environments/development`
      for (let i = 0; i < 40; i++) assert.equal((await a.put(`${E}/secrets/K${i}`, { value: randomBytes(8).toString('hex') })).status, 200)
      const cp = await a.post(`/v1/workspaces/${h.a.slug}/audit/checkpoints`)
      assert.equal(cp.status, 201)
      const treeSize: number = cp.body.checkpoint.treeSize
      assert.ok(treeSize % 8 !== 0, 'the checkpoint ends inside a run of 8')
      for (let i = 0; i < 5; i++) assert.equal((await a.put(`${E}/secrets/K${i}`, { value: randomBytes(8).toString('hex') })).status, 200)

      const oneThread = await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.equal(oneThread.body.ok, true)
      h.ctx.audit.useWorkers(pool, verifySourceOf(h.ctx.config.database), { chunk: 8, threshold: 0 })
      const threaded = await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.deepEqual(threaded.body, oneThread.body)
      assert.equal(runs.length, 1)
      assert.ok(runs[0]!.length >= 6 && runs[0]!.every((r) => r.ok), 'every run verified on a worker thread')
      assert.ok(
        runs[0]!.some((r) => r.peaks.length > 1),
        'a run returned the partial tree of the checkpoint',
      )

      // A checkpoint whose root is not the entries' root: named on one thread after the workers disagree.
      const wrongRoot = await readInScope(h.ctx.store, h.a.id, (db) =>
        h.ctx.audit.verify(db, h.a.id, { treeSize, rootHash: randomBytes(32) }),
      )
      assert.equal(wrongRoot.ok, false)
      assert.equal(wrongRoot.firstBad?.seq, treeSize)
      assert.match(wrongRoot.firstBad!.reason, /do not hash to the signed checkpoint root/)

      // A row written past the head by someone with database access.
      const last = await h.db
        .selectFrom('audit_entries')
        .selectAll()
        .where('workspace_id', '=', h.a.id)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirstOrThrow()
      await h.db
        .insertInto('audit_entries')
        .values({ ...last, seq: Number(last.seq) + 1, id: crypto.randomUUID() })
        .execute()
      const forged = await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.equal(forged.body.ok, false)
      assert.equal(forged.body.firstBad.seq, Number(last.seq) + 1)
      assert.match(forged.body.firstBad.reason, /does not end at the recorded head/)
    } finally {
      await pool.close()
      await h.close()
    }
  })

  test('a log the threads cannot read is verified on one thread', async () => {
    const h = await startHarness(engine)
    const pool = new VerifyWorkers(1)
    try {
      const log = new AuditLog(h.ctx.store.engine, async () => Buffer.alloc(32), h.ctx.clock)
      log.useWorkers(
        pool,
        engine === 'sqlite'
          ? { engine: 'sqlite', path: `${h.dataDir}/missing.db` }
          : { engine: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none' },
        { chunk: 1, threshold: 0 },
      )
      const r = await readInScope(h.ctx.store, h.a.id, (db) => log.verify(db, h.a.id))
      assert.equal(r.ok, true)
      assert.ok(r.checked >= 2)
    } finally {
      await pool.close()
      await h.close()
    }
  })
}

describe('audit verification on worker threads', () => describeEachEngine(suite))
