// Transactions that lose a deadlock, a serialization race or their connection before COMMIT
// run again before anyone sees an error — on a real PostgreSQL, with real deadlocks and
// real terminated backends: two group committers lock two rows in opposite orders until
// PostgreSQL picks a victim; serializable transactions race on one counter; a backend is
// terminated under a transaction. Every unit's promise resolves, nothing is written twice.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { openStore, type Store } from '../../src/storage/database.js'
import { GroupCommitter } from '../../src/storage/group-commit.js'
import type { Database } from '../../src/storage/schema.js'
import { conflictReason, RETRY_LIMITS, type RetryReason, retryReason, withTransactionRetry } from '../../src/storage/transaction-retry.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'

const raw = (db: Kysely<Database>) => db as unknown as Kysely<Record<string, Record<string, unknown>>>

test('a conflict is recognised by its SQLSTATE, also when wrapped; a connection lost during COMMIT is not retried', () => {
  assert.equal(conflictReason(Object.assign(new Error('deadlock detected'), { code: '40P01' })), 'deadlock')
  assert.equal(conflictReason(new Error('audit', { cause: Object.assign(new Error('x'), { code: '40001' }) })), 'serialization')
  assert.equal(conflictReason(Object.assign(new Error('unique'), { code: '23505' })), undefined)
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  assert.equal(retryReason(reset, false), 'connection')
  assert.equal(retryReason(reset, true), undefined, 'a commit in flight may have committed')
  assert.equal(retryReason(Object.assign(new Error('d'), { code: '40P01' }), true), 'deadlock')
})

test('withTransactionRetry runs again within the limits, then gives up with the last error', async () => {
  const seen: RetryReason[] = []
  let tries = 0
  const r = await withTransactionRetry(
    async () => {
      tries++
      if (tries < 3) throw Object.assign(new Error('deadlock detected'), { code: '40P01' })
      return 'ok'
    },
    (reason) => seen.push(reason),
  )
  assert.equal(r, 'ok')
  assert.deepEqual(seen, ['deadlock', 'deadlock'])
  tries = 0
  await assert.rejects(
    withTransactionRetry(async () => {
      tries++
      throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })
    }),
    /connection reset/,
  )
  assert.equal(tries, 1 + RETRY_LIMITS.connection)
  tries = 0
  await assert.rejects(
    withTransactionRetry(async (done) => {
      tries++
      done()
      throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })
    }),
    /connection reset/,
  )
  assert.equal(tries, 1, 'lost during COMMIT: not run again')
})

describePostgres('transaction retry on PostgreSQL', () => {
  let drop: () => Promise<void>
  let url = ''
  const stores: Store[] = []
  const retries: RetryReason[] = []
  const open = () => {
    const s = openStore({ engine: 'postgres', url }, { onRetry: (r) => retries.push(r) })
    stores.push(s)
    return s
  }

  before(async () => {
    const d = await createTestDatabase()
    drop = d.drop
    url = d.url
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    await c.query('CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL)')
    await c.query('INSERT INTO t VALUES (1, 0), (2, 0), (3, 0)')
    await c.end()
  })
  after(async () => {
    for (const s of stores) await s.close()
    await drop?.()
  })

  test('two committers locking two rows in opposite orders: PostgreSQL kills one, it runs again, both succeed', async () => {
    const a = open()
    const b = open()
    const ca = new GroupCommitter(a.db, { onRetry: (r) => retries.push(r) })
    const cb = new GroupCommitter(b.db, { onRetry: (r) => retries.push(r) })
    retries.length = 0
    let aRuns = 0
    let bRuns = 0
    // Each holds its first row until the other holds its own: the second locks then cross.
    let arrived = 0
    let release: () => void = () => {}
    const bothHoldFirst = new Promise<void>((r) => (release = r))
    const meet = async () => {
      if (++arrived === 2) release()
      await Promise.race([bothHoldFirst, new Promise((r) => setTimeout(r, 500))])
    }
    const unit = (first: number, second: number, count: () => void) => async (tx: Parameters<Parameters<GroupCommitter['run']>[0]>[0]) => {
      count()
      await sql`UPDATE t SET n = n + 1 WHERE id = ${first}`.execute(tx)
      await meet()
      await sql`UPDATE t SET n = n + 1 WHERE id = ${second}`.execute(tx)
      return first
    }
    const [ra, rb] = await Promise.all([
      ca.run(
        unit(1, 2, () => aRuns++),
        'p',
      ),
      cb.run(
        unit(2, 1, () => bRuns++),
        'p',
      ),
    ])
    assert.deepEqual([ra, rb], [1, 2])
    assert.equal(aRuns + bRuns, 3, 'the victim ran once more')
    assert.deepEqual(retries, ['deadlock'])
    const rows = await sql<{ id: number; n: number }>`SELECT id, n FROM t WHERE id IN (1, 2) ORDER BY id`.execute(a.db)
    assert.deepEqual(
      rows.rows.map((r) => r.n),
      [2, 2],
      'each unit committed exactly once',
    )
    await ca.close()
    await cb.close()
  })

  test('serializable transactions racing on one row: the losers run again, no increment is lost', async () => {
    const s = open()
    retries.length = 0
    const inc = () =>
      withTransactionRetry(
        (done) =>
          s.db
            .transaction()
            .setIsolationLevel('serializable')
            .execute(async (tx) => {
              const row = await raw(tx as never)
                .selectFrom('t')
                .select('n')
                .where('id', '=', 3)
                .executeTakeFirstOrThrow()
              await new Promise((r) => setTimeout(r, 20))
              await sql`UPDATE t SET n = ${Number(row.n) + 1} WHERE id = 3`.execute(tx)
              done()
            }),
        s.onRetry,
      )
    await Promise.all([inc(), inc(), inc()])
    const n = await sql<{ n: number }>`SELECT n FROM t WHERE id = 3`.execute(s.db)
    assert.equal(n.rows[0]!.n, 3)
    assert.ok(retries.includes('serialization'), `retried: ${retries.join(', ')}`)
  })

  test("a transaction whose backend is terminated before COMMIT runs once more on a fresh connection; the unit's promise resolves", async () => {
    const s = open()
    const c = new GroupCommitter(s.db, { onRetry: (r) => retries.push(r) })
    retries.length = 0
    let runs = 0
    const got = await c.run(async (tx) => {
      runs++
      await sql`UPDATE t SET n = n + 10 WHERE id = 1`.execute(tx)
      if (runs === 1) {
        const admin = new pg.Client({ connectionString: url })
        await admin.connect()
        const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(tx)
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid])
        await admin.end()
        await sql`SELECT 1`.execute(tx) // fails: the connection is gone
      }
      return runs
    })
    assert.equal(got, 2)
    assert.deepEqual(retries, ['connection'])
    const n = await sql<{ n: number }>`SELECT n FROM t WHERE id = 1`.execute(s.db)
    assert.equal(n.rows[0]!.n, 12, 'the terminated try wrote nothing; the second wrote once')
    await c.close()
  })
})
