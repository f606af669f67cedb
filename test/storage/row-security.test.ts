// The second wall of tenant isolation on PostgreSQL: row-level security on every tenant
// table, the workspace set per transaction, and an application role that cannot bypass it.
// Deliberately unscoped queries go through the application's own connection and must see
// (and touch) no other tenant's rows — and, with no workspace set, no rows at all.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql, type Kysely } from 'kysely'
import { createContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { openStore } from '../../src/storage/database.js'
import { tenantTables } from '../../src/storage/migrations/row-security.js'
import type { Database } from '../../src/storage/schema.js'
import { readInScope, rowSecurityEnforced, setScope, SYSTEM_SCOPE, writeInScope } from '../../src/storage/tenant-scope.js'
import { describePostgres } from '../helpers/engines.js'
import { api, startHarness, type Harness } from '../helpers/harness.js'
import { createTestDatabase, TEST_PG_URL } from '../helpers/pg.js'
import pg from 'pg'

async function count(db: Kysely<Database> | Parameters<Parameters<typeof readInScope>[2]>[0], table: string, where = ''): Promise<number> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM ${sql.table(table)} ${sql.raw(where)}`.execute(db)
  return Number(rows[0]!.n)
}

describePostgres('row-level security (PostgreSQL)', () => {
  let h: Harness
  before(async () => {
    h = await startHarness('postgres')
    for (const [token, ws] of [
      [h.a.token, h.a.slug],
      [h.b.token, h.b.slug],
    ] as const) {
      const c = api(h.app, token)
      const p = await c.post(`/v1/workspaces/${ws}/projects`, { name: 'Walled' })
      assert.equal(p.status, 201)
      for (const env of ['development', 'production']) {
        assert.equal(
          (
            await c.put(`/v1/workspaces/${ws}/projects/walled/environments/${env}/secrets/WALL_${randomBytes(2).toString('hex')}`, {
              value: 'v',
            })
          ).status,
          200,
        )
      }
    }
  })
  after(() => h?.close())

  test('the application connects as a role that is no superuser, cannot bypass RLS and owns no table', async () => {
    const { rows } = await sql<{ su: boolean; bypass: boolean; owned: string }>`
      SELECT r.rolsuper AS su, r.rolbypassrls AS bypass,
        (SELECT count(*) FROM pg_tables t WHERE t.schemaname = current_schema() AND t.tableowner = current_user) AS owned
      FROM pg_roles r WHERE r.rolname = current_user`.execute(h.ctx.store.db)
    assert.deepEqual({ su: rows[0]!.su, bypass: rows[0]!.bypass, owned: Number(rows[0]!.owned) }, { su: false, bypass: false, owned: 0 })
    assert.equal(await rowSecurityEnforced(h.ctx.store), true)
    // The superuser the tests migrate with would bypass it; `coffer server` warns about such a role.
    assert.equal(await rowSecurityEnforced({ engine: 'postgres', db: h.db }), false)
  })

  test('every tenant table has row-level security enabled, forced, with the tenant policy', async () => {
    const tables = await h.db.transaction().execute((tx) => tenantTables(tx))
    assert.ok(tables.length >= 15, `found ${tables.length} tenant tables`)
    for (const name of [
      'workspaces',
      'memberships',
      'tokens',
      'projects',
      'environments',
      'secrets',
      'secret_versions',
      'data_keys',
      'audit_entries',
      'project_members',
      'environment_grants',
      'invitations',
    ]) {
      assert.ok(
        tables.some((t) => t.table === name),
        `${name} is a tenant table`,
      )
    }
    const { rows } = await sql<{ name: string; rls: boolean; force: boolean; policies: string }>`
      SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
        (SELECT count(*) FROM pg_policies p WHERE p.schemaname = current_schema() AND p.tablename = c.relname AND p.policyname = 'coffer_tenant') AS policies
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`.execute(h.db)
    for (const t of tables) {
      const r = rows.find((x) => x.name === t.table)
      assert.ok(
        r?.rls && r.force && Number(r.policies) === 1,
        `${t.table}: row-level security enabled and forced, one coffer_tenant policy`,
      )
    }
  })

  test('with no workspace set, an unscoped query sees no tenant row at all', async () => {
    const tables = await h.db.transaction().execute((tx) => tenantTables(tx))
    for (const { table } of tables) {
      assert.equal(await count(h.ctx.store.db, table), 0, `${table} outside any scope`)
      assert.equal(await h.ctx.store.db.transaction().execute((tx) => count(tx, table)), 0, `${table} in a transaction with no scope`)
    }
    // The owner sees the rows that are there.
    for (const table of [
      'workspaces',
      'memberships',
      'tokens',
      'projects',
      'environments',
      'secrets',
      'secret_versions',
      'data_keys',
      'audit_entries',
      'audit_heads',
    ]) {
      assert.ok((await count(h.db, table)) > 0, `${table} has rows (as the owner sees it)`)
    }
    // A made-up scope is refused before it reaches the database — also by a read, whose BEGIN
    // carries the scope in its SQL text: a scope that would close the literal and widen itself
    // to every workspace never runs, and neither does the read.
    await assert.rejects(h.ctx.store.db.transaction().execute((tx) => setScope(tx, 'postgres', "' OR 1=1 --")))
    let ran = false
    await assert.rejects(
      readInScope(h.ctx.store, "x', true); SELECT set_config('coffer.workspace_id', '*", async (db) => {
        ran = true
        return count(db, 'secrets')
      }),
      /tenant scope is a workspace id/,
    )
    assert.equal(ran, false)
    // An empty setting (as after a transaction-local one ended) sees nothing either.
    assert.equal(
      await h.ctx.store.db.transaction().execute(async (tx) => {
        await sql`SELECT set_config('coffer.workspace_id', '', true)`.execute(tx)
        return count(tx, 'secrets')
      }),
      0,
    )
  })

  test("with workspace A set, unscoped reads and writes touch A's rows only", async () => {
    const ownerA = await count(h.db, 'secrets', `WHERE workspace_id = '${h.a.id}'`)
    const ownerB = await count(h.db, 'secrets', `WHERE workspace_id = '${h.b.id}'`)
    assert.ok(ownerA >= 2 && ownerB >= 2)
    // The read path (a scoped read-only transaction) …
    const seen = await readInScope(
      h.ctx.store,
      h.a.id,
      async (db) => (await sql<{ workspace_id: string }>`SELECT * FROM secrets`.execute(db)).rows,
    )
    assert.equal(seen.length, ownerA)
    assert.ok(
      seen.every((r) => r.workspace_id === h.a.id),
      'no row of B',
    )
    // … the group committer (a batch in A's partition) …
    const viaCommitter = await h.ctx.committer.run(
      async (tx) => (await sql<{ workspace_id: string }>`SELECT * FROM secret_versions`.execute(tx)).rows,
      h.a.id,
    )
    assert.ok(viaCommitter.length >= 2 && viaCommitter.every((r) => r.workspace_id === h.a.id))
    for (const table of ['workspaces', 'memberships', 'tokens', 'projects', 'environments', 'data_keys', 'audit_entries']) {
      const n = await readInScope(h.ctx.store, h.a.id, (db) => count(db, table))
      const col = table === 'workspaces' ? 'id' : 'workspace_id'
      assert.equal(n, await count(h.db, table, `WHERE ${col} = '${h.a.id}'`), `${table}: exactly A's rows`)
    }
    // An unscoped UPDATE changes A's rows only; B's are untouched.
    const before = (
      await sql<{ updated_at: string }>`SELECT updated_at FROM secrets WHERE workspace_id = ${h.b.id} ORDER BY id`.execute(h.db)
    ).rows
    const changed = await writeInScope(h.ctx.store, h.ctx.store.db, h.a.id, async (tx) =>
      Number((await sql`UPDATE secrets SET updated_at = updated_at`.execute(tx)).numAffectedRows),
    )
    assert.equal(changed, ownerA)
    const deleted = await writeInScope(h.ctx.store, h.ctx.store.db, h.a.id, async (tx) =>
      Number((await sql`DELETE FROM memberships WHERE workspace_id = ${h.b.id}`.execute(tx)).numAffectedRows),
    )
    assert.equal(deleted, 0, "B's memberships cannot be deleted from A's scope")
    assert.deepEqual(
      (await sql<{ updated_at: string }>`SELECT updated_at FROM secrets WHERE workspace_id = ${h.b.id} ORDER BY id`.execute(h.db)).rows,
      before,
    )
    // A row of B cannot be written from A's scope.
    await assert.rejects(
      writeInScope(h.ctx.store, h.ctx.store.db, h.a.id, (tx) =>
        tx
          .insertInto('project_members')
          .values({ workspace_id: h.b.id, project_id: 'x', user_id: 'y', role: 'admin', created_at: '' })
          .execute(),
      ),
      /row-level security/,
    )
    // The system scope is asked for by name and sees both.
    assert.equal(await readInScope(h.ctx.store, SYSTEM_SCOPE, (db) => count(db, 'secrets')), ownerA + ownerB)
  })

  test("a read's held COMMIT never carries its workspace into the connection's next statement", async () => {
    // One connection, as the application role: a read in A's scope ends with a COMMIT the
    // client sends only with the connection's next statement (pg-client.ts). That statement —
    // unscoped, or a read in B's scope naming A's rows — must see none of A's rows.
    const one = openStore({ engine: 'postgres', url: h.settings.DATABASE_URL!, poolSize: 1 })
    try {
      const ownerA = await count(h.db, 'secrets', `WHERE workspace_id = '${h.a.id}'`)
      for (let i = 0; i < 5; i++) {
        assert.equal(await readInScope(one, h.a.id, (db) => count(db, 'secrets')), ownerA, "A's read sees A's rows")
        assert.equal(await count(one.readDb, 'secrets'), 0, "straight after A's read, an unscoped query sees no row")
        assert.equal(await readInScope(one, h.a.id, (db) => count(db, 'secrets')), ownerA)
        assert.equal(
          await readInScope(one, h.b.id, (db) => count(db, 'secrets', `WHERE workspace_id = '${h.a.id}'`)),
          0,
          "straight after A's read, B's read naming A's rows sees none",
        )
      }
    } finally {
      await one.close()
    }
  })

  test('a statement prepared once per connection keeps the wall: its plan never carries one tenant into another', async () => {
    const keysOf = (db: Parameters<Parameters<typeof readInScope>[2]>[0], workspaceId: string) =>
      db.selectFrom('secrets').select(['key', 'workspace_id']).where('deleted', '=', 0).where('workspace_id', '!=', workspaceId).execute()
    // The application's query texts with parameters run as named statements (one Parse per
    // connection): the second run of the same text on a connection parses nothing.
    const prepared = await readInScope(h.ctx.store, h.a.id, async (db) => {
      await keysOf(db, '00000000-0000-0000-0000-000000000000')
      await keysOf(db, '00000000-0000-0000-0000-000000000000')
      return (
        await sql<{
          n: string
        }>`SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE ${'select "key", "workspace_id" from "secrets"%'}`.execute(
          db,
        )
      ).rows[0]!.n
    })
    assert.equal(Number(prepared), 1, 'one prepared statement for the repeated text')
    // PostgreSQL plans a prepared statement generically after five runs; the tenant policy
    // reads the scope at execution, so the same statement answers A's rows in A's scope and
    // B's in B's — here "every secret not of workspace X", which without the wall is both.
    for (const [scope, other] of [
      [h.a.id, h.b.id],
      [h.b.id, h.a.id],
      [h.a.id, h.b.id],
    ] as const) {
      for (let i = 0; i < 8; i++) {
        const rows = await readInScope(h.ctx.store, scope, (db) => keysOf(db, '00000000-0000-0000-0000-000000000000'))
        assert.ok(rows.length >= 2, 'the scope sees its own secrets')
        assert.ok(
          rows.every((r) => r.workspace_id === scope),
          `run ${i} in one scope saw no row of the other (${other === h.a.id ? 'A' : 'B'})`,
        )
      }
    }
    // A text that selects `*` is never prepared (a column added by a migration would break
    // a prepared one), and a migration adding a column leaves a prepared statement working.
    const star = await readInScope(h.ctx.store, h.a.id, async (db) => {
      await sql`SELECT * FROM secrets WHERE workspace_id = ${h.a.id}`.execute(db)
      return (
        await sql<{ n: string }>`SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE ${'SELECT * FROM secrets%'}`.execute(
          db,
        )
      ).rows[0]!.n
    })
    assert.equal(Number(star), 0)
    await sql`ALTER TABLE secrets ADD COLUMN prepared_test_extra text`.execute(h.db)
    try {
      for (let i = 0; i < 3; i++) {
        const rows = await readInScope(h.ctx.store, h.b.id, (db) => keysOf(db, '00000000-0000-0000-0000-000000000000'))
        assert.ok(rows.length >= 2 && rows.every((r) => r.workspace_id === h.b.id))
        const all = await readInScope(
          h.ctx.store,
          h.b.id,
          async (db) => (await sql`SELECT * FROM secrets WHERE deleted = ${0}`.execute(db)).rows,
        )
        assert.ok(all.length >= 2)
      }
    } finally {
      await sql`ALTER TABLE secrets DROP COLUMN prepared_test_extra`.execute(h.db)
    }
  })

  test('the API keeps working for both tenants through the wall', async () => {
    for (const [token, ws] of [
      [h.a.token, h.a.slug],
      [h.b.token, h.b.slug],
    ] as const) {
      const c = api(h.app, token)
      const list = await c.get(`/v1/workspaces/${ws}/projects/walled/environments/development/secrets?reveal=true`)
      assert.equal(list.status, 200)
      assert.equal(list.body.secrets.length, 1)
      assert.equal((await c.get(`/v1/workspaces/${ws}/audit/verify`)).body.ok, true)
    }
  })
})

describePostgres('row-level security binds a table owner too (FORCE), with one DATABASE_URL', () => {
  let drop: (() => Promise<void>) | undefined
  let role: string
  let url: string
  before(async () => {
    const db = await createTestDatabase()
    drop = db.drop
    role = `coffer_owner_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: TEST_PG_URL })
    await admin.connect()
    await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS`)
    const dbName = new URL(db.url).pathname.slice(1)
    await admin.query(`ALTER DATABASE ${dbName} OWNER TO ${role}`)
    await admin.end()
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    await c.query(`ALTER SCHEMA public OWNER TO ${role}`)
    await c.end()
    const u = new URL(db.url)
    u.username = role
    url = u.toString()
  })
  after(async () => {
    await drop?.()
    const admin = new pg.Client({ connectionString: TEST_PG_URL })
    await admin.connect()
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
  })

  test('the owning application role migrates, and still sees no row unscoped', async () => {
    const e = readEnv({
      DATABASE_URL: url,
      COFFER_DATA_DIR: `/tmp/coffer-rls-${randomBytes(4).toString('hex')}`,
      COFFER_LOG_LEVEL: 'silent',
      COFFER_ROOT_KEY: randomBytes(32).toString('base64'),
    })
    const ctx = await createContext(buildConfig(e), buildSecrets(e))
    try {
      const { bootstrapWorkspace } = await import('../../src/context.js')
      const a = await bootstrapWorkspace(ctx, { name: `Own A ${randomBytes(2).toString('hex')}`, ownerEmail: 'a@own.test' })
      await bootstrapWorkspace(ctx, { name: `Own B ${randomBytes(2).toString('hex')}`, ownerEmail: 'b@own.test' })
      const owned = await sql<{
        n: string
      }>`SELECT count(*) AS n FROM pg_tables WHERE schemaname = current_schema() AND tableowner = current_user`.execute(ctx.store.db)
      assert.ok(Number(owned.rows[0]!.n) >= 15, 'the application role owns the tables here')
      assert.equal(await count(ctx.store.db, 'workspaces'), 0)
      assert.equal(await count(ctx.store.db, 'memberships'), 0)
      assert.equal(await readInScope(ctx.store, a.workspace.id, (db) => count(db, 'workspaces')), 1)
      assert.equal(await readInScope(ctx.store, SYSTEM_SCOPE, (db) => count(db, 'workspaces')), 2)
    } finally {
      await ctx.close()
    }
    // A second start on the same database: nothing to migrate, and it knows the workspaces exist.
    const again = openStore({ engine: 'postgres', url })
    try {
      assert.equal(await count(again.db, 'workspaces'), 0)
    } finally {
      await again.close()
    }
  })
})
