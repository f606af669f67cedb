// Deleting a workspace (issue 4 §3): Owner only, with the slug typed again; its keys are
// destroyed in the same transaction, so a copy of the database taken afterwards does not
// decrypt a single value of it even with the real root key, while the other workspace
// still reads fine; the deletion ends its audit chain and leaves a signed receipt; the purge
// removes its rows once purge_after passed; the audit tables stay append-only otherwise.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { openCheckpoint } from '../../src/audit/checkpoint.js'
import { checkpointOrigin } from '../../src/audit/audit-tree.js'
import { createContext, type AppContext } from '../../src/context.js'
import { DecryptionError } from '../../src/errors.js'
import { addMember, ensureUser, issueToken } from '../../src/identity/identity-service.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { purgeJob } from '../../src/jobs/lifecycle-jobs.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { readInScope, SYSTEM_SCOPE } from '../../src/storage/tenant-scope.js'
import { purgeDeletedWorkspaces, type DeletionReceipt } from '../../src/vault/workspace-deletion.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import type { JsonBody } from '../helpers/json-body.js'

type Reply = { status: number; body: JsonBody }
const canary = (label: string) => `${label}-${randomBytes(12).toString('hex')}`
const silentLog = { info() {}, warn() {}, error() {} } as never

function assertCode(r: Reply, status: number, code: string, what = code): void {
  assert.equal(r.status, status, `${what}: status (got ${r.status} ${r.body?.error?.code ?? ''})`)
  assert.equal(r.body?.error?.code, code, what)
}

async function del(h: Harness, token: string, ws: string, body?: unknown): Promise<Reply> {
  const res = await h.app.inject({
    method: 'DELETE',
    url: `/v1/workspaces/${ws}`,
    headers: { authorization: `Bearer ${token}` },
    ...(body === undefined ? {} : { payload: body as object }),
  })
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined }
}

async function tokenFor(h: Harness, role: 'admin' | 'member'): Promise<string> {
  return h.ctx.committer.run(async (tx) => {
    const u = await ensureUser(tx, `${role}-${randomBytes(3).toString('hex')}@acme.test`, new Date())
    await addMember(tx, h.a.id, u.id, role, new Date())
    return (await issueToken(tx, { workspaceId: h.a.id, userId: u.id, name: role }, new Date())).token
  })
}

/** Fills a workspace with a project, secrets of several versions (with comments). */
async function fill(h: Harness, token: string, slug: string): Promise<{ values: string[] }> {
  const c = api(h.app, token)
  assert.equal((await c.post(`/v1/workspaces/${slug}/projects`, { name: 'Shop' })).status, 201)
  const values: string[] = []
  for (const env of ['development', 'production']) {
    for (const key of ['DB_URL', 'API_KEY']) {
      for (let i = 0; i < 2; i++) {
        const v = canary(`${slug}-${env}-${key}-${i}`)
        values.push(v)
        assert.equal(
          (await c.put(`/v1/workspaces/${slug}/projects/shop/environments/${env}/secrets/${key}`, { value: v, comment: canary('c') }))
            .status,
          200,
        )
      }
    }
  }
  return { values }
}

/** Tries to decrypt every version of every secret of `workspaceId` through the real code path. */
async function decryptAll(ctx: AppContext, workspaceId: string): Promise<{ ok: string[]; failed: unknown[] }> {
  return readInScope(ctx.store, SYSTEM_SCOPE, async (db) => {
    const rows = await db
      .selectFrom('secrets')
      .select(['project_id', 'environment_id', 'key'])
      .where('workspace_id', '=', workspaceId)
      .execute()
    assert.ok(rows.length > 0, 'the rows are still there to try')
    const ok: string[] = []
    const failed: unknown[] = []
    for (const r of rows) {
      try {
        const h = await ctx.secrets.history(db, { workspaceId, projectId: r.project_id, environmentId: r.environment_id }, r.key, {
          reveal: true,
        })
        for (const v of h.versions) if (v.value) ok.push(v.value)
      } catch (err) {
        failed.push(err)
      }
    }
    return { ok, failed }
  })
}

function suite(engine: EngineName): void {
  describe('deleting a workspace shreds its keys', () => {
    let h: Harness
    let aValues: string[]
    let bValues: string[]
    let wrappedBefore: Buffer[]
    let receipt: DeletionReceipt

    before(async () => {
      h = await startHarness(engine)
      aValues = (await fill(h, h.a.token, h.a.slug)).values
      bValues = (await fill(h, h.b.token, h.b.slug)).values
      wrappedBefore = await readInScope(h.ctx.store, h.a.id, async (db) =>
        (await db.selectFrom('data_keys').select('wrapped').where('workspace_id', '=', h.a.id).execute()).map((r) =>
          Buffer.from(r.wrapped),
        ),
      )
      assert.ok(wrappedBefore.length >= 3 && wrappedBefore.every((w) => w.length > 32))
      if (engine === 'sqlite') {
        // The check below can fail: before the deletion the files do hold the wrapped keys.
        const files = (await readdir(h.dataDir)).filter((f) => f.startsWith('coffer.db'))
        const all = Buffer.concat(await Promise.all(files.map((f) => readFile(join(h.dataDir, f)))))
        for (const w of wrappedBefore) assert.notEqual(all.indexOf(w), -1, 'a wrapped key is in the files before deletion')
      }
    })
    after(() => h?.close())

    test('only the Owner, only with the slug typed again; a mismatch changes nothing', async () => {
      assertCode(await del(h, await tokenFor(h, 'admin'), h.a.slug, { confirm: h.a.slug }), 403, 'ERR_FORBIDDEN', 'an Admin')
      assertCode(await del(h, await tokenFor(h, 'member'), h.a.slug, { confirm: h.a.slug }), 403, 'ERR_FORBIDDEN', 'a Member')
      assertCode(await del(h, h.a.token, h.a.slug, { confirm: h.a.slug.toUpperCase() }), 400, 'ERR_CONFIRMATION_MISMATCH')
      assertCode(await del(h, h.a.token, h.a.slug, { confirm: h.a.id }), 400, 'ERR_CONFIRMATION_MISMATCH', 'the id is not the slug')
      assertCode(await del(h, h.a.token, h.a.slug, { confirm: '' }), 400, 'ERR_CONFIRMATION_MISMATCH')
      assertCode(await del(h, h.a.token, h.a.slug), 400, 'ERR_VALIDATION', 'no body')
      assertCode(await del(h, h.a.token, h.a.slug, { confirm: h.a.slug, force: true }), 400, 'ERR_VALIDATION', 'unknown field')
      assertCode(await del(h, h.b.token, h.a.slug, { confirm: h.a.slug }), 404, 'ERR_NOT_FOUND', "another tenant's Owner")
      assertCode(await del(h, h.b.token, h.a.id, { confirm: h.a.slug }), 404, 'ERR_NOT_FOUND', "another tenant's Owner, by id")
      const still = await api(h.app, h.a.token).get(
        `/v1/workspaces/${h.a.slug}/projects/shop/environments/production/secrets/DB_URL?reveal=true`,
      )
      assert.equal(still.status, 200)
      assert.ok(still.body.secret.value === aValues[5], 'A still reads')
    })

    test('the Owner deletes it: keys shredded in the same transaction, a signed receipt returned', async () => {
      const r = await del(h, h.a.token, h.a.id, { confirm: h.a.slug })
      assert.equal(r.status, 200, JSON.stringify(r.body?.error))
      receipt = r.body.receipt
      assert.equal(r.body.dataKeysShredded, wrappedBefore.length)
      assert.ok(r.body.tokensRevoked >= 1)
      assert.equal(receipt.workspaceId, h.a.id)
      assert.equal(receipt.slug, h.a.slug)
      assert.equal(
        Date.parse(receipt.purgeAfter) - Date.parse(receipt.deletedAt),
        30 * 86_400_000,
        'COFFER_PURGE_AFTER_DAYS defaults to 30',
      )

      await readInScope(h.ctx.store, SYSTEM_SCOPE, async (db) => {
        const keys = await db.selectFrom('data_keys').select(['wrapped', 'state']).where('workspace_id', '=', h.a.id).execute()
        assert.equal(keys.length, wrappedBefore.length)
        for (const k of keys) {
          assert.equal(Buffer.from(k.wrapped).length, 0, 'the wrapped key is overwritten')
          assert.equal(k.state, 'shredded')
        }
        const ws = await db
          .selectFrom('workspaces')
          .select(['fingerprint_key', 'deleted_at'])
          .where('id', '=', h.a.id)
          .executeTakeFirstOrThrow()
        assert.equal(Buffer.from(ws.fingerprint_key).length, 0, 'the audit fingerprint key is overwritten')
        assert.ok(ws.deleted_at)
        const bKeys = await db.selectFrom('data_keys').select('wrapped').where('workspace_id', '=', h.b.id).execute()
        assert.ok(
          bKeys.every((k) => Buffer.from(k.wrapped).length > 32),
          "B's keys are untouched",
        )
      })

      // The deletion is the last entry of A's chain, and the receipt signs the tree that ends with it.
      const log = await readInScope(h.ctx.store, h.a.id, (db) => h.ctx.audit.list(db, h.a.id, 0, 100_000))
      const last = log[log.length - 1]!
      assert.equal(last.action, 'workspace.delete')
      assert.equal(receipt.auditTreeSize, last.seq)
      const cp = openCheckpoint(receipt.checkpointNote, h.ctx.auditTree.verifierKey, { origin: checkpointOrigin(h.a.id) })
      assert.equal(Number(cp.treeSize), last.seq)
      assert.equal(Buffer.from(cp.rootHash).toString('base64'), receipt.auditRootHash)
      const verified = await readInScope(h.ctx.store, h.a.id, (db) =>
        h.ctx.audit.verify(db, h.a.id, { treeSize: receipt.auditTreeSize, rootHash: Buffer.from(receipt.auditRootHash, 'base64') }),
      )
      assert.equal(verified.ok, true, 'the closed chain verifies against the receipt')
      const stored = await readInScope(h.ctx.store, SYSTEM_SCOPE, (db) =>
        db.selectFrom('workspace_deletions').selectAll().where('workspace_id', '=', h.a.id).executeTakeFirstOrThrow(),
      )
      assert.equal(stored.checkpoint_note, receipt.checkpointNote)
    })

    test('every request for it fails before any key is used; B is unaffected', async () => {
      const a = api(h.app, h.a.token)
      assertCode(await a.get('/v1/me'), 401, 'ERR_UNAUTHENTICATED', "A's own token no longer authenticates")
      assertCode(
        await a.get(`/v1/workspaces/${h.a.slug}/projects/shop/environments/production/secrets/DB_URL?reveal=true`),
        401,
        'ERR_UNAUTHENTICATED',
      )
      const b = api(h.app, h.b.token)
      assertCode(await b.get(`/v1/workspaces/${h.a.slug}`), 404, 'ERR_NOT_FOUND', 'another tenant sees nothing')
      assertCode(await b.get(`/v1/workspaces/${h.a.id}/projects`), 404, 'ERR_NOT_FOUND')
      const got = await b.get(`/v1/workspaces/${h.b.slug}/projects/shop/environments/production/secrets/DB_URL/versions?reveal=true`)
      assert.equal(got.status, 200)
      assert.ok(got.body.versions[1].value === bValues[4], 'B still reads its history')
      assert.equal((await b.get(`/v1/workspaces/${h.b.slug}/audit/verify`)).body.ok, true)
    })

    test('with the real root key, no version of A decrypts from the database; B does', async () => {
      h.ctx.dataKeys.clearCache()
      const a = await decryptAll(h.ctx, h.a.id)
      assert.equal(a.ok.length, 0, 'nothing of A decrypts')
      assert.ok(a.failed.length >= 4)
      for (const err of a.failed) assert.ok(err instanceof DecryptionError, `DecryptionError, got ${(err as Error)?.name}`)
      const b = await decryptAll(h.ctx, h.b.id)
      assert.equal(b.failed.length, 0)
      assert.deepEqual(new Set(b.ok), new Set(bValues))
    })

    if (engine === 'sqlite') {
      test('a copy of the SQLite files decrypts nothing of A, and holds none of its old wrapped keys', async () => {
        const copyDir = await mkdtemp(join(tmpdir(), 'coffer-copy-'))
        try {
          const files = (await readdir(h.dataDir)).filter((f) => f.startsWith('coffer.db'))
          assert.ok(files.includes('coffer.db'))
          for (const f of files) await copyFile(join(h.dataDir, f), join(copyDir, f))
          for (const f of files) {
            const bytes = await readFile(join(copyDir, f))
            for (const w of wrappedBefore) assert.equal(bytes.indexOf(w), -1, `${f} holds an old wrapped key`)
          }
          // A second instance on the copy, with the real root key (the original data dir's).
          const e = readEnv({
            COFFER_DATA_DIR: h.dataDir,
            DATABASE_URL: `sqlite:${join(copyDir, 'coffer.db')}`,
            COFFER_LOG_LEVEL: 'silent',
          })
          const copy = await createContext(buildConfig(e), buildSecrets(e))
          try {
            const a = await decryptAll(copy, h.a.id)
            assert.equal(a.ok.length, 0)
            for (const err of a.failed) assert.ok(err instanceof DecryptionError)
            const b = await decryptAll(copy, h.b.id)
            assert.equal(b.failed.length, 0)
            assert.deepEqual(new Set(b.ok), new Set(bValues), 'the copy is a working database for B')
          } finally {
            await copy.close()
          }
        } finally {
          await rm(copyDir, { recursive: true, force: true })
        }
      })
    } else {
      test('PostgreSQL rows read directly: no old wrapped key of A is left in any row', async () => {
        await readInScope(h.ctx.store, SYSTEM_SCOPE, async (db) => {
          const rows = await db.selectFrom('data_keys').select('wrapped').execute()
          for (const r of rows) for (const w of wrappedBefore) assert.ok(!Buffer.from(r.wrapped).equals(w))
          const ws = await db.selectFrom('workspaces').select('fingerprint_key').where('id', '=', h.a.id).executeTakeFirstOrThrow()
          assert.equal(Buffer.from(ws.fingerprint_key).length, 0)
        })
      })
    }

    test('audit rows stay append-only: no delete before purge_after, of a live workspace, and no update ever', async () => {
      await h.ctx.committer.run((tx) => h.ctx.auditTree.issue(tx, h.b.id), h.b.id)
      for (const [ws, what] of [
        [h.a.id, 'the deleted workspace (grace period not over)'],
        [h.b.id, 'a live workspace'],
      ] as const) {
        for (const table of ['audit_entries', 'audit_nodes', 'audit_checkpoints'] as const) {
          const n = await readInScope(h.ctx.store, SYSTEM_SCOPE, async (db) =>
            Number(
              (await sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql.table(table)} WHERE workspace_id = ${ws}`.execute(db)).rows[0]!.n,
            ),
          )
          assert.ok(n > 0, `${table} has rows of ${what} to try`)
          await assert.rejects(
            h.ctx.committer.run((tx) => sql`DELETE FROM ${sql.table(table)} WHERE workspace_id = ${ws}`.execute(tx)),
            /append-only/,
            `${table}: ${what}`,
          )
        }
        await assert.rejects(
          h.ctx.committer.run((tx) => sql`UPDATE audit_entries SET action = 'x' WHERE workspace_id = ${ws}`.execute(tx)),
          /append-only/,
        )
      }
    })

    test('a second deletion of the same workspace finds nothing', async () => {
      // Its Owner's token is revoked; even a fresh token of the deleted workspace does not authenticate.
      const fresh = await h.ctx.committer.run(async (tx) => {
        const u = await tx
          .selectFrom('memberships')
          .select('user_id')
          .where('workspace_id', '=', h.a.id)
          .where('role', '=', 'owner')
          .executeTakeFirstOrThrow()
        return (await issueToken(tx, { workspaceId: h.a.id, userId: u.user_id, name: 'late' }, new Date())).token
      })
      assertCode(await del(h, fresh, h.a.slug, { confirm: h.a.slug }), 401, 'ERR_UNAUTHENTICATED')
    })
  })

  describe("the purge removes a deleted workspace's rows once purge_after passed", () => {
    let h: Harness

    before(async () => {
      // purge_after = deleted_at: the grace period is over at once.
      h = await startHarness(engine, { COFFER_PURGE_AFTER_DAYS: '0' })
      await fill(h, h.a.token, h.a.slug)
      await fill(h, h.b.token, h.b.slug)
      // Break-glass rows of A are purged too.
      const admins = [api(h.app, await tokenFor(h, 'admin')), api(h.app, await tokenFor(h, 'admin'))]
      const owner = api(h.app, h.a.token)
      assert.equal((await owner.put(`/v1/workspaces/${h.a.slug}/projects/shop/environments/production/seal`, { sealed: true })).status, 200)
      const bg = await owner.post(`/v1/workspaces/${h.a.slug}/break-glass`, {
        project: 'shop',
        environment: 'production',
        access: 'read',
        reason: 'purge test',
        durationMinutes: 5,
      })
      assert.equal(bg.status, 201)
      assert.equal((await admins[0]!.post(`/v1/workspaces/${h.a.slug}/break-glass/${bg.body.request.id}/approve`, {})).status, 200)
      const r = await del(h, h.a.token, h.a.slug, { confirm: h.a.slug })
      assert.equal(r.status, 200)
      assert.equal(r.body.receipt.purgeAfter, r.body.receipt.deletedAt)
    })
    after(() => h?.close())

    async function rowsOf(ws: string): Promise<Record<string, number>> {
      return readInScope(h.ctx.store, SYSTEM_SCOPE, async (db) => {
        const tables =
          engine === 'sqlite'
            ? (
                await sql<{
                  name: string
                }>`SELECT m.name AS name FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = 'workspace_id'`.execute(
                  db,
                )
              ).rows
            : (
                await sql<{
                  name: string
                }>`SELECT c.table_name AS name FROM information_schema.columns c JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema WHERE c.column_name = 'workspace_id' AND c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`.execute(
                  db,
                )
              ).rows
        const out: Record<string, number> = {}
        for (const { name } of tables) {
          const { rows } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql.table(name)} WHERE workspace_id = ${ws}`.execute(db)
          out[name] = Number(rows[0]!.n)
        }
        const w = await db.selectFrom('workspaces').select('id').where('id', '=', ws).execute()
        out.workspaces = w.length
        return out
      })
    }

    test('in batches, idempotently on two nodes at once; the receipt stays; B is untouched', async () => {
      const before = await rowsOf(h.a.id)
      assert.ok(before.audit_entries! > 5 && before.secret_versions! > 5 && before.data_keys! > 0 && before.workspaces === 1)
      assert.ok(before.breakglass_requests === 1 && before.breakglass_decisions === 1 && before.memberships! >= 3 && before.tokens! >= 3)
      // B's queued entries integrated first: the sequencer would move them meanwhile.
      await h.settle()
      const bBefore = await rowsOf(h.b.id)
      const now = h.ctx.clock()
      // Two purgers at once, small batches: both finish, neither fails.
      const [one, two] = await Promise.all([
        purgeDeletedWorkspaces(h.ctx.store.engine, { now, batch: 3, runInTx: (fn) => h.ctx.committer.run(fn) }),
        purgeDeletedWorkspaces(h.ctx.store.engine, { now, batch: 2, runInTx: (fn) => h.ctx.committer.run(fn) }),
      ])
      assert.ok(one.length + two.length >= 1)
      const total = [...one, ...two].reduce((n, d) => n + d.rows, 0)
      const expected = Object.entries(before)
        .filter(([t]) => t !== 'workspace_deletions')
        .reduce((n, [, v]) => n + v, 0)
      assert.equal(total, expected, 'every row deleted exactly once between the two')
      const after = await rowsOf(h.a.id)
      for (const [t, n] of Object.entries(after)) assert.equal(n, t === 'workspace_deletions' ? 1 : 0, `${t} of A is empty`)
      assert.deepEqual(await rowsOf(h.b.id), bBefore, 'B is untouched')
      const receipt = await readInScope(h.ctx.store, SYSTEM_SCOPE, (db) =>
        db.selectFrom('workspace_deletions').selectAll().where('workspace_id', '=', h.a.id).executeTakeFirstOrThrow(),
      )
      assert.ok(receipt.purged_at, 'the receipt says when')
      assert.ok(receipt.checkpoint_note.includes(checkpointOrigin(h.a.id)))
      // The job itself, again: nothing left to do.
      await purgeJob(h.ctx, silentLog).run()
      assert.deepEqual(await rowsOf(h.a.id), after)
      // B's log still verifies, and its audit rows still refuse deletion.
      assert.equal((await api(h.app, h.b.token).get(`/v1/workspaces/${h.b.slug}/audit/verify`)).body.ok, true)
      await assert.rejects(
        h.ctx.committer.run((tx) => sql`DELETE FROM audit_entries WHERE workspace_id = ${h.b.id}`.execute(tx)),
        /append-only/,
      )
      // The slug is free again.
      assert.equal(
        await readInScope(
          h.ctx.store,
          SYSTEM_SCOPE,
          async (db) => (await db.selectFrom('workspaces').select('id').where('slug', '=', h.a.slug).execute()).length,
        ),
        0,
      )
    })
  })
}

describeEachEngine(suite)
