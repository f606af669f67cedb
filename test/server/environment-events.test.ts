// biome-ignore-all lint/suspicious/noTemplateCurlyInString: some strings are Coffer references (${KEY}), not templates
// The environment change stream behind `coffer run --watch` (GET …/environments/:env/events),
// from the side of a watcher and of an attacker, on both engines: it opens with the keys and
// versions, sends a change within a second, never carries a value or a comment, refuses whoever
// may not read the environment (401, 403, 404 as a list would), and ends with an `end` event
// once the credential is revoked. On PostgreSQL a write on one node reaches a watcher on another
// (migration 15's notifications), and a write to an environment the watched one references or
// imports reaches its watcher too.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { CofferApiError, CofferClient } from '../../src/client/client.js'
import type { EnvironmentState } from '../../src/api/secrets.js'
import { type AppContext, createContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { describeEachEngine, describePostgres } from '../helpers/engines.js'
import { api, type EngineName, type Harness, startHarness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A watcher: every state it received, and how its stream ended. */
function watch(url: string, token: string, scope: { workspace: string; project: string; environment: string }) {
  const states: Array<{ at: number; state: EnvironmentState }> = []
  const w = new CofferClient({ url, token }).watchEnvironment(scope, (state) => states.push({ at: performance.now(), state }))
  const ended = w.done.then(
    () => null,
    (err: unknown) => err,
  )
  return { states, ended, close: w.close }
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 3_000): Promise<T> {
  const end = performance.now() + timeoutMs
  for (;;) {
    const v = f()
    if (v !== undefined) return v
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** The raw bytes of a stream for `ms` (to check what it carries, not what the client makes of it). */
function rawStream(url: string, path: string, token: string, ms: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => {
        text += c.toString('utf8')
      })
      const t = setTimeout(() => {
        req.destroy()
        resolve({ status: res.statusCode ?? 0, text })
      }, ms)
      res.on('end', () => {
        clearTimeout(t)
        resolve({ status: res.statusCode ?? 0, text })
      })
    })
    req.on('error', reject)
  })
}

function suite(engine: EngineName): void {
  let h: Harness
  let url = ''
  let projectId = ''
  const canary = `canary-${randomBytes(12).toString('hex')}`
  const comment = `comment-${randomBytes(8).toString('hex')}`
  const E = (env: string) => `/v1/workspaces/${h.a.slug}/projects/${projectId}/environments/${env}`
  const scope = (environment: string) => ({ workspace: h.a.slug, project: projectId, environment })

  before(async () => {
    h = await startHarness(engine)
    url = await h.app.listen({ host: '127.0.0.1', port: 0 })
    const p = await api(h.app, h.a.token).post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Events', slug: 'events' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
    const owner = api(h.app, h.a.token)
    assert.equal((await owner.put(`${E('development')}/secrets/DB_URL`, { value: canary, comment })).status, 200)
    assert.equal((await owner.put(`${E('production')}/secrets/DB_URL`, { value: canary })).status, 200)
    assert.equal((await owner.put(`${E('production')}/restriction`, { restricted: true })).status, 200)
  })
  after(() => h?.close())

  test('opens with keys and versions, and sends each change within a second', async () => {
    const owner = api(h.app, h.a.token)
    const w = watch(url, h.a.token, scope('development'))
    const first = await until('the first event', () => w.states[0])
    assert.deepEqual(first.state, { secrets: [{ key: 'DB_URL', version: 1 }] })
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      assert.equal((await owner.put(`${E('development')}/secrets/K${i}`, { value: `${canary}-${i}` })).status, 200)
      const got = await until(`change ${i}`, () => w.states.find((s) => s.state.secrets.some((x) => x.key === `K${i}`)))
      assert.ok(got.at - t0 < 1_000, `change ${i} arrived after ${Math.round(got.at - t0)} ms`)
    }
    // A deletion is a change too; the deleted key leaves the list.
    assert.equal((await owner.del(`${E('development')}/secrets/K0`)).status, 200)
    await until('the deletion', () => w.states.find((s) => s.state.secrets.length === 5 && !s.state.secrets.some((x) => x.key === 'K0')))
    // A write to another environment sends nothing here.
    const seen = w.states.length
    assert.equal((await owner.put(`${E('staging')}/secrets/OTHER`, { value: 'x' })).status, 200)
    await sleep(300)
    assert.equal(w.states.length, seen)
    w.close()
    assert.equal(await w.ended, null)
  })

  test('the stream never carries a value or a comment: only keys and versions', async () => {
    const owner = api(h.app, h.a.token)
    const raw = rawStream(url, `${E('development')}/events`, h.a.token, 800)
    await sleep(200)
    assert.equal((await owner.put(`${E('development')}/secrets/DB_URL`, { value: `${canary}-new`, comment })).status, 200)
    const { status, text } = await raw
    assert.equal(status, 200)
    assert.match(text, /^retry: 1000\nevent: secrets\ndata: /)
    assert.ok(text.split('event: secrets').length >= 3, 'the change was sent')
    assert.ok(!text.includes(canary), 'no value')
    assert.ok(!text.includes(comment), 'no comment')
    for (const m of text.matchAll(/^data: (.*)$/gm)) {
      for (const s of (JSON.parse(m[1]!) as EnvironmentState).secrets) assert.deepEqual(Object.keys(s).sort(), ['key', 'version'])
    }
  })

  test('whoever may not read the environment is refused as a list would be: 401, 403, 404', async () => {
    const refused = async (token: string, s: ReturnType<typeof scope>) => {
      const err = await watch(url, token, s).ended
      assert.ok(err instanceof CofferApiError, `refused, not ${String(err)}`)
      return `${err.status} ${err.code}`
    }
    assert.equal(await refused('coffer_pat_notatokenatallnotatokenatall_aaaaaa', scope('development')), '401 ERR_UNAUTHENTICATED')
    // Another workspace's Owner: the environment does not exist for them.
    assert.equal(await refused(h.b.token, scope('development')), '404 ERR_NOT_FOUND')
    assert.equal(await refused(h.b.token, { ...scope('development'), workspace: h.b.slug }), '404 ERR_NOT_FOUND')
    // A member of the workspace outside the project: it does not exist for them.
    const outsider = await addPerson(h, { workspaceId: h.a.id, role: 'member' })
    assert.equal(await refused(outsider.token, scope('production')), '404 ERR_NOT_FOUND')
    // A service token of staging only.
    const owner = api(h.app, h.a.token)
    const envs = (await owner.get(`/v1/workspaces/${h.a.slug}/projects/${projectId}/environments`)).body.environments as Array<{
      id: string
      slug: string
    }>
    const staging = envs.find((e) => e.slug === 'staging')!.id
    const st = await owner.post(`/v1/workspaces/${h.a.slug}/service-tokens`, {
      name: 'staging only',
      scopes: [{ project: projectId, environments: [staging], access: 'read' }],
    })
    assert.equal(st.status, 201)
    assert.match(await refused(st.body.token, scope('development')), /^(403 ERR_FORBIDDEN|404 ERR_NOT_FOUND)$/)
    // Nothing was sent before the refusal: the raw answer is the error envelope.
    const raw = await rawStream(url, `${E('production')}/events`, outsider.token, 500)
    assert.equal(raw.status, 404)
    assert.ok(!raw.text.includes('DB_URL') && !raw.text.includes(canary))
  })

  test('a change in an environment the values reference or import reaches the watcher; a viewer is told of none', async () => {
    const owner = api(h.app, h.a.token)
    const p = await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Refs', slug: 'refs' })
    assert.equal(p.status, 201)
    const R = (env: string) => `/v1/workspaces/${h.a.slug}/projects/refs/environments/${env}`
    const envs = (await owner.get(`/v1/workspaces/${h.a.slug}/projects/refs/environments`)).body.environments as Array<{
      id: string
      slug: string
    }>
    const idOf = (slug: string) => envs.find((e) => e.slug === slug)!.id
    assert.equal((await owner.put(`${R('staging')}/secrets/BASE`, { value: `${canary}-base` })).status, 200)
    assert.equal((await owner.put(`${R('production')}/secrets/SHARED`, { value: `${canary}-shared` })).status, 200)
    assert.equal((await owner.put(`${R('development')}/secrets/REF`, { value: 'url=${staging.BASE}' })).status, 200)
    const w = watch(url, h.a.token, { workspace: h.a.slug, project: 'refs', environment: 'development' })
    const first = await until('the first event', () => w.states[0])
    assert.deepEqual(first.state.secrets, [{ key: 'REF', version: 1 }])
    assert.deepEqual(
      first.state.dependencies?.map((d) => d.environment),
      [idOf('staging')],
    )
    // The referenced key changes: the watcher hears of it, though nothing of development changed.
    const t0 = performance.now()
    assert.equal((await owner.put(`${R('staging')}/secrets/BASE`, { value: `${canary}-base2` })).status, 200)
    const changed = await until('the referenced change', () =>
      w.states.find((s) => s.state.dependencies?.[0]?.state !== first.state.dependencies?.[0]?.state),
    )
    assert.ok(changed.at - t0 < 1_000, `arrived after ${Math.round(changed.at - t0)} ms`)
    assert.deepEqual(changed.state.secrets, [{ key: 'REF', version: 1 }])
    // An import is followed too, from the moment it is set.
    assert.equal((await owner.put(`${R('development')}/imports`, { imports: [{ environment: 'production' }] })).status, 200)
    await until('the import followed', () =>
      w.states.find((s) => (s.state.dependencies ?? []).map((d) => d.environment).includes(idOf('production'))),
    )
    const seen = w.states.length
    const t1 = performance.now()
    assert.equal((await owner.put(`${R('production')}/secrets/SHARED`, { value: `${canary}-shared2` })).status, 200)
    const imported = await until('the imported change', () => (w.states.length > seen ? w.states[w.states.length - 1] : undefined))
    assert.ok(imported.at - t1 < 1_000)
    // An environment that nothing here reads (another project's) sends nothing.
    const still = w.states.length
    assert.equal((await owner.put(`${E('staging')}/secrets/UNRELATED`, { value: 'x' })).status, 200)
    await sleep(300)
    assert.equal(w.states.length, still)
    w.close()
    // Nothing of a value, in any event.
    assert.ok(!JSON.stringify(w.states).includes(canary))

    // A viewer may list but not reveal: its stream names no other environment.
    const viewer = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: p.body.project.id, role: 'viewer' } })
    const v = watch(url, viewer.token, { workspace: h.a.slug, project: 'refs', environment: 'development' })
    const vf = await until('the viewer first event', () => v.states[0])
    assert.equal(vf.state.dependencies, undefined)
    v.close()
  })

  test('a revoked token ends its stream with an end event (and a removed member too)', async () => {
    const owner = api(h.app, h.a.token)
    const t = await owner.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'to revoke' })
    assert.equal(t.status, 201)
    const w = watch(url, t.body.token, scope('development'))
    await until('the first event', () => w.states[0])
    const t0 = performance.now()
    assert.equal((await owner.del(`/v1/workspaces/${h.a.slug}/tokens/${t.body.info.id}`)).status, 200)
    const err = await w.ended
    assert.ok(err instanceof CofferApiError)
    assert.equal(err.code, 'ERR_UNAUTHENTICATED')
    assert.ok(performance.now() - t0 < 2_000, 'ended at once, not at the next periodic check')

    const member = await addPerson(h, { workspaceId: h.a.id, role: 'member', project: { id: projectId, role: 'viewer' } })
    const m = watch(url, member.token, scope('development'))
    await until('the first event', () => m.states[0])
    assert.equal((await owner.del(`/v1/workspaces/${h.a.slug}/members/${member.userId}`)).status, 200)
    const gone = await m.ended
    assert.ok(gone instanceof CofferApiError, String(gone))
    assert.equal(gone.status, 401)
  })
}

describeEachEngine(suite)

describePostgres('a write on one node reaches a watcher on another (PostgreSQL LISTEN/NOTIFY)', () => {
  let h: Harness
  let other: { app: FastifyInstance; ctx: AppContext }
  let urlA = ''
  let urlB = ''
  before(async () => {
    h = await startHarness('postgres')
    const e = readEnv(h.settings)
    const ctx = await createContext(buildConfig(e), buildSecrets(e))
    other = { app: await buildApp(ctx), ctx }
    await other.app.ready()
    urlA = await h.app.listen({ host: '127.0.0.1', port: 0 })
    urlB = await other.app.listen({ host: '127.0.0.1', port: 0 })
    await until('node B to listen', () => (other.ctx.secretChanges.live && h.ctx.secretChanges.live ? true : undefined), 10_000)
  })
  after(async () => {
    await other?.app.close()
    await other?.ctx.close()
    await h?.close()
  })

  test('20 writes on node B, each seen by a watcher on node A within a second', async () => {
    const b = new CofferClient({ url: urlB, token: h.a.token })
    await b.createProject(h.a.slug, { name: 'Nodes', slug: 'nodes' })
    const s = { workspace: h.a.slug, project: 'nodes', environment: 'development' }
    const w = watch(urlA, h.a.token, s)
    await until('the first event', () => w.states[0])
    const lags: number[] = []
    for (let i = 1; i <= 20; i++) {
      const t0 = performance.now()
      await b.setSecret(s, 'ROTATED', { value: `v${i}` })
      const got = await until(`version ${i}`, () =>
        w.states.find((x) => x.state.secrets.some((k) => k.key === 'ROTATED' && k.version === i)),
      )
      lags.push(got.at - t0)
    }
    w.close()
    assert.ok(Math.max(...lags) < 1_000, `slowest change took ${Math.round(Math.max(...lags))} ms`)
  })

  test('a write on node B to a referenced environment reaches a watcher of the referencing one on node A', async () => {
    const b = new CofferClient({ url: urlB, token: h.a.token })
    await b.createProject(h.a.slug, { name: 'Nodes refs', slug: 'nodes-refs' })
    const s = (environment: string) => ({ workspace: h.a.slug, project: 'nodes-refs', environment })
    await b.setSecret(s('staging'), 'BASE', { value: 'one' })
    await b.setSecret(s('development'), 'REF', { value: '${staging.BASE}' })
    const w = watch(urlA, h.a.token, s('development'))
    const first = await until('the first event', () => w.states[0])
    assert.equal(first.state.dependencies?.length, 1)
    const t0 = performance.now()
    await b.setSecret(s('staging'), 'BASE', { value: 'two' })
    const got = await until('the change on B', () =>
      w.states.find((x) => x.state.dependencies?.[0]?.state !== first.state.dependencies?.[0]?.state),
    )
    w.close()
    assert.ok(got.at - t0 < 1_000, `took ${Math.round(got.at - t0)} ms`)
  })
})

describe('event streams end when the server stops', () => {
  test('closing the app ends open streams (no hang on shutdown)', async () => {
    const h = await startHarness('sqlite')
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 })
    const owner = api(h.app, h.a.token)
    await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Stop', slug: 'stop' })
    const w = watch(url, h.a.token, { workspace: h.a.slug, project: 'stop', environment: 'development' })
    await until('the first event', () => w.states[0])
    await h.close()
    const err = await w.ended
    assert.ok(err, 'the client sees the stream end (and would reconnect)')
  })
})

describeEachEngine((engine) => {
  test('a token that expires ends its stream at the next check (within 5 s), though nothing changed', async () => {
    let offsetMs = 0
    const h = await startHarness(engine, {}, { clock: () => new Date(Date.now() + offsetMs) })
    try {
      const url = await h.app.listen({ host: '127.0.0.1', port: 0 })
      const owner = api(h.app, h.a.token)
      await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Expiry', slug: 'expiry' })
      const t = await owner.post(`/v1/workspaces/${h.a.slug}/tokens`, { name: 'one day', expiresInDays: 1 })
      assert.equal(t.status, 201)
      const w = watch(url, t.body.token, { workspace: h.a.slug, project: 'expiry', environment: 'development' })
      await until('the first event', () => w.states[0])
      offsetMs = 2 * 86_400_000
      const t0 = performance.now()
      const err = await w.ended
      assert.ok(err instanceof CofferApiError, String(err))
      assert.equal(err.code, 'ERR_UNAUTHENTICATED')
      assert.ok(performance.now() - t0 < 6_500, `ended after ${Math.round(performance.now() - t0)} ms`)
    } finally {
      await h.close()
    }
  })
})
