import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The PostgreSQL server tests use: TEST_DATABASE_URL, else the local one. */
export const TEST_PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** Whether PostgreSQL answers; a missing server is loud, and fatal under COFFER_REQUIRE_PG=1. */
export async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 })
  try {
    await c.connect()
    await c.query('SELECT 1')
    return true
  } catch (err) {
    const msg = `PostgreSQL is unreachable at ${TEST_PG_URL.replace(/:[^:@/]*@/, ':***@')} (${(err as Error).message}): PostgreSQL suites cannot run`
    if (process.env.COFFER_REQUIRE_PG === '1') throw new Error(`${msg}, and COFFER_REQUIRE_PG=1 makes that a failure`)
    console.error(`\n!!!!!!!! ${msg} !!!!!!!!\n`)
    return false
  } finally {
    await c.end().catch(() => {})
  }
}

/** Creates a throw-away database and returns its URL and a function that drops it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `coffer_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: TEST_PG_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const u = new URL(TEST_PG_URL)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_PG_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}
