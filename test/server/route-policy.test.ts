// Every registered API route × every kind of caller × restricted and unrestricted
// environments, against an expectation table written here independently of the policy
// code. A route whose action has no row below fails the suite, so a new route cannot ship
// without a rule. Callers: the workspace roles; Members holding each project role, none, or a
// grant on the restricted environment; Auditors, one of them with a project-admin row and a
// write grant slipped into the database (which must change nothing); the Owner of another
// workspace (404 everywhere).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ACTIONS, type Action, type GrantAccess, type ProjectRole, type Role } from '../../src/access/policy.js'
import { API_ROUTES } from '../../src/server/app.js'
import type { AnyRoute } from '../../src/server/route.js'
import { describeEachEngine } from '../helpers/engines.js'
import { api, startHarness, type EngineName, type Harness } from '../helpers/harness.js'
import { addPerson } from '../helpers/principals.js'
import { fillUrl, sampleBody } from '../helpers/routes.js'
import { injectAny } from '../helpers/inject-stream.js'

/** Who calls: a person of workspace A, an integration of A, or someone of workspace B. */
interface Caller {
  label: string
  ws: Role
  project: ProjectRole | null
  /** A grant on the restricted environment. */
  grant: GrantAccess | null
  outsider?: true
  /** A service token or machine access token of A with these scopes (on the project, or on another one). */
  integration?: { kind: 'service' | 'machine'; project: 'this' | 'other'; environments: EnvKind[] | '*'; access: GrantAccess }
}

/** What integrations may do at all; everything else is a member's (403, or 404 where the project is out of scope). */
const INTEGRATION_ACTIONS = new Set<Action>([
  'self.read',
  'workspace.read',
  'project.list',
  'project.read',
  'secret.read',
  'secret.reveal',
  'secret.write',
  'db.credentials',
])

type Outcome = 'allow' | 403 | 404
type EnvKind = 'open' | 'restricted'

/**
 * The rules, as the product promises them (docs/access.md "Roles and access"):
 * - `any`: every member; `admin`/`owner`: at least that workspace role.
 * - `project`: the least project role (Owners and Admins are project admins everywhere).
 * - `env`: the least access to the environment's secrets: list (any project role), read
 *   (reveal: project admin; developer where unrestricted; a read or write grant), write
 *   (project admin; developer where unrestricted; a write grant).
 * - `person`: any signed-in person, the workspace named by the body.
 * - `auditor`: the Auditor may (docs/access.md "Roles and access", Auditor): reading the audit log, the workspace,
 *   members, projects and their metadata, key versions, break-glass requests; its own tokens.
 *   The Auditor sees every project but has no access to any environment's secrets (403), and
 *   `any` does not include it: only rows marked `auditor` do.
 * Whatever the rule, a route naming a project the caller holds no role in answers 404.
 */
const SPEC: Record<
  Action,
  {
    ws?: 'any' | Exclude<Role, 'auditor'>
    project?: ProjectRole
    env?: 'list' | 'read' | 'write'
    person?: true
    public?: true
    auditor?: true
  }
> = {
  public: { public: true },
  'self.read': { ws: 'any', auditor: true },
  'self.tokens.manage': { ws: 'any', auditor: true },
  'self.leave': { ws: 'any', auditor: true },
  'workspace.read': { ws: 'any', auditor: true },
  'members.read': { ws: 'any', auditor: true },
  'members.manage': { ws: 'admin' },
  'invitations.manage': { ws: 'admin' },
  'invitation.accept': { person: true },
  'project.list': { ws: 'any', auditor: true },
  'project.create': { ws: 'admin' },
  'project.read': { project: 'viewer', auditor: true },
  'project.members.manage': { project: 'admin' },
  'environment.create': { project: 'admin' },
  'environment.manage': { project: 'admin' },
  'project.manage': { project: 'admin' },
  'project.delete': { ws: 'admin' },
  'environment.delete': { project: 'admin' },
  'secret.read': { env: 'list' },
  'secret.reveal': { env: 'read' },
  'db.credentials': { env: 'read' },
  'db.roles.manage': { project: 'admin' },
  'secret.write': { env: 'write' },
  'audit.read': { ws: 'admin', auditor: true },
  'machines.manage': { ws: 'admin' },
  'service-tokens.manage': { ws: 'admin' },
  'machine.authenticate': { public: true },
  'key.read': { ws: 'admin', auditor: true },
  'key.rotate': { ws: 'admin' },
  'webhook.read': { ws: 'admin' },
  'webhook.manage': { ws: 'admin' },
  'aws.external-id.read': { ws: 'admin' },
  'aws.external-id.rotate': { ws: 'admin' },
  'connection.read': { ws: 'any' },
  'connection.manage': { ws: 'admin' },
  'connection.link': { ws: 'any' },
  'connection.relay': { ws: 'any' },
  'workspace.delete': { ws: 'owner' },
  'environment.seal': { ws: 'admin' },
  'breakglass.read': { ws: 'admin', auditor: true },
  'breakglass.request': { ws: 'admin' },
  'breakglass.decide': { ws: 'admin' },
  'breakglass.revoke': { ws: 'admin' },
  'environment.protect': { ws: 'admin' },
  'change.read': { ws: 'any', auditor: true },
  'change.decide': { ws: 'admin' },
  'account.read': { person: true },
  'account.manage': { person: true },
  'auth.links.issue': { ws: 'admin' },
  'cli.login.approve': { person: true },
}

const WS_RANK: Record<Exclude<Role, 'auditor'>, number> = { owner: 3, admin: 2, member: 1 }
const P_RANK: Record<ProjectRole, number> = { admin: 3, developer: 2, viewer: 1 }
const ACCESS_RANK = { none: 0, list: 1, read: 2, write: 3 } as const

function expected(action: Action, c: Caller, names: { workspace: boolean; project: boolean; environment: boolean }, env: EnvKind): Outcome {
  const rule = SPEC[action]
  assert.ok(rule, `the route table names action ${action}, which has no rule in SPEC`)
  if (rule.public) return 'allow'
  if (c.integration) {
    if (rule.person) return 403
    if (c.outsider) return names.workspace ? 404 : INTEGRATION_ACTIONS.has(action) ? 'allow' : 403
    const i = c.integration
    if (names.project && i.project !== 'this') return 404
    if (names.environment && i.environments !== '*' && !i.environments.includes(env)) return 404
    if (!INTEGRATION_ACTIONS.has(action)) return 403
    if (rule.env) return ACCESS_RANK[i.access] >= ACCESS_RANK[rule.env] ? 'allow' : 403
    return 'allow'
  }
  if (rule.person) return 'allow'
  if (c.outsider) return names.workspace ? 404 : 'allow'
  // The Auditor sees every project and environment, may what its rows allow, and never a secret.
  if (c.ws === 'auditor') return rule.auditor ? 'allow' : 403
  const projectRole: ProjectRole | null = c.ws === 'member' ? c.project : 'admin'
  if (names.project && projectRole === null) return 404
  if (rule.ws) return rule.ws === 'any' || WS_RANK[c.ws] >= WS_RANK[rule.ws] ? 'allow' : 403
  if (rule.project) return projectRole && P_RANK[projectRole] >= P_RANK[rule.project] ? 'allow' : 403
  const base = projectRole === 'admin' ? 'write' : projectRole === 'developer' ? (env === 'restricted' ? 'list' : 'write') : 'list'
  const granted = env === 'restricted' && c.grant ? c.grant : 'none'
  const access = Math.max(ACCESS_RANK[base], ACCESS_RANK[granted])
  return access >= ACCESS_RANK[rule.env!] ? 'allow' : 403
}

const NIL = '00000000-0000-4000-8000-000000000000'
/**
 * Copying keys reads the URL's environment and writes the one its body names (the open
 * environment here): it is allowed only where both are, and answers the first refusal.
 */
const COPY = 'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/copy'
/** Promoting reads the open environment its body names (reveal there) and writes the URL's: the same rule as copying, the other way round. */
const PROMOTE = 'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/promote'
/** 404s a handler gives for a resource that does not exist — unlike the policy's own, which name these. */
const POLICY_HIDES = new Set(['The workspace was not found.', 'The project was not found.', 'The environment was not found.'])

function suite(engine: EngineName): void {
  let h: Harness
  let projectId: string
  const envIds: Record<EnvKind, string> = { open: '', restricted: '' }
  const callers: Array<Caller & { token: string }> = []
  const samples: Record<string, unknown> = {}

  before(async () => {
    h = await startHarness(engine)
    const owner = api(h.app, h.a.token)
    const p = await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Matrix' })
    assert.equal(p.status, 201)
    projectId = p.body.project.id
    for (const e of p.body.environments as Array<{ slug: string; id: string; restricted: boolean }>) {
      if (e.slug === 'development') envIds.open = e.id
      if (e.slug === 'production') {
        envIds.restricted = e.id
        assert.equal(e.restricted, true, 'production starts restricted')
      }
    }
    assert.ok(envIds.open && envIds.restricted)
    const spec: Caller[] = [
      { label: 'owner', ws: 'owner', project: null, grant: null },
      { label: 'admin', ws: 'admin', project: null, grant: null },
      { label: 'member+project admin', ws: 'member', project: 'admin', grant: null },
      { label: 'member+developer', ws: 'member', project: 'developer', grant: null },
      { label: 'member+viewer', ws: 'member', project: 'viewer', grant: null },
      { label: 'member, no project role', ws: 'member', project: null, grant: null },
      { label: 'member+developer, read grant', ws: 'member', project: 'developer', grant: 'read' },
      { label: 'member+developer, write grant', ws: 'member', project: 'developer', grant: 'write' },
      { label: 'member+viewer, read grant', ws: 'member', project: 'viewer', grant: 'read' },
      { label: 'auditor', ws: 'auditor', project: null, grant: null },
      // Rows the API would never make for an Auditor (ERR_AUDITOR_PROJECT_ROLE), written
      // straight into the database: the policy must ignore them.
      { label: 'auditor with a stray project-admin row and write grant', ws: 'auditor', project: 'admin', grant: 'write' },
    ]
    for (const c of spec) {
      if (c.ws === 'owner') {
        callers.push({ ...c, token: h.a.token })
        continue
      }
      const person = await addPerson(h, {
        workspaceId: h.a.id,
        role: c.ws,
        label: c.label.replace(/[^a-z]+/g, '-'),
        ...(c.project ? { project: { id: projectId, role: c.project } } : {}),
        ...(c.grant ? { grant: { projectId, environmentId: envIds.restricted, access: c.grant } } : {}),
      })
      callers.push({ ...c, token: person.token })
    }
    callers.push({ label: 'owner of another workspace', ws: 'owner', project: null, grant: null, outsider: true, token: h.b.token })

    // Integrations of A (and one of B), made through the API as an Admin would.
    const other = await owner.post(`/v1/workspaces/${h.a.slug}/projects`, { name: 'Other' })
    assert.equal(other.status, 201)
    const integrations: Array<NonNullable<Caller['integration']> & { outsider?: true }> = [
      { kind: 'service', project: 'this', environments: ['open'], access: 'read' },
      { kind: 'service', project: 'this', environments: '*', access: 'write' },
      { kind: 'machine', project: 'this', environments: ['restricted'], access: 'read' },
      { kind: 'machine', project: 'this', environments: '*', access: 'write' },
      { kind: 'service', project: 'other', environments: '*', access: 'write' },
    ]
    for (const i of integrations) {
      const scopes = [
        {
          project: i.project === 'this' ? projectId : other.body.project.id,
          environments: i.environments === '*' ? '*' : i.environments.map((e) => envIds[e]),
          access: i.access,
        },
      ]
      const label = `${i.kind} token (${i.project} project, ${i.environments === '*' ? 'all' : i.environments.join('+')}, ${i.access})`
      let token: string
      if (i.kind === 'service') {
        const t = await owner.post(`/v1/workspaces/${h.a.slug}/service-tokens`, { name: label.slice(0, 100), scopes })
        assert.equal(t.status, 201)
        token = t.body.token
      } else {
        const m = await owner.post(`/v1/workspaces/${h.a.slug}/machines`, { name: label.slice(0, 100), scopes })
        assert.equal(m.status, 201)
        const x = await h.app.inject({
          method: 'POST',
          url: '/v1/machine/token',
          payload: { clientId: m.body.clientId, clientSecret: m.body.clientSecret },
        })
        assert.equal(x.statusCode, 200)
        token = JSON.parse(x.body).accessToken
      }
      callers.push({ label, ws: 'member', project: null, grant: null, integration: i, token })
    }
    const bOther = await api(h.app, h.b.token).post(`/v1/workspaces/${h.b.slug}/projects`, { name: 'Theirs' })
    const bToken = await api(h.app, h.b.token).post(`/v1/workspaces/${h.b.slug}/service-tokens`, {
      name: 'theirs',
      scopes: [{ project: bOther.body.project.id, environments: '*', access: 'write' }],
    })
    assert.equal(bToken.status, 201)
    callers.push({
      label: 'service token of another workspace',
      ws: 'member',
      project: null,
      grant: null,
      outsider: true,
      integration: { kind: 'service', project: 'other', environments: '*', access: 'write' },
      token: bToken.body.token,
    })

    Object.assign(samples, {
      'POST /v1/workspaces/:workspace/tokens': { name: 'sample' },
      'POST /v1/workspaces/:workspace/projects': { name: 'Sample Project' },
      'POST /v1/workspaces/:workspace/projects/:project/environments': { name: 'Sample Env' },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key': { value: 'sample' },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets': {
        secrets: [{ key: 'SAMPLE', value: 'sample' }],
      },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key/rollback': { version: 1 },
      'PUT /v1/workspaces/:workspace/members/:user': { role: 'member' },
      'PUT /v1/workspaces/:workspace/projects/:project/members/:user': { role: 'viewer' },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/restriction': { restricted: true },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/grants/:user': { access: 'read' },
      'POST /v1/workspaces/:workspace/invitations': { email: 'invitee@people.test' },
      'POST /v1/invitations/accept': { token: 'coffer_inv_not-a-real-invitation' },
      'DELETE /v1/workspaces/:workspace': { confirm: 'not-the-slug' },
      'POST /v1/workspaces/:workspace/auth-links': { email: 'nobody@people.test', purpose: 'verify' },
      'POST /v1/workspaces/:workspace/machines': { name: 'sample', scopes: [{ project: projectId, environments: '*', access: 'read' }] },
      'POST /v1/workspaces/:workspace/service-tokens': {
        name: 'sample',
        scopes: [{ project: projectId, environments: '*', access: 'read' }],
      },
      'POST /v1/machine/token': { clientId: NIL, clientSecret: 'coffer_mcs_not-a-secret' },
      'POST /v1/machine/oidc-token': { clientId: NIL, idToken: 'not.a.token' },
      // A documentation address: an allowed caller gets 400 ERR_OUTBOUND_REFUSED and nothing is made.
      'POST /v1/workspaces/:workspace/machines/:machine/oidc-rules': {
        rules: [{ issuer: 'https://203.0.113.10', audiences: ['coffer'], claims: { sub: 'repo:acme/web:ref:refs/heads/main' } }],
      },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/seal': { sealed: false },
      // A documentation address: an allowed caller gets 400 ERR_OUTBOUND_REFUSED and nothing is made.
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/db-roles': {
        name: 'matrix',
        adminUrl: 'postgres://u:p@203.0.113.10:5432/db',
        creationSql: 'GRANT SELECT ON t TO {{name}}',
      },
      'POST /v1/workspaces/:workspace/webhooks': { url: 'http://203.0.113.10/hook', events: ['secret.updated'] },
      // An allowed caller registers it once (then 409); its credentials route names another role (404, STS never asked).
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/aws-roles': {
        name: 'matrix',
        roleArn: 'arn:aws:iam::123456789012:role/matrix',
      },
      'POST /v1/workspaces/:workspace/connections': {
        name: 'matrix',
        authorizeUrl: 'https://203.0.113.10/authorize',
        tokenUrl: 'https://203.0.113.10/token',
        clientId: 'matrix',
        clientSecret: 'matrix-secret',
        apiBase: 'https://203.0.113.10/api',
        allow: ['GET /v1/*'],
      },
      // The relay takes its body as bytes; the connection does not exist (an allowed caller gets 404 ERR_NOT_FOUND).
      ...Object.fromEntries(
        ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => [
          `${m} /v1/workspaces/:workspace/connections/:connection/relay/*`,
          Buffer.from('{}'),
        ]),
      ),
      'POST /v1/workspaces/:workspace/break-glass': {
        project: projectId,
        environment: 'development',
        access: 'read',
        reason: 'matrix',
        durationMinutes: 5,
      },
      // Deletions with a wrong confirmation: an allowed caller gets 400 and nothing goes.
      'PATCH /v1/workspaces/:workspace/projects/:project': { name: 'Matrix' },
      'DELETE /v1/workspaces/:workspace/projects/:project': { confirm: 'not-the-slug' },
      'PATCH /v1/workspaces/:workspace/projects/:project/environments/:environment': { name: 'Renamed' },
      'DELETE /v1/workspaces/:workspace/projects/:project/environments/:environment': { confirm: 'not-the-slug', force: true },
      'POST /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/apply': {
        upserts: [{ key: 'MATRIX_KEY', value: 'matrix' }],
      },
      [COPY]: { keys: ['MATRIX_KEY'], to: { environment: envIds.open } },
      // Importing nothing (an allowed caller changes nothing); overrides off by default: an allowed caller gets 409.
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/imports': { imports: [] },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/personal-overrides': { allowed: false },
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/secrets/:key/personal': { value: 'mine' },
      [PROMOTE]: { from: { environment: envIds.open }, keys: ['MATRIX_KEY'] },
      // 0 keeps the environment unprotected (the fixtures stay as they are).
      'PUT /v1/workspaces/:workspace/projects/:project/environments/:environment/protection': { approvals: 0 },
      'POST /v1/workspaces/:workspace/change-requests/:request/approve': {},
      'POST /v1/workspaces/:workspace/change-requests/:request/reject': {},
      'POST /v1/workspaces/:workspace/break-glass/:request/approve': {},
      'POST /v1/workspaces/:workspace/break-glass/:request/deny': {},
      'POST /v1/workspaces/:workspace/break-glass/:request/revoke': {},
    })
  })
  after(() => h?.close())

  async function call(r: AnyRoute, token: string, env: EnvKind, flag?: string) {
    const url = fillUrl(r.url, {
      workspace: h.a.slug,
      project: projectId,
      environment: envIds[env],
      key: 'MATRIX_KEY',
      token: NIL,
      user: NIL,
      invitation: NIL,
      request: NIL,
      job: NIL,
      machine: NIL,
      rule: NIL,
      serviceToken: NIL,
      webhook: NIL,
      connection: NIL,
      role: 'matrix-role',
      delivery: `msg_${'0'.repeat(32)}`,
    })
    const body = sampleBody(r, samples)
    const res = await injectAny(h.app, {
      method: r.method,
      url: flag ? `${url}?${flag}=true` : url,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { payload: body as object }),
    })
    // An allowed event stream answers its first event, not JSON.
    const json = res.body && !(r.events && res.statusCode === 200)
    return { status: res.statusCode, body: json ? JSON.parse(res.body) : undefined }
  }

  /** The key exists in both environments, and only production is restricted. */
  async function fixtures(): Promise<void> {
    const owner = api(h.app, h.a.token)
    for (const kind of ['open', 'restricted'] as const) {
      const base = `/v1/workspaces/${h.a.slug}/projects/${projectId}/environments/${envIds[kind]}`
      assert.equal((await owner.put(`${base}/secrets/MATRIX_KEY`, { value: 'matrix' })).status, 200)
      assert.equal((await owner.put(`${base}/restriction`, { restricted: kind === 'restricted' })).status, 200)
    }
  }

  test('every route, every caller, restricted and unrestricted environments', async () => {
    // Leaving comes last: a caller who left has no token any more.
    const routes = [...API_ROUTES.filter((r) => r.action !== 'self.leave'), ...API_ROUTES.filter((r) => r.action === 'self.leave')]
    assert.ok(routes.length >= 40, 'the route table is complete')
    await fixtures()
    let checked = 0
    const outcomes = new Set<string>()
    for (const r of routes) {
      const names = {
        workspace: r.url.includes(':workspace'),
        project: r.url.includes(':project'),
        environment: r.url.includes(':environment'),
      }
      for (const env of names.environment ? (['open', 'restricted'] as const) : (['open'] as const)) {
        for (const c of callers) {
          for (const flag of r.elevate ? [undefined, r.elevate.flag] : [undefined]) {
            const action = flag ? r.elevate!.action : r.action
            const res = await call(r, c.token, env, flag)
            if (r.auth === 'none') {
              // Authenticated by its body alone (a made-up client secret here): the caller's token does not matter.
              assert.equal(res.status, 401, `${c.label}: ${r.method} ${r.url} ignores the Bearer token`)
              assert.equal(res.body.error.code, 'ERR_UNAUTHENTICATED')
              checked++
              continue
            }
            const want =
              `${r.method} ${r.url}` === COPY
                ? ([expected('secret.reveal', c, names, env), expected('secret.write', c, names, 'open')].find((o) => o !== 'allow') ??
                  'allow')
                : `${r.method} ${r.url}` === PROMOTE
                  ? ([expected('secret.write', c, names, env), expected('secret.reveal', c, names, 'open')].find((o) => o !== 'allow') ??
                    'allow')
                  : expected(action, c, names, env)
            // A write that went through may have changed the fixtures (deleted the key, lifted a restriction).
            if (r.mode === 'write' && res.status < 400) await fixtures()
            const what = `${c.label}: ${r.method} ${r.url}${flag ? `?${flag}=true` : ''} (${env} environment)`
            const got = `${res.status} ${res.body?.error?.code ?? ''}`
            if (want === 'allow') {
              assert.ok(res.status !== 401 && res.status !== 403 && res.status < 500, `${what} is allowed, got ${got}`)
              assert.ok(
                !(res.status === 404 && POLICY_HIDES.has(res.body?.error?.message)),
                `${what} is allowed, got a hiding 404 (${res.body?.error?.message})`,
              )
            } else if (want === 403) {
              assert.equal(res.status, 403, `${what} is forbidden, got ${got}`)
              assert.equal(res.body.error.code, 'ERR_FORBIDDEN', what)
            } else {
              assert.equal(res.status, 404, `${what} is hidden, got ${got}`)
              assert.equal(res.body.error.code, 'ERR_NOT_FOUND', what)
            }
            outcomes.add(String(want))
            checked++
          }
        }
      }
    }
    assert.deepEqual([...outcomes].sort(), ['403', '404', 'allow'], 'the matrix exercises all three outcomes')
    assert.ok(checked > routes.length * callers.length, `checked ${checked} combinations`)
  })

  test('every action of the policy has a rule in this suite', () => {
    for (const action of Object.keys(ACTIONS)) assert.ok(action in SPEC, `SPEC lacks ${action}`)
  })
}

describeEachEngine(suite)
