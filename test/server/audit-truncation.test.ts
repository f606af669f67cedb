// Attacker's side of issue 13 §7(d): someone with database access drops audit entries — the
// newest ones after the last checkpoint, with or without rewinding the recorded head, or
// down below a signed checkpoint. The server's verification names the tampering with a stable
// problem code, the server refuses to sign a checkpoint over it (ERR_AUDIT_TAMPERED), and
// `coffer audit verify` exits 2 naming tampering — never ERR_AUDIT_UNAVAILABLE. The one case
// the server cannot see (entries, tree, head and checkpoints all rewritten to a shorter log)
// is caught by a client that verified the longer log before, as src/audit/DESIGN.md says.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { sql } from 'kysely'
import { checkpointJob } from '../../src/jobs/jobs.js'
import type { Logger } from '../../src/ops/logger.js'
import { Metrics } from '../../src/ops/metrics.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Cli {
  status: number | null
  stderr: string
}

/** Runs the CLI from source against `url` (asynchronously: the server runs in this process). */
function coffer(args: string[], env: Record<string, string>): Promise<Cli> {
  return new Promise((resolve, reject) => {
    const base: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('COFFER_') && k !== 'DATABASE_URL') base[k] = v
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'entry.ts'), ...args], {
      cwd: ROOT,
      env: { ...base, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.stdout.resume()
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stderr })
    })
  })
}

function suite(engine: EngineName): void {
  /** Lets an attacker with database access delete rows of the append-only audit tables. */
  async function dropGuards(h: Harness): Promise<void> {
    for (const table of ['audit_entries', 'audit_nodes', 'audit_checkpoints']) {
      const statements =
        engine === 'sqlite'
          ? [`DROP TRIGGER IF EXISTS ${table}_no_update`, `DROP TRIGGER IF EXISTS ${table}_no_delete`]
          : [`ALTER TABLE ${table} DISABLE TRIGGER USER`]
      for (const s of statements) await sql.raw(s).execute(h.db)
    }
  }

  async function head(h: Harness): Promise<{ seq: number; hash: Buffer; peaks: Buffer }> {
    const r = await h.db
      .selectFrom('audit_heads')
      .select(['seq', 'hash', 'peaks'])
      .where('workspace_id', '=', h.a.id)
      .executeTakeFirstOrThrow()
    return { seq: Number(r.seq), hash: Buffer.from(r.hash), peaks: Buffer.from(r.peaks) }
  }

  /** Deletes every entry after `seq`; with `rewindTo`, also sets the head back to it (and, `thorough`, removes the tree above it). */
  async function cut(h: Harness, seq: number, rewindTo?: { seq: number; hash: Buffer; peaks: Buffer }, thorough = false): Promise<void> {
    await h.db.deleteFrom('audit_entries').where('workspace_id', '=', h.a.id).where('seq', '>', seq).execute()
    if (rewindTo)
      await h.db
        .updateTable('audit_heads')
        .set({ seq: rewindTo.seq, hash: rewindTo.hash, peaks: rewindTo.peaks })
        .where('workspace_id', '=', h.a.id)
        .execute()
    if (thorough) {
      // Every stored subtree that reaches past the cut, and every checkpoint beyond it.
      const nodes = await h.db.selectFrom('audit_nodes').select(['level', 'idx']).where('workspace_id', '=', h.a.id).execute()
      for (const n of nodes)
        if ((Number(n.idx) + 1) * 2 ** Number(n.level) > seq)
          await h.db
            .deleteFrom('audit_nodes')
            .where('workspace_id', '=', h.a.id)
            .where('level', '=', n.level)
            .where('idx', '=', n.idx)
            .execute()
      await h.db.deleteFrom('audit_checkpoints').where('workspace_id', '=', h.a.id).where('tree_size', '>', seq).execute()
    }
  }

  describe('dropped or truncated audit entries are named as tampering', () => {
    let h: Harness
    let url = ''
    let stateDir = ''
    const cli = (state = stateDir) => coffer(['audit', 'verify'], { COFFER_URL: url, COFFER_TOKEN: h.a.token, XDG_STATE_HOME: state })
    const a = () => api(h.app, h.a.token)
    const E = () => `/v1/workspaces/${h.a.slug}/projects/cut/environments/development`

    async function write(n: number): Promise<void> {
      for (let i = 0; i < n; i++)
        assert.equal((await a().put(`${E()}/secrets/K${randomBytes(3).toString('hex')}`, { value: 'v' })).status, 200)
    }
    async function checkpoint(): Promise<number> {
      const r = await a().post(`/v1/workspaces/${h.a.slug}/audit/checkpoints`)
      assert.equal(r.status, 201)
      return r.body.checkpoint.treeSize as number
    }
    async function serverVerify() {
      const r = await a().get(`/v1/workspaces/${h.a.slug}/audit/verify`)
      assert.equal(r.status, 200)
      return r.body as { ok: boolean; firstBad?: { seq: number; reason: string; problem: string } }
    }
    /** The CLI names tampering: exit 2, ERR_AUDIT_CHAIN_BROKEN, never ERR_AUDIT_UNAVAILABLE. */
    function cliTampered(r: Cli, pattern: RegExp): void {
      assert.equal(r.status, 2, r.stderr)
      assert.match(r.stderr, /ERR_AUDIT_CHAIN_BROKEN/)
      assert.doesNotMatch(r.stderr, /ERR_AUDIT_UNAVAILABLE/)
      assert.match(r.stderr, pattern)
    }

    // Each test runs on a harness of its own: a cut cannot be undone.
    for (const variant of ['after-checkpoint', 'after-checkpoint-head-rewound', 'below-checkpoint'] as const)
      test(variant, async () => {
        h = await startHarness(engine)
        url = (await h.app.listen({ host: '127.0.0.1', port: 0 })).replace('[::1]', '127.0.0.1')
        stateDir = mkdtempSync(join(tmpdir(), 'coffer-audit-state-'))
        try {
          assert.equal((await a().post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Cut' })).status, 201)
          await write(3)
          // The client verifies (a checkpoint is signed, and remembered); its own entry follows.
          assert.equal((await cli()).status, 0, 'the CLI verifies the intact log')
          const signed = await checkpoint()
          const before = await head(h)
          await write(4)
          assert.equal((await serverVerify()).ok, true, 'intact before tampering')
          await dropGuards(h)

          if (variant === 'after-checkpoint') {
            await cut(h, before.seq)
            const v = await serverVerify()
            assert.deepEqual([v.ok, v.firstBad?.problem, v.firstBad?.seq], [false, 'tail-missing', before.seq + 1])
          } else if (variant === 'after-checkpoint-head-rewound') {
            // Entries and head rewound together; the checkpoint the CLI just had signed goes too.
            await cut(h, before.seq, before)
            await h.db.deleteFrom('audit_checkpoints').where('workspace_id', '=', h.a.id).where('tree_size', '>', before.seq).execute()
            const v = await serverVerify()
            assert.deepEqual([v.ok, v.firstBad?.problem], [false, 'tree-past-head'], 'the stored tree still holds the removed leaves')
          } else {
            const keep = signed - 2
            const at = await h.db
              .selectFrom('audit_entries')
              .select('hash')
              .where('workspace_id', '=', h.a.id)
              .where('seq', '=', keep)
              .executeTakeFirstOrThrow()
            // A head that matches the shortened chain; the tree's edge is whatever the attacker leaves.
            await cut(h, keep, { seq: keep, hash: Buffer.from(at.hash), peaks: before.peaks })
            const v = await serverVerify()
            assert.equal(v.ok, false)
            assert.equal(v.firstBad?.problem, 'below-checkpoint', v.firstBad?.reason)
          }
          const issue = await a().post(`/v1/workspaces/${h.a.slug}/audit/checkpoints`)
          assert.deepEqual([issue.status, issue.body.error?.code], [409, 'ERR_AUDIT_TAMPERED'], 'no checkpoint is signed over it')
          // Nor by the scheduled job, which signs through the same check.
          const checkpoints = async () =>
            Number(
              (
                await h.db
                  .selectFrom('audit_checkpoints')
                  .select((eb) => eb.fn.countAll().as('n'))
                  .where('workspace_id', '=', h.a.id)
                  .executeTakeFirstOrThrow()
              ).n,
            )
          const signedBefore = await checkpoints()
          const metrics = new Metrics()
          const logged: string[] = []
          const log = { error: (_o: unknown, msg: string) => logged.push(msg) } as unknown as Logger
          await checkpointJob(h.ctx, metrics, 1, log).run()
          assert.equal(await checkpoints(), signedBefore, 'the job signs nothing over a tampered log')
          assert.equal(metrics.checkpointsIssued.get(), 1, 'the untouched workspace B is still signed')
          assert.deepEqual(logged, ['audit log tampered with: no checkpoint signed'])
          // The CLI that saw the longer log, and one that never ran before: both name tampering.
          cliTampered(await cli(), /tamper|shrank|truncated|missing/i)
          const fresh = mkdtempSync(join(tmpdir(), 'coffer-audit-state-'))
          try {
            cliTampered(await cli(fresh), /tamper|truncated|missing|past/i)
          } finally {
            rmSync(fresh, { recursive: true, force: true })
          }
        } finally {
          rmSync(stateDir, { recursive: true, force: true })
          await h.close()
        }
      })

    test('entries, tree, head and checkpoints all rewound after the last checkpoint: only a client that saw more can tell', async () => {
      h = await startHarness(engine)
      url = (await h.app.listen({ host: '127.0.0.1', port: 0 })).replace('[::1]', '127.0.0.1')
      stateDir = mkdtempSync(join(tmpdir(), 'coffer-audit-state-'))
      try {
        assert.equal((await a().post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Cut' })).status, 201)
        await write(2)
        assert.equal((await cli()).status, 0)
        const before = await head(h)
        await write(3)
        assert.equal((await cli()).status, 0, 'this client verifies (and remembers) the longer log')
        await dropGuards(h)
        await cut(h, before.seq, before, true)
        assert.equal((await serverVerify()).ok, true, 'the server alone cannot see a consistent rewind (DESIGN.md: the window)')
        cliTampered(await cli(), /shrank/)
      } finally {
        rmSync(stateDir, { recursive: true, force: true })
        await h.close()
      }
    })
  })
}

describeEachEngine(suite)
