// A SQLite transaction that finds the write lock taken waits for it between turns of the event
// loop (src/storage/write-lock-wait.ts), not asleep in SQLite's busy handler: while another
// connection — another process, a host command, the audit thread — holds the lock, the
// server's thread keeps answering. The lock is still waited for (the write lands once it is
// free), still only up to the busy timeout (then SQLite's SQLITE_BUSY, nothing written), and
// the connection's own busy timeout is left as it was for its other statements.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, sql } from 'kysely'
import { openStore } from '../../src/storage/database.js'
import { cachingDatabase } from '../../src/storage/statement-cache.js'
import { isSqliteBusy, LockWaitingSqliteDialect, lockPauseMs } from '../../src/storage/write-lock-wait.js'

const dir = mkdtempSync(join(tmpdir(), 'coffer-lock-wait-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** Another connection to `path` that holds the write lock until `release` is called. */
function holdWriteLock(path: string): { release(): void } {
  const other = new BetterSqlite3(path)
  other.exec('BEGIN IMMEDIATE')
  return {
    release() {
      other.exec('COMMIT')
      other.close()
    },
  }
}

/** The longest gap between ticks of a 2 ms interval while `run` is pending. */
async function longestStall<T>(run: () => Promise<T>): Promise<{ result: T; stallMs: number; ticks: number }> {
  let last = performance.now()
  let stallMs = 0
  let ticks = 0
  const timer = setInterval(() => {
    const now = performance.now()
    stallMs = Math.max(stallMs, now - last)
    last = now
    ticks++
  }, 2)
  try {
    const result = await run()
    stallMs = Math.max(stallMs, performance.now() - last)
    return { result, stallMs, ticks }
  } finally {
    clearInterval(timer)
  }
}

test('a write waits for a lock held elsewhere without stalling the event loop, then lands', async () => {
  const path = join(dir, 'wait.db')
  const store = openStore({ engine: 'sqlite', path })
  try {
    await sql`CREATE TABLE t (v TEXT NOT NULL)`.execute(store.db)
    const held = holdWriteLock(path)
    const HOLD_MS = 300
    const start = performance.now()
    setTimeout(() => held.release(), HOLD_MS)
    const { stallMs, ticks } = await longestStall(() =>
      store.db.transaction().execute(async (tx) => {
        await sql`INSERT INTO t (v) VALUES ('written')`.execute(tx)
      }),
    )
    const waited = performance.now() - start
    // It did wait for the lock (the write cannot have committed before the other connection let go)…
    assert.ok(waited >= HOLD_MS - 20, `the write finished after ${waited.toFixed(0)} ms, before the lock was released`)
    // …while the thread went on: SQLite's busy handler would have slept through the whole hold.
    assert.ok(stallMs < 100, `the event loop stalled for ${stallMs.toFixed(0)} ms while the write waited`)
    assert.ok(ticks >= 20, `only ${ticks} timer ticks ran during a ${waited.toFixed(0)} ms wait`)
    const rows = await sql<{ v: string }>`SELECT v FROM t`.execute(store.readDb)
    assert.deepEqual(
      rows.rows.map((r) => r.v),
      ['written'],
    )
  } finally {
    await store.close()
  }
})

test('past the deadline the transaction fails with SQLITE_BUSY, writes nothing, and the busy timeout is restored', async () => {
  const path = join(dir, 'deadline.db')
  const setup = new BetterSqlite3(path)
  setup.pragma('journal_mode = WAL')
  setup.exec('CREATE TABLE t (v TEXT NOT NULL)')
  setup.close()
  const conn = new BetterSqlite3(path)
  conn.pragma('busy_timeout = 2500')
  const db = new Kysely<{ t: { v: string } }>({
    dialect: new LockWaitingSqliteDialect({ database: cachingDatabase(conn) }, 150),
  })
  const held = holdWriteLock(path)
  try {
    const start = performance.now()
    const { result: err, stallMs } = await longestStall(() =>
      db
        .transaction()
        .execute((tx) => tx.insertInto('t').values({ v: 'never' }).execute())
        .then(
          () => undefined,
          (e: unknown) => e,
        ),
    )
    const waited = performance.now() - start
    assert.ok(isSqliteBusy(err), `expected SQLITE_BUSY, got ${String(err)}`)
    assert.ok(waited >= 140 && waited < 1_500, `gave up after ${waited.toFixed(0)} ms (deadline 150 ms)`)
    assert.ok(stallMs < 100, `the event loop stalled for ${stallMs.toFixed(0)} ms`)
    // The connection's own statements still wait as configured.
    assert.equal(conn.pragma('busy_timeout', { simple: true }), 2500)
    assert.equal(conn.inTransaction, false)
  } finally {
    held.release()
  }
  // Once the lock is free, the same handle writes, and only that row is there.
  await db.transaction().execute((tx) => tx.insertInto('t').values({ v: 'later' }).execute())
  const rows = await db.selectFrom('t').select('v').execute()
  assert.deepEqual(
    rows.map((r) => r.v),
    ['later'],
  )
  await db.destroy()
})

test('an error other than a held lock is not retried', async () => {
  const conn = new BetterSqlite3(':memory:')
  const db = new Kysely<{ t: { v: string } }>({
    dialect: new LockWaitingSqliteDialect({ database: cachingDatabase(conn) }, 5_000),
  })
  // A transaction inside a transaction: SQLite refuses the second begin at once.
  conn.exec('BEGIN')
  const start = performance.now()
  await assert.rejects(
    db.transaction().execute(() => Promise.resolve()),
    (e: unknown) => !isSqliteBusy(e) && /within a transaction/.test(String(e)),
  )
  assert.ok(performance.now() - start < 1_000)
  conn.exec('ROLLBACK')
  await db.destroy()
})

test('the pause between tries: the next turn first, then 1 ms more each time, at most 8 ms', () => {
  assert.deepEqual([1, 2, 3, 4, 9, 10, 100].map(lockPauseMs), [0, 1, 2, 3, 8, 8, 8])
})
