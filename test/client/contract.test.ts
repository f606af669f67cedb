// The client and the server agree on the API's contract (src/api). The client's request and
// response types are z.input/z.infer of the schemas the routes declare, so a drift in types
// fails `tsc`; this suite catches the drift types cannot see: it drives a real listening
// server through every method of CofferClient, records every answer on the wire, and checks
// each against its route's response schema strictly — a missing, mistyped or unknown key
// anywhere fails, as does a status other than the route's.
import { randomBytes } from 'node:crypto'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { z } from 'zod'
import { auditPublicKeyResponse } from '../../src/api/audit.js'
import { changeRequestResponse } from '../../src/api/change-requests.js'
import { errorEnvelope } from '../../src/api/errors.js'
import { environmentStateResponse } from '../../src/api/secrets.js'
import { type CofferApiError, CofferChangeRequested, CofferClient, type Scope } from '../../src/client/client.js'
import { createLoginCode, decideDevice, pkceChallenge } from '../../src/identity/cli-login.js'
import { API_ROUTES, AUTH_ROUTES } from '../../src/server/app.js'
import { createTestDatabase } from '../helpers/pg.js'
import { describeEachEngine } from '../helpers/engines.js'
import { startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { startIssuer } from '../helpers/oidc-issuer.js'
import { addPerson } from '../helpers/principals.js'
import { awsEnvFor, startStsStandIn, type StsStandIn } from '../helpers/sts-stand-in.js'
import { atProvider, startThirdParty } from '../helpers/oauth-provider.js'

/** One request and its answer as the client saw them on the wire. */
interface Exchange {
  method: string
  path: string
  status: number
  body: unknown
}

/** A route as this check needs it: where it answers, its success status and response schema. */
interface Contract {
  method: string
  url: string
  pattern: RegExp
  params: number
  status: number
  response: z.ZodType
  /** A write a protected environment turns into a change request (202 `{ changeRequest }`). */
  proposes?: boolean
}

function contractOf(method: string, url: string, status: number, response: z.ZodType): Contract {
  const source = url
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/')
  return { method, url, pattern: new RegExp(`^${source}$`), params: (url.match(/:/g) ?? []).length, status, response }
}

const CONTRACTS: Contract[] = [
  ...API_ROUTES.map((r) => ({ ...contractOf(r.method, r.url, r.status ?? 200, r.response), proposes: r.propose !== undefined })),
  ...AUTH_ROUTES.map((r) => contractOf(r.method, r.url, r.status ?? 200, r.response)),
  // Served by app.ts outside the route table; the client reads it all the same.
  contractOf('GET', '/v1/audit/public-key', 200, auditPublicKeyResponse),
  // Also app.ts's: the liveness probe `coffer doctor` reads (with its Date header).
  contractOf('GET', '/healthz', 200, z.strictObject({ status: z.literal('ok') })),
]

/** The route that answered `method path`: a static segment wins over a parameter, as in the router. */
function routeOf(method: string, path: string): Contract {
  const [best, next] = CONTRACTS.filter((c) => c.method === method && c.pattern.test(path)).sort((x, y) => x.params - y.params)
  assert.ok(best, `no route answers ${method} ${path}`)
  assert.ok(!next || best.params < next.params, `${method} ${path} matches more than one route`)
  return best
}

/** The paths (never the values: revealed answers hold secrets) where `input` has keys that `parsed` lacks. */
function extraKeys(input: unknown, parsed: unknown, at = '$'): string[] {
  if (Array.isArray(input) && Array.isArray(parsed)) return input.flatMap((v, i) => extraKeys(v, parsed[i], `${at}[${i}]`))
  if (input === null || typeof input !== 'object' || parsed === null || typeof parsed !== 'object') return []
  return Object.entries(input).flatMap(([k, v]) =>
    k in parsed ? extraKeys(v, (parsed as Record<string, unknown>)[k], `${at}.${k}`) : [`${at}.${k}`],
  )
}

/** What is wrong with one answer, without quoting any value; empty when it keeps the contract. */
function violations(x: Exchange): string[] {
  const route = routeOf(x.method, x.path)
  const where = `${x.method} ${route.url} (${x.status})`
  const ok = x.status >= 200 && x.status < 300
  const proposed = x.status === 202 && route.proposes === true
  const schema = proposed ? changeRequestResponse : ok ? route.response : errorEnvelope
  const out: string[] = []
  if (ok && !proposed && x.status !== route.status) out.push(`${where}: status ${x.status}, the route declares ${route.status}`)
  const r = schema.safeParse(x.body)
  if (!r.success) return [...out, ...r.error.issues.map((i) => `${where}: ${i.code} at $.${i.path.join('.')}`)]
  const extra = extraKeys(x.body, r.data)
  if (extra.length) return [...out, ...extra.map((p) => `${where}: ${p} is not in the response schema`)]
  if (!isDeepStrictEqual(r.data, x.body)) out.push(`${where}: the schema changes the answer it parses`)
  return out
}

/** A proxy in front of `target` that records every exchange (headers and bodies pass unchanged). */
async function recordingProxy(target: string, log: Exchange[]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const upstream = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        // An event stream never ends by itself: passed through as it comes (the test checks its events).
        if (String(answer.headers['content-type']).startsWith('text/event-stream')) {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
          res.on('close', () => answer.destroy())
          return
        }
        const parts: Buffer[] = []
        answer.on('data', (c: Buffer) => parts.push(c))
        answer.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8')
          const path = new URL(req.url ?? '/', 'http://x').pathname
          log.push({ method: req.method ?? '', path, status: answer.statusCode ?? 0, body: text ? JSON.parse(text) : undefined })
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          res.end(text)
        })
      })
      upstream.on('error', (err) => res.destroy(err))
      upstream.end(Buffer.concat(chunks))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

/** Every public method of the client; each must be exercised below. */
const METHODS = Object.getOwnPropertyNames(CofferClient.prototype).filter((m) => m !== 'constructor')

describeEachEngine((engine: EngineName) => {
  let h: Harness
  let sts: StsStandIn
  let proxy: { url: string; server: Server }
  const log: Exchange[] = []
  const called = new Set<string>()

  /** A client through the recording proxy that notes which of its methods were called. */
  const client = (token: string): CofferClient =>
    new Proxy(new CofferClient({ url: proxy.url, token }), {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver)
        if (typeof prop !== 'string' || typeof v !== 'function' || !METHODS.includes(prop)) return v
        return (...args: unknown[]) => {
          called.add(prop)
          return (v as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })

  before(async () => {
    // One approval activates a break-glass grant, so a single approver exercises the flow.
    // AWS is unreachable here: a local STS stand-in answers AssumeRole (test/helpers/sts-stand-in.ts).
    sts = await startStsStandIn()
    const { COFFER_AWS_STS_ENDPOINT, ...sdk } = awsEnvFor(sts)
    Object.assign(process.env, sdk)
    h = await startHarness(engine, {
      COFFER_BREAKGLASS_APPROVALS: '1',
      COFFER_OUTBOUND_ALLOW: '127.0.0.1/32',
      COFFER_AWS_STS_ENDPOINT: COFFER_AWS_STS_ENDPOINT!,
    })
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 })
    proxy = await recordingProxy(url, log)
  })
  after(async () => {
    await new Promise<void>((resolve) => proxy?.server.close(() => resolve()))
    await h?.close()
    await sts?.close()
  })

  test('every client method runs against a real server', async () => {
    const owner = client(h.a.token)
    const anonymous = client('')
    const ws = h.a.slug
    const dev: Scope = { workspace: ws, project: 'contract', environment: 'development' }
    const prod: Scope = { ...dev, environment: 'production' }

    const ownerId = (await owner.me()).user?.id ?? assert.fail('the owner token acts as a person')
    await owner.workspace(ws)
    assert.equal((await owner.auditCheckpoint(ws)).checkpoint, null, 'no checkpoint yet')
    await owner.auditPublicKey()

    // Projects and environments.
    await owner.createProject(ws, { name: 'Contract', slug: 'contract' })
    await owner.listProjects(ws)
    await owner.project(ws, 'contract')
    await owner.createEnvironment(ws, 'contract', { name: 'QA', slug: 'qa', restricted: false })
    await owner.listEnvironments(ws, 'contract')

    // Secrets (dummy values: revealed answers are checked without quoting them).
    await owner.setSecret(dev, 'API_KEY', { value: 'dummy-1', comment: 'first', tags: ['team:core'] })
    await owner.setSecret(dev, 'API_KEY', { value: 'dummy-2', ifVersion: 1 })
    await owner.setSecrets(dev, [
      { key: 'A', value: 'dummy-a' },
      { key: 'B', value: 'dummy-b', comment: 'bee', tags: ['x'] },
    ])
    await owner.listSecrets(dev)
    await owner.listSecrets(dev, { reveal: true, includeDeleted: true })
    // The event stream: its first event keeps environmentStateResponse strictly (keys and versions, nothing else).
    const state = await new Promise<unknown>((resolve, reject) => {
      const w = owner.watchEnvironment(dev, (s) => {
        w.close()
        resolve(s)
      })
      w.done.catch(reject)
    })
    const parsed = environmentStateResponse.strict().safeParse(state)
    assert.ok(parsed.success, 'the first event keeps its schema')
    for (const s of (state as { secrets: object[] }).secrets) assert.deepEqual(Object.keys(s).sort(), ['key', 'version'])
    await owner.getSecret(dev, 'API_KEY')
    await owner.getSecret(dev, 'API_KEY', { reveal: true })
    await owner.history(dev, 'API_KEY')
    await owner.history(dev, 'API_KEY', { reveal: true })
    await owner.rollback(dev, 'API_KEY', 1, { ifVersion: 2 })
    await owner.deleteSecret(dev, 'B')
    await owner.restoreSecret(dev, 'B')

    // The dashboard's additions: matrix, .env apply with preview, copy, rename and delete.
    const qa: Scope = { ...dev, environment: 'qa' }
    const preview = await owner.applySecrets(dev, {
      upserts: [
        { key: 'A', value: 'dummy-a' },
        { key: 'C', value: 'dummy-c' },
      ],
      dryRun: true,
    })
    await owner.applySecrets(dev, { upserts: [{ key: 'C', value: 'dummy-c' }], deletes: ['MISSING'], ifState: preview.state })
    await owner.copySecrets(dev, { keys: ['A', 'C'], to: { environment: 'qa' } })
    // References, imports and personal overrides (issue 16 §1–2).
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Coffer reference, not a template
    await owner.setSecret(dev, 'REF', { value: '${API_KEY}-$${literal}' })
    await owner.setImports(dev, [{ environment: 'qa' }])
    await owner.listSecrets(dev, { reveal: true, raw: true })
    await owner.getSecret(dev, 'REF', { reveal: true, raw: true })
    await owner.setImports(dev, [])
    await owner.setPersonalOverridesAllowed(dev, true)
    await owner.setPersonalOverride(dev, 'API_KEY', 'dummy-mine')
    await owner.listSecrets(dev)
    await owner.deletePersonalOverride(dev, 'API_KEY')
    // Diff and promotion.
    const d = await owner.diffEnvironments(dev, { environment: 'qa' })
    await owner.diffEnvironments(dev, { environment: 'qa', project: 'contract' }, { reveal: true })
    await owner.promote(qa, { from: { environment: 'development' }, keys: ['API_KEY'], ifState: d.to.state })
    await owner.environmentMatrix(ws, 'contract')
    await owner.renameProject(ws, 'contract', 'Contract (renamed)')
    await owner.renameEnvironment(qa, 'Quality')
    await owner.deleteEnvironment(qa, { confirm: 'qa', force: true })
    await assert.rejects(owner.getSecret(dev, 'MISSING'), (e: CofferApiError) => e.status === 404)

    // Personal tokens.
    const token = await owner.createToken(ws, { name: 'contract', expiresInDays: 1 })
    await owner.listTokens(ws)
    await owner.revokeToken(ws, token.info.id)

    // Members, project roles, restriction and grants.
    const person = await addPerson(h, { workspaceId: h.a.id, role: 'member', label: 'contract' })
    await owner.listMembers(ws)
    await owner.setProjectMember(ws, 'contract', person.userId, 'developer')
    await owner.setRestricted(dev, true)
    await owner.grantEnvironment(dev, person.userId, 'read')
    await owner.setMemberRole(ws, person.userId, 'admin')

    // Invitations: one accepted by a person of another workspace, one revoked.
    const outsider = await addPerson(h, { workspaceId: h.b.id, role: 'member', label: 'outsider' })
    const invited = await owner.createInvitation(ws, { email: outsider.email, role: 'member', project: 'contract', projectRole: 'viewer' })
    await owner.listInvitations(ws)
    await client(outsider.token).acceptInvitation(invited.token, 'contract')
    const revoked = await owner.createInvitation(ws, { email: `nobody-${randomBytes(3).toString('hex')}@contract.test`, expiresInDays: 2 })
    await owner.revokeInvitation(ws, revoked.invitation.id)

    // Integrations.
    const machine = await owner.createMachine(ws, {
      name: 'ci',
      scopes: [{ project: 'contract', environments: ['development'], access: 'read' }],
      allowedCidrs: ['127.0.0.1/32'],
      tokenTtlSeconds: 600,
    })
    await owner.listMachines(ws)
    await anonymous.machineToken(machine.clientId, machine.clientSecret!)
    // OIDC federation: the identity trusts a loopback issuer and exchanges one of its ID tokens.
    const issuer = await startIssuer()
    try {
      const sub = 'repo:acme/contract:ref:refs/heads/main'
      const rules = await owner.addMachineOidcRules(ws, machine.machine.id, [
        { issuer: issuer.url, audiences: ['coffer'], claims: { sub } },
      ])
      assert.equal((await owner.listMachineOidcRules(ws, machine.machine.id)).length, 1)
      const viaOidc = await anonymous.machineOidcToken(machine.clientId, await issuer.token({ sub }))
      assert.match(viaOidc.accessToken, /^coffer_sat_/)
      await owner.removeMachineOidcRule(ws, machine.machine.id, rules[0]!.id)
    } finally {
      await issuer.close()
    }
    await owner.revokeMachine(ws, machine.machine.id)
    const service = await owner.createServiceToken(ws, {
      name: 'deploy',
      scopes: [{ project: 'contract', environments: '*', access: 'write' }],
      expiresInDays: 30,
    })
    await owner.listServiceTokens(ws)
    const asService = await client(service.token).me()
    assert.deepEqual(
      asService.integration?.scopes.map((x) => [x.environments, x.access]),
      [['*', 'write']],
      'me names an integration’s scopes',
    )
    await owner.revokeServiceToken(ws, service.info.id)
    const health = await anonymous.health()
    assert.equal(health.status, 200)
    assert.ok(health.date && !Number.isNaN(Date.parse(health.date)), 'health() reads the Date header')

    // Data keys.
    const rotation = await owner.rotateDataKey(dev)
    await owner.dataKeyStatus(dev)
    await owner.keyJob(ws, rotation.job.id)

    // Sealing and break-glass: the admin asks, the owner decides.
    await owner.sealEnvironment(prod, true)
    const admin = client(person.token)
    const granted = await admin.breakGlassRequest(ws, {
      project: 'contract',
      environment: 'production',
      access: 'read',
      reason: 'contract test',
      durationMinutes: 15,
    })
    await owner.breakGlassList(ws)
    await owner.breakGlassList(ws, 'pending')
    await owner.breakGlassGet(ws, granted.id)
    assert.equal((await owner.breakGlassAct(ws, granted.id, 'approve', 'ok')).status, 'active')
    await admin.breakGlassAct(ws, granted.id, 'revoke')
    const denied = await admin.breakGlassRequest(ws, {
      project: 'contract',
      environment: 'production',
      access: 'read-write',
      reason: 'contract test',
      durationMinutes: 5,
    })
    await owner.breakGlassAct(ws, denied.id, 'deny', 'no')
    // Protected environments: a write becomes a change request (202) that another admin decides.
    const staging: Scope = { ...dev, environment: 'staging' }
    await owner.protectEnvironment(staging, 1)
    await assert.rejects(owner.setSecret(staging, 'P', { value: 'dummy-p' }), (e: unknown) => e instanceof CofferChangeRequested)
    const [pending] = await owner.listChangeRequests(ws, 'pending')
    assert.ok(pending)
    await owner.listChangeRequests(ws)
    await owner.getChangeRequest(ws, pending.id)
    await owner.getChangeRequest(ws, pending.id, { reveal: true })
    assert.equal((await admin.decideChangeRequest(ws, pending.id, 'approve', 'ok')).status, 'applied')
    await assert.rejects(owner.deleteSecret(staging, 'P'), (e: unknown) => e instanceof CofferChangeRequested)
    const [del] = await owner.listChangeRequests(ws, 'pending')
    await admin.decideChangeRequest(ws, del!.id, 'reject')
    await owner.protectEnvironment(staging, 0)
    await owner.removeMember(ws, person.userId)

    // Webhooks: nothing is sent here (the worker is stopped: every exchange through the proxy is checked against a route).
    await h.ctx.webhooks.stop()
    const hook = await owner.webhookCreate(ws, { url: `${proxy.url}/hook-sink`, events: ['secret.updated', 'webhook.test'] })
    await owner.webhookList(ws)
    await owner.webhookRotateSecret(ws, hook.webhook.id, 1)
    const message = await owner.webhookTest(ws, hook.webhook.id)
    await owner.webhookDeliveries(ws, hook.webhook.id, 10)
    await owner.webhookEnable(ws, hook.webhook.id)
    await owner.webhookRedeliver(ws, message.id)
    await owner.webhookDelete(ws, hook.webhook.id)

    // OAuth connections against a real authorization server and its API (loopback, allowed above):
    // the app connected through the provider's flow (its redirect followed here), then the relay.
    const tp = await startThirdParty(h.ctx.config.auth.publicUrl)
    try {
      const conn = await owner.connectionCreate(ws, {
        name: 'contract',
        authorizeUrl: `${tp.issuer}/auth`,
        tokenUrl: `${tp.issuer}/token`,
        clientId: tp.clientId,
        clientSecret: tp.clientSecret,
        scopes: ['openid', 'offline_access', 'api'],
        apiBase: tp.apiBase,
        allow: ['GET /v1/*'],
      })
      await owner.connectionList(ws)
      const flow = await owner.connectionAuthorize(ws, conn.id, 'app')
      const back = new URL(await atProvider(flow.url, 'service-account', h.ctx.config.auth.publicUrl))
      assert.equal((await h.app.inject({ method: 'GET', url: `${back.pathname}${back.search}` })).statusCode, 200)
      assert.equal((await owner.connectionGet(ws, conn.id)).app?.status, 'connected')
      const answer = await owner.connectionRelay(ws, conn.id, { method: 'GET', path: '/v1/me', asApp: true })
      assert.equal(JSON.parse(answer.body.toString()).sub, 'service-account')
      await owner.connectionUnlink(ws, conn.id)
      await owner.connectionDelete(ws, conn.id)
    } finally {
      await tp.close()
    }

    // Dynamic database credentials, on a throw-away PostgreSQL database.
    const target = await createTestDatabase()
    try {
      await owner.dbRoleCreate(dev, {
        name: 'contract',
        adminUrl: target.url,
        creationSql: 'GRANT CONNECT ON DATABASE postgres TO {{name}}',
      })
      await owner.dbRoleList(dev)
      const creds = await owner.dbCredentials(dev, 'contract', 60)
      assert.match(creds.credentials.username, /^coffer_/)
      await owner.dbRoleDelete(dev, 'contract')
      await h.ctx.dbDropper.run()
    } finally {
      await target.drop()
    }

    // AWS role assumption, against the STS stand-in.
    await owner.awsTemplate(ws)
    const externalId = (await owner.awsExternalIdRotate(ws)).externalId
    assert.equal((await owner.awsExternalId(ws)).externalId, externalId)
    const arn = 'arn:aws:iam::444455556666:role/contract'
    sts.roles.set(arn, { externalId })
    await owner.awsRoleCreate(dev, { name: 'contract', roleArn: arn, region: 'eu-west-1', maxDurationSeconds: 1800 })
    await owner.awsRoleList(dev)
    assert.match((await owner.awsCredentials(dev, 'contract', 900)).credentials.accessKeyId, /^ASIA/)
    await owner.awsRoleDelete(dev, 'contract')

    // The audit log and its proofs.
    const checkpoint = (await owner.issueAuditCheckpoint(ws)).checkpoint
    await owner.auditCheckpoint(ws)
    const first = await owner.auditEntries(ws, 0, 2)
    let entries = 0
    for await (const _ of owner.allAuditEntries(ws)) entries++
    assert.ok(entries >= checkpoint.treeSize)
    await owner.inclusionProof(ws, { seq: 1 })
    await owner.inclusionProof(ws, { id: first.entries[1]?.id ?? assert.fail('two entries') }, checkpoint.treeSize)
    await owner.consistencyProof(ws, 1)
    await owner.consistencyProof(ws, 2, checkpoint.treeSize)
    await owner.auditRestores(ws)
    const filtered = await owner.findAuditEntries(ws, { action: 'secret.*', order: 'desc', limit: 5 })
    assert.ok(filtered.entries.every((e) => e.action.startsWith('secret.')))
    const activity = await owner.auditActivity(ws, { days: 7 })
    assert.ok(activity.days.length >= 7)

    // The CLI login's exchanges (what the browser approves is written directly).
    const device = await anonymous.startDeviceLogin('contract test')
    assert.ok(await decideDevice(h.db, { userCode: device.userCode, userId: ownerId, workspaceId: h.a.id, approve: true }, new Date()))
    await anonymous.pollDeviceLogin(device.deviceCode)
    const verifier = randomBytes(32).toString('base64url')
    const redirectUri = 'http://127.0.0.1:9/callback'
    const code = await createLoginCode(
      h.db,
      { userId: ownerId, workspaceId: h.a.id, challenge: pkceChallenge(verifier), redirectUri, clientName: 'contract' },
      new Date(),
    )
    await anonymous.exchangeLoginCode({ code, codeVerifier: verifier, redirectUri })

    const spare = await owner.createProject(ws, { name: 'Spare' })
    await owner.deleteProject(ws, spare.project.slug, { confirm: spare.project.slug })

    // Last: the workspace goes.
    await owner.deleteWorkspace(ws, ws)
  })

  test('every method of the client was exercised', () => {
    assert.deepEqual(
      METHODS.filter((m) => !called.has(m)),
      [],
      'add a call of each new client method to the test above',
    )
  })

  test('every answer keeps its route schema strictly (no missing, mistyped or unknown key)', () => {
    assert.ok(log.length > 60, `the client made ${log.length} requests`)
    assert.deepEqual(log.flatMap(violations), [])
  })
})
