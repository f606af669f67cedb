// The audit sequencer from the attacker's side and across nodes, on both engines: a queued
// entry cannot be edited; a head tampered with stops sequencing instead of being extended
// (requests still queue their entries, which stay listed as pending); a lease held by another
// live node is respected, and taken over once it runs out.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { sql } from 'kysely'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'

function suite(engine: EngineName): void {
  const count = async (h: Harness, table: 'audit_entries' | 'audit_queue') =>
    Number(
      (
        await h.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .where('workspace_id', '=', h.a.id)
          .executeTakeFirstOrThrow()
      ).n,
    )

  async function withQueued(h: Harness): Promise<string> {
    const a = api(h.app, h.a.token)
    assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Seq' })).status, 201)
    await h.settle()
    // The harness runs a sequencer of its own (the server's); it must not take the next entry yet.
    await h.ctx.sequencer.stop()
    const E = `/v1/workspaces/${h.a.slug}/projects/seq/environments/development`
    assert.equal((await a.put(`${E}/secrets/K`, { value: randomBytes(8).toString('hex') })).status, 200)
    assert.equal(await count(h, 'audit_queue'), 1, 'the write queued its entry')
    return E
  }

  test('a queued entry cannot be edited', async () => {
    const h = await startHarness(engine)
    try {
      await withQueued(h)
      await assert.rejects(sql`UPDATE audit_queue SET action = 'secret.read' WHERE workspace_id = ${h.a.id}`.execute(h.db), /never updated/)
    } finally {
      await h.close()
    }
  })

  test('a head whose tree edge was tampered with is not extended; entries stay queued and are reported', async () => {
    const h = await startHarness(engine)
    try {
      const E = await withQueued(h)
      const before = await count(h, 'audit_entries')
      // One byte too many in the recorded right edge: no append could have written it.
      const head = await h.db.selectFrom('audit_heads').select('peaks').where('workspace_id', '=', h.a.id).executeTakeFirstOrThrow()
      await h.db
        .updateTable('audit_heads')
        .set({ peaks: Buffer.concat([Buffer.from(head.peaks), Buffer.alloc(1)]) })
        .where('workspace_id', '=', h.a.id)
        .execute()
      const failures = () => [...h.ctx.metrics.auditSequencerFailures.values.values()].reduce((a, b) => a + b, 0)
      const failed = failures()
      assert.equal(await h.ctx.sequencer.catchUp(h.a.id, 200), false, 'the sequencer refuses')
      assert.ok(failures() > failed, 'the refusal is counted')
      // Requests still record their entries (durably, in the queue); none reaches the chain.
      const a = api(h.app, h.a.token)
      assert.equal((await a.get(`${E}/secrets/K?reveal=true`)).status, 200)
      assert.equal(await count(h, 'audit_entries'), before, 'nothing was integrated onto the tampered head')
      assert.equal(await count(h, 'audit_queue'), 2)
      const listed = await a.get(`/v1/workspaces/${h.a.slug}/audit/entries`)
      assert.equal(listed.status, 200)
      assert.equal(listed.body.pending.count, 2, 'the queued entries are listed as pending')
      assert.deepEqual(
        listed.body.pending.entries.map((e: { action: string }) => e.action),
        ['secret.create', 'secret.reveal'],
      )
      assert.equal(listed.body.pending.entries[0].seq, undefined, 'a pending entry has no place in the chain')
      // No checkpoint is signed over it either.
      const cp = await a.post(`/v1/workspaces/${h.a.slug}/audit/checkpoints`)
      assert.deepEqual([cp.status, cp.body.error?.code], [409, 'ERR_AUDIT_TAMPERED'])
    } finally {
      await h.close()
    }
  })

  test("another live node's lease is respected; an expired one is taken over", async () => {
    const h = await startHarness(engine)
    try {
      await withQueued(h)
      const now = h.ctx.clock().getTime()
      await h.db
        .updateTable('audit_heads')
        .set({ sequencer: 'another-node', sequencer_until: now + 60_000 })
        .where('workspace_id', '=', h.a.id)
        .execute()
      assert.equal(await h.ctx.sequencer.catchUp(h.a.id, 150), false, 'waited for the holder, did not integrate')
      assert.equal(await h.ctx.sequencer.pass(), 0)
      assert.equal(await count(h, 'audit_queue'), 1)
      // The holder died: its lease runs out, and this node takes the workspace over.
      await h.db
        .updateTable('audit_heads')
        .set({ sequencer_until: now - 1 })
        .where('workspace_id', '=', h.a.id)
        .execute()
      assert.equal(await h.ctx.sequencer.catchUp(h.a.id), true)
      assert.equal(await count(h, 'audit_queue'), 0)
      const lease = await h.db
        .selectFrom('audit_heads')
        .select(['sequencer', 'sequencer_until'])
        .where('workspace_id', '=', h.a.id)
        .executeTakeFirstOrThrow()
      assert.equal(lease.sequencer, h.ctx.sequencer.node)
      assert.ok(Number(lease.sequencer_until) > now)
      const v = await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.deepEqual([v.body.ok, v.body.pending.count], [true, 0])
    } finally {
      await h.close()
    }
  })
}

describeEachEngine(suite)
