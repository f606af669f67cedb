// COFFER_DATABASE_POOL_SIZE bounds the connections a node opens to PostgreSQL: however many
// reads run at once, no more sessions than that serve them, and every read still answers.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import { openStore, type Store } from '../../src/storage/database.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase } from '../helpers/pg.js'

describePostgres("the PostgreSQL pool's size", () => {
  let drop: () => Promise<void>
  let url: string
  before(async () => {
    const db = await createTestDatabase()
    drop = db.drop
    url = db.url
  })
  after(async () => {
    await drop?.()
  })

  /** Runs `n` reads at once, each holding its connection for 100 ms; the backends that served them. */
  async function backendsFor(store: Store, n: number): Promise<Set<number>> {
    const rows = await Promise.all(
      Array.from({ length: n }, () =>
        sql<{ pid: number }>`SELECT pg_backend_pid() AS pid, pg_sleep(0.1)`.execute(store.readDb).then((r) => r.rows[0]!.pid),
      ),
    )
    return new Set(rows)
  }

  test('a pool of 2 serves 12 concurrent reads on 2 connections; the default opens more', async () => {
    const small: Store = openStore({ engine: 'postgres', url, poolSize: 2 })
    const usual: Store = openStore({ engine: 'postgres', url })
    try {
      const few = await backendsFor(small, 12)
      assert.equal(few.size, 2, `12 reads on ${few.size} connections`)
      const many = await backendsFor(usual, 12)
      assert.equal(many.size, 10, `the default pool served 12 reads on ${many.size} connections`)
    } finally {
      await small.close()
      await usual.close()
    }
  })
})
