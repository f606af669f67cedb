// The storage conformance suite: one set of tests every database engine must pass. It checks
// what the rest of Coffer takes for granted from storage — migrations, binary columns,
// constraints, the append-only audit table and group commit — on a real database.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { sql, type Kysely } from 'kysely'
import { AuditLog } from '../../src/audit/audit-log.js'
import { AuditSequencer } from '../../src/audit/sequencer.js'
import type { Store } from '../../src/storage/database.js'
import { GroupCommitter } from '../../src/storage/group-commit.js'
import { currentSchemaVersion, migrate } from '../../src/storage/migrator.js'
import { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from '../../src/storage/migrations.js'
import type { Database } from '../../src/storage/schema.js'
import { systemClock } from '../../src/ops/clock.js'

/** A fresh, empty database opened for the suite. */
export interface OpenedStore {
  store: Store
  /**
   * Opens another, independent connection (SQLite) or pool (PostgreSQL) to the same
   * database, for checks that a commit is visible to others. `close` closes these too.
   */
  connect(): Store
  /** Closes every connection and removes the database. */
  close(): Promise<void>
}

/** Every table the schema declares, besides coffer_schema. */
const TABLES: Array<keyof Database> = [
  'meta',
  'workspaces',
  'users',
  'memberships',
  'tokens',
  'projects',
  'environments',
  'data_keys',
  'secrets',
  'secret_versions',
  'audit_heads',
  'audit_entries',
]

async function tableNames(store: Store): Promise<string[]> {
  const q =
    store.engine === 'sqlite'
      ? sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
      : sql<{ name: string }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()`
  const { rows } = await q.execute(store.db)
  return rows.map((r) => r.name).sort()
}

/** The engine's codes for a constraint violation of `kind` (a primary key counts as unique). */
function constraintCodes(store: Store, kind: 'unique' | 'foreign-key' | 'trigger'): string[] {
  if (store.engine === 'sqlite') {
    return {
      unique: ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'],
      'foreign-key': ['SQLITE_CONSTRAINT_FOREIGNKEY'],
      trigger: ['SQLITE_CONSTRAINT_TRIGGER'],
    }[kind]
  }
  // unique_violation, foreign_key_violation, raise_exception (plpgsql RAISE EXCEPTION)
  return { unique: ['23505'], 'foreign-key': ['23503'], trigger: ['P0001'] }[kind]
}

function assertConstraint(store: Store, err: unknown, kind: 'unique' | 'foreign-key' | 'trigger'): void {
  const code = (err as { code?: unknown } | null)?.code
  const want = constraintCodes(store, kind)
  assert.ok(typeof code === 'string' && want.includes(code), `expected a ${kind} violation (${want.join(' or ')}), got ${String(code)}`)
}

async function rejectsWith(store: Store, p: Promise<unknown>, kind: 'unique' | 'foreign-key' | 'trigger'): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assertConstraint(store, err, kind)
    return true
  })
}

const now = () => new Date().toISOString()

async function seedWorkspace(db: Kysely<Database>, slug = `ws-${randomBytes(4).toString('hex')}`): Promise<string> {
  const id = randomUUID()
  await db
    .insertInto('workspaces')
    .values({ id, slug, name: slug, fingerprint_key: randomBytes(60), root_key_id: 'test', created_at: now() })
    .execute()
  return id
}

async function seedProject(db: Kysely<Database>, workspaceId: string, slug: string): Promise<string> {
  const id = randomUUID()
  await db.insertInto('projects').values({ id, workspace_id: workspaceId, slug, name: slug, created_at: now() }).execute()
  return id
}

async function seedEnvironment(db: Kysely<Database>, workspaceId: string, projectId: string, slug: string): Promise<string> {
  const id = randomUUID()
  await db
    .insertInto('environments')
    .values({ id, workspace_id: workspaceId, project_id: projectId, slug, name: slug, created_at: now() })
    .execute()
  return id
}

function secretRow(workspaceId: string, projectId: string, environmentId: string, key: string) {
  return {
    id: randomUUID(),
    workspace_id: workspaceId,
    project_id: projectId,
    environment_id: environmentId,
    key,
    current_version: 1,
    deleted: 0,
    created_at: now(),
    updated_at: now(),
  }
}

async function metaValue(db: Kysely<Database>, key: string): Promise<Buffer | undefined> {
  const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst()
  return row ? Buffer.from(row.value) : undefined
}

/** Opens a database, runs `fn` on it, and always closes it. */
async function withStore(
  open: () => Promise<OpenedStore>,
  fn: (o: OpenedStore) => Promise<void>,
  opts: { migrated?: boolean } = {},
): Promise<void> {
  const o = await open()
  try {
    if (opts.migrated ?? true) await migrate(o.store)
    await fn(o)
  } finally {
    await o.close()
  }
}

/**
 * Registers the storage conformance tests. `open` must give a fresh, empty database on each
 * call. Call inside a `describe` per engine.
 */
export function exerciseStorage(open: () => Promise<OpenedStore>, capabilities: { multiNode: boolean }): void {
  test('an empty database is at schema version 0', () =>
    withStore(
      open,
      async ({ store }) => {
        assert.equal(await currentSchemaVersion(store), 0)
      },
      { migrated: false },
    ))

  test('migrate applies every migration once, and is idempotent the second time', () =>
    withStore(
      open,
      async ({ store }) => {
        const applied = await migrate(store)
        assert.deepEqual(
          applied,
          MIGRATIONS.map((m) => m.version),
        )
        assert.equal(await currentSchemaVersion(store), LATEST_SCHEMA_VERSION)
        const tables = await tableNames(store)
        for (const t of [...TABLES, 'coffer_schema']) assert.ok(tables.includes(t), `table ${t} exists`)
        const rows = await store.db.selectFrom('coffer_schema').selectAll().orderBy('version').execute()
        assert.deepEqual(
          rows.map((r) => [r.version, r.name]),
          MIGRATIONS.map((m) => [m.version, m.name]),
        )

        assert.deepEqual(await migrate(store), [], 'nothing left to apply')
        assert.equal(await currentSchemaVersion(store), LATEST_SCHEMA_VERSION)
        assert.deepEqual(await tableNames(store), tables)
        const again = await store.db.selectFrom('coffer_schema').selectAll().orderBy('version').execute()
        assert.deepEqual(again, rows, 'no migration recorded twice')
      },
      { migrated: false },
    ))

  test('a migration that landed after a higher one is still applied (versions merged out of order)', () =>
    withStore(
      open,
      async ({ store }) => {
        const v = LATEST_SCHEMA_VERSION
        const table = (version: number, name: string): Migration => ({
          version,
          name,
          up: async (tx) => {
            await sql.raw(`CREATE TABLE ${name} (id INTEGER PRIMARY KEY)`).execute(tx)
          },
        })
        const early = table(v + 1, 'out_of_order_early')
        const late = table(v + 2, 'out_of_order_late')
        // A database migrated by a build that had the later migration but not the earlier one.
        assert.deepEqual(await migrate(store, [...MIGRATIONS, late]), [...MIGRATIONS.map((m) => m.version), v + 2])
        assert.equal(await currentSchemaVersion(store), v + 2)
        assert.deepEqual(await migrate(store, [...MIGRATIONS, early, late]), [v + 1], 'the missing one, and only it')
        assert.ok((await tableNames(store)).includes('out_of_order_early'))
        assert.deepEqual(await migrate(store, [...MIGRATIONS, early, late]), [], 'nothing left to apply')
      },
      { migrated: false },
    ))

  test('migrate refuses a database migrated by a newer Coffer (ERR_SCHEMA_TOO_NEW)', () =>
    withStore(open, async ({ store }) => {
      await store.db
        .insertInto('coffer_schema')
        .values({ version: LATEST_SCHEMA_VERSION + 1, name: 'from-the-future', applied_at: now() })
        .execute()
      assert.equal(await currentSchemaVersion(store), LATEST_SCHEMA_VERSION + 1)
      await assert.rejects(migrate(store), (err: unknown) => {
        assert.equal((err as { code?: unknown }).code, 'ERR_SCHEMA_TOO_NEW')
        return true
      })
    }))

  test('a failing migration leaves no partial change and the version where it was', () =>
    withStore(
      open,
      async ({ store }) => {
        const boom = new Error('migration 2 failed on purpose')
        const broken: Migration = {
          version: 2,
          name: 'broken',
          async up(tx) {
            await sql.raw('CREATE TABLE partial_step (id TEXT PRIMARY KEY)').execute(tx)
            await sql.raw("INSERT INTO partial_step (id) VALUES ('half-done')").execute(tx)
            throw boom
          },
        }
        const list = [MIGRATIONS[0]!, broken]
        await assert.rejects(migrate(store, list), (err: unknown) => err === boom)
        assert.equal(await currentSchemaVersion(store), 1, 'migration 1 committed in its own transaction')
        const tables = await tableNames(store)
        assert.ok(!tables.includes('partial_step'), 'the failed step left no table behind')
        for (const t of TABLES) assert.ok(tables.includes(t), `table ${t} from migration 1 is kept`)
        // The same broken list fails again the same way, still without leftovers.
        await assert.rejects(migrate(store, list), (err: unknown) => err === boom)
        assert.equal(await currentSchemaVersion(store), 1)
        assert.ok(!(await tableNames(store)).includes('partial_step'))
      },
      { migrated: false },
    ))

  test('binary columns round-trip every byte value exactly', () =>
    withStore(open, async ({ store, connect }) => {
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      const reversed = Buffer.from(all).reverse()
      const random = randomBytes(64 * 1024 + 3)
      const zeros = Buffer.alloc(33)
      const empty = Buffer.alloc(0)
      const values: Array<[string, Buffer]> = [
        ['all', all],
        ['reversed', reversed],
        ['random', random],
        ['zeros', zeros],
        ['empty', empty],
      ]
      await store.db
        .insertInto('meta')
        .values(values.map(([key, value]) => ({ key, value })))
        .execute()
      await store.db.transaction().execute(async (tx) => {
        await tx.insertInto('meta').values({ key: 'in-tx', value: all }).execute()
      })
      const other = connect()
      for (const db of [store.db, other.db]) {
        for (const [key, value] of [...values, ['in-tx', all] as [string, Buffer]]) {
          const got = await metaValue(db, key)
          assert.ok(got, `${key} is stored`)
          assert.equal(got.length, value.length, `${key}: same length`)
          assert.ok(got.equals(value), `${key}: same bytes`)
        }
      }
      // Binary values compare exactly in WHERE clauses too (token hashes are looked up this way).
      const hit = await store.db.selectFrom('meta').select('key').where('value', '=', all).orderBy('key').execute()
      assert.deepEqual(
        hit.map((r) => r.key),
        ['all', 'in-tx'],
      )
    }))

  test('project slugs are unique per workspace, not globally', () =>
    withStore(open, async ({ store }) => {
      const w1 = await seedWorkspace(store.db)
      const w2 = await seedWorkspace(store.db)
      await seedProject(store.db, w1, 'billing')
      await rejectsWith(store, seedProject(store.db, w1, 'billing'), 'unique')
      await seedProject(store.db, w2, 'billing')
      const n = await store.db
        .selectFrom('projects')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('slug', '=', 'billing')
        .executeTakeFirstOrThrow()
      assert.equal(Number(n.n), 2)
    }))

  test('secret keys are unique per environment, not globally', () =>
    withStore(open, async ({ store }) => {
      const w = await seedWorkspace(store.db)
      const p = await seedProject(store.db, w, 'app')
      const dev = await seedEnvironment(store.db, w, p, 'development')
      const prod = await seedEnvironment(store.db, w, p, 'production')
      await rejectsWith(store, seedEnvironment(store.db, w, p, 'development'), 'unique')
      await store.db
        .insertInto('secrets')
        .values(secretRow(w, p, dev, 'DB_URL'))
        .execute()
      await rejectsWith(
        store,
        store.db
          .insertInto('secrets')
          .values(secretRow(w, p, dev, 'DB_URL'))
          .execute(),
        'unique',
      )
      await store.db
        .insertInto('secrets')
        .values(secretRow(w, p, prod, 'DB_URL'))
        .execute()
      // Secret keys are case-sensitive, like environment variable names.
      await store.db
        .insertInto('secrets')
        .values(secretRow(w, p, dev, 'db_url'))
        .execute()
    }))

  test('foreign keys are enforced', () =>
    withStore(open, async ({ store }) => {
      const ghost = randomUUID()
      await rejectsWith(store, seedProject(store.db, ghost, 'orphan'), 'foreign-key')
      const w = await seedWorkspace(store.db)
      const p = await seedProject(store.db, w, 'app')
      await rejectsWith(store, seedEnvironment(store.db, w, ghost, 'dev'), 'foreign-key')
      const env = await seedEnvironment(store.db, w, p, 'dev')
      await rejectsWith(
        store,
        store.db
          .insertInto('secrets')
          .values(secretRow(w, p, ghost, 'K'))
          .execute(),
        'foreign-key',
      )
      await rejectsWith(
        store,
        store.db
          .insertInto('secret_versions')
          .values({
            secret_id: ghost,
            version: 1,
            workspace_id: w,
            project_id: p,
            environment_id: env,
            value_ct: null,
            comment_ct: null,
            tags: '[]',
            deleted: 1,
            origin: 'delete',
            origin_version: null,
            dek_id: null,
            dek_version: null,
            created_at: now(),
            created_by: 'test',
          })
          .execute(),
        'foreign-key',
      )
      await rejectsWith(
        store,
        store.db.insertInto('memberships').values({ workspace_id: w, user_id: ghost, role: 'owner', created_at: now() }).execute(),
        'foreign-key',
      )
      await rejectsWith(
        store,
        store.db
          .insertInto('audit_heads')
          .values({ workspace_id: ghost, seq: 0, hash: Buffer.alloc(32), peaks: Buffer.alloc(0) })
          .execute(),
        'foreign-key',
      )
      // A referenced row cannot be deleted from under its children.
      await rejectsWith(store, store.db.deleteFrom('workspaces').where('id', '=', w).execute(), 'foreign-key')
      await rejectsWith(store, store.db.deleteFrom('projects').where('id', '=', p).execute(), 'foreign-key')
      assert.ok(await store.db.selectFrom('workspaces').select('id').where('id', '=', w).executeTakeFirst())
    }))

  test('audit_entries refuses UPDATE and DELETE', () =>
    withStore(open, async ({ store }) => {
      const w = await seedWorkspace(store.db)
      const row = {
        workspace_id: w,
        seq: 1,
        id: randomUUID(),
        time: now(),
        actor_type: 'user',
        actor_id: 'u',
        actor_ip: '127.0.0.1',
        actor_ua: 'test',
        request_id: 'r',
        action: 'secret.create',
        target_type: 'secret',
        target_id: 's',
        details: '{}',
        prev_hash: Buffer.alloc(32),
        hash: randomBytes(32),
      }
      await store.db.insertInto('audit_entries').values(row).execute()
      await store.db
        .insertInto('audit_entries')
        .values({ ...row, seq: 2, id: randomUUID() })
        .execute()
      await rejectsWith(
        store,
        store.db.updateTable('audit_entries').set({ action: 'secret.delete' }).where('seq', '=', 1).execute(),
        'trigger',
      )
      await rejectsWith(store, store.db.updateTable('audit_entries').set({ details: '{"x":1}' }).execute(), 'trigger')
      await rejectsWith(store, store.db.deleteFrom('audit_entries').where('seq', '=', 2).execute(), 'trigger')
      await rejectsWith(store, store.db.deleteFrom('audit_entries').execute(), 'trigger')
      if (store.engine === 'postgres') await rejectsWith(store, sql.raw('TRUNCATE audit_entries').execute(store.db), 'trigger')
      // Inside a transaction as well: the refusal is the database's, not a client convention.
      await rejectsWith(
        store,
        store.db.transaction().execute(async (tx) => {
          await tx.updateTable('audit_entries').set({ action: 'x' }).execute()
        }),
        'trigger',
      )
      const rows = await store.db.selectFrom('audit_entries').selectAll().orderBy('seq').execute()
      assert.equal(rows.length, 2)
      assert.equal(rows[0]!.action, 'secret.create')
      assert.equal(rows[0]!.details, '{}')
    }))

  test('GroupCommitter: 200 concurrent units resolve with their own results in fewer batches', () =>
    withStore(open, async ({ store }) => {
      const committer = new GroupCommitter(store.db, { engine: store.engine })
      try {
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            committer.run(async (tx) => {
              await tx
                .insertInto('meta')
                .values({ key: `unit-${i}`, value: Buffer.from([i & 0xff, i >> 8]) })
                .execute()
              const back = await tx.selectFrom('meta').select('key').where('key', '=', `unit-${i}`).executeTakeFirstOrThrow()
              return { i, key: back.key }
            }),
          ),
        )
        for (const [i, r] of results.entries()) assert.deepEqual(r, { i, key: `unit-${i}` })
        assert.equal(committer.stats.units, 200)
        assert.ok(committer.stats.batches >= 1 && committer.stats.batches < 200, `units were grouped (${committer.stats.batches} batches)`)
        const n = await store.db
          .selectFrom('meta')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('key', 'like', 'unit-%')
          .executeTakeFirstOrThrow()
        assert.equal(Number(n.n), 200)
      } finally {
        await committer.close()
      }
    }))

  test('GroupCommitter: a batch holds units of one partition only', () =>
    withStore(open, async ({ store }) => {
      const committer = new GroupCommitter(store.db, { engine: store.engine })
      try {
        const seen: Array<{ partition: string; tx: unknown }> = []
        const units = ['a', 'b'].flatMap((partition) =>
          Array.from({ length: 20 }, (_, i) =>
            committer.run(async (tx) => {
              seen.push({ partition, tx })
              await tx
                .insertInto('meta')
                .values({ key: `${partition}-${i}`, value: Buffer.from('1') })
                .execute()
            }, partition),
          ),
        )
        await Promise.all(units)
        const txs = new Map<unknown, Set<string>>()
        for (const s of seen) txs.set(s.tx, (txs.get(s.tx) ?? new Set()).add(s.partition))
        for (const parts of txs.values()) assert.equal(parts.size, 1, 'a transaction carried units of two partitions')
        assert.ok(txs.size < 40, 'units of a partition still share batches')
        assert.equal((await store.db.selectFrom('meta').select('key').where('key', 'like', '%-%').execute()).length, 40)
      } finally {
        await committer.close()
      }
    }))

  test('GroupCommitter: a failing unit rejects only itself and only its writes roll back', () =>
    withStore(open, async ({ store }) => {
      const committer = new GroupCommitter(store.db, { engine: store.engine })
      try {
        // Hold the first batch open so that the next units queue up and share one batch.
        let release!: () => void
        let started!: () => void
        const gate = new Promise<void>((r) => (release = r))
        const running = new Promise<void>((r) => (started = r))
        const first = committer.run(async (tx) => {
          await tx
            .insertInto('meta')
            .values({ key: 'first', value: Buffer.from('1') })
            .execute()
          started()
          await gate
          return 'first'
        })
        // The committer gathers units for one turn of the event loop before a batch starts:
        // wait until the first batch is running so that the next units form the second.
        await running
        const boom = new Error('unit failed on purpose')
        const ok1 = committer.run(async (tx) => {
          await tx
            .insertInto('meta')
            .values({ key: 'ok-1', value: Buffer.from('1') })
            .execute()
          return 'ok-1'
        })
        const thrown = committer.run(async (tx) => {
          await tx
            .insertInto('meta')
            .values({ key: 'thrown', value: Buffer.from('x') })
            .execute()
          throw boom
        })
        // A unit failing inside the database (a duplicate key) must not poison the batch either.
        const sqlFail = committer.run(async (tx) => {
          await tx
            .insertInto('meta')
            .values({ key: 'sql-fail', value: Buffer.from('x') })
            .execute()
          await tx
            .insertInto('meta')
            .values({ key: 'ok-1', value: Buffer.from('dup') })
            .execute()
          return 'unreachable'
        })
        const ok2 = committer.run(async (tx) => {
          await tx
            .updateTable('meta')
            .set({ value: Buffer.from('2') })
            .where('key', '=', 'ok-1')
            .execute()
          await tx
            .insertInto('meta')
            .values({ key: 'ok-2', value: Buffer.from('2') })
            .execute()
          return 'ok-2'
        })
        // The last unit of a batch fails too: its savepoint is the one COMMIT would release.
        const lastFail = committer.run(async (tx) => {
          await tx
            .insertInto('meta')
            .values({ key: 'last-fail', value: Buffer.from('x') })
            .execute()
          throw boom
        })
        const before = { ...committer.stats }
        release()
        const settled = await Promise.allSettled([first, ok1, thrown, sqlFail, ok2, lastFail])
        assert.deepEqual(
          settled.map((s) => s.status),
          ['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'rejected'],
        )
        assert.equal((settled[0] as PromiseFulfilledResult<string>).value, 'first')
        assert.equal((settled[1] as PromiseFulfilledResult<string>).value, 'ok-1')
        assert.equal((settled[2] as PromiseRejectedResult).reason, boom, 'the unit gets its own error')
        assertConstraint(store, (settled[3] as PromiseRejectedResult).reason, 'unique')
        assert.equal((settled[4] as PromiseFulfilledResult<string>).value, 'ok-2')
        assert.equal(committer.stats.batches - before.batches, 2, 'the five queued units shared one batch')
        assert.equal(committer.stats.units - before.units, 6)

        assert.ok(await metaValue(store.db, 'first'))
        assert.equal((await metaValue(store.db, 'ok-1'))?.toString(), '2', "a later unit saw and changed an earlier unit's write")
        assert.ok(await metaValue(store.db, 'ok-2'))
        assert.equal(await metaValue(store.db, 'thrown'), undefined, "the throwing unit's write was undone")
        assert.equal(await metaValue(store.db, 'sql-fail'), undefined, "the failing unit's earlier write was undone")
        assert.equal(await metaValue(store.db, 'last-fail'), undefined, "the failing last unit's write was undone")

        // A lone unit that fails rolls back alone as well.
        const lone = new Error('lone unit failed')
        await assert.rejects(
          committer.run(async (tx) => {
            await tx
              .insertInto('meta')
              .values({ key: 'lone', value: Buffer.from('x') })
              .execute()
            throw lone
          }),
          (err: unknown) => err === lone,
        )
        assert.equal(await metaValue(store.db, 'lone'), undefined)
        // And the committer keeps working afterwards.
        assert.equal(await committer.run(async () => 'still alive'), 'still alive')
      } finally {
        await committer.close()
      }
    }))

  test('GroupCommitter: a resolved unit is committed and visible to another connection', () =>
    withStore(open, async ({ store, connect }) => {
      const committer = new GroupCommitter(store.db, { engine: store.engine })
      const other = connect()
      try {
        await committer.run(async (tx) => {
          await tx
            .insertInto('meta')
            .values({ key: 'single', value: Buffer.from('s') })
            .execute()
        })
        assert.equal((await metaValue(other.db, 'single'))?.toString(), 's')
        // Under load too: the moment each promise resolves, its row is already visible elsewhere.
        const misses: string[] = []
        await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            committer
              .run(async (tx) => {
                await tx
                  .insertInto('meta')
                  .values({ key: `durable-${i}`, value: Buffer.from([i]) })
                  .execute()
                return `durable-${i}`
              })
              .then(async (key) => {
                const got = await metaValue(other.db, key)
                if (!got || got[0] !== i) misses.push(key)
              }),
          ),
        )
        assert.deepEqual(misses, [], 'every resolved write was visible on a fresh connection')
      } finally {
        await committer.close()
      }
    }))

  // Several nodes on one database: only engines that serve several nodes (PostgreSQL) run
  // these; SQLite is opened by a single process.
  if (capabilities.multiNode)
    test('two nodes queue entries side by side and their two sequencers integrate one gap-free chain', async () => {
      const o = await open()
      try {
        await migrate(o.store)
        const w = await seedWorkspace(o.store.db)
        const fpKey = randomBytes(32)
        const audit = new AuditLog('postgres', async () => fpKey, systemClock)
        await audit.initWorkspace(o.store.db, w)
        const nodeB = o.connect()
        const committers = [
          new GroupCommitter(o.store.db, { engine: o.store.engine }),
          new GroupCommitter(nodeB.db, { engine: nodeB.engine }),
        ]
        // Each node runs its own sequencer; the lease lets one integrate at a time, and a short
        // lease with a short tick makes them take turns while the appends run.
        const sequencers = [o.store, nodeB].map(
          (store, i) =>
            new AuditSequencer({ store, committer: committers[i]!, audit, clock: systemClock, mergeDelayMs: 50, leaseMs: 200, batch: 16 }),
        )
        const actor = { type: 'user' as const, id: 'u', ip: '127.0.0.1', userAgent: 'conformance' }
        try {
          for (const s of sequencers) s.start()
          const appends = Array.from({ length: 200 }, (_, i) =>
            committers[i % 2]!.run((tx) =>
              audit.append(tx, w, actor, `req-${i}`, { action: 'secret.update', target: { type: 'unit', id: String(i) }, details: { i } }),
            ),
          )
          const records = await Promise.all(appends)
          assert.equal(new Set(records.map((r) => r.id)).size, 200, 'every append queued its own entry')
          for (const c of committers) assert.equal(c.stats.units >= 100, true)
          for (let i = 0; i < 200 && (await audit.pending(o.store.db, w)).count > 0; i++) await new Promise((r) => setTimeout(r, 25))
          assert.equal((await audit.pending(o.store.db, w)).count, 0, 'the sequencers integrated every queued entry')
        } finally {
          for (const s of sequencers) await s.stop()
          for (const c of committers) await c.close()
        }
        const result = await audit.verify(o.store.db, w)
        assert.equal(result.ok, true, `chain verifies (${JSON.stringify(result.firstBad)})`)
        assert.equal(result.checked, 200)
        const rows = await o.store.db
          .selectFrom('audit_entries')
          .select(['seq', 'prev_hash', 'hash', 'target_id'])
          .where('workspace_id', '=', w)
          .orderBy('seq')
          .execute()
        assert.equal(
          new Set(rows.map((r) => Buffer.from(r.prev_hash).toString('hex'))).size,
          200,
          'no two entries share a parent (no fork)',
        )
        assert.deepEqual(
          rows.map((r) => Number(r.target_id)).sort((a, b) => a - b),
          Array.from({ length: 200 }, (_, i) => i),
          'every unit is in the chain once',
        )
        const head = await o.store.db.selectFrom('audit_heads').selectAll().where('workspace_id', '=', w).executeTakeFirstOrThrow()
        assert.equal(Number(head.seq), 200)
        assert.equal(Buffer.from(head.hash).toString('hex'), result.head)
      } finally {
        await o.close()
      }
    })

  if (capabilities.multiNode)
    test('several nodes migrating one empty database at once apply each step exactly once', async () => {
      const o = await open()
      try {
        const nodes = [o.store, o.connect(), o.connect(), o.connect()]
        const applied = await Promise.all(nodes.map((s) => migrate(s)))
        assert.deepEqual(
          applied.flat().sort((x, y) => x - y),
          MIGRATIONS.map((m) => m.version),
          'each migration applied by exactly one node',
        )
        for (const s of nodes) assert.equal(await currentSchemaVersion(s), LATEST_SCHEMA_VERSION)
      } finally {
        await o.close()
      }
    })
}
