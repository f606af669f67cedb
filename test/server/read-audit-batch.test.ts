// Audited reads that finish together share one write of their audit entries (PostgreSQL: one
// committer unit with a multi-row INSERT; SQLite: one message to the audit thread, which
// queues them on its own connection), on both engines — without weakening what each answer means:
// every answered read has its entry durably queued already, and an entry that cannot be
// written fails its own request, not the others of its batch.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { Worker } from 'node:worker_threads'
import type { AuditEvent } from '../../src/audit/audit-log.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'

/** Workspace A's rows in an audit table. */
async function countRows(h: Harness, table: 'audit_queue' | 'audit_entries'): Promise<number> {
  const r = await h.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .where('workspace_id', '=', h.a.id)
    .executeTakeFirstOrThrow()
  return Number(r.n)
}

/** A project `name` in workspace A with one secret K in development, its entries integrated; the environment's path. */
async function withSecret(h: Harness, name: string): Promise<string> {
  const a = api(h.app, h.a.token)
  assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name })).status, 201)
  const E = `/v1/workspaces/${h.a.slug}/projects/${name.toLowerCase()}/environments/development`
  assert.equal((await a.put(`${E}/secrets/K`, { value: randomBytes(8).toString('hex') })).status, 200)
  await h.settle()
  return E
}

function suite(engine: EngineName): void {
  const queued = (h: Harness) => countRows(h, 'audit_queue')
  const actor = { type: 'system', id: 'test', ip: '127.0.0.1', userAgent: 'read-audit-batch.test' } as const

  test('concurrent audited reads share queue units, and each answer comes with its entry already queued', async () => {
    const h = await startHarness(engine)
    try {
      const a = api(h.app, h.a.token)
      const E = await withSecret(h, 'Batch')
      // Nothing is integrated meanwhile: every entry of the reads stays in the queue to be counted.
      await h.ctx.sequencer.stop()
      const before = await queued(h)
      const writes = h.ctx.readAudits.stats.writes
      const N = 40
      const answers = await Promise.all(
        Array.from({ length: N }, (_, i) => a.get(i % 2 ? `${E}/secrets/K?reveal=true` : `${E}/secrets?reveal=true`)),
      )
      assert.deepEqual(
        answers.map((r) => r.status),
        Array(N).fill(200),
      )
      // Counted right after the last answer, with no wait: an answer is given only once its entry is durable.
      assert.equal(await queued(h), before + N, 'one queued entry per answered read')
      const used = h.ctx.readAudits.stats.writes - writes
      assert.ok(used < N, `the reads' entries were queued in ${used} writes for ${N} reads`)
      const requestIds = await h.db.selectFrom('audit_queue').select('request_id').where('workspace_id', '=', h.a.id).execute()
      assert.equal(new Set(requestIds.map((r) => r.request_id)).size, requestIds.length, 'each entry names its own request')
    } finally {
      await h.close()
    }
  })

  test('an entry that cannot be written fails only its own request; the others of the batch are queued', async () => {
    const h = await startHarness(engine)
    try {
      await h.ctx.sequencer.stop()
      const before = await queued(h)
      const batcher = h.ctx.readAudits
      const ok = (n: number): AuditEvent => ({ action: 'secret.reveal', target: { type: 'secret', id: `s-${n}` } })
      // A detail canonical JSON refuses (not a safe integer): the INSERT of this one request's entry cannot be built.
      const bad: AuditEvent = { action: 'secret.reveal', target: { type: 'secret', id: 'bad' }, details: { n: 0.5 } }
      const results = await Promise.allSettled([
        batcher.append(h.a.id, actor, 'req-1', [ok(1)]),
        batcher.append(h.a.id, actor, 'req-bad', [bad]),
        batcher.append(h.a.id, actor, 'req-3', [ok(3), ok(4)]),
      ])
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      )
      assert.equal(await queued(h), before + 3, 'the three entries of the two good requests are queued, none of the bad one')
      const ids = await h.db.selectFrom('audit_queue').select(['request_id', 'target_id']).where('workspace_id', '=', h.a.id).execute()
      assert.ok(!ids.some((r) => r.request_id === 'req-bad'))
    } finally {
      await h.close()
    }
  })
}

describeEachEngine(suite)

// SQLite only: the audit thread. A thread that dies (here: terminated) fails the reads waiting
// on it closed, and the next read starts a new one; every answered read has its entry.
describe('the audit thread (SQLite)', () => {
  test('reads waiting on a thread that dies fail closed; the next read starts a new thread; every answer has its entry', async () => {
    const threads = new Set<Worker>()
    const post = Worker.prototype.postMessage
    let killAtNextQueue = false
    // @NOTE the test's only way to the thread: it records the workers the client posts to, and
    // terminates one right after it was handed a read's entries (its answer still to come).
    Worker.prototype.postMessage = function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
      threads.add(this)
      const r = post.apply(this, args)
      if (killAtNextQueue && (args[0] as { t?: string }).t === 'queue') {
        killAtNextQueue = false
        void this.terminate()
      }
      return r
    }
    const h = await startHarness('sqlite')
    try {
      const a = api(h.app, h.a.token)
      const E = await withSecret(h, 'Thread')
      const count = () => countRows(h, 'audit_entries')
      const before = await count()
      assert.equal((await a.get(`${E}/secrets/K?reveal=true`)).status, 200)
      assert.equal(threads.size, 1, 'the reads went through one audit thread')
      // Twenty reads; the thread is terminated as soon as it holds the first batch of their entries.
      killAtNextQueue = true
      const answers = await Promise.all(Array.from({ length: 20 }, () => a.get(`${E}/secrets/K?reveal=true`)))
      for (const r of answers)
        assert.ok(r.status === 200 || (r.status === 503 && r.body.error.code === 'ERR_AUDIT_UNAVAILABLE'), `answered ${r.status}`)
      assert.ok(
        answers.some((r) => r.status === 503),
        'the reads whose entries the dead thread held failed closed',
      )
      // The next reads start a new thread, and succeed.
      for (let i = 0; i < 3; i++) assert.equal((await a.get(`${E}/secrets/K?reveal=true`)).status, 200)
      assert.ok(threads.size >= 2, 'a new thread serves the reads')
      await h.settle()
      const ok = 1 + answers.filter((r) => r.status === 200).length + 3
      const written = (await count()) - before
      assert.ok(written >= ok, `${written} entries for ${ok} answered reads: every answer has its entry`)
      const v = await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.deepEqual([v.body.ok, v.body.pending.count], [true, 0])
    } finally {
      Worker.prototype.postMessage = post
      await h.close()
    }
  })
})
