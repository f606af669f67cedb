// The audit log as a client and as an attacker with database access see it: every change and
// every reveal leaves exactly one entry, entries carry who/what/where but never a value, and
// any edit, deletion or reordering of stored entries makes verification name the first bad one.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { AUDIT_ACTIONS, type AuditAction } from '../../src/audit/actions.js'
import { rowToRecord } from '../../src/audit/audit-log.js'
import { canonicalJson, type Json } from '../../src/audit/canonical-json.js'
import { chainHash, entryBytes } from '../../src/audit/entry.js'
import { verifySourceOf, VerifyWorkers } from '../../src/audit/verify-workers.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import type { JsonBody } from '../helpers/json-body.js'
import { describeEachEngine } from '../helpers/engines.js'

const FINGERPRINT = /^hmac-sha256:[A-Za-z0-9_-]{43}$/
const UA = 'coffer-audit-test/1.0'

interface Entry {
  workspaceId: string
  seq: number
  id: string
  time: string
  actor: { type: string; id: string; ip: string; userAgent: string }
  requestId: string
  action: string
  target: { type: string; id: string }
  details: string
  prevHash: string
  hash: string
}

interface Res {
  status: number
  body: JsonBody
  requestId: string
}

function client(h: Harness, token: string) {
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown): Promise<Res> => {
    const res = await h.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, 'user-agent': UA },
      ...(payload === undefined ? {} : { payload: payload as object }),
    })
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, requestId: String(res.headers['x-request-id']) }
  }
  return {
    get: (url: string) => call('GET', url),
    post: (url: string, body?: unknown) => call('POST', url, body ?? {}),
    put: (url: string, body?: unknown) => call('PUT', url, body),
    del: (url: string) => call('DELETE', url),
  }
}

async function allEntries(h: Harness, token: string, ws: string, after = 0): Promise<Entry[]> {
  const out: Entry[] = []
  for (;;) {
    const r = await api(h.app, token).get(`/v1/workspaces/${ws}/audit/entries?after=${after}&limit=5000`)
    assert.equal(r.status, 200)
    out.push(...(r.body.entries as Entry[]))
    if (r.body.next === null) return out
    after = r.body.next
  }
}

function assertNoValue(text: string, values: string[]): void {
  values.forEach((v, i) => {
    for (const form of [v, Buffer.from(v).toString('hex'), Buffer.from(v).toString('base64'), Buffer.from(v).toString('base64url')]) {
      assert.ok(!text.includes(form), `value #${i} must not appear in the audit log`)
    }
  })
}

/** Lets an attacker with database access rewrite history: the append-only triggers go away. */
async function disableAppendOnly(h: Harness): Promise<void> {
  const statements =
    h.engine === 'sqlite'
      ? ['DROP TRIGGER audit_entries_no_update', 'DROP TRIGGER audit_entries_no_delete']
      : ['ALTER TABLE audit_entries DISABLE TRIGGER USER']
  for (const s of statements) await sql.raw(s).execute(h.db)
}

function suite(engine: EngineName): void {
  describe('every change and every reveal is recorded once, without values', () => {
    let h: Harness
    let c: ReturnType<typeof client>
    let ownerId: string
    let last = 0
    const v1 = `v1-${randomBytes(16).toString('hex')}`
    const v2 = `v2-${randomBytes(16).toString('hex')}`
    const v3 = `v3-${randomBytes(16).toString('hex')}`
    const fp: Record<string, { before: unknown; after: unknown }> = {}
    let E: string

    before(async () => {
      h = await startHarness(engine)
      c = client(h, h.a.token)
      ownerId = (await c.get('/v1/me')).body.user.id
      last = (await allEntries(h, h.a.token, h.a.slug)).at(-1)!.seq
    })
    after(() => h?.close())

    /** Sends a request and checks it added exactly `actions` to A's chain, stamped with this request. */
    async function expectEntries(
      res: Promise<Res>,
      status: number,
      actions: AuditAction[],
      target?: { type: string; id?: string },
    ): Promise<Entry[]> {
      const r = await res
      assert.equal(r.status, status, `status before ${actions.join(',') || 'no entry'}`)
      const added = await allEntries(h, h.a.token, h.a.slug, last)
      assert.deepEqual(
        added.map((e) => e.action),
        actions,
      )
      for (const e of added) {
        assert.equal(e.seq, ++last, 'sequence numbers follow on')
        assert.ok(new Set<string>(AUDIT_ACTIONS).has(e.action), `${e.action} is in AUDIT_ACTIONS`)
        assert.equal(e.workspaceId, h.a.id)
        assert.deepEqual(e.actor, { type: 'user', id: ownerId, ip: '127.0.0.1', userAgent: UA })
        assert.equal(e.requestId, r.requestId, 'the entry names the request that caused it')
        assert.ok(!Number.isNaN(Date.parse(e.time)))
        if (target) {
          assert.equal(e.target.type, target.type)
          if (target.id) assert.equal(e.target.id, target.id)
        }
        assertNoValue(JSON.stringify(e), [v1, v2, v3])
      }
      return added
    }
    const details = (e: Entry | undefined) => JSON.parse(e!.details) as Record<string, unknown>

    test('project and environment creation', async () => {
      const [p] = await expectEntries(c.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Ledger' }), 201, ['project.create'], {
        type: 'project',
      })
      assert.equal(details(p).slug, 'ledger')
      await expectEntries(c.post(`/v1/workspaces/${h.a.slug}/projects/ledger/environments`, { name: 'QA' }), 201, ['environment.create'], {
        type: 'environment',
      })
      E = `/v1/workspaces/${h.a.slug}/projects/ledger/environments/qa`
    })

    test('secret changes: create, update, bulk, rollback, delete, restore', async () => {
      const [c1] = await expectEntries(c.put(`${E}/secrets/K1`, { value: v1, comment: v3 }), 200, ['secret.create'], { type: 'secret' })
      fp.c1 = details(c1) as never
      assert.equal(details(c1).key, 'K1')
      assert.equal(details(c1).before, null)
      assert.match(String(details(c1).after), FINGERPRINT)

      const [u1] = await expectEntries(c.put(`${E}/secrets/K1`, { value: v2, ifVersion: 1 }), 200, ['secret.update'])
      fp.u1 = details(u1) as never
      assert.deepEqual([details(u1).fromVersion, details(u1).toVersion], [1, 2])

      const [c2] = await expectEntries(c.put(`${E}/secrets/K2`, { value: v1 }), 200, ['secret.create'])
      fp.c2 = details(c2) as never

      const bulk = await expectEntries(
        c.post(`${E}/secrets`, {
          secrets: [
            { key: 'K3', value: v3 },
            { key: 'K1', value: v1 },
          ],
        }),
        200,
        ['secret.create', 'secret.update'],
      )
      assert.equal(bulk[0]!.requestId, bulk[1]!.requestId, 'one request, one id, one entry per secret')
      fp.bulkK1 = details(bulk[1]) as never

      const [rb] = await expectEntries(c.post(`${E}/secrets/K1/rollback`, { version: 2 }), 200, ['secret.rollback'])
      fp.rollback = details(rb) as never
      assert.equal(details(rb).copiedVersion, 2)

      const [d] = await expectEntries(c.del(`${E}/secrets/K2`), 200, ['secret.delete'])
      fp.delete = details(d) as never
      assert.equal(details(d).after, null)

      const [rs] = await expectEntries(c.post(`${E}/secrets/K2/restore`), 200, ['secret.restore'])
      fp.restore = details(rs) as never
    })

    test('same value gives the same fingerprint, another value another one', () => {
      const f = (k: string, side: 'before' | 'after') => {
        const v = fp[k]![side]
        assert.match(String(v), FINGERPRINT)
        return v
      }
      assert.equal(f('c2', 'after'), f('c1', 'after'), 'v1 in K1 and v1 in K2')
      assert.equal(f('u1', 'before'), f('c1', 'after'), "update records the old value's fingerprint")
      assert.notEqual(f('u1', 'after'), f('c1', 'after'), 'v2 differs from v1')
      assert.equal(f('bulkK1', 'before'), f('u1', 'after'), 'v2 again')
      assert.equal(f('bulkK1', 'after'), f('c1', 'after'), 'v1 again')
      assert.equal(f('rollback', 'after'), f('u1', 'after'), 'rolled back to v2')
      assert.equal(f('delete', 'before'), f('c1', 'after'))
      assert.equal(f('restore', 'after'), f('c1', 'after'))
    })

    test('fingerprints are keyed per workspace', async () => {
      const b = client(h, h.b.token)
      assert.equal((await b.post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Ledger' })).status, 201)
      assert.equal(
        (await b.put(`/v1/workspaces/${h.b.slug}/projects/ledger/environments/development/secrets/K1`, { value: v1 })).status,
        200,
      )
      const bEntries = await allEntries(h, h.b.token, h.b.slug)
      const create = bEntries.find((e) => e.action === 'secret.create')
      assert.match(String(details(create).after), FINGERPRINT)
      assert.notEqual(details(create).after, fp.c1!.after, 'the same value fingerprints differently in another workspace')
    })

    test('each reveal adds one entry; reads that reveal nothing add none', async () => {
      await expectEntries(c.get(`${E}/secrets/K1`), 200, [])
      await expectEntries(c.get(`${E}/secrets`), 200, [])
      await expectEntries(c.get(`${E}/secrets?includeDeleted=true`), 200, [])
      await expectEntries(c.get(`${E}/secrets/K1/versions`), 200, [])
      await expectEntries(c.get(`${E}/secrets/K1?reveal=false`), 200, [])
      const [one] = await expectEntries(c.get(`${E}/secrets/K1?reveal=true`), 200, ['secret.reveal'], { type: 'secret' })
      assert.equal(details(one).key, 'K1')
      const [all] = await expectEntries(c.get(`${E}/secrets?reveal=true`), 200, ['secrets.reveal_all'], { type: 'environment' })
      assert.deepEqual(details(all).keys, ['K1', 'K2', 'K3'])
      await expectEntries(c.get(`${E}/secrets/K1/versions?reveal=1`), 200, ['secret.reveal_history'], { type: 'secret' })
      await expectEntries(c.get(`/v1/workspaces/${h.a.slug}/projects`), 200, [])
      await expectEntries(c.get(`/v1/workspaces/${h.a.slug}/audit/verify`), 200, [])
      await expectEntries(c.get('/v1/me'), 200, [])
    })

    test('tokens issued and revoked are recorded', async () => {
      const [created] = await expectEntries(c.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'deploy' }), 201, ['token.create'], {
        type: 'token',
      })
      await expectEntries(c.del(`/v1/workspaces/${h.a.slug}/tokens/${created!.target.id}`), 200, ['token.revoke'], {
        type: 'token',
        id: created!.target.id,
      })
    })

    test('refused requests leave no entry', async () => {
      await expectEntries(c.put(`${E}/secrets/K1`, { value: v2, ifVersion: 1 }), 409, [])
      await expectEntries(c.get(`${E}/secrets/NOPE?reveal=true`), 404, [])
      await expectEntries(c.put(`${E}/secrets/1BAD`, { value: v2 }), 400, [])
      await expectEntries(c.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Ledger' }), 409, [])
      await expectEntries(client(h, h.a.token).get(`/v1/workspaces/${h.b.slug}/projects`), 404, [])
    })

    test('the chain verifies and its head is the last entry', async () => {
      const entries = await allEntries(h, h.a.token, h.a.slug)
      assert.deepEqual(
        entries.map((e) => e.seq),
        entries.map((_, i) => i + 1),
        'gap-free',
      )
      for (let i = 1; i < entries.length; i++)
        assert.equal(entries[i]!.prevHash, entries[i - 1]!.hash, `entry ${i + 1} links to its parent`)
      const v = await api(h.app, h.a.token).get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.equal(v.status, 200)
      assert.deepEqual(v.body, { ok: true, checked: entries.length, head: entries.at(-1)!.hash, pending: { count: 0, oldest: null } })
      assertNoValue(JSON.stringify(entries), [v1, v2, v3])
    })
  })

  describe('tampering with stored entries is detected at the first bad entry', () => {
    type Tamper = (h: Harness, entries: Entry[]) => Promise<{ firstBad: number; names?: number }>
    const db = (h: Harness) => h.db

    const cases: Array<[string, Tamper]> = [
      [
        'an edited action',
        async (h) => {
          await db(h)
            .updateTable('audit_entries')
            .set({ action: 'secret.reveal' })
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 4)
            .execute()
          return { firstBad: 4 }
        },
      ],
      [
        'a deleted middle entry',
        async (h) => {
          await db(h).deleteFrom('audit_entries').where('workspace_id', '=', h.a.id).where('seq', '=', 4).execute()
          // The verifier stops at the entry after the gap and names the missing sequence number.
          return { firstBad: 5, names: 4 }
        },
      ],
      [
        'two entries swapped (reordered)',
        async (h) => {
          const rows = await db(h)
            .selectFrom('audit_entries')
            .selectAll()
            .where('workspace_id', '=', h.a.id)
            .where('seq', 'in', [4, 5])
            .orderBy('seq')
            .execute()
          const [r4, r5] = rows as [(typeof rows)[number], (typeof rows)[number]]
          const content = ({ workspace_id: _w, seq: _s, ...rest }: typeof r4) => rest
          await db(h)
            .updateTable('audit_entries')
            .set({ id: randomUUID() })
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 5)
            .execute()
          await db(h).updateTable('audit_entries').set(content(r5)).where('workspace_id', '=', h.a.id).where('seq', '=', 4).execute()
          await db(h).updateTable('audit_entries').set(content(r4)).where('workspace_id', '=', h.a.id).where('seq', '=', 5).execute()
          return { firstBad: 4 }
        },
      ],
      [
        'edited details of the newest entry',
        async (h, entries) => {
          const lastSeq = entries.at(-1)!.seq
          const d = JSON.parse(entries.at(-1)!.details) as { [k: string]: Json }
          d.key = 'SOMETHING_ELSE'
          await db(h)
            .updateTable('audit_entries')
            .set({ details: canonicalJson(d) })
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', lastSeq)
            .execute()
          return { firstBad: lastSeq }
        },
      ],
      [
        'an edited previous-hash link',
        async (h) => {
          await db(h)
            .updateTable('audit_entries')
            .set({ prev_hash: randomBytes(32) })
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 3)
            .execute()
          return { firstBad: 3 }
        },
      ],
      [
        'a byte moved from one stored hash into the other',
        async (h) => {
          // prev_hash ‖ hash stays the same 64 bytes, so a verifier reading the two as one string
          // would see nothing; each must be 32 bytes on its own.
          const row = await db(h)
            .selectFrom('audit_entries')
            .select(['prev_hash', 'hash'])
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 4)
            .executeTakeFirstOrThrow()
          const joined = Buffer.concat([row.prev_hash, row.hash])
          await db(h)
            .updateTable('audit_entries')
            .set({ prev_hash: joined.subarray(0, 31), hash: joined.subarray(31) })
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 4)
            .execute()
          return { firstBad: 4 }
        },
      ],
      [
        'a recomputed hash on an edited entry',
        async (h) => {
          // Editing an entry and fixing up its own hash still breaks the link from the next one.
          const row = await db(h)
            .selectFrom('audit_entries')
            .selectAll()
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 4)
            .executeTakeFirstOrThrow()
          const record = { ...rowToRecord(row), action: 'secret.reveal' }
          const hash = chainHash(row.prev_hash, entryBytes(record))
          await db(h)
            .updateTable('audit_entries')
            .set({ action: 'secret.reveal', hash })
            .where('workspace_id', '=', h.a.id)
            .where('seq', '=', 4)
            .execute()
          return { firstBad: 5 }
        },
      ],
    ]

    // Verified on this thread, and on worker threads in runs of 2 entries (so tampering falls
    // inside a run, at a run's first entry, and across two runs).
    for (const threads of [false, true])
      for (const [label, tamper] of cases) {
        test(`${label}${threads ? ' (worker threads)' : ''}`, async () => {
          const h = await startHarness(engine)
          const pool = new VerifyWorkers(2)
          const runs: boolean[] = []
          if (threads) {
            const run = pool.run.bind(pool)
            pool.run = async (tasks) => {
              const r = await run(tasks)
              runs.push(r.every((x) => x.ok))
              return r
            }
            h.ctx.audit.useWorkers(pool, verifySourceOf(h.ctx.config.database), { chunk: 2, threshold: 0 })
          }
          try {
            const a = api(h.app, h.a.token)
            assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Tamper' })).status, 201)
            const E = `/v1/workspaces/${h.a.slug}/projects/tamper/environments/development`
            for (const k of ['T1', 'T2', 'T3', 'T4'])
              assert.equal((await a.put(`${E}/secrets/${k}`, { value: randomBytes(8).toString('hex') })).status, 200)
            const entries = await allEntries(h, h.a.token, h.a.slug)
            assert.equal(entries.length, 7, 'bootstrap (2) + project + 4 secrets')
            assert.equal((await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)).body.ok, true, 'intact before tampering')
            if (threads) assert.deepEqual(runs, [true], 'the intact log was verified by the worker threads')

            // Without disabling the guard, the database refuses the rewrite.
            await assert.rejects(db(h).updateTable('audit_entries').set({ action: 'x' }).where('workspace_id', '=', h.a.id).execute())
            await disableAppendOnly(h)
            const want = await tamper(h, entries)

            const v = await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)
            assert.equal(v.status, 200)
            assert.equal(v.body.ok, false, 'tampering detected')
            assert.equal(v.body.firstBad.seq, want.firstBad, 'the first bad entry is named')
            const atSeq = (await allEntries(h, h.a.token, h.a.slug)).find((e) => e.seq === want.firstBad)
            assert.equal(v.body.firstBad.id, atSeq?.id, 'firstBad.id is the stored id at that position')
            if (want.names !== undefined)
              assert.match(v.body.firstBad.reason, new RegExp(`\\b${want.names}\\b`), 'the reason names the missing entry')
            assert.equal(v.body.checked, want.firstBad - (want.names === undefined ? 0 : 1))
            if (threads) assert.equal(runs.length, 2, 'the tampered log went through the worker threads too (then was named on one thread)')
            // Workspace B's chain is its own and still verifies.
            assert.equal((await api(h.app, h.b.token).get(`/v1/workspaces/${h.b.slug}/audit/verify`)).body.ok, true)
          } finally {
            await pool.close()
            await h.close()
          }
        })
      }

    test('cut-off newest entries are caught against the recorded head', async () => {
      const h = await startHarness(engine)
      try {
        const a = api(h.app, h.a.token)
        assert.equal((await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Cut' })).status, 201)
        const E = `/v1/workspaces/${h.a.slug}/projects/cut/environments/development`
        for (const k of ['T1', 'T2'])
          assert.equal((await a.put(`${E}/secrets/${k}`, { value: randomBytes(8).toString('hex') })).status, 200)
        // The newest entries integrated into the chain, then cut off.
        assert.equal(await h.ctx.sequencer.catchUp(h.a.id), true)
        await disableAppendOnly(h)
        await db(h).deleteFrom('audit_entries').where('workspace_id', '=', h.a.id).where('seq', '>=', 4).execute()
        const v = await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)
        assert.equal(v.body.ok, false)
        assert.equal(v.body.firstBad.seq, 4)
        assert.match(v.body.firstBad.reason, /\b4\b.*\b5\b/)
      } finally {
        await h.close()
      }
    })
  })
}

describeEachEngine(suite)
