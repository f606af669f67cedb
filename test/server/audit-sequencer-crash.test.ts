// kill -9 while the audit sequencer integrates, again and again, on both engines: a real
// `coffer server` is killed at random points while its sequencer integrates thousands of
// queued entries (left by "a node that died before integrating them", inserted while the
// server is down) and while audited reads queue new ones; then restarted. After every kill
// the stopped database holds each queued entry exactly once — still queued or in the chain,
// never both, never neither — and the chain verifies. After the last restart the queue
// drains, the log verifies through the API, and every audited read that was answered 2xx has
// exactly one entry. COFFER_AUDIT_CRASH_KILLS sets the number of kills (20 per engine in the
// suite; `npm run crash:audit` runs 100).
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { AuditLog } from '../../src/audit/audit-log.js'
import { systemClock } from '../../src/ops/clock.js'
import { openStore, type Store } from '../../src/storage/database.js'
import { describeEachEngine } from '../helpers/engines.js'
import type { EngineName } from '../helpers/harness.js'
import { createTestDatabase } from '../helpers/pg.js'
import { BIN, childEnv, ensureBuilt, killChild, request, startServer, stopChild } from '../helpers/child-server.js'

const KILLS = Number(process.env.COFFER_AUDIT_CRASH_KILLS ?? 20)
/** Entries queued by hand before each restart: the sequencer is busy with them when the kill lands. */
const QUEUED_PER_ROUND = 5000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function suite(engine: EngineName): void {
  describe(`audit sequencing survives kill -9 at ${KILLS} random points (${engine}, real server process)`, () => {
    const work = mkdtempSync(join(tmpdir(), 'coffer-audit-crash-'))
    const dataDir = join(work, 'data')
    let env: NodeJS.ProcessEnv = {}
    let drop: (() => Promise<void>) | undefined
    let inspectUrl = ''
    let server: { child: ChildProcess; url: string } | null = null
    let token = ''
    let slug = ''
    let workspaceId = ''
    let secretPath = ''
    /** Ids of the entries queued by hand, and the user agents of audited reads answered 2xx. */
    const queuedIds: string[] = []
    const answered: string[] = []
    process.once('exit', () => server?.child.kill('SIGKILL'))

    /** The database, opened while the server is down (as the schema owner on PostgreSQL). */
    function open(): Store {
      return engine === 'sqlite'
        ? openStore({ engine: 'sqlite', path: join(dataDir, 'coffer.db') })
        : openStore({ engine: 'postgres', url: inspectUrl })
    }

    before(async () => {
      ensureBuilt()
      const extra: Record<string, string> = {
        COFFER_LOG_LEVEL: 'warn',
        COFFER_AUDIT_MERGE_DELAY: '0.05',
        COFFER_AUDIT_SEQUENCER_LEASE_MS: '200',
        COFFER_CHECKPOINT_INTERVAL: '0',
        COFFER_AUDIT_VERIFY_INTERVAL: '0',
      }
      if (engine === 'postgres') {
        const db = await createTestDatabase()
        drop = db.drop
        inspectUrl = db.url
        extra.DATABASE_URL = db.url
        extra.COFFER_ROOT_KEY = randomBytes(32).toString('base64')
      }
      env = childEnv(extra)
      const init = spawnSync(
        process.execPath,
        [BIN, 'init', '--data-dir', dataDir, '--email', 'ops@example.com', '--workspace', 'Crash', '--json'],
        {
          encoding: 'utf8',
          env,
          timeout: 30_000,
        },
      )
      assert.equal(init.status, 0, init.stderr)
      const j = JSON.parse(init.stdout) as { token: string; workspace: { slug: string; id: string } }
      token = j.token
      slug = j.workspace.slug
      workspaceId = j.workspace.id
      assert.match(workspaceId, /^[0-9a-f-]{36}$/)
      server = await startServer(['--data-dir', dataDir], env)
      assert.equal((await request(server.url, token, 'POST', `/v1/workspaces/${slug}/projects`, { name: 'Crash' })).status, 201)
      secretPath = `/v1/workspaces/${slug}/projects/crash/environments/production/secrets/K`
      assert.equal((await request(server.url, token, 'PUT', secretPath, { value: randomBytes(8).toString('hex') })).status, 200)
      await stopChild(server.child)
      server = null
    })

    after(async () => {
      if (server) await stopChild(server.child)
      rmSync(work, { recursive: true, force: true })
      if (drop) await drop()
    })

    /** Queues `n` entries by hand, as a node that died before integrating them left them. */
    async function queueByHand(n: number): Promise<void> {
      const store = open()
      try {
        const rows = Array.from({ length: n }, (_, i) => {
          const id = randomUUID()
          queuedIds.push(id)
          return {
            workspace_id: workspaceId,
            id,
            time: new Date().toISOString(),
            actor_type: 'system',
            actor_id: 'crash-test',
            actor_ip: '',
            actor_ua: 'crash-test',
            request_id: `queued-${queuedIds.length}`,
            action: 'secret.reveal',
            target_type: 'secret',
            target_id: String(i),
            details: '{}',
          }
        })
        for (let i = 0; i < rows.length; i += 500)
          await store.db
            .insertInto('audit_queue')
            .values(rows.slice(i, i + 500))
            .execute()
      } finally {
        await store.close()
      }
    }

    /** What must hold after any crash: each queued entry once (queue or chain), and a chain that verifies. */
    async function inspect(): Promise<{ queued: number; entries: number }> {
      const store = open()
      try {
        const q = await store.db.selectFrom('audit_queue').select('id').where('workspace_id', '=', workspaceId).execute()
        const e = await store.db.selectFrom('audit_entries').select('id').where('workspace_id', '=', workspaceId).execute()
        const inQueue = new Set(q.map((r) => r.id))
        const inChain = new Set(e.map((r) => r.id))
        assert.equal(inChain.size, e.length, 'no entry is in the chain twice')
        for (const id of inQueue) assert.ok(!inChain.has(id), 'no entry is both queued and integrated')
        for (const id of queuedIds) assert.ok(inQueue.has(id) || inChain.has(id), 'no queued entry was lost')
        const v = await new AuditLog(store.engine, async () => Buffer.alloc(32), systemClock).verify(store.db, workspaceId)
        assert.equal(v.ok, true, JSON.stringify(v.firstBad))
        return { queued: inQueue.size, entries: inChain.size }
      } finally {
        await store.close()
      }
    }

    test('every kill leaves each entry exactly once; the restarted server integrates the rest', async (t) => {
      let lastEntries = (await inspect()).entries
      let midSequencing = 0
      for (let k = 0; k < KILLS; k++) {
        await queueByHand(QUEUED_PER_ROUND)
        server = await startServer(['--data-dir', dataDir], env)
        const url = server.url
        // Audited reads queue entries of their own while the sequencer works; each 2xx answer
        // promises one entry in the log.
        let reading = true
        const readers = Array.from({ length: 4 }, async () => {
          while (reading) {
            const ua = `crash-reader-${randomUUID()}`
            const r = await request(url, token, 'GET', `${secretPath}?reveal=true`, undefined, undefined, ua).catch(() => null)
            if (r?.status === 200) answered.push(ua)
            else if (!r) break
          }
        })
        // A random point of the work: once this server has integrated something (a previous
        // server's lease runs out after 200 ms), within the next 0–40 ms — the queue holds
        // a few batches (2,000 entries each) more.
        const watch = open()
        try {
          const queued = async () =>
            Number(
              (
                await watch.db
                  .selectFrom('audit_queue')
                  .select((eb) => eb.fn.countAll().as('n'))
                  .where('workspace_id', '=', workspaceId)
                  .executeTakeFirstOrThrow()
              ).n,
            )
          const start = await queued()
          for (const until = Date.now() + 15_000; Date.now() < until && (await queued()) >= start; ) await sleep(5)
        } finally {
          await watch.close()
        }
        await sleep(Math.floor(Math.random() * 40))
        await killChild(server.child)
        reading = false
        await Promise.all(readers)
        server = null
        const s = await inspect()
        if (s.queued > 0 && s.entries > lastEntries) midSequencing++
        lastEntries = s.entries
      }
      t.diagnostic(`${midSequencing} of ${KILLS} kills landed mid-sequencing (after progress, with entries still queued)`)
      assert.ok(midSequencing >= Math.min(10, KILLS / 2), `at least half the kills landed mid-sequencing (${midSequencing} of ${KILLS})`)

      // The last server drains the queue by itself. Verification reads the whole log (about
      // 5,000 entries per kill, half a million after 100): it gets minutes, not 30 s.
      server = await startServer(['--data-dir', dataDir], env)
      // Its sequencer drains the queue (after 100 kills, several hundred thousand entries)
      // before the verification request reads the whole log.
      for (const until = Date.now() + 20 * 60_000; Date.now() < until; ) {
        const watch = open()
        try {
          const n = await watch.db
            .selectFrom('audit_queue')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('workspace_id', '=', workspaceId)
            .executeTakeFirstOrThrow()
          if (Number(n.n) === 0) break
        } finally {
          await watch.close()
        }
        await sleep(500)
      }
      let pending = -1
      for (let i = 0; i < 400; i++) {
        const v = await request(server.url, token, 'GET', `/v1/workspaces/${slug}/audit/verify`, undefined, undefined, undefined, 600_000)
        assert.equal(v.status, 200)
        assert.equal(v.body.ok, true, JSON.stringify(v.body.firstBad))
        pending = v.body.pending.count
        if (pending === 0) break
        await sleep(50)
      }
      assert.equal(pending, 0, 'every queued entry is integrated')
      await stopChild(server.child)
      server = null
      const s = await inspect()
      assert.equal(s.queued, 0)
      const store = open()
      try {
        const rows = await store.db
          .selectFrom('audit_entries')
          .select(['actor_ua', 'request_id'])
          .where('workspace_id', '=', workspaceId)
          .where('actor_ua', 'like', 'crash-%')
          .execute()
        const byUa = new Map<string, number>()
        for (const r of rows) byUa.set(r.actor_ua, (byUa.get(r.actor_ua) ?? 0) + 1)
        for (const ua of answered) assert.equal(byUa.get(ua), 1, 'an audited read answered 2xx has exactly one entry')
        assert.equal(
          rows.filter((r) => r.actor_ua === 'crash-test').length,
          queuedIds.length,
          'every entry queued by hand was integrated once',
        )
        t.diagnostic(`${queuedIds.length} entries queued by hand and ${answered.length} answered reads, each integrated exactly once`)
      } finally {
        await store.close()
      }
    })
  })
}

describeEachEngine(suite)
