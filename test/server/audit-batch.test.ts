// Units of one group-commit batch queue audit entries; a unit rolled back to its savepoint
// after queuing must leave nothing in the queue, and the sequencer then integrates exactly the
// surviving units' entries into a gap-free chain.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeEachEngine } from '../helpers/engines.js'
import { startHarness, type EngineName } from '../helpers/harness.js'

function suite(engine: EngineName): void {
  test('entries of a rolled-back unit never reach the chain; the surviving ones are integrated once', async () => {
    const h = await startHarness(engine)
    try {
      const { committer, audit } = h.ctx
      const actor = { type: 'system' as const, id: 'test', ip: '', userAgent: 'test' }
      const before = (await audit.verify(h.db, h.a.id)).checked
      const boom = new Error('fails after its append')
      const units = Array.from({ length: 30 }, (_, i) =>
        committer.run(async (tx) => {
          await audit.append(tx, h.a.id, actor, `req-${i}`, { action: 'secret.update', target: { type: 'unit', id: String(i) } })
          if (i % 3 === 1) throw boom
          if (i % 3 === 2)
            await audit.append(tx, h.a.id, actor, `req-${i}b`, { action: 'secret.reveal', target: { type: 'unit', id: String(i) } })
          return i
        }, h.a.id),
      )
      const settled = await Promise.allSettled(units)
      assert.equal(settled.filter((s) => s.status === 'rejected').length, 10)
      assert.ok(committer.stats.batches < committer.stats.units, 'units shared batches')
      assert.equal((await audit.pending(h.db, h.a.id)).count, 10 + 2 * 10, 'only the surviving units left entries in the queue')
      assert.equal(await h.ctx.sequencer.catchUp(h.a.id), true)
      assert.equal((await audit.pending(h.db, h.a.id)).count, 0)
      const r = await audit.verify(h.db, h.a.id)
      assert.equal(r.ok, true, JSON.stringify(r.firstBad))
      assert.equal(r.checked - before, 10 + 2 * 10, 'every surviving unit appended, no rolled-back entry remains')
      const cp = await h.ctx.auditTree.issue(h.db, h.a.id)
      const rv = await audit.verify(h.db, h.a.id, { treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash, 'base64') })
      assert.equal(rv.ok, true, 'the tree root matches the entries')
    } finally {
      await h.close()
    }
  })
}

describeEachEngine(suite)
