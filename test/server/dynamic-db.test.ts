// Dynamic PostgreSQL credentials against the real PostgreSQL here: a project admin defines a
// db role for an environment (the admin URL sealed), a reader gets a fresh login role that
// works with exactly the granted rights, and once it expires the dropper removes it — it no
// longer logs in and is gone from pg_roles. Attacker side: the admin URL and the password are
// in no answer, list or audit entry; another tenant's ids answer 404; an SSRF target and an
// over-long lifetime are refused. Coffer's own store on both engines; the target is PostgreSQL.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { createTestDatabase, pgAvailable } from '../helpers/pg.js'

function suite(engine: EngineName): void {
  let h: Harness
  let target: Awaited<ReturnType<typeof createTestDatabase>>
  let offsetMs = 0
  let owner: ReturnType<typeof api>
  let R: string

  before(async () => {
    if (!(await pgAvailable())) throw new Error('PostgreSQL is needed as the target database')
    target = await createTestDatabase()
    const c = new pg.Client({ connectionString: target.url })
    await c.connect()
    await c.query("CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, 'tea')")
    await c.end()
    h = await startHarness(engine, { COFFER_OUTBOUND_ALLOW: '127.0.0.1/32' }, { clock: () => new Date(Date.now() + offsetMs) })
    owner = api(h.app, h.a.token)
    assert.equal((await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Shop', slug: 'shop' })).status, 201)
    R = `/v1/workspaces/${h.a.slug}/projects/shop/environments/development/db-roles`
  })
  after(async () => {
    await h?.close()
    await target?.drop()
  })

  const login = async (url: string) => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
    c.on('error', () => {})
    await c.connect()
    return c
  }
  const roleExists = async (name: string) => {
    const c = await login(target.url)
    try {
      return (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1
    } finally {
      await c.end()
    }
  }

  test('a fresh login role with the granted rights, dropped after it expires', async () => {
    const made = await owner.post(R, {
      name: 'reader',
      adminUrl: target.url,
      creationSql: 'GRANT SELECT ON orders TO {{name}}',
      defaultTtlSeconds: 60,
      maxTtlSeconds: 600,
    })
    assert.equal(made.status, 201, JSON.stringify(made.body))
    assert.equal(made.body.role.target, `127.0.0.1:${new URL(target.url).port || 5432}/${new URL(target.url).pathname.slice(1)}`)
    assert.ok(!JSON.stringify(made.body).includes('postgres@'), 'no admin URL in the answer')

    const issued = await owner.post(`${R}/reader/credentials`, { ttlSeconds: 30 })
    assert.equal(issued.status, 201, JSON.stringify(issued.body))
    const creds = issued.body.credentials
    assert.match(creds.username, /^coffer_[0-9a-f]{16}$/)
    assert.ok(Date.parse(creds.expiresAt) - (Date.now() + offsetMs) <= 30_000)
    // It works, with exactly the granted rights.
    const c = await login(creds.url)
    assert.deepEqual((await c.query('SELECT item FROM orders')).rows, [{ item: 'tea' }])
    await assert.rejects(c.query("INSERT INTO orders VALUES (2, 'coffee')"), /permission denied/)
    await c.end()
    assert.equal(await roleExists(creds.username), true)

    // Nothing shows the password or the admin URL again.
    const listed = await owner.get(R)
    assert.equal(listed.status, 200)
    assert.ok(!JSON.stringify(listed.body).includes(creds.password))
    await h.settle()
    const entries = await h.db.selectFrom('audit_entries').select(['action', 'details']).where('workspace_id', '=', h.a.id).execute()
    const issue = entries.find((e) => e.action === 'db.credentials_issue')
    assert.ok(issue?.details.includes(creds.username))
    assert.ok(!entries.some((e) => e.details.includes(creds.password)), 'no password in the audit log')
    const row = await h.db.selectFrom('db_roles').select('admin_url_ct').executeTakeFirstOrThrow()
    assert.ok(!Buffer.from(row.admin_url_ct).includes(Buffer.from('127.0.0.1')), 'the admin URL is sealed')

    // Before expiry the dropper leaves it; after, it drops it and it no longer logs in.
    assert.equal(await h.ctx.dbDropper.run(), 0)
    offsetMs += 31_000
    assert.equal(await h.ctx.dbDropper.run(), 1)
    assert.equal(await roleExists(creds.username), false)
    await assert.rejects(login(creds.url), /does not exist|authentication failed/)
    await h.settle()
    const dropped = await h.db
      .selectFrom('audit_entries')
      .select(['actor_type', 'details'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'db.credentials_dropped')
      .executeTakeFirstOrThrow()
    assert.equal(dropped.actor_type, 'system')
  })

  test('deleting a db role expires its live login roles, which the dropper then drops', async () => {
    const issued = await owner.post(`${R}/reader/credentials`)
    assert.equal(issued.status, 201)
    const name = issued.body.credentials.username
    assert.equal(await roleExists(name), true)
    assert.equal((await owner.del(`${R}/reader`)).status, 200)
    assert.equal((await owner.post(`${R}/reader/credentials`)).status, 404)
    await h.ctx.dbDropper.run()
    assert.equal(await roleExists(name), false)
    assert.equal(await h.db.selectFrom('db_roles').select('id').executeTakeFirst(), undefined, 'forgotten once its roles are gone')
  })

  test('attacker side: SSRF admin URLs, lifetimes beyond the longest, other tenants, bad grant SQL', async () => {
    for (const adminUrl of ['postgres://u:p@169.254.169.254:5432/db', 'postgres://u:p@10.0.0.5/db', 'postgres://u:p@0x7f.1/db']) {
      const r = await owner.post(R, { name: 'evil', adminUrl, creationSql: 'GRANT SELECT ON orders TO {{name}}' })
      assert.equal(r.status, 400, adminUrl)
      assert.equal(r.body.error.code, 'ERR_OUTBOUND_REFUSED', adminUrl)
    }
    const noName = await owner.post(R, { name: 'x', adminUrl: target.url, creationSql: 'GRANT SELECT ON orders TO PUBLIC' })
    assert.equal(noName.status, 400)
    assert.equal(
      (await owner.post(R, { name: 'short', adminUrl: target.url, creationSql: 'GRANT SELECT ON orders TO {{name}}', maxTtlSeconds: 60 }))
        .status,
      201,
    )
    const tooLong = await owner.post(`${R}/short/credentials`, { ttlSeconds: 600 })
    assert.equal(tooLong.status, 400)
    const other = api(h.app, h.b.token)
    assert.equal((await other.get(R)).status, 404)
    assert.equal((await other.post(`${R}/short/credentials`)).status, 404)
    const bad = await owner.post(R, { name: 'broken', adminUrl: target.url, creationSql: 'GRANT SELECT ON no_such_table TO {{name}}' })
    assert.equal(bad.status, 201)
    const failed = await owner.post(`${R}/broken/credentials`)
    assert.equal(failed.status, 502)
    assert.equal(failed.body.error.code, 'ERR_DB_CREDENTIALS')
    assert.doesNotMatch(failed.body.error.message, /no_such_table/, 'the database server’s message is not passed on')
    // The refused issuance left no role behind and no lease (its transaction failed).
    assert.equal(await h.db.selectFrom('db_leases').select('id').where('dropped_at', 'is', null).executeTakeFirst(), undefined)
  })
}

describeEachEngine(suite)
