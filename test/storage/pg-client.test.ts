// The PostgreSQL pool's client class (src/storage/pg-client.ts) saves round trips: it holds a
// transaction's BEGIN back until the first statement and prepares parameterised statements.
// What must never change is what a transaction means: everything in it commits together or
// not at all, a failure leaves the connection usable, and the tenant scope is set inside it.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { CompiledQuery, sql } from 'kysely'
import pg from 'pg'
import { startWriteBatch } from '../../src/storage/advisory-lock.js'
import { openStore, type Store } from '../../src/storage/database.js'
import { pgClientClass } from '../../src/storage/pg-client.js'
import { readInScope, scopeStatement } from '../../src/storage/tenant-scope.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'

/** Counts the messages that reach pg.Client.prototype.query (every query the pool's clients send). */
function countSends(): { texts: string[]; stop(): void } {
  const texts: string[] = []
  const base = pg.Client.prototype.query
  pg.Client.prototype.query = function (this: pg.Client, config: unknown, ...rest: unknown[]) {
    texts.push(typeof config === 'string' ? config : (config as { text: string }).text)
    return (base as (...a: unknown[]) => unknown).call(this, config, ...rest)
  } as typeof base
  return {
    texts,
    stop: () => {
      pg.Client.prototype.query = base
    },
  }
}

describePostgres('the PostgreSQL client: fewer round trips, the same transactions', () => {
  let store: Store
  let drop: () => Promise<void>
  let url: string
  const WS = '6b1f0a52-3c1e-4a55-9d0e-0a1b2c3d4e5f'
  before(async () => {
    const db = await createTestDatabase()
    drop = db.drop
    url = db.url
    store = openStore({ engine: 'postgres', url })
    await sql`CREATE TABLE t (id int PRIMARY KEY, note text)`.execute(store.db)
  })
  after(async () => {
    await store?.close()
    await drop?.()
  })
  const rows = async () => (await sql<{ id: number }>`SELECT id FROM t ORDER BY id`.execute(store.db)).rows.map((r) => r.id)

  test("a batch's BEGIN, tenant scope and write lock travel in one message; its statements then run inside that transaction", async () => {
    const sends = countSends()
    try {
      const seen = await store.db.transaction().execute(async (tx) => {
        await startWriteBatch(tx, 'postgres', WS, { environment: '0c4d3b2a-1e0f-4a9b-8c7d-6e5f4a3b2c1d' })
        await tx
          .insertInto('t' as never)
          .values({ id: 1 } as never)
          .execute()
        return (
          await sql<{
            s: string
            inTx: boolean
          }>`SELECT current_setting('coffer.workspace_id') AS s, now() = statement_timestamp() AS "inTx"`.execute(tx)
        ).rows[0]!
      })
      assert.equal(seen.s, WS, 'the scope is set')
      assert.equal(seen.inTx, false, 'a statement after the first runs inside the transaction (now() is its start)')
      assert.match(
        sends.texts[0]!,
        /^begin; SELECT set_config\('coffer\.workspace_id', '[0-9a-f-]{36}', true\); SELECT pg_advisory_xact_lock\(/,
      )
      assert.equal(sends.texts.filter((t) => t === 'begin').length, 0, 'no BEGIN of its own')
      assert.equal(sends.texts.at(-1), 'commit')
    } finally {
      sends.stop()
    }
    assert.deepEqual(await rows(), [1])
  })

  test('a transaction rolls back as a whole, whether its first statement has parameters or not', async () => {
    for (const first of ['with parameters', 'without']) {
      await assert.rejects(
        store.db.transaction().execute(async (tx) => {
          if (first === 'without') await tx.executeQuery(CompiledQuery.raw(scopeStatement(WS)))
          await tx
            .insertInto('t' as never)
            .values({ id: 2 } as never)
            .execute()
          await tx
            .insertInto('t' as never)
            .values({ id: 3 } as never)
            .execute()
          throw new Error('the unit failed')
        }),
        /the unit failed/,
      )
      assert.deepEqual(await rows(), [1], `nothing of the failed transaction (first statement ${first}) was committed`)
    }
  })

  test('a failing first statement leaves the connection usable; an empty transaction sends nothing', async () => {
    // The pool holds one idle client here: each of these runs on the connection the last one used.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        store.db.transaction().execute(async (tx) => {
          await tx.executeQuery(CompiledQuery.raw('SELECT no_such_function()'))
        }),
        /no_such_function/,
      )
      assert.deepEqual(await rows(), [1, 10, 11, 12].slice(0, i + 1))
      const inTx = await store.db.transaction().execute(async (tx) => {
        await tx
          .insertInto('t' as never)
          .values({ id: 10 + i } as never)
          .execute()
        return (await sql<{ n: string }>`SELECT count(*) AS n FROM t`.execute(tx)).rows[0]!.n
      })
      assert.equal(Number(inTx), 2 + i)
    }
    const sends = countSends()
    try {
      assert.equal(await store.db.transaction().execute(async () => 'nothing'), 'nothing')
      assert.deepEqual(sends.texts, [], 'neither BEGIN nor COMMIT was sent')
    } finally {
      sends.stop()
    }
    assert.deepEqual(await rows(), [1, 10, 11, 12])
  })

  test('a held BEGIN also goes ahead of a query given as an object or with a callback', async () => {
    const Client = pgClientClass(pg)
    const c = new Client({ connectionString: url })
    await c.connect()
    try {
      await c.query('begin')
      await c.query({ text: 'INSERT INTO t (id) VALUES ($1)', values: [20] })
      await new Promise<void>((resolve, reject) =>
        c.query('INSERT INTO t (id) VALUES (21)', [], (err: Error | null) => (err ? reject(err) : resolve())),
      )
      await c.query('rollback')
    } finally {
      await c.end()
    }
    assert.deepEqual(await rows(), [1, 10, 11, 12], 'both inserts were inside the transaction and rolled back')
  })

  const scopeNow = async (db: Store['readDb']) =>
    (await sql<{ s: string | null }>`SELECT current_setting('coffer.workspace_id', true) AS s`.execute(db)).rows[0]!.s

  test("a read's COMMIT travels with the connection's next statement, and its tenant scope ends before that statement runs", async () => {
    const sends = countSends()
    try {
      const inRead = await readInScope(store, WS, (db) => scopeNow(db as Store['readDb']))
      assert.equal(inRead, WS)
      // Straight after the read, on the same connection (the pool's one idle client), before
      // the next turn of the event loop: the COMMIT is still held, and goes in front of this.
      const next = await scopeNow(store.readDb)
      assert.ok(next === null || next === '', `no scope after the read (saw ${next})`)
      assert.equal(sends.texts.at(-1), "COMMIT; SELECT current_setting('coffer.workspace_id', true) AS s")
      assert.equal(sends.texts.filter((t) => /^COMMIT/.test(t)).length, 1, 'one COMMIT, sent with the next statement')

      // Before a statement with parameters the held COMMIT goes alone, then the statement.
      await readInScope(store, WS, (db) => scopeNow(db as Store['readDb']))
      const found = await store.readDb
        .selectFrom('t' as never)
        .select('id' as never)
        .where('id' as never, '=', 1 as never)
        .execute()
      assert.equal(found.length, 1)
      assert.deepEqual(sends.texts.slice(-2), ['COMMIT', 'select "id" from "t" where "id" = $1'])
    } finally {
      sends.stop()
    }
  })

  test('a read whose connection then stays idle ends on the next turn: nothing is left open in a transaction', async () => {
    const watcher = new pg.Client({ connectionString: url })
    await watcher.connect()
    try {
      const openTransactions = async () =>
        Number(
          (
            await watcher.query(
              "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
            )
          ).rows[0].n,
        )
      const sends = countSends()
      try {
        assert.equal(await readInScope(store, WS, (db) => scopeNow(db as Store['readDb'])), WS)
        await nextTurn()
        await nextTurn()
        assert.equal(sends.texts.at(-1), 'COMMIT', 'the held COMMIT went alone')
      } finally {
        sends.stop()
      }
      for (let i = 0; i < 50 && (await openTransactions()) > 0; i++) await new Promise((r) => setTimeout(r, 20))
      assert.equal(await openTransactions(), 0, 'no connection is idle in a transaction')
    } finally {
      await watcher.end()
    }
  })

  test('a statement that fails after a held COMMIT fails alone: the read ended, and the connection stays usable', async () => {
    await readInScope(store, WS, (db) => scopeNow(db as Store['readDb']))
    await assert.rejects(sql`SELECT no_such_function()`.execute(store.readDb), /no_such_function/)
    assert.deepEqual(await rows(), [1, 10, 11, 12])
    const next = await scopeNow(store.readDb)
    assert.ok(next === null || next === '')
  })

  test('a lock naming something other than an id never reaches SQL', async () => {
    await assert.rejects(
      store.db.transaction().execute((tx) => startWriteBatch(tx, 'postgres', WS, { environment: "x')); DROP TABLE t; --" })),
      /write lock is named by a workspace or environment id/,
    )
    await assert.rejects(
      store.db.transaction().execute((tx) => startWriteBatch(tx, 'postgres', "' OR true --", null)),
      /tenant scope is a workspace id/,
    )
    assert.deepEqual(await rows(), [1, 10, 11, 12])
  })
})
