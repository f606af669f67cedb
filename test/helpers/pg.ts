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

/**
 * Creates a throw-away database and returns its URL (the server's superuser, who owns it) and
 * a function that drops it. With `appRole`, also a login role that is no superuser, has no
 * BYPASSRLS and owns nothing — what Coffer's application should connect as — and `appUrl`,
 * the same database as that role; `drop` removes the role too.
 */
export async function createTestDatabase(
  options: { appRole?: boolean } = {},
): Promise<{ url: string; appUrl?: string; appRole?: string; drop(): Promise<void> }> {
  const name = `coffer_test_${randomBytes(6).toString('hex')}`
  const role = options.appRole ? `${name}_app` : undefined
  const admin = new pg.Client({ connectionString: TEST_PG_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  if (role) await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`)
  await admin.end()
  const u = new URL(TEST_PG_URL)
  u.pathname = `/${name}`
  let appUrl: string | undefined
  if (role) {
    const a = new URL(u)
    a.username = role
    a.password = ''
    appUrl = a.toString()
  }
  return {
    url: u.toString(),
    ...(appUrl && role ? { appUrl, appRole: role } : {}),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_PG_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      if (role) await c.query(`DROP ROLE IF EXISTS ${role}`)
      await c.end()
    },
  }
}
