// Audited reads that finish together share one write of their audit entries (PostgreSQL: one
// committer unit with a multi-row INSERT; SQLite: one message to the audit thread, which
// queues them on its own connection), on both engines — without weakening what each answer means:
// every answered read has its entry durably queued already, and an entry that cannot be
// written fails its own request, not the others of its batch.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import type { AuditEvent } from '../../src/audit/audit-log.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'

function suite(engine: EngineName): void {
  const queued = async (h: Harness) =>
    Number(
      (
        await h.db
          .selectFrom('audit_queue')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('workspace_id', '=', h.a.id)
          .executeTakeFirstOrThrow()
      ).n,
    )
  const actor = { type: 'system', id: 'test', ip: '127.0.0.1', userAgent: 'read-audit-batch.test' } as const

  test('concurrent audited reads share queue units, and each answer comes with its entry already queued', async () => {
    const h = await startHarness(engine)
    try {
      const a = api(h.app, h.a.token)
      assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Batch' })).status, 201)
      const E = `/v1/workspaces/${h.a.slug}/projects/batch/environments/development`
      assert.equal((await a.put(`${E}/secrets/K`, { value: randomBytes(8).toString('hex') })).status, 200)
      await h.settle()
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
