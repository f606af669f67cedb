// `coffer server` on PostgreSQL says at start-up what in the database's setup weakens it: a
// role that bypasses row-level security, and autovacuum switched off (the audit queue and the
// data keys' counters then slow every request down as their dead rows pile up).
import { type ChildProcess, spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pg from 'pg'
import { BIN, childEnv, ensureBuilt, stopChild, waitListening } from '../helpers/child-server.js'
import { describePostgres } from '../helpers/engines.js'
import { createTestDatabase, TEST_PG_URL } from '../helpers/pg.js'

// One vault, started twice: both starts need its root key.
const ROOT_KEY = randomBytes(32).toString('base64')

/** Starts a node on `env`, waits until it listens, and returns everything it printed by then. */
async function startupOutput(env: Record<string, string>): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'coffer-warnings-'))
  let out = ''
  let child: ChildProcess | undefined
  try {
    child = spawn(process.execPath, [BIN, 'server', '--data-dir', work, '--host', '127.0.0.1', '--port', '0'], {
      env: childEnv({ COFFER_ROOT_KEY: ROOT_KEY, COFFER_LOG_LEVEL: 'warn', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const keep = (d: Buffer) => {
      out += d.toString()
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    await waitListening(child)
    await new Promise((r) => setTimeout(r, 300))
    return out
  } finally {
    if (child) await stopChild(child)
    rmSync(work, { recursive: true, force: true })
  }
}

describePostgres('start-up warnings about the database', () => {
  test('a superuser connection and autovacuum switched off are each told; an application role is not', { timeout: 60_000 }, async () => {
    ensureBuilt()
    const c = new pg.Client({ connectionString: TEST_PG_URL })
    await c.connect()
    const autovacuum = (await c.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]!.autovacuum
    await c.end()
    const db = await createTestDatabase({ appRole: true })
    try {
      // @NOTE the first start prints the Owner token: assertions test the output and never print it.
      const rls = /superuser or a BYPASSRLS role, so PostgreSQL row-level security .* is not enforced/
      const vacuum = /Warning: autovacuum is off on this PostgreSQL server/
      const asSuperuser = await startupOutput({ DATABASE_URL: db.url })
      assert.equal(rls.test(asSuperuser), true, 'the superuser connection is warned about')
      // The server's own setting decides whether the autovacuum warning must appear.
      assert.equal(
        vacuum.test(asSuperuser),
        autovacuum === 'off',
        `autovacuum is ${autovacuum}: its warning appears exactly when it is off`,
      )

      const asApp = await startupOutput({ DATABASE_URL: db.appUrl!, COFFER_MIGRATION_DATABASE_URL: db.url })
      assert.equal(rls.test(asApp), false, 'the application role is bound by row-level security')
      assert.equal(vacuum.test(asApp), autovacuum === 'off', 'the application role can read the setting too')
    } finally {
      await db.drop()
    }
  })
})
