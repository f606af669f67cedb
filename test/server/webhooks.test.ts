// Outbound webhooks against a real receiver on loopback (allowed through COFFER_OUTBOUND_ALLOW,
// as an operator would allow an internal endpoint): messages made from the integrated audit
// log, signed per Standard Webhooks (checked with the `standardwebhooks` package, as a
// receiver would), retried on failure, disabled when they keep failing, redelivered by hand,
// delivered once across two nodes, kept across a restart — and, from the attacker's side, no
// value in any payload, another tenant's ids refused, SSRF targets refused, a copied secret
// ciphertext unreadable. Both engines.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import { Webhook } from 'standardwebhooks'
import { auditVerifyJob } from '../../src/jobs/jobs.js'
import { buildApp } from '../../src/server/app.js'
import { createContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'

interface Received {
  readonly headers: IncomingMessage['headers']
  readonly body: string
}

/** A webhook receiver: answers with `status()` and records what it got. */
async function receiver(): Promise<{
  url: string
  got: Received[]
  status: () => number
  set: (s: number) => void
  close(): Promise<void>
}> {
  const got: Received[] = []
  let code = 200
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString() })
      res.writeHead(code).end(code < 300 ? 'ok' : 'nope')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    status: () => code,
    set: (s) => {
      code = s
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

const SETTINGS = {
  COFFER_OUTBOUND_ALLOW: '127.0.0.1/32',
  COFFER_AUDIT_MERGE_DELAY: '0.1',
  // Three attempts 0.1 s and 0.2 s apart (the default spreads eleven over a day).
  COFFER_WEBHOOK_RETRY_SCHEDULE: '0.1,0.2',
  COFFER_WEBHOOK_TIMEOUT: '2',
}

function suite(engine: EngineName): void {
  let h: Harness
  let rx: Awaited<ReturnType<typeof receiver>>
  let owner: ReturnType<typeof api>
  let W: string
  let S: string

  before(async () => {
    h = await startHarness(engine, SETTINGS)
    rx = await receiver()
    owner = api(h.app, h.a.token)
    W = `/v1/workspaces/${h.a.slug}/webhooks`
    assert.equal((await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Web', slug: 'web' })).status, 201)
    S = `/v1/workspaces/${h.a.slug}/projects/web/environments/development/secrets`
  })
  after(async () => {
    await rx.close()
    await h.close()
  })

  const create = async (events: string[], url = rx.url) => owner.post(W, { url, events })
  // Each test starts with no endpoint and an empty receiver (a failed test leaves none behind).
  beforeEach(async () => {
    for (const w of (await owner.get(W)).body.webhooks as Array<{ id: string }>) await owner.del(`${W}/${w.id}`)
    rx.got.length = 0
    rx.set(200)
  })
  const ofType = (type: string) => rx.got.filter((m) => JSON.parse(m.body).type === type)

  test('a secret change reaches the endpoint signed, with keys and versions and never the value', async () => {
    const made = await create(['secret.created', 'secret.updated', 'secret.deleted'])
    assert.equal(made.status, 201)
    const secret: string = made.body.secret
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    const id: string = made.body.webhook.id
    // The secret is never shown again, and not stored in clear.
    const listed = await owner.get(W)
    assert.equal(listed.status, 200)
    assert.ok(!JSON.stringify(listed.body).includes(secret.slice(6)))
    const row = await h.db.selectFrom('webhook_endpoints').select(['secret_ct']).where('id', '=', id).executeTakeFirstOrThrow()
    assert.ok(!Buffer.from(row.secret_ct).includes(Buffer.from(secret.slice(6))))
    assert.ok(!Buffer.from(row.secret_ct).includes(Buffer.from(secret.slice(6), 'base64')))

    const value = `sk_live_${'x'.repeat(24)}`
    assert.equal((await owner.put(`${S}/STRIPE_KEY`, { value })).status, 200)
    assert.equal((await owner.put(`${S}/STRIPE_KEY`, { value: `${value}2` })).status, 200)
    const created = await until('secret.created', () => ofType('secret.created')[0])
    const updated = await until('secret.updated', () => ofType('secret.updated')[0])
    for (const m of [created, updated]) {
      // As a receiver verifies (the library checks the signature and the timestamp's age).
      const payload = new Webhook(secret).verify(m.body, m.headers as Record<string, string>) as Record<string, unknown>
      assert.ok(!m.body.includes(value), 'no value in the payload')
      assert.equal(m.headers['content-type'], 'application/json')
      assert.match(String(m.headers['webhook-id']), /^msg_[0-9a-f]{32}$/)
      assert.deepEqual((payload.workspace as { slug: string }).slug, h.a.slug)
    }
    const data = JSON.parse(updated.body).data
    assert.equal(data.key, 'STRIPE_KEY')
    assert.equal(data.project, 'web')
    assert.equal(data.environment, 'development')
    assert.equal(data.version, 2)
    assert.equal(data.previousVersion, 1)
    assert.equal(data.before, undefined)
    assert.equal(data.after, undefined)
    assert.notEqual(created.headers['webhook-id'], updated.headers['webhook-id'])
    // A forged or altered message does not verify.
    assert.throws(() =>
      new Webhook(secret).verify(updated.body.replace('STRIPE_KEY', 'OTHER_KEY'), updated.headers as Record<string, string>),
    )
    // The delivery log.
    const d = await until('the delivery recorded', async () => {
      const log = await owner.get(`${W}/${id}/deliveries`)
      assert.equal(log.status, 200)
      const x = log.body.deliveries.find((x: { id: string }) => x.id === updated.headers['webhook-id'])
      return x?.status === 'delivered' ? x : undefined
    })
    assert.equal(d.attempts, 1)
    assert.equal(d.lastStatus, 200)
    assert.equal(typeof d.lastLatencyMs, 'number')
    assert.equal((await owner.del(`${W}/${id}`)).status, 200)
  })

  test('only chosen events are sent; a failing endpoint is retried with backoff, then redelivered by hand with the same id', async () => {
    rx.got.length = 0
    const made = await create(['secret.deleted'])
    const id: string = made.body.webhook.id
    await owner.put(`${S}/ONLY_DELETE`, { value: 'v' })
    rx.set(500)
    await owner.del(`${S}/ONLY_DELETE`)
    // Three attempts (the schedule has two retries), then failed.
    const log = await until('the message to fail', async () => {
      const r = await owner.get(`${W}/${id}/deliveries`)
      return r.body.deliveries[0]?.status === 'failed' ? r.body.deliveries[0] : undefined
    })
    assert.equal(log.attempts, 3)
    assert.equal(log.lastStatus, 500)
    assert.equal(log.lastError, 'HTTP 500')
    assert.equal(rx.got.length, 3)
    assert.ok(
      rx.got.every((m) => JSON.parse(m.body).type === 'secret.deleted'),
      'no secret.created message',
    )
    assert.equal(new Set(rx.got.map((m) => m.headers['webhook-id'])).size, 1, 'one message id across retries')
    rx.set(200)
    // It failed for the whole schedule: the endpoint is disabled, and redelivery waits for it.
    const refused = await owner.post(`/v1/workspaces/${h.a.slug}/webhook-deliveries/${log.id}/redeliver`)
    assert.equal(refused.status, 400)
    assert.equal((await owner.post(`${W}/${id}/enable`)).status, 200)
    const again = await owner.post(`/v1/workspaces/${h.a.slug}/webhook-deliveries/${log.id}/redeliver`)
    assert.equal(again.status, 202)
    await until('the redelivery', () => rx.got.length === 4)
    assert.equal(rx.got[3]!.headers['webhook-id'], log.id)
    // The receiver has the message before the sender has recorded its answer: wait for the record.
    const after = await until('the redelivery recorded', async () => {
      const d = (await owner.get(`${W}/${id}/deliveries`)).body.deliveries[0]
      return d?.status !== 'pending' ? d : undefined
    })
    assert.equal(after.status, 'delivered')
    await owner.del(`${W}/${id}`)
  })

  test('an endpoint that fails every attempt of the schedule is disabled, with an audit entry', async () => {
    rx.got.length = 0
    rx.set(503)
    const made = await create(['webhook.test', 'secret.updated'])
    const id: string = made.body.webhook.id
    assert.equal((await owner.post(`${W}/${id}/test`)).status, 202)
    const w = await until('the endpoint to be disabled', async () => {
      const list = (await owner.get(W)).body.webhooks as Array<{ id: string; enabled: boolean; disabledReason: string | null }>
      return list.find((x) => x.id === id && !x.enabled)
    })
    assert.match(String(w.disabledReason), /every delivery failed/)
    await h.settle()
    const entry = await h.db
      .selectFrom('audit_entries')
      .select(['actor_type', 'target_id'])
      .where('workspace_id', '=', h.a.id)
      .where('action', '=', 'webhook.disabled')
      .where('target_id', '=', id)
      .executeTakeFirst()
    assert.deepEqual(entry, { actor_type: 'system', target_id: id })
    // Disabled: nothing more is sent, and a test or redelivery says why.
    const before = rx.got.length
    await owner.put(`${S}/AFTER_DISABLE`, { value: 'v' })
    await sleep(600)
    assert.equal(rx.got.length, before)
    const t = await owner.post(`${W}/${id}/test`)
    assert.equal(t.status, 400)
    rx.set(200)
    assert.equal((await owner.post(`${W}/${id}/enable`)).status, 200)
    assert.equal((await owner.post(`${W}/${id}/test`)).status, 202)
    await until('a message after enabling', () => rx.got.length > before)
    await owner.del(`${W}/${id}`)
  })

  test('a rotated secret signs beside the old one during the overlap', async () => {
    rx.got.length = 0
    const made = await create(['webhook.test'])
    const id: string = made.body.webhook.id
    const oldSecret: string = made.body.secret
    const rot = await owner.post(`${W}/${id}/rotate-secret`, { overlapHours: 1 })
    assert.equal(rot.status, 200)
    const newSecret: string = rot.body.secret
    assert.notEqual(newSecret, oldSecret)
    assert.equal(rot.body.webhook.secretVersion, 2)
    await owner.post(`${W}/${id}/test`)
    const m = await until('the test message', () => rx.got[0])
    assert.equal(String(m.headers['webhook-signature']).split(' ').length, 2)
    new Webhook(oldSecret).verify(m.body, m.headers as Record<string, string>)
    new Webhook(newSecret).verify(m.body, m.headers as Record<string, string>)
    // No overlap: only the newest secret signs.
    const rot2 = await owner.post(`${W}/${id}/rotate-secret`, { overlapHours: 0 })
    await owner.post(`${W}/${id}/test`)
    const m2 = await until('the second test message', () => rx.got[1])
    assert.equal(String(m2.headers['webhook-signature']).split(' ').length, 1)
    new Webhook(rot2.body.secret).verify(m2.body, m2.headers as Record<string, string>)
    assert.throws(() => new Webhook(newSecret).verify(m2.body, m2.headers as Record<string, string>))
    await owner.del(`${W}/${id}`)
  })

  test('attacker side: SSRF targets, bad events, other tenants, weaker roles, a copied secret ciphertext', async () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/',
      'http://[::ffff:127.0.0.1]/',
      'http://2130706433/',
      'file:///etc/passwd',
    ]) {
      const r = await create(['secret.updated'], url)
      assert.equal(r.status, 400, url)
      assert.equal(r.body.error.code, 'ERR_OUTBOUND_REFUSED', url)
    }
    const badEvent = await owner.post(W, { url: rx.url, events: ['secret.value_revealed'] })
    assert.equal(badEvent.status, 400)
    assert.equal(badEvent.body.error.code, 'ERR_VALIDATION')
    const mine = await create(['secret.updated'])
    const id: string = mine.body.webhook.id
    // Another workspace's Owner: 404 for every id of this one, through its own workspace URL too.
    const other = api(h.app, h.b.token)
    assert.equal((await other.get(`${W}`)).status, 404)
    const OW = `/v1/workspaces/${h.b.slug}/webhooks`
    assert.equal((await other.get(`${OW}/${id}/deliveries`)).status, 404)
    assert.equal((await other.del(`${OW}/${id}`)).status, 404)
    assert.equal((await other.post(`${OW}/${id}/rotate-secret`, {})).status, 404)
    assert.equal((await other.post(`${OW}/${id}/test`)).status, 404)
    const msg = (await owner.get(`${W}/${id}/deliveries`)).body.deliveries[0]?.id ?? `msg_${'0'.repeat(32)}`
    assert.equal((await other.post(`/v1/workspaces/${h.b.slug}/webhook-deliveries/${msg}/redeliver`)).status, 404)
    // A member (not an Admin) may neither read nor manage webhooks.
    const member = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
    const m = api(h.app, member.token)
    assert.equal((await m.get(W)).status, 403)
    assert.equal((await m.post(W, { url: rx.url, events: ['secret.updated'] })).status, 403)
    // The sealed secret of one endpoint copied into another's row does not open there: the
    // test message to that endpoint is never signed, and nothing is sent.
    const victim = await create(['webhook.test'])
    const row = await h.db.selectFrom('webhook_endpoints').select('secret_ct').where('id', '=', id).executeTakeFirstOrThrow()
    await h.db.updateTable('webhook_endpoints').set({ secret_ct: row.secret_ct }).where('id', '=', victim.body.webhook.id).execute()
    rx.got.length = 0
    await owner.post(`${W}/${victim.body.webhook.id}/test`)
    await sleep(800)
    assert.equal(rx.got.length, 0)
    await owner.del(`${W}/${id}`)
    await owner.del(`${W}/${victim.body.webhook.id}`)
  })

  test('the queue survives a restart and two nodes deliver each message once', async () => {
    rx.got.length = 0
    const made = await create(['secret.updated', 'secret.created'])
    const id: string = made.body.webhook.id
    // Stop sending on this node, queue 20 messages, then let two nodes on the database send them.
    await h.ctx.webhooks.stop()
    for (let i = 0; i < 20; i++) await owner.put(`${S}/MANY_${i}`, { value: `v${i}` })
    await h.settle()
    const nodes =
      engine === 'postgres'
        ? await Promise.all(
            [0, 1].map(async () => {
              const e = readEnv(h.settings)
              const ctx = await createContext(buildConfig(e), buildSecrets(e))
              const app = await buildApp(ctx)
              await app.ready()
              return { ctx, app }
            }),
          )
        : []
    try {
      if (engine === 'sqlite') h.ctx.webhooks.start()
      await until('20 messages', () => rx.got.length >= 20, 20_000)
      await sleep(500)
      assert.equal(rx.got.length, 20)
      assert.equal(new Set(rx.got.map((m) => m.headers['webhook-id'])).size, 20, 'every message once')
      const log = (await owner.get(`${W}/${id}/deliveries?limit=100`)).body.deliveries as Array<{ status: string; attempts: number }>
      assert.equal(log.length, 20)
      assert.ok(log.every((d) => d.status === 'delivered' && d.attempts === 1))
    } finally {
      for (const n of nodes) {
        await n.app.close()
        await n.ctx.close()
      }
      h.ctx.webhooks.start()
    }
    await owner.del(`${W}/${id}`)
  })

  // Last: it breaks workspace A's log for good.
  test('a broken audit log is announced once to subscribed endpoints, however often verification finds it', async () => {
    const made = await create(['audit.integrity_broken'])
    assert.equal(made.status, 201)
    await owner.put(`${S}/BEFORE_TAMPER`, { value: 'v' })
    await h.settle()
    // An attacker with database access rewrites an entry.
    await sql
      .raw(engine === 'sqlite' ? 'DROP TRIGGER audit_entries_no_update' : 'DROP TRIGGER audit_entries_no_update ON audit_entries')
      .execute(h.db)
    await h.db
      .updateTable('audit_entries')
      .set({ action: 'secret.reveal' })
      .where('workspace_id', '=', h.a.id)
      .where('seq', '=', 2)
      .execute()
    const job = auditVerifyJob(h.ctx, h.ctx.metrics, h.app.log, 60_000)
    await job.run()
    await job.run()
    const m = await until('the integrity message', () => ofType('audit.integrity_broken')[0])
    new Webhook(made.body.secret).verify(m.body, m.headers as Record<string, string>)
    assert.equal(JSON.parse(m.body).data.seq, 2)
    await job.run()
    await sleep(700)
    assert.equal(ofType('audit.integrity_broken').length, 1)
  })
}

describeEachEngine(suite)
