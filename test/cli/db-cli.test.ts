// `coffer db …` through the built CLI against a real server (SQLite) and the real PostgreSQL
// as the target: define a database role (admin URL from the environment, never argv), get
// credentials as shell exports, use them, delete the role.
import assert from 'node:assert/strict'
import { type ChildProcess, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { BIN, childEnv, ensureBuilt, startServer, stopChild } from '../helpers/child-server.js'
import { createTestDatabase, pgAvailable } from '../helpers/pg.js'

describe('coffer db (CLI, SQLite server, PostgreSQL target)', () => {
  const work = mkdtempSync(join(tmpdir(), 'coffer-db-cli-'))
  const dataDir = join(work, 'data')
  let server: ChildProcess | undefined
  let target: Awaited<ReturnType<typeof createTestDatabase>> | undefined
  let url = ''
  let owner = ''
  const scope = ['--project', 'shop', '--env', 'development']

  const coffer = (args: string[], extra: Record<string, string> = {}) => {
    const env = childEnv({
      COFFER_URL: url,
      COFFER_TOKEN: owner,
      NO_COLOR: '1',
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
      ...extra,
    })
    return spawnSync(process.execPath, [BIN, ...args], { cwd: work, env, input: '', encoding: 'utf8', timeout: 30_000 })
  }
  const ok = (args: string[], extra: Record<string, string> = {}) => {
    const r = coffer(args, extra)
    assert.equal(r.status, 0, `coffer ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`)
    return r
  }

  before(async () => {
    if (!(await pgAvailable())) throw new Error('PostgreSQL is needed as the target database')
    ensureBuilt()
    target = await createTestDatabase()
    const c = new pg.Client({ connectionString: target.url })
    await c.connect()
    await c.query("CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, 'tea')")
    await c.end()
    const init = spawnSync(process.execPath, [BIN, 'init', '--data-dir', dataDir, '--email', 'owner@example.com', '--json'], {
      encoding: 'utf8',
      env: childEnv({}),
    })
    assert.equal(init.status, 0, init.stderr)
    owner = (JSON.parse(init.stdout) as { token: string }).token
    ;({ child: server, url } = await startServer(
      ['--data-dir', dataDir],
      childEnv({ COFFER_LOG_LEVEL: 'warn', COFFER_DATA_DIR: dataDir, COFFER_OUTBOUND_ALLOW: '127.0.0.1/32' }),
    ))
  })

  after(async () => {
    if (server) await stopChild(server)
    await target?.drop()
    rmSync(work, { recursive: true, force: true })
  })

  test('create, creds as exports, use, delete', async () => {
    ok(['projects', 'create', 'Shop'])
    const noUrl = coffer(['db', 'create', 'reader', '--sql', 'GRANT SELECT ON orders TO {{name}}', ...scope])
    assert.notEqual(noUrl.status, 0)
    assert.match(noUrl.stderr, /COFFER_DB_ADMIN_URL/)
    ok(['db', 'create', 'reader', '--sql', 'GRANT SELECT ON orders TO {{name}}', '--ttl', '300', ...scope], {
      COFFER_DB_ADMIN_URL: target!.url,
    })
    const listed = ok(['db', 'list', ...scope]).stdout
    assert.match(listed, /reader\s+127\.0\.0\.1:\d+\/coffer_test_/)
    const out = ok(['db', 'creds', 'reader', ...scope]).stdout
    const vars = Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => /^export ([A-Z_]+)='(.*)'$/.exec(l)!.slice(1, 3) as [string, string]),
    )
    assert.match(vars.PGUSER!, /^coffer_[0-9a-f]{16}$/)
    const c = new pg.Client({ connectionString: vars.DATABASE_URL })
    await c.connect()
    assert.deepEqual((await c.query('SELECT item FROM orders')).rows, [{ item: 'tea' }])
    await c.end()
    const json = JSON.parse(ok(['db', 'creds', 'reader', '--ttl', '60', '--json', ...scope]).stdout)
    assert.ok(Date.parse(json.expiresAt) - Date.now() <= 61_000)
    // coffer run --db: the child gets a fresh role of its own in DATABASE_URL, PG* and COFFER_DB_READER_URL.
    const child = ok([
      'run',
      '--db',
      'reader',
      ...scope,
      '--',
      process.execPath,
      '-e',
      'console.log(JSON.stringify({u: process.env.PGUSER, url: process.env.DATABASE_URL, named: process.env.COFFER_DB_READER_URL}))',
    ]).stdout
    const seen = JSON.parse(child.trim().split('\n').pop()!) as { u: string; url: string; named: string }
    assert.match(seen.u, /^coffer_[0-9a-f]{16}$/)
    assert.notEqual(seen.u, vars.PGUSER, 'a role of its own')
    assert.equal(seen.named, seen.url)
    const c2 = new pg.Client({ connectionString: seen.url })
    await c2.connect()
    assert.equal((await c2.query('SELECT count(*)::int AS n FROM orders')).rows[0].n, 1)
    await c2.end()
    ok(['db', 'delete', 'reader', ...scope])
    assert.match(coffer(['db', 'creds', 'reader', ...scope]).stderr, /ERR_NOT_FOUND/)
  })
})
