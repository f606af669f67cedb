// The attacker's side: what someone with a stolen or foreign token, a hostile request body, or
// write access to the database (but not to the root key) can and cannot get out of Coffer.
// Values are random canaries; assertions never print them (assert.ok with fixed messages).
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { generateToken, hashToken } from '../../src/identity/token-format.js'
import { issueToken } from '../../src/identity/identity-service.js'
import { API_ROUTES, buildApp } from '../../src/server/app.js'
import type { AnyRoute } from '../../src/server/route.js'
import type { Store } from '../../src/storage/database.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { describeEachEngine } from '../helpers/engines.js'
import { fillUrl, sampleBody } from '../helpers/routes.js'

const canary = (label: string) => `${label}-${randomBytes(18).toString('hex')}`

/** The byte forms a leaked value could take: UTF-8, hex (both cases), base64 and base64url at every alignment. */
function leakForms(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8')
  const forms = [bytes, Buffer.from(bytes.toString('hex')), Buffer.from(bytes.toString('hex').toUpperCase())]
  for (let k = 0; k < 3; k++) {
    const chunk = bytes.subarray(k, k + Math.floor((bytes.length - k) / 3) * 3)
    forms.push(Buffer.from(chunk.toString('base64')), Buffer.from(chunk.toString('base64url')))
  }
  return forms
}

/** Asserts that none of `values` appears in `haystack` in any form, without printing them. */
function assertAbsent(haystack: Buffer | string, values: string[], where: string): void {
  const h = typeof haystack === 'string' ? Buffer.from(haystack, 'utf8') : haystack
  values.forEach((v, i) => {
    for (const form of leakForms(v)) assert.ok(!h.includes(form), `sensitive value #${i} leaked into ${where}`)
  })
}

/** Every row of every table, as text: PostgreSQL's own row text, SQLite rows as JSON with blobs in hex. */
async function dumpDatabase(store: Pick<Store, 'engine' | 'db'>): Promise<string> {
  const parts: string[] = []
  if (store.engine === 'postgres') {
    const { rows: tables } = await sql<{
      name: string
    }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()`.execute(store.db)
    assert.ok(tables.length >= 10, 'found the schema tables')
    for (const { name } of tables) {
      const { rows } = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(name)} t`.execute(store.db)
      parts.push(`${name}: ${rows.map((r) => r.row).join('\n')}`)
    }
  } else {
    const { rows: tables } = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.execute(store.db)
    assert.ok(tables.length >= 10, 'found the schema tables')
    for (const { name } of tables) {
      const { rows } = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(name)}`.execute(store.db)
      parts.push(
        `${name}: ${JSON.stringify(rows, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v))}`,
      )
    }
  }
  return parts.join('\n')
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p)))
    else out.push(p)
  }
  return out
}

const NO_STACK = /\bat\s+\S+.*\(?[^\s()]+:\d+:\d+\)?|node:internal|\/src\/|\.ts:\d+/

/** An error response: the status, the stable code, no stack trace, and none of `secrets` echoed. */
function assertError(res: { status: number; body: unknown }, status: number, code: string, secrets: string[] = []): void {
  const text = JSON.stringify(res.body)
  assert.equal(res.status, status, `status for ${code}`)
  assert.equal((res.body as { error?: { code?: string } })?.error?.code, code)
  assert.ok(!NO_STACK.test(text), 'no stack trace or source path in an error response')
  assertAbsent(text, secrets, 'an error response')
}

type Client = ReturnType<typeof api>

async function createProject(c: Client, ws: string, name: string): Promise<{ id: string; slug: string; envs: Record<string, string> }> {
  const r = await c.post(`/v1/workspaces/${ws}/projects`, { name })
  assert.equal(r.status, 201)
  const envs: Record<string, string> = {}
  for (const e of r.body.environments as Array<{ slug: string; id: string }>) envs[e.slug] = e.id
  return { id: r.body.project.id, slug: r.body.project.slug, envs }
}

async function putSecret(c: Client, envUrl: string, key: string, body: Record<string, unknown>): Promise<{ id: string; version: number }> {
  const r = await c.put(`${envUrl}/secrets/${key}`, body)
  assert.equal(r.status, 200, `PUT ${key}`)
  return { id: r.body.secret.id, version: r.body.secret.version }
}

function suite(engine: EngineName): void {
  describe('copied ciphertext fails to decrypt wherever it is moved', () => {
    let h: Harness
    let a: Client
    let b: Client
    const values: Record<string, string> = {}
    let devUrl: string
    let prodUrl: string
    let bDevUrl: string
    const ids: Record<string, string> = {}

    before(async () => {
      h = await startHarness(engine)
      a = api(h.app, h.a.token)
      b = api(h.app, h.b.token)
      const pa = await createProject(a, h.a.slug, 'Payments')
      const pb = await createProject(b, h.b.slug, 'Payments')
      devUrl = `/v1/workspaces/${h.a.slug}/projects/${pa.slug}/environments/development`
      prodUrl = `/v1/workspaces/${h.a.slug}/projects/${pa.slug}/environments/production`
      bDevUrl = `/v1/workspaces/${h.b.slug}/projects/${pb.slug}/environments/development`
      for (const k of ['S1_v1', 'S1_v2', 'S2_v1', 'S2_v2', 'S3', 'S4', 'S4_comment', 'S5', 'P1', 'B1', 'B2']) values[k] = canary(k)
      ids.S1 = (await putSecret(a, devUrl, 'S1', { value: values.S1_v1! })).id
      await putSecret(a, devUrl, 'S1', { value: values.S1_v2! })
      ids.S2 = (await putSecret(a, devUrl, 'S2', { value: values.S2_v1! })).id
      await putSecret(a, devUrl, 'S2', { value: values.S2_v2! })
      ids.S3 = (await putSecret(a, devUrl, 'S3', { value: values.S3! })).id
      ids.S4 = (await putSecret(a, devUrl, 'S4', { value: values.S4!, comment: values.S4_comment! })).id
      ids.S5 = (await putSecret(a, devUrl, 'S5', { value: values.S5! })).id
      ids.P1 = (await putSecret(a, prodUrl, 'P1', { value: values.P1! })).id
      ids.B1 = (await putSecret(b, bDevUrl, 'B1', { value: values.B1! })).id
      ids.B2 = (await putSecret(b, bDevUrl, 'B2', { value: values.B2! })).id

      const db = h.db
      const row = (id: string, version: number) =>
        db
          .selectFrom('secret_versions')
          .select(['value_ct', 'comment_ct'])
          .where('secret_id', '=', id)
          .where('version', '=', version)
          .executeTakeFirstOrThrow()
      const setCt = (id: string, version: number, set: { value_ct?: Buffer | null; comment_ct?: Buffer | null }) =>
        db.updateTable('secret_versions').set(set).where('secret_id', '=', id).where('version', '=', version).execute()
      const s1 = Buffer.from((await row(ids.S1!, 2)).value_ct!)
      await setCt(ids.S2!, 2, { value_ct: s1 }) // another secret, same environment
      await setCt(ids.S1!, 1, { value_ct: s1 }) // another version of the same secret
      await setCt(ids.P1!, 1, { value_ct: s1 }) // another environment
      await setCt(ids.B1!, 1, { value_ct: s1 }) // another workspace
      const s4 = await row(ids.S4!, 1)
      await setCt(ids.S4!, 1, { value_ct: s4.comment_ct, comment_ct: s4.value_ct }) // another field
      const s5 = Buffer.from((await row(ids.S5!, 1)).value_ct!)
      s5[s5.length - 20]! ^= 0x01 // one flipped bit of the ciphertext body
      await setCt(ids.S5!, 1, { value_ct: s5 })
    })
    after(() => h?.close())

    const all = () => Object.values(values)

    test('onto another secret of the same environment', async () => {
      assertError(await a.get(`${devUrl}/secrets/S2?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
    })

    test('onto another version of the same secret', async () => {
      assertError(await a.get(`${devUrl}/secrets/S1/versions?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
      // Rolling back to the damaged version must fail too, and write nothing.
      assertError(await a.post(`${devUrl}/secrets/S1/rollback`, { version: 1 }), 500, 'ERR_DECRYPTION_FAILED', all())
      const r = await a.get(`${devUrl}/secrets/S1?reveal=true`)
      assert.equal(r.status, 200, 'the intact current version still reads')
      assert.equal(r.body.secret.version, 2, 'the failed rollback wrote no version')
      assert.ok(r.body.secret.value === values.S1_v2, 'S1 current value intact')
    })

    test('onto a secret of another environment', async () => {
      assertError(await a.get(`${prodUrl}/secrets/P1?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
      assertError(await a.get(`${prodUrl}/secrets?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
    })

    test('onto a secret of another workspace', async () => {
      assertError(await b.get(`${bDevUrl}/secrets/B1?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
      const r = await b.get(`${bDevUrl}/secrets/B2?reveal=true`)
      assert.equal(r.status, 200)
      assert.ok(r.body.secret.value === values.B2, 'B2 intact')
    })

    test('into another field of the same version (value and comment swapped)', async () => {
      assertError(await a.get(`${devUrl}/secrets/S4?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
    })

    test('a flipped bit', async () => {
      assertError(await a.get(`${devUrl}/secrets/S5?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
    })

    test('untouched secrets still read, listing without reveal works, and the server keeps serving', async () => {
      const s3 = await a.get(`${devUrl}/secrets/S3?reveal=true`)
      assert.equal(s3.status, 200)
      assert.ok(s3.body.secret.value === values.S3, 'S3 intact')
      const list = await a.get(`${devUrl}/secrets`)
      assert.equal(list.status, 200)
      assert.deepEqual(
        list.body.secrets.map((s: { key: string }) => s.key),
        ['S1', 'S2', 'S3', 'S4', 'S5'],
      )
      assertAbsent(JSON.stringify(list.body), all(), 'a non-revealing list')
      // A reveal of the whole environment includes damaged rows, so it fails as a whole.
      assertError(await a.get(`${devUrl}/secrets?reveal=true`), 500, 'ERR_DECRYPTION_FAILED', all())
      assert.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
      assert.equal((await h.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
      const again = await a.get(`${devUrl}/secrets/S3?reveal=true`)
      assert.equal(again.status, 200)
      assert.equal((await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)).body.ok, true)
    })
  })

  describe('no plaintext at rest', () => {
    test('a canary value and comment never reach the database, its files, the audit log or the logs', async () => {
      const h = await startHarness(engine)
      let closed = false
      try {
        const a = api(h.app, h.a.token)
        const value = canary('value')
        const comment = canary('comment')
        const value2 = canary('value2')
        const secrets = [value, comment, value2]
        const p = await createProject(a, h.a.slug, 'Canary')
        const envUrl = `/v1/workspaces/${h.a.slug}/projects/${p.slug}/environments/production`
        await putSecret(a, envUrl, 'CANARY', { value, comment })
        await putSecret(a, envUrl, 'CANARY', { value: value2, comment })
        assert.equal((await a.post(`${envUrl}/secrets/CANARY/rollback`, { version: 1 })).status, 200)
        assert.equal((await a.post(`${envUrl}/secrets`, { secrets: [{ key: 'CANARY_BULK', value, comment }] })).status, 200)
        const revealed = await a.get(`${envUrl}/secrets/CANARY?reveal=true`)
        assert.ok(
          revealed.body.secret.value === value && revealed.body.secret.comment === comment,
          'the API gives the values back to their owner',
        )
        assert.equal((await a.get(`${envUrl}/secrets?reveal=true`)).status, 200)
        assert.equal((await a.get(`${envUrl}/secrets/CANARY/versions?reveal=true`)).status, 200)
        assert.equal((await a.del(`${envUrl}/secrets/CANARY_BULK`)).status, 200)

        // The same requests through an app that logs everything: no value in any log line.
        const logLines: string[] = []
        const loud = await buildApp(h.ctx, { logger: { level: 'trace', stream: { write: (line: string) => void logLines.push(line) } } })
        await loud.ready()
        try {
          const la = api(loud, h.a.token)
          await putSecret(la, envUrl, 'CANARY_LOGGED', { value, comment })
          assert.equal((await la.get(`${envUrl}/secrets/CANARY_LOGGED?reveal=true`)).status, 200)
          assertError(await la.put(`${envUrl}/secrets/1BAD`, { value }), 400, 'ERR_VALIDATION', secrets)
          assertError(await la.put(`${envUrl}/secrets/GOOD`, { value, extra: comment }), 400, 'ERR_VALIDATION', secrets)
        } finally {
          await loud.close()
        }
        assert.ok(logLines.length > 0, 'the loud app logged')
        assertAbsent(logLines.join('\n'), [...secrets, h.a.token], 'the server log (values and the Bearer token)')

        // The audit log holds keyed fingerprints, never the values.
        const entries = await a.get(`/v1/workspaces/${h.a.slug}/audit/entries`)
        assert.equal(entries.status, 200)
        const auditText = JSON.stringify(entries.body)
        assertAbsent(auditText, secrets, 'the audit log')
        const create = (entries.body.entries as Array<{ action: string; details: string }>).find((e) => e.action === 'secret.create')
        assert.ok(create, 'a secret.create entry')
        assert.match(JSON.parse(create.details).after, /^hmac-sha256:[A-Za-z0-9_-]{43}$/)

        const dump = await dumpDatabase({ engine: h.engine, db: h.db })
        assert.ok(dump.includes('CANARY'), 'the dump sees the secret rows (keys are not secret)')
        assertAbsent(dump, secrets, 'a database dump')

        if (engine === 'sqlite') {
          const wal = join(h.dataDir, 'coffer.db-wal')
          if (existsSync(wal)) assertAbsent(await readFile(wal), secrets, 'the SQLite WAL before checkpoint')
          await h.app.close()
          await h.ctx.close()
          closed = true
        }
        const files = await filesUnder(h.dataDir)
        if (engine === 'sqlite')
          assert.ok(
            files.some((f) => f.endsWith('coffer.db')),
            'the database file is in the data dir',
          )
        for (const f of files) assertAbsent(await readFile(f), secrets, `data dir file ${f.slice(h.dataDir.length)}`)
      } finally {
        if (closed) await rm(h.dataDir, { recursive: true, force: true })
        else await h.close()
      }
    })
  })

  describe('tenant isolation: another workspace answers 404, never 403', () => {
    let h: Harness
    let a: Client
    let b: Client
    let bRefs: { slug: Record<string, string>; id: Record<string, string> }
    let aProject: { id: string; slug: string; envs: Record<string, string> }
    let bProject: { id: string; slug: string; envs: Record<string, string> }
    const bValue = canary('b-value')

    // A valid body for each route that takes one, so that the answer is about the workspace
    // and not about validation.
    const SAMPLE_BODIES: Record<string, unknown> = {
      'POST /v1/workspaces/:workspace/webhooks': { url: 'http://127.0.0.1:9/a-hook', events: ['secret.updated'] },
      'POST /v1/workspaces/:workspace/connections': {
        name: 'attack',
        authorizeUrl: 'https://127.0.0.1:9/authorize',
        tokenUrl: 'https://127.0.0.1:9/token',
        clientId: 'attack',
        clientSecret: 'attack-secret',
        apiBase: 'https://127.0.0.1:9/api',
        allow: ['GET /*'],
      },
      ...Object.fromEntries(
        ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => [
          `${m} /v1/workspaces/:workspace/connections/:connection/relay/*`,
          Buffer.from('{}'),
        ]),
      ),
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/db-roles': {
        name: 'attack',
        adminUrl: 'postgres://u:p@127.0.0.1:9/db',
        creationSql: 'GRANT SELECT ON t TO {{name}}',
      },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/aws-roles': {
        name: 'attack',
        roleArn: 'arn:aws:iam::123456789012:role/attack',
      },
      'POST /v1/workspaces/:workspace/tokens': { name: 'stolen' },
      'POST /v1/workspaces/:workspace/projects': { name: 'Intruder', slug: 'intruder' },
      'POST /v1/workspaces/:workspace/projects/:project/environments': { name: 'Intruder', slug: 'intruder' },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key': { value: 'overwritten' },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets': {
        secrets: [{ key: 'B_SECRET', value: 'overwritten' }],
      },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key/rollback': { version: 1 },
      'DELETE /v1/workspaces/:workspace': { confirm: 'globex' },
      'PATCH /v1/workspaces/:workspace/projects/:project': { name: 'Owned' },
      'DELETE /v1/workspaces/:workspace/projects/:project': { confirm: 'globex-app', force: true },
      'PATCH /v1/workspaces/:workspace/projects/:project/environments/:environment': { name: 'Owned' },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/imports': { imports: [{ environment: 'staging' }] },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/personal-overrides': { allowed: true },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key/personal': { value: 'overwritten' },
      'DELETE /v1/workspaces/:workspace/projects/:project/environments/:environment': { confirm: 'development', force: true },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/apply': {
        upserts: [{ key: 'B_SECRET', value: 'overwritten' }],
        replace: true,
      },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/copy': {
        keys: ['B_SECRET'],
        to: { environment: 'staging' },
        overwrite: true,
      },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/seal': { sealed: true },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/protection': { approvals: 0 },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/promote': {
        from: { environment: 'staging' },
        all: true,
      },
      'POST /v1/workspaces/:workspace/change-requests/:request/approve': { comment: 'intrusion' },
      'POST /v1/workspaces/:workspace/change-requests/:request/reject': { comment: 'intrusion' },
      'POST /v1/workspaces/:workspace/break-glass': {
        project: 'globex-app',
        environment: 'development',
        access: 'read-write',
        reason: 'intrusion',
        durationMinutes: 5,
      },
      'PUT /v1/workspaces/:workspace/members/:user': { role: 'member' },
      'PUT /v1/workspaces/:workspace/projects/:project/members/:user': { role: 'admin' },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/restriction': { restricted: false },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/grants/:user': { access: 'write' },
      'POST /v1/workspaces/:workspace/invitations': { email: 'intruder@acme.test', role: 'owner' },
      'POST /v1/workspaces/:workspace/machines': {
        name: 'intruder',
        scopes: [{ project: 'globex-app', environments: '*', access: 'write' }],
      },
      'POST /v1/workspaces/:workspace/machines/:machine/oidc-rules': {
        rules: [{ issuer: 'http://127.0.0.1:9', audiences: ['intruder'], claims: { sub: 'repo:intruder/x:ref:refs/heads/main' } }],
      },
      'POST /v1/workspaces/:workspace/service-tokens': {
        name: 'intruder',
        scopes: [{ project: 'globex-app', environments: '*', access: 'write' }],
      },
      'POST /v1/workspaces/:workspace/auth-links': { email: 'owner@globex.test', purpose: 'reset' },
    }
    const bodyFor = (r: AnyRoute) => sampleBody(r, SAMPLE_BODIES)
    // B has a single Owner, so it cannot make a break-glass request (test/server/break-glass.test.ts
    // checks another workspace's real request ids); a well-formed id still exercises the tenant check.
    const NO_SUCH_REQUEST = '00000000-0000-4000-8000-00000000b10c'
    const fill = fillUrl
    async function call(token: string, r: AnyRoute, url: string) {
      const body = bodyFor(r)
      const res = await h.app.inject({
        method: r.method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body as object }),
      })
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined }
    }
    async function snapshotB() {
      const db = h.db
      const ws = h.b.id
      // What B queued is integrated (the sequencer would, within the merge delay).
      await h.ctx.sequencer.catchUp(ws)
      return {
        workspaces: await db.selectFrom('workspaces').selectAll().where('id', '=', ws).execute(),
        memberships: await db.selectFrom('memberships').selectAll().where('workspace_id', '=', ws).orderBy('user_id').execute(),
        tokens: await db.selectFrom('tokens').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        projects: await db.selectFrom('projects').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        environments: await db.selectFrom('environments').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        projectMembers: await db
          .selectFrom('project_members')
          .selectAll()
          .where('workspace_id', '=', ws)
          .orderBy('project_id')
          .orderBy('user_id')
          .execute(),
        grants: await db
          .selectFrom('environment_grants')
          .selectAll()
          .where('workspace_id', '=', ws)
          .orderBy('environment_id')
          .orderBy('user_id')
          .execute(),
        invitations: await db.selectFrom('invitations').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        machines: await db.selectFrom('machine_identities').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        machineTokens: await db.selectFrom('machine_tokens').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        machineOidcRules: await db.selectFrom('machine_oidc_rules').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        serviceTokens: await db.selectFrom('service_tokens').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        dataKeys: await db.selectFrom('data_keys').selectAll().where('workspace_id', '=', ws).orderBy('id').orderBy('version').execute(),
        keyJobs: await db
          .selectFrom('key_jobs')
          .select(['id', 'state', 'target_version', 'total'])
          .where('workspace_id', '=', ws)
          .orderBy('id')
          .execute(),
        secrets: await db.selectFrom('secrets').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        versions: await db
          .selectFrom('secret_versions')
          .selectAll()
          .where('workspace_id', '=', ws)
          .orderBy('secret_id')
          .orderBy('version')
          .execute(),
        // The chain's tip (not the sequencer's lease beside it, renewed as nodes sequence).
        auditHead: await db
          .selectFrom('audit_heads')
          .select(['workspace_id', 'seq', 'hash', 'peaks'])
          .where('workspace_id', '=', ws)
          .execute(),
        audit: await db.selectFrom('audit_entries').selectAll().where('workspace_id', '=', ws).orderBy('seq').execute(),
        auditQueue: await db.selectFrom('audit_queue').selectAll().where('workspace_id', '=', ws).orderBy('qid').execute(),
        webhooks: await db.selectFrom('webhook_endpoints').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        connections: await db.selectFrom('connections').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        connectionLinks: await db.selectFrom('connection_links').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        dbRoles: await db.selectFrom('db_roles').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        awsRoles: await db.selectFrom('aws_roles').selectAll().where('workspace_id', '=', ws).orderBy('id').execute(),
        awsExternalIds: await db.selectFrom('aws_external_ids').selectAll().where('workspace_id', '=', ws).execute(),
      }
    }

    before(async () => {
      // B's webhook points at a loopback port nothing answers (it is only ever addressed, not delivered to here).
      h = await startHarness(engine, { COFFER_OUTBOUND_ALLOW: '127.0.0.1/32' })
      a = api(h.app, h.a.token)
      b = api(h.app, h.b.token)
      aProject = await createProject(a, h.a.slug, 'Acme App')
      bProject = await createProject(b, h.b.slug, 'Globex App')
      const bEnv = `/v1/workspaces/${h.b.slug}/projects/${bProject.slug}/environments/development`
      await putSecret(b, bEnv, 'B_SECRET', { value: bValue })
      await putSecret(b, bEnv, 'B_SECRET', { value: canary('b-value-2') })
      const me = await b.get('/v1/me')
      const rotated = await b.post(`${bEnv}/keys/rotate`, {})
      assert.equal(rotated.status, 202)
      const job = rotated.body.job.id as string
      // Let B's reseal finish so B's rows hold still while the test compares them.
      for (let i = 0; i < 200 && (await b.get(`/v1/workspaces/${h.b.slug}/key-jobs/${job}`)).body.job.state !== 'done'; i++)
        await new Promise((r) => setTimeout(r, 25))
      // A member of B (with a project role) and a pending invitation of B, for the member routes.
      const invited = await b.post(`/v1/workspaces/${h.b.slug}/invitations`, { email: 'pending@globex.test' })
      assert.equal(invited.status, 201)
      const user = me.body.user.id as string
      const invitation = invited.body.invitation.id as string
      const scopes = [{ project: bProject.slug, environments: '*', access: 'write' }]
      const machine = (await b.post(`/v1/workspaces/${h.b.slug}/machines`, { name: 'b-ci', scopes })).body.machine.id as string
      const serviceToken = (await b.post(`/v1/workspaces/${h.b.slug}/service-tokens`, { name: 'b-deploy', scopes })).body.info.id as string
      // A trust rule of B's machine identity (an issuer on loopback, which the harness allows).
      const trusted = await b.post(`/v1/workspaces/${h.b.slug}/machines/${machine}/oidc-rules`, {
        rules: [{ issuer: 'http://127.0.0.1:9', audiences: ['globex'], claims: { sub: 'repo:globex/app:ref:refs/heads/main' } }],
      })
      assert.equal(trusted.status, 201)
      const rule = trusted.body.rules[0].id as string
      // B's webhook endpoint and a message to it, and B's dynamic database role (written directly:
      // no database server is needed to be refused access to it).
      const hook = await b.post(`/v1/workspaces/${h.b.slug}/webhooks`, { url: 'http://127.0.0.1:9/b-hook', events: ['webhook.test'] })
      assert.equal(hook.status, 201)
      const webhook = hook.body.webhook.id as string
      await h.ctx.webhooks.stop()
      const delivery = (await b.post(`/v1/workspaces/${h.b.slug}/webhooks/${webhook}/test`, {})).body.delivery.id as string
      await h.db
        .insertInto('db_roles')
        .values({
          id: randomUUID(),
          workspace_id: h.b.id,
          project_id: bProject.id,
          environment_id: bProject.envs.development!,
          name: 'b-reader',
          admin_url_ct: randomBytes(64),
          target: 'db.globex.test:5432/app',
          creation_sql: 'GRANT SELECT ON t TO {{name}}',
          default_ttl_seconds: 60,
          max_ttl_seconds: 60,
          created_at: new Date().toISOString(),
          created_by: user,
          deleted_at: null,
        })
        .execute()
      // B's AWS role of the same name (the :role of the aws-roles routes), and its external ID at version 3.
      await h.db
        .insertInto('aws_roles')
        .values({
          id: randomUUID(),
          workspace_id: h.b.id,
          project_id: bProject.id,
          environment_id: bProject.envs.development!,
          name: 'b-reader',
          role_arn: 'arn:aws:iam::123456789012:role/globex',
          region: null,
          max_duration_seconds: 3600,
          created_at: new Date().toISOString(),
          created_by: user,
        })
        .execute()
      await h.db
        .insertInto('aws_external_ids')
        .values({ workspace_id: h.b.id, version: 3, rotated_at: new Date().toISOString(), rotated_by: user })
        .execute()
      // B's OAuth connection and its app token (written directly: no provider is needed to be refused them).
      const connection = randomUUID()
      await h.db
        .insertInto('connections')
        .values({
          id: connection,
          workspace_id: h.b.id,
          name: 'b-tracker',
          authorize_url: 'https://idp.globex.test/authorize',
          token_url: 'https://idp.globex.test/token',
          client_id: 'globex',
          client_secret_ct: randomBytes(64),
          token_auth: 'client_secret_basic',
          scopes: 'api',
          api_base: 'https://api.globex.test',
          allow_rules: JSON.stringify(['GET /*', 'POST /*', 'PUT /*', 'PATCH /*', 'DELETE /*']),
          created_at: new Date().toISOString(),
          created_by: user,
        })
        .execute()
      await h.db
        .insertInto('connection_links')
        .values({
          id: randomUUID(),
          workspace_id: h.b.id,
          connection_id: connection,
          kind: 'app',
          owner: 'app',
          token_version: 1,
          access_token_ct: randomBytes(64),
          refresh_token_ct: null,
          expires_at: null,
          scopes: 'api',
          status: 'connected',
          linked_at: new Date().toISOString(),
          linked_by: user,
          refreshed_at: null,
          last_error: null,
        })
        .execute()
      bRefs = {
        slug: {
          workspace: h.b.slug,
          project: bProject.slug,
          environment: 'development',
          key: 'B_SECRET',
          token: me.body.tokenId,
          job,
          request: NO_SUCH_REQUEST,
          user,
          invitation,
          machine,
          rule,
          serviceToken,
          webhook,
          connection,
          delivery,
          role: 'b-reader',
        },
        id: {
          workspace: h.b.id,
          project: bProject.id,
          environment: bProject.envs.development!,
          key: 'B_SECRET',
          token: me.body.tokenId,
          job,
          request: NO_SUCH_REQUEST,
          user,
          invitation,
          machine,
          rule,
          serviceToken,
          webhook,
          connection,
          delivery,
          role: 'b-reader',
        },
      }
    })
    after(() => h?.close())

    test("every workspace route of B, by slug and by id, with A's token", async () => {
      const before = await snapshotB()
      const routes = API_ROUTES.filter((r) => r.url.includes(':workspace'))
      assert.ok(routes.length >= 15, 'the route table has the workspace routes')
      const seen: string[] = []
      for (const r of routes) {
        for (const by of ['slug', 'id'] as const) {
          const url = fill(r.url, bRefs[by])
          const res = await call(h.a.token, r, url)
          assert.notEqual(res.status, 403, `${r.method} ${r.url} by ${by} must not say 403`)
          assert.equal(res.status, 404, `${r.method} ${r.url} by ${by}`)
          assert.equal(res.body?.error?.code, 'ERR_NOT_FOUND', `${r.method} ${r.url} by ${by}`)
          assertAbsent(JSON.stringify(res.body), [bValue], 'a cross-tenant answer')
          seen.push(`${r.method} ${r.url}`)
        }
      }
      for (const must of [
        'GET /v1/workspaces/:workspace/projects',
        'GET /v1/workspaces/:workspace/audit/entries',
        'GET /v1/workspaces/:workspace/tokens',
        'DELETE /v1/workspaces/:workspace/tokens/:token',
      ]) {
        assert.ok(seen.includes(must), `covered ${must}`)
      }
      assert.deepEqual(await snapshotB(), before, "B's data, tokens and audit log are unchanged")
    })

    test("B's project, environment and token ids under A's own workspace path", async () => {
      const before = await snapshotB()
      const mixes: Array<Record<string, string>> = [
        {
          workspace: h.a.slug,
          project: bProject.id,
          environment: 'development',
          key: 'B_SECRET',
          token: bRefs.id.token!,
          job: bRefs.id.job!,
          request: bRefs.id.request!,
          user: bRefs.id.user!,
          invitation: bRefs.id.invitation!,
          machine: bRefs.id.machine!,
          rule: bRefs.id.rule!,
          serviceToken: bRefs.id.serviceToken!,
          webhook: bRefs.id.webhook!,
          connection: bRefs.id.connection!,
          delivery: bRefs.id.delivery!,
          role: bRefs.id.role!,
        },
        {
          workspace: h.a.id,
          project: bProject.id,
          environment: bProject.envs.development!,
          key: 'B_SECRET',
          token: bRefs.id.token!,
          job: bRefs.id.job!,
          request: bRefs.id.request!,
          user: bRefs.id.user!,
          invitation: bRefs.id.invitation!,
          machine: bRefs.id.machine!,
          rule: bRefs.id.rule!,
          serviceToken: bRefs.id.serviceToken!,
          webhook: bRefs.id.webhook!,
          connection: bRefs.id.connection!,
          delivery: bRefs.id.delivery!,
          role: bRefs.id.role!,
        },
        {
          workspace: h.a.slug,
          project: bProject.slug,
          environment: 'development',
          key: 'B_SECRET',
          token: bRefs.id.token!,
          job: bRefs.id.job!,
          request: bRefs.id.request!,
          user: bRefs.id.user!,
          invitation: bRefs.id.invitation!,
          machine: bRefs.id.machine!,
          rule: bRefs.id.rule!,
          serviceToken: bRefs.id.serviceToken!,
          webhook: bRefs.id.webhook!,
          connection: bRefs.id.connection!,
          delivery: bRefs.id.delivery!,
          role: bRefs.id.role!,
        },
        {
          workspace: h.a.slug,
          project: aProject.id,
          environment: bProject.envs.development!,
          key: 'B_SECRET',
          token: bRefs.id.token!,
          job: bRefs.id.job!,
          request: bRefs.id.request!,
          user: bRefs.id.user!,
          invitation: bRefs.id.invitation!,
          machine: bRefs.id.machine!,
          rule: bRefs.id.rule!,
          serviceToken: bRefs.id.serviceToken!,
          webhook: bRefs.id.webhook!,
          connection: bRefs.id.connection!,
          delivery: bRefs.id.delivery!,
          role: bRefs.id.role!,
        },
      ]
      for (const refs of mixes) {
        let aimed = 0
        for (const r of API_ROUTES) {
          const names = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!)
          // Only routes that take one of B's references: with A's own project, a route that
          // stops at the project would rightly find it.
          const aimsAtB =
            ['token', 'user', 'invitation', 'machine', 'rule', 'serviceToken'].some((n) => names.includes(n)) ||
            (refs.project === aProject.id ? names.includes('environment') : names.includes('project'))
          if (!aimsAtB) continue
          aimed++
          const res = await call(h.a.token, r, fill(r.url, refs))
          assert.notEqual(res.status, 403, `${r.method} ${r.url} must not say 403`)
          assert.equal(res.status, 404, `${r.method} ${r.url} with ${JSON.stringify(Object.keys(refs))}`)
          assert.equal(res.body?.error?.code, 'ERR_NOT_FOUND')
        }
        assert.ok(aimed >= 9, 'the mix reached the routes that take references')
      }
      assert.deepEqual(await snapshotB(), before, 'B is unchanged')
    })

    test('B still works for B afterwards', async () => {
      const bEnv = `/v1/workspaces/${h.b.id}/projects/${bProject.id}/environments/development`
      const r = await b.get(`${bEnv}/secrets/B_SECRET/versions?reveal=true`)
      assert.equal(r.status, 200)
      assert.equal(r.body.versions.length, 2)
      assert.ok(r.body.versions[1].value === bValue, "B's first version intact")
      assert.equal((await b.get(`/v1/workspaces/${h.b.slug}/audit/verify`)).body.ok, true)
      assert.equal((await a.get(`/v1/workspaces/${h.a.slug}/audit/verify`)).body.ok, true)
    })
  })

  describe('tokens', () => {
    let h: Harness
    before(async () => {
      h = await startHarness(engine)
    })
    after(() => h?.close())

    const me = (authorization: string | undefined) =>
      h.app
        .inject({ method: 'GET', url: '/v1/me', headers: authorization === undefined ? {} : { authorization } })
        .then((r) => ({ status: r.statusCode, body: JSON.parse(r.body) as unknown }))

    test('missing, malformed, mis-checksummed and unknown tokens answer 401 ERR_UNAUTHENTICATED', async () => {
      const valid = h.a.token
      assert.equal((await me(`Bearer ${valid}`)).status, 200)
      const last = valid.at(-1)!
      const otherChar = last === 'A' ? 'B' : 'A'
      const bodyChar = valid[15] === 'x' ? 'y' : 'x'
      const cases: Array<[string, string | undefined]> = [
        ['no header', undefined],
        ['empty', ''],
        ['scheme only', 'Bearer'],
        ['Basic scheme', `Basic ${Buffer.from(`user:${valid}`).toString('base64')}`],
        ['garbage', 'Bearer not-a-token'],
        ['prefix only', 'Bearer coffer_pat_'],
        ['too short', `Bearer ${valid.slice(0, -1)}`],
        ['too long', `Bearer ${valid}A`],
        ['two tokens', `Bearer ${valid} ${valid}`],
        ['wrong prefix', `Bearer ${valid.replace('coffer_pat_', 'coffer_xyz_')}`],
        ['upper-cased', `Bearer ${valid.toUpperCase()}`],
        ['wrong checksum', `Bearer ${valid.slice(0, -1)}${otherChar}`],
        ['body changed, old checksum', `Bearer ${valid.slice(0, 15)}${bodyChar}${valid.slice(16)}`],
        ['unknown well-formed', `Bearer ${generateToken('pat')}`],
        ['token hash instead of token', `Bearer ${hashToken(valid).toString('hex')}`],
      ]
      for (const [label, header] of cases) {
        const r = await me(header)
        assert.equal(r.status, 401, label)
        assert.equal((r.body as { error: { code: string } }).error.code, 'ERR_UNAUTHENTICATED', label)
        assert.ok(!JSON.stringify(r.body).includes(valid), `${label}: the token is not echoed`)
      }
    })

    test('a revoked token answers 401, and so does an expired one', async () => {
      const a = api(h.app, h.a.token)
      const created = await a.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'ci' })
      assert.equal(created.status, 201)
      const token = created.body.token as string
      const tokenId = created.body.info.id as string
      assert.ok(!created.body.info.display.includes(token.slice(11, -4)), 'the display form hides the token body')
      const c = api(h.app, token)
      assert.equal((await c.get('/v1/me')).status, 200)
      assert.equal((await c.get(`/v1/workspaces/${h.a.slug}/projects`)).status, 200)
      const revoked = await a.del(`/v1/workspaces/${h.a.slug}/tokens/${tokenId}`)
      assert.equal(revoked.status, 200)
      assert.ok(revoked.body.info.revokedAt, 'revokedAt is set')
      for (const url of ['/v1/me', `/v1/workspaces/${h.a.slug}/projects`, `/v1/workspaces/${h.a.slug}/tokens`]) {
        assertError(await c.get(url), 401, 'ERR_UNAUTHENTICATED')
      }
      assertError(await c.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'After revoke' }), 401, 'ERR_UNAUTHENTICATED')
      // A token can revoke itself, after which it is dead too.
      const self = await a.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'self' })
      const sc = api(h.app, self.body.token)
      assert.equal((await sc.del(`/v1/workspaces/${h.a.slug}/tokens/${self.body.info.id}`)).status, 200)
      assertError(await sc.get('/v1/me'), 401, 'ERR_UNAUTHENTICATED')

      const me0 = await a.get('/v1/me')
      const expired = await h.ctx.committer.run((tx) =>
        issueToken(
          tx,
          {
            workspaceId: h.a.id,
            userId: me0.body.user.id,
            name: 'old',
            expiresAt: new Date(Date.now() - 1000).toISOString(),
          },
          new Date(),
        ),
      )
      assertError(await api(h.app, expired.token).get('/v1/me'), 401, 'ERR_UNAUTHENTICATED')
      // The owner's own token still works.
      assert.equal((await a.get('/v1/me')).status, 200)
    })

    test('tokens are stored only as hashes', async () => {
      const a = api(h.app, h.a.token)
      const created = await a.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'stored' })
      const token = created.body.token as string
      const tokens = [token, h.a.token, h.b.token]
      const bodies = tokens.map((t) => t.slice(11, 43)) // the 32 random characters
      const rows = await h.db.selectFrom('tokens').selectAll().execute()
      assert.ok(rows.length >= 3)
      assertAbsent(
        JSON.stringify(rows.map((r) => ({ ...r, token_hash: Buffer.from(r.token_hash).toString('hex') }))),
        [...tokens, ...bodies],
        'the tokens table',
      )
      const row = rows.find((r) => r.id === created.body.info.id)
      assert.ok(row, 'the new token has a row')
      assert.ok(Buffer.from(row.token_hash).equals(hashToken(token)), "the row holds the token's hash")
      assertAbsent(await dumpDatabase({ engine: h.engine, db: h.db }), [...tokens, ...bodies], 'a database dump')
      if (engine === 'sqlite') {
        for (const f of ['coffer.db', 'coffer.db-wal']) {
          const p = join(h.dataDir, f)
          if (existsSync(p)) assertAbsent(await readFile(p), [...tokens, ...bodies], f)
        }
      }
    })
  })

  describe('hostile request bodies', () => {
    let h: Harness
    let a: Client
    let envUrl: string
    before(async () => {
      h = await startHarness(engine)
      a = api(h.app, h.a.token)
      const p = await createProject(a, h.a.slug, 'Bodies')
      envUrl = `/v1/workspaces/${h.a.slug}/projects/${p.slug}/environments/development`
    })
    after(() => h?.close())

    const raw = async (method: 'PUT' | 'POST', url: string, payload: string | Buffer, contentType?: string) => {
      const res = await h.app.inject({
        method,
        url,
        payload,
        headers: { authorization: `Bearer ${h.a.token}`, ...(contentType ? { 'content-type': contentType } : {}) },
      })
      return { status: res.statusCode, body: JSON.parse(res.body) as unknown }
    }

    test('a body over the limit answers 413 ERR_PAYLOAD_TOO_LARGE', async () => {
      const value = canary('huge')
      const payload = JSON.stringify({ value: value + 'x'.repeat(3 * 1024 * 1024) })
      assertError(await raw('PUT', `${envUrl}/secrets/HUGE`, payload, 'application/json'), 413, 'ERR_PAYLOAD_TOO_LARGE', [value])
      assertError(
        await raw(
          'POST',
          `${envUrl}/secrets`,
          JSON.stringify({ secrets: [{ key: 'HUGE', value: value + 'y'.repeat(3 * 1024 * 1024) }] }),
          'application/json',
        ),
        413,
        'ERR_PAYLOAD_TOO_LARGE',
        [value],
      )
      assert.equal((await a.get(`${envUrl}/secrets/HUGE`)).status, 404)
    })

    test('malformed JSON answers 400 ERR_MALFORMED_BODY', async () => {
      const value = canary('malformed')
      for (const payload of [
        `{"value": "${value}"`,
        `{"value": ${value}}`,
        `{'value': '${value}'}`,
        '',
        '{"value":"x","__proto__":{"polluted":true}}',
      ]) {
        assertError(await raw('PUT', `${envUrl}/secrets/MALFORMED`, payload, 'application/json'), 400, 'ERR_MALFORMED_BODY', [value])
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
      assert.equal((await a.get(`${envUrl}/secrets/MALFORMED`)).status, 404)
    })

    test('a body that is not JSON answers 415 ERR_UNSUPPORTED_MEDIA_TYPE', async () => {
      const value = canary('mediatype')
      for (const ct of [
        'text/plain',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
      ]) {
        assertError(await raw('PUT', `${envUrl}/secrets/MEDIA`, `value=${value}`, ct), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', [value])
      }
      assertError(await raw('PUT', `${envUrl}/secrets/MEDIA`, `value=${value}`), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', [value])
      assert.equal((await a.get(`${envUrl}/secrets/MEDIA`)).status, 404)
    })

    test('a value over 64 KiB answers 400 ERR_VALIDATION, in characters and in UTF-8 bytes', async () => {
      const value = canary('long')
      assertError(await a.put(`${envUrl}/secrets/LONG`, { value: value + 'x'.repeat(64 * 1024) }), 400, 'ERR_VALIDATION', [value])
      // 30,000 three-byte characters: under 64 Ki characters, over 64 KiB.
      assertError(await a.put(`${envUrl}/secrets/LONG`, { value: value + '€'.repeat(30_000) }), 400, 'ERR_VALIDATION', [value])
      assertError(
        await a.post(`${envUrl}/secrets`, { secrets: [{ key: 'LONG', value: value + '€'.repeat(30_000) }] }),
        400,
        'ERR_VALIDATION',
        [value],
      )
      assert.equal((await a.get(`${envUrl}/secrets/LONG`)).status, 404)
      // Exactly 64 KiB is allowed.
      assert.equal((await a.put(`${envUrl}/secrets/EXACT`, { value: 'x'.repeat(64 * 1024) })).status, 200)
    })

    test('bad secret keys are refused with stable codes', async () => {
      const value = canary('badkey')
      for (const key of ['1ABC', 'A-B', 'A.B', 'A%20B', '%C3%A9T%C3%A9', 'A'.repeat(257), '..%2F..%2Fetc']) {
        assertError(await a.put(`${envUrl}/secrets/${key}`, { value }), 400, 'ERR_VALIDATION', [value])
        assertError(await a.get(`${envUrl}/secrets/${key}?reveal=true`), 400, 'ERR_VALIDATION', [value])
        assertError(await a.del(`${envUrl}/secrets/${key}`), 400, 'ERR_VALIDATION', [value])
      }
      // An empty key names no secret route at all.
      assertError(await a.put(`${envUrl}/secrets/`, { value }), 404, 'ERR_ROUTE_NOT_FOUND', [value])
      assertError(await a.del(`${envUrl}/secrets/`), 404, 'ERR_ROUTE_NOT_FOUND', [value])
      for (const key of ['', '1ABC', 'A-B', ' ']) {
        assertError(await a.post(`${envUrl}/secrets`, { secrets: [{ key, value }] }), 400, 'ERR_VALIDATION', [value])
      }
      const list = await a.get(`${envUrl}/secrets`)
      assert.deepEqual(
        list.body.secrets.map((s: { key: string }) => s.key),
        ['EXACT'],
      )
    })

    test('unknown fields are refused (strict bodies and queries)', async () => {
      const value = canary('strict')
      assertError(await a.put(`${envUrl}/secrets/STRICT`, { value, extra: true }), 400, 'ERR_VALIDATION', [value])
      assertError(await a.put(`${envUrl}/secrets/STRICT`, { value, workspaceId: h.b.id }), 400, 'ERR_VALIDATION', [value])
      assertError(await a.post(`${envUrl}/secrets`, { secrets: [{ key: 'STRICT', value, ifVersion: 0 }] }), 400, 'ERR_VALIDATION', [value])
      assertError(await a.post(`${envUrl}/secrets`, { secrets: [{ key: 'STRICT', value }], atomic: false }), 400, 'ERR_VALIDATION', [value])
      assertError(await a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'X', owner: 'me' }), 400, 'ERR_VALIDATION')
      assertError(await a.get(`${envUrl}/secrets?reveal=true&debug=1`), 400, 'ERR_VALIDATION')
      assertError(await a.get(`${envUrl}/secrets?reveal=yes`), 400, 'ERR_VALIDATION')
      assertError(await a.put(`${envUrl}/secrets/STRICT`, { value: 42 }), 400, 'ERR_VALIDATION')
      assertError(await a.put(`${envUrl}/secrets/STRICT`, [value]), 400, 'ERR_VALIDATION', [value])
      assertError(await a.put(`${envUrl}/secrets/STRICT`, { value, tags: ['ok', 'not ok!'] }), 400, 'ERR_VALIDATION', [value])
      assert.equal((await a.get(`${envUrl}/secrets/STRICT`)).status, 404)
    })
  })

  describe('the audit log fails closed', () => {
    const breakers: Array<[string, (h: Harness) => Promise<void>]> = [
      [
        'the workspace chain head is gone',
        async (h) => {
          await h.db.deleteFrom('audit_heads').where('workspace_id', '=', h.a.id).execute()
        },
      ],
      [
        'the database refuses new audit entries',
        async (h) => {
          // The request path queues its entries (the sequencer integrates them later).
          const statements =
            h.engine === 'sqlite'
              ? [
                  "CREATE TRIGGER audit_queue_refuse_insert BEFORE INSERT ON audit_queue BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END",
                ]
              : [
                  "CREATE FUNCTION refuse_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$",
                  'CREATE TRIGGER audit_queue_refuse_insert BEFORE INSERT ON audit_queue FOR EACH ROW EXECUTE FUNCTION refuse_audit_insert()',
                ]
          for (const s of statements) await sql.raw(s).execute(h.db)
        },
      ],
    ]
    for (const [label, breakAudit] of breakers) {
      test(`when ${label}, writes and reveals fail and nothing is written`, async () => {
        const h = await startHarness(engine)
        try {
          const a = api(h.app, h.a.token)
          const b = api(h.app, h.b.token)
          const p = await createProject(a, h.a.slug, 'Fail Closed')
          const envUrl = `/v1/workspaces/${h.a.slug}/projects/${p.slug}/environments/development`
          const v1 = canary('v1')
          const v2 = canary('v2')
          const existing = await putSecret(a, envUrl, 'EXISTING', { value: v1 })
          const pb = await createProject(b, h.b.slug, 'Unaffected')
          const db = h.db
          const count = async (table: 'secret_versions' | 'secrets' | 'projects' | 'audit_entries' | 'audit_queue' | 'tokens') =>
            Number(
              (
                await db
                  .selectFrom(table)
                  .select((eb) => eb.fn.countAll<number>().as('n'))
                  .executeTakeFirstOrThrow()
              ).n,
            )
          const before = {
            versions: await count('secret_versions'),
            secrets: await count('secrets'),
            projects: await count('projects'),
            audit: await count('audit_entries'),
            queued: await count('audit_queue'),
            tokens: await count('tokens'),
          }

          // What the setup queued (in both workspaces) is integrated first: the head cannot be deleted while
          // entries reference it, and the counts below span both workspaces.
          await h.settle()
          before.audit = await count('audit_entries')
          before.queued = await count('audit_queue')
          await breakAudit(h)

          const writes: Array<[string, () => Promise<{ status: number; body: unknown }>]> = [
            ['update', () => a.put(`${envUrl}/secrets/EXISTING`, { value: v2 })],
            ['create', () => a.put(`${envUrl}/secrets/BRAND_NEW`, { value: v2 })],
            [
              'bulk',
              () =>
                a.post(`${envUrl}/secrets`, {
                  secrets: [
                    { key: 'BULK_1', value: v2 },
                    { key: 'EXISTING', value: v2 },
                  ],
                }),
            ],
            ['delete', () => a.del(`${envUrl}/secrets/EXISTING`)],
            ['rollback', () => a.post(`${envUrl}/secrets/EXISTING/rollback`, { version: 1 })],
            ['project', () => a.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Not Created' })],
            ['token', () => a.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'not-issued' })],
          ]
          for (const [what, send] of writes) {
            const r = await send()
            assert.ok(r.status >= 500, `${what}: a server error`)
            assertError(r, 503, 'ERR_AUDIT_UNAVAILABLE', [v1, v2])
          }
          const reads = [
            `${envUrl}/secrets/EXISTING?reveal=true`,
            `${envUrl}/secrets?reveal=true`,
            `${envUrl}/secrets/EXISTING/versions?reveal=true`,
          ]
          for (const url of reads) assertError(await a.get(url), 503, 'ERR_AUDIT_UNAVAILABLE', [v1, v2])

          const after = {
            versions: await count('secret_versions'),
            secrets: await count('secrets'),
            projects: await count('projects'),
            audit: await count('audit_entries'),
            queued: await count('audit_queue'),
            tokens: await count('tokens'),
          }
          assert.deepEqual(after, before, 'nothing was written')
          const row = await db
            .selectFrom('secrets')
            .select(['current_version', 'deleted'])
            .where('id', '=', existing.id)
            .executeTakeFirstOrThrow()
          assert.deepEqual({ v: Number(row.current_version), deleted: Number(row.deleted) }, { v: 1, deleted: 0 })
          // Reading without revealing needs no audit entry and still works.
          const plain = await a.get(`${envUrl}/secrets/EXISTING`)
          assert.equal(plain.status, 200)
          assert.equal(plain.body.secret.value, undefined)
          assertError(await a.get(`${envUrl}/secrets/BRAND_NEW`), 404, 'ERR_NOT_FOUND')
          // Another workspace is unaffected when only A's chain head is gone.
          if (label.includes('head')) {
            assert.equal(
              (await b.put(`/v1/workspaces/${h.b.slug}/projects/${pb.slug}/environments/development/secrets/B_OK`, { value: 'fine' }))
                .status,
              200,
            )
          }
          assert.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
        } finally {
          await h.close()
        }
      })
    }
  })
}

describeEachEngine(suite)
