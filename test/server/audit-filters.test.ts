// The audit log's filters (the dashboard's timeline) and its activity per day: they narrow the
// workspace's own log and never widen it — another workspace's actors, targets and entries stay
// out; a wildcard in a filter is text; a caller who may not read the log learns nothing, not
// even which filter values are valid. Paging after/limit keeps its meaning; order=desc pages
// newest first through `before`.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { CofferClient } from '../../src/client/client.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'

interface Entry {
  seq: number
  action: string
  time: string
  actor: { id: string }
  target: { type: string; id: string }
}

describeEachEngine((engine: EngineName) => {
  let h: Harness
  // A clock the test moves: entries on three different days.
  let now = new Date('2025-03-01T10:00:00.000Z')
  let W: string
  let ownerId: string
  let projectId: string

  before(async () => {
    h = await startHarness(engine, {}, { clock: () => now })
    W = `/v1/workspaces/${h.a.slug}`
    const a = api(h.app, h.a.token)
    const p = await a.post(`${W}/projects`, { name: 'Filters' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
    now = new Date('2025-03-02T09:00:00.000Z')
    for (const k of ['ONE', 'TWO', 'THREE'])
      assert.equal((await a.put(`${W}/projects/filters/environments/development/secrets/${k}`, { value: 'v' })).status, 200)
    now = new Date('2025-03-04T23:59:59.000Z')
    assert.equal((await a.get(`${W}/projects/filters/environments/development/secrets/ONE?reveal=true`)).status, 200)
    // Workspace B writes too, with its own actor and targets.
    const b = api(h.app, h.b.token)
    assert.equal((await b.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Theirs' })).status, 201)
    const all = (await a.get(`${W}/audit/entries?limit=5000`)).body.entries as Entry[]
    ownerId = all.find((e) => e.action === 'project.create')!.actor.id
  })
  after(() => h?.close())

  const entries = async (q: string, token = h.a.token) => {
    const r = await api(h.app, token).get(`${W}/audit/entries?${q}`)
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body as { entries: Entry[]; next: number | null }
  }

  test('each filter narrows the log to what matches; all given must match', async () => {
    const all = (await entries('limit=5000')).entries
    const creates = (await entries('action=secret.create')).entries
    assert.deepEqual(
      creates.map((e) => e.action),
      ['secret.create', 'secret.create', 'secret.create'],
    )
    const secretAny = (await entries('action=secret.*')).entries
    assert.deepEqual(
      secretAny.map((e) => e.action),
      ['secret.create', 'secret.create', 'secret.create', 'secret.reveal'],
    )
    assert.deepEqual(
      (await entries(`actor=${ownerId}&action=project.create`)).entries.map((e) => e.target.id),
      [projectId],
    )
    assert.deepEqual(
      (await entries(`targetType=project&target=${projectId}`)).entries.map((e) => e.action),
      all.filter((e) => e.target.type === 'project' && e.target.id === projectId).map((e) => e.action),
    )
    const day2 = (await entries('since=2025-03-02T00:00:00Z&until=2025-03-03T00:00:00Z')).entries
    assert.equal(day2.length, 3)
    assert.ok(day2.every((e) => e.time.startsWith('2025-03-02')))
    // An offset is the same instant: 01:00+02:00 is 23:00Z the day before.
    assert.equal((await entries('since=2025-03-02T01:00:00%2B02:00&until=2025-03-02T11:00:01%2B02:00')).entries.length, 3)
    assert.equal(
      (await entries('since=2025-03-02T01:00:00%2B02:00&until=2025-03-02T11:00:00%2B02:00')).entries.length,
      0,
      'until is exclusive',
    )
    assert.equal((await entries('action=secret.reveal&since=2025-03-05T00:00:00Z')).entries.length, 0)
  })

  test('filters never reach another workspace; wildcards are text', async () => {
    const theirs = (await api(h.app, h.b.token).get(`/v1/workspaces/${h.b.slug}/audit/entries`)).body.entries as Entry[]
    const bActor = theirs.find((e) => e.action === 'project.create')!.actor.id
    const bTarget = theirs.find((e) => e.action === 'project.create')!.target.id
    assert.deepEqual((await entries(`actor=${bActor}`)).entries, [], "B's actor has no entry in A")
    assert.deepEqual((await entries(`target=${bTarget}`)).entries, [], "B's project has no entry in A")
    for (const q of ['action=%25', "action=secret'%20OR%201=1", 'action=*', 'action=.*', 'actor=%25', 'target=%25']) {
      const r = await api(h.app, h.a.token).get(`${W}/audit/entries?${q}`)
      if (r.status === 200) assert.deepEqual(r.body.entries, [], `${q} matches nothing`)
      else assert.equal(r.body.error.code, 'ERR_VALIDATION', q)
    }
    // B cannot read A's log through a filter, and a filter is no way into B's from A.
    assert.equal((await api(h.app, h.b.token).get(`${W}/audit/entries?actor=${ownerId}`)).status, 404)
    assert.equal((await api(h.app, h.a.token).get(`/v1/workspaces/${h.b.slug}/audit/activity`)).status, 404)
  })

  test('a member may not read the log: 403 whatever the filters, before any input rule', async () => {
    const m = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
    for (const q of ['action=secret.*', 'action=NOT%20VALID', 'since=yesterday', 'limit=0']) {
      const r = await api(h.app, m.token).get(`${W}/audit/entries?${q}`)
      assert.equal(r.status, 403, q)
      assert.equal(r.body.error.code, 'ERR_FORBIDDEN')
    }
    assert.equal((await api(h.app, m.token).get(`${W}/audit/activity?days=7`)).status, 403)
    const auditor = await addPerson(h, { workspaceId: h.a.id, role: 'auditor' })
    assert.equal((await entries('action=secret.reveal', auditor.token)).entries.length, 1, 'the Auditor may')
  })

  test('after/limit page in chain order as before; order=desc pages newest first through before', async () => {
    const all = (await entries('limit=5000')).entries
    assert.ok(all.length >= 6)
    const seqs = all.map((e) => e.seq)
    const p1 = await entries('limit=2')
    assert.deepEqual(
      p1.entries.map((e) => e.seq),
      seqs.slice(0, 2),
    )
    assert.equal(p1.next, seqs[1])
    const p2 = await entries(`after=${p1.next}&limit=2`)
    assert.deepEqual(
      p2.entries.map((e) => e.seq),
      seqs.slice(2, 4),
    )
    const d1 = await entries('order=desc&limit=2')
    assert.deepEqual(
      d1.entries.map((e) => e.seq),
      seqs.slice(-2).reverse(),
    )
    const d2 = await entries(`order=desc&limit=2&before=${d1.next}`)
    assert.deepEqual(
      d2.entries.map((e) => e.seq),
      seqs.slice(-4, -2).reverse(),
    )
    // Filtered pages: every match once, newest first.
    const seen: number[] = []
    let cursor: number | null = null
    do {
      const page: { entries: Entry[]; next: number | null } = await entries(
        `action=secret.*&order=desc&limit=1${cursor ? `&before=${cursor}` : ''}`,
      )
      seen.push(...page.entries.map((e) => e.seq))
      cursor = page.next
    } while (cursor !== null)
    assert.deepEqual(
      seen,
      all
        .filter((e) => e.action.startsWith('secret.'))
        .map((e) => e.seq)
        .reverse(),
    )
  })

  test('activity: entries per UTC day, every day of the range, with the same filters', async () => {
    now = new Date('2025-03-05T12:00:00.000Z')
    const r = await api(h.app, h.a.token).get(`${W}/audit/activity?days=6`)
    assert.equal(r.status, 200)
    assert.deepEqual(
      r.body.days.map((d: { day: string }) => d.day),
      ['2025-02-28', '2025-03-01', '2025-03-02', '2025-03-03', '2025-03-04', '2025-03-05'],
    )
    const byDay = Object.fromEntries(r.body.days.map((d: { day: string; count: number }) => [d.day, d.count]))
    const all = (await entries('limit=5000')).entries
    for (const day of Object.keys(byDay))
      assert.equal(byDay[day], all.filter((e) => e.time.startsWith(day)).length, `${day} counts its entries`)
    assert.equal(byDay['2025-03-02'], 3)
    assert.equal(byDay['2025-03-04'], 1)
    const reveals = await api(h.app, h.a.token).get(`${W}/audit/activity?days=6&action=secret.reveal`)
    assert.deepEqual(
      reveals.body.days.filter((d: { count: number }) => d.count > 0),
      [{ day: '2025-03-04', count: 1 }],
    )
    const bounded = await api(h.app, h.a.token).get(`${W}/audit/activity?days=2&until=2025-03-03T00:00:00Z`)
    assert.deepEqual(bounded.body.days, [
      { day: '2025-03-01', count: byDay['2025-03-01'] },
      { day: '2025-03-02', count: 3 },
    ])
    assert.equal((await api(h.app, h.a.token).get(`${W}/audit/activity?days=367`)).status, 400)
  })

  test('the typed client sends the filters', async () => {
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`
    const c = new CofferClient({ url, token: h.a.token })
    const page = await c.findAuditEntries(h.a.slug, { action: 'secret.*', order: 'desc', limit: 2 })
    assert.deepEqual(
      page.entries.map((e) => e.action),
      ['secret.reveal', 'secret.create'],
    )
    const act = await c.auditActivity(h.a.slug, { days: 3, action: 'secret.create', until: '2025-03-03T00:00:00Z' })
    assert.deepEqual(act.days, [
      { day: '2025-02-28', count: 0 },
      { day: '2025-03-01', count: 0 },
      { day: '2025-03-02', count: 3 },
    ])
  })
})
