// Signing a checkpoint checks the log first (src/audit/issue-checkpoint.ts) with several reads.
// On PostgreSQL each read sees the latest commit, so an integration committing between two of
// them made a healthy log look truncated (409 ERR_AUDIT_TAMPERED, seen once in CI). The check
// now holds the workspace's head first: an integration waits until the checkpoint's
// transaction ends, and the check sees one state of the log.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { writeInScope } from '../../src/storage/tenant-scope.js'
import { describePostgres } from '../helpers/engines.js'
import { api, type Harness, startHarness } from '../helpers/harness.js'

describePostgres('a checkpoint and an integration at once', () => {
  let h: Harness
  before(async () => {
    h = await startHarness('postgres')
  })
  after(() => h?.close())

  test('while a checkpoint checks the log, an integration of the same workspace waits for it', async () => {
    const a = api(h.app, h.a.token)
    assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Race' })).status, 201)
    await h.settle()
    // Entries queued and not yet integrated.
    for (let i = 0; i < 5; i++)
      assert.equal(
        (await a.put(`/v1/workspaces/${h.a.slug}/projects/race/environments/development/secrets/K${i}`, { value: `v${i}` })).status,
        200,
      )
    const { audit, store } = h.ctx
    let integrated = false
    let checked: unknown = 'not run'
    let letGo!: () => void
    const held = new Promise<void>((r) => {
      letGo = r
    })
    let holding!: () => void
    const isHolding = new Promise<void>((r) => {
      holding = r
    })
    const checkpointTx = writeInScope(store, store.db, h.a.id, async (tx) => {
      await audit.holdHead(tx, h.a.id)
      holding()
      await held
      checked = await audit.integrity(tx, h.a.id)
    })
    await isHolding
    const integration = writeInScope(store, store.db, h.a.id, (tx) => audit.integrateAll(tx, h.a.id)).then(() => {
      integrated = true
    })
    try {
      await sleep(300)
      assert.equal(integrated, false, 'the integration committed while the checkpoint held the head')
    } finally {
      letGo()
    }
    await checkpointTx
    assert.equal(checked, null, 'the log checked as intact')
    await integration
    assert.equal(integrated, true)
    // And through the API, with the sequencer integrating beside it.
    for (let i = 0; i < 10; i++) {
      const put = a.put(`/v1/workspaces/${h.a.slug}/projects/race/environments/development/secrets/K${i % 5}`, { value: `w${i}` })
      const [cp] = await Promise.all([a.post(`/v1/workspaces/${h.a.slug}/audit/checkpoints`), put, h.ctx.sequencer.catchUp(h.a.id)])
      assert.ok(cp.status === 201 || cp.status === 200, `checkpoint ${i} answered ${cp.status} ${JSON.stringify(cp.body)}`)
    }
  })
})
