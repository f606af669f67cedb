// Every route the server answers goes through the one request pipeline, and every route of
// every kind is covered by a route × caller check: workspace routes by route-policy.test.ts,
// account and sign-in routes by auth-route-kinds.test.ts, pages and public documents here.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { API_ROUTES, AUTH_ROUTES } from '../../src/server/app.js'
import { kindOf, STAGE_PLANS } from '../../src/server/pipeline.js'
import { STAGES } from '../../src/server/stages.js'
import { startHarness, type Harness } from '../helpers/harness.js'

/** What each page or public document answers a caller with no credential (a missing entry fails). */
const PAGES: Record<string, number> = {
  '/healthz': 200,
  '/readyz': 200,
  '/v1/audit/public-key': 200,
  '/v1/openapi.json': 200,
  '/docs': 200,
  '/docs/style.css': 200,
  '/metrics': 200,
  '/assets/coffer.css': 200,
  '/sign-in': 200,
  '/sign-up': 200,
  '/verify-email': 200,
  '/forgot-password': 200,
  '/reset-password': 200,
  '/account': 303,
  '/invite': 404,
  '/invite/accepted': 303,
  '/invite/sign-up': 404,
  '/cli/login': 400,
  '/cli/device': 302,
  '/cli/done': 400,
  '/assets/app/*': 404,
  '/*': 303,
}

let h: Harness
before(async () => {
  h = await startHarness('sqlite')
  await h.app.ready()
})
after(() => h?.close())

test('every kind of route has a plan for every stage, in the one order', () => {
  for (const [kind, plan] of Object.entries(STAGE_PLANS)) {
    assert.deepEqual(Object.keys(plan), [...STAGES], `${kind} names every stage in order`)
    for (const s of STAGES) assert.ok(plan[s].length > 10, `${kind}: ${s} says how`)
  }
})

test('the app serves exactly the routes of its tables, each through the pipeline', () => {
  const routes = h.app.cofferRoutes
  const kinds = new Map<string, number>()
  for (const r of routes) kinds.set(kindOf(r), (kinds.get(kindOf(r)) ?? 0) + 1)
  assert.equal(kinds.get('workspace'), API_ROUTES.length)
  assert.equal(kinds.get('account'), AUTH_ROUTES.length)
  for (const r of routes) assert.ok(h.app.hasRoute({ method: r.method, url: r.url }), `${r.method} ${r.url} is served`)
})

test('a route added around the pipeline is refused', async () => {
  const { buildApp } = await import('../../src/server/app.js')
  const app = await buildApp(h.ctx, { logger: false })
  // Never made ready: no job or listener starts on the shared context.
  assert.throws(() => app.get('/sneaky', async () => ({ ok: true })), /around the request pipeline/)
})

test('every page and public document answers an anonymous caller as expected, with the security headers', async () => {
  const pages = h.app.cofferRoutes.filter((r) => kindOf(r) === 'page').map((r) => r.url)
  assert.deepEqual([...pages].sort(), Object.keys(PAGES).sort(), 'PAGES names every page (add the new one)')
  for (const url of pages) {
    const res = await h.app.inject({ method: 'GET', url })
    assert.equal(res.statusCode, PAGES[url], `GET ${url}`)
    assert.equal(res.headers['x-content-type-options'], 'nosniff', url)
    assert.equal(res.headers['cache-control'], 'no-store', url)
    assert.match(String(res.headers['content-security-policy']), /frame-ancestors 'none'/, url)
    assert.match(String(res.headers['strict-transport-security']), /max-age=\d+; includeSubDomains; preload/, url)
  }
})
