import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

// The typed HTTP client of the Coffer API, shared by the CLI, the tests and SDK users. It
// depends on nothing but the platform.

/**
 * One HTTP exchange over node:http(s). @NOTE not fetch: loading Node's fetch costs a CLI
 * ~50 ms at start and keeps the process alive ~100 ms after the last request, which
 * `coffer run` pays on every invocation.
 */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
  ca?: string | Buffer,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const tls = u.protocol === 'https:'
    const request = tls ? httpsRequest : httpRequest
    const req = request(u, { method, headers, timeout: 60_000, ...(tls && ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('the request timed out')))
    req.on('error', reject)
    req.end(body)
  })
}

export interface Workspace {
  id: string
  slug: string
  name: string
  createdAt: string
}
export interface Project {
  id: string
  workspaceId: string
  slug: string
  name: string
  createdAt: string
}
export interface Environment {
  id: string
  projectId: string
  slug: string
  name: string
  createdAt: string
  restricted?: boolean
  sealed?: boolean
}
export interface Secret {
  id: string
  key: string
  version: number
  deleted: boolean
  tags: string[]
  createdAt: string
  updatedAt: string
  value?: string
  comment?: string | null
}
export interface SecretVersion {
  version: number
  origin: 'set' | 'rollback' | 'delete' | 'restore'
  originVersion: number | null
  deleted: boolean
  tags: string[]
  createdAt: string
  createdBy: string
  value?: string | null
  comment?: string | null
}
export interface TokenInfo {
  id: string
  name: string
  display: string
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}
/** What a CLI login yields: the token (once) and whom it acts as. */
export interface CliTokenGrant {
  token: string
  tokenId: string
  expiresAt: string
  user: { id: string; email: string }
  workspace: { id: string; slug: string; name: string }
}
/** Who a token belongs to: a person (user, role) or a workspace integration (integration). */
export interface Me {
  user: { id: string; email: string } | null
  integration: { type: 'machine' | 'service'; id: string; name: string } | null
  workspace: Workspace
  role: string | null
  tokenId: string
}
export interface Member {
  userId: string
  email: string
  name: string
  role: string
  createdAt: string
}
export interface Invitation {
  id: string
  email: string
  role: string
  projectId: string | null
  projectRole: string | null
  invitedBy: string
  createdAt: string
  expiresAt: string
  state: 'pending' | 'accepted' | 'revoked' | 'expired'
  acceptedAt: string | null
  revokedAt: string | null
}
/** What an integration may touch: a project, its environments (ids or slugs, or '*'), read or write. */
export interface ScopeInput {
  project: string
  environments: string[] | '*'
  access: 'read' | 'write'
}
export interface IntegrationScope {
  projectId: string
  environments: string[] | '*'
  access: 'read' | 'write'
}
export interface Machine {
  id: string
  clientId: string
  name: string
  secretDisplay: string
  scopes: IntegrationScope[]
  allowedCidrs: string[]
  tokenTtlSeconds: number
  createdBy: string
  createdAt: string
  revokedAt: string | null
  lastUsedAt: string | null
}
export interface ServiceToken {
  id: string
  name: string
  display: string
  scopes: IntegrationScope[]
  createdBy: string
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}
export interface AuditEntry {
  workspaceId: string
  seq: number
  id: string
  time: string
  actor: { type: string; id: string; ip: string; userAgent: string }
  requestId: string
  action: string
  target: { type: string; id: string }
  details: string
  prevHash: string
  hash: string
}
export interface AuditCheckpoint {
  treeSize: number
  rootHash: string
  note: string
  createdAt: string
}
export interface SecretWrite {
  value: string
  comment?: string
  tags?: string[]
  ifVersion?: number
}
/** The permanent receipt of a workspace deletion. */
export interface DeletionReceipt {
  workspaceId: string
  slug: string
  name: string
  deletedBy: string
  deletedAt: string
  purgeAfter: string
  auditTreeSize: number
  auditRootHash: string
  checkpointNote: string
  purgedAt: string | null
}
/** A break-glass request and, once approved, its grant. */
export interface BreakGlassRequest {
  id: string
  status: 'pending' | 'active' | 'expired' | 'denied' | 'revoked'
  requester: { id: string; email: string }
  project: { id: string; slug: string }
  environment: { id: string; slug: string }
  access: 'read' | 'read-write'
  reason: string
  durationMinutes: number
  approvalsRequired: number
  approvals: number
  decisions: Array<{ user: { id: string; email: string }; decision: 'approve' | 'deny'; comment: string | null; at: string }>
  createdAt: string
  activatedAt: string | null
  expiresAt: string | null
  endedAt: string | null
  endedBy: string | null
}
/** Project and environment (ids or slugs) inside a workspace (id or slug). */
export interface Scope {
  workspace: string
  project: string
  environment: string
}

/** An error answer of the API, with its stable code. */
export class CofferApiError extends Error {
  readonly status: number
  readonly code: string
  readonly requestId: string | undefined
  constructor(status: number, code: string, message: string, requestId?: string) {
    super(message)
    this.name = 'CofferApiError'
    this.status = status
    this.code = code
    this.requestId = requestId
  }
}

/** The server could not be reached at all. */
export class CofferConnectionError extends Error {
  readonly code = 'ERR_CONNECTION'
  constructor(url: string, cause: unknown) {
    super(`Cannot reach the Coffer server at ${url}: ${(cause as NodeJS.ErrnoException)?.code ?? (cause as Error)?.message ?? cause}`)
    this.name = 'CofferConnectionError'
  }
}

const enc = encodeURIComponent

/** A data-key version as the API shows it (never the key). */
export interface KeyVersion {
  id: string
  version: number
  state: 'primary' | 'active' | 'shredded'
  encryptions: number
  rootKeyId: string
  createdAt: string
}

/** A reseal job's progress after a rotation. */
export interface KeyJob {
  id: string
  kind: 'reseal'
  state: 'running' | 'done' | 'failed'
  reason: string
  keyId: string
  targetVersion: number
  total: number
  done: number
  error: string | null
  createdAt: string
  updatedAt: string
  finishedAt: string | null
}

/** A client for one server and one token. */
export class CofferClient {
  readonly url: string
  readonly #token: string
  readonly #userAgent: string
  readonly #ca: string | Buffer | undefined

  /**
   * `ca`: PEM certificate(s) of a private certificate authority that https:// servers are
   * verified against (instead of the system's); verification is never turned off.
   */
  /** `token` may be '' for the calls that need none (the CLI login's exchanges). */
  constructor(options: { url: string; token: string; userAgent?: string; ca?: string | Buffer }) {
    this.url = options.url.replace(/\/+$/, '')
    this.#token = options.token
    this.#userAgent = options.userAgent ?? 'coffer-client'
    this.#ca = options.ca
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8')
    let res: { status: number; text: string }
    try {
      res = await send(
        this.url + path,
        method,
        {
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
          'user-agent': this.#userAgent,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
        payload,
        this.#ca,
      )
    } catch (err) {
      throw new CofferConnectionError(this.url, err)
    }
    let json: unknown
    try {
      json = res.text ? JSON.parse(res.text) : undefined
    } catch {
      throw new CofferApiError(res.status, 'ERR_BAD_RESPONSE', `The server answered ${res.status} with a body that is not JSON.`)
    }
    if (res.status < 200 || res.status >= 300) {
      const e = (json as { error?: { code?: string; message?: string; requestId?: string } } | undefined)?.error
      throw new CofferApiError(res.status, e?.code ?? 'ERR_HTTP', e?.message ?? `HTTP ${res.status}`, e?.requestId)
    }
    return json as T
  }

  #env(s: Scope): string {
    return `/v1/workspaces/${enc(s.workspace)}/projects/${enc(s.project)}/environments/${enc(s.environment)}`
  }

  /** CLI login (no token needed): exchanges a one-time code and its PKCE verifier for a CLI token. */
  exchangeLoginCode(input: { code: string; codeVerifier: string; redirectUri: string }): Promise<CliTokenGrant> {
    return this.#request('POST', '/v1/cli/token', input)
  }
  /** CLI login (no token needed): starts a device login. */
  startDeviceLogin(
    clientName: string,
  ): Promise<{ deviceCode: string; userCode: string; verificationPath: string; expiresIn: number; interval: number }> {
    return this.#request('POST', '/v1/cli/device', { clientName })
  }
  /** CLI login (no token needed): one poll; throws CofferApiError ERR_AUTHORIZATION_PENDING, ERR_SLOW_DOWN, … until approved. */
  pollDeviceLogin(deviceCode: string): Promise<CliTokenGrant> {
    return this.#request('POST', '/v1/cli/device/token', { deviceCode })
  }
  me(): Promise<Me> {
    return this.#request('GET', '/v1/me')
  }
  workspace(ws: string): Promise<Workspace> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}`)
  }
  async listProjects(ws: string): Promise<Project[]> {
    return (await this.#request<{ projects: Project[] }>('GET', `/v1/workspaces/${enc(ws)}/projects`)).projects
  }
  createProject(ws: string, input: { name: string; slug?: string }): Promise<{ project: Project; environments: Environment[] }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/projects`, input)
  }
  project(ws: string, project: string): Promise<{ project: Project; environments: Environment[] }> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}`)
  }
  async listEnvironments(ws: string, project: string): Promise<Environment[]> {
    return (await this.#request<{ environments: Environment[] }>('GET', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/environments`))
      .environments
  }
  async createEnvironment(ws: string, project: string, input: { name: string; slug?: string }): Promise<Environment> {
    return (
      await this.#request<{ environment: Environment }>('POST', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/environments`, input)
    ).environment
  }
  /** The environment's secrets; with `reveal`, decrypted (audited on the server). */
  async listSecrets(s: Scope, opts: { reveal?: boolean; includeDeleted?: boolean } = {}): Promise<Secret[]> {
    const q = new URLSearchParams()
    if (opts.reveal) q.set('reveal', 'true')
    if (opts.includeDeleted) q.set('includeDeleted', 'true')
    const qs = q.size ? `?${q}` : ''
    return (await this.#request<{ secrets: Secret[] }>('GET', `${this.#env(s)}/secrets${qs}`)).secrets
  }
  async getSecret(s: Scope, key: string, opts: { reveal?: boolean } = {}): Promise<Secret> {
    return (await this.#request<{ secret: Secret }>('GET', `${this.#env(s)}/secrets/${enc(key)}${opts.reveal ? '?reveal=true' : ''}`))
      .secret
  }
  async setSecret(s: Scope, key: string, input: SecretWrite): Promise<Secret> {
    return (await this.#request<{ secret: Secret }>('PUT', `${this.#env(s)}/secrets/${enc(key)}`, input)).secret
  }
  /** Sets many secrets atomically. */
  async setSecrets(s: Scope, secrets: Array<{ key: string; value: string; comment?: string; tags?: string[] }>): Promise<Secret[]> {
    return (await this.#request<{ secrets: Secret[] }>('POST', `${this.#env(s)}/secrets`, { secrets })).secrets
  }
  async deleteSecret(s: Scope, key: string, opts: { ifVersion?: number } = {}): Promise<Secret> {
    const qs = opts.ifVersion === undefined ? '' : `?ifVersion=${opts.ifVersion}`
    return (await this.#request<{ secret: Secret }>('DELETE', `${this.#env(s)}/secrets/${enc(key)}${qs}`)).secret
  }
  async restoreSecret(s: Scope, key: string): Promise<Secret> {
    return (await this.#request<{ secret: Secret }>('POST', `${this.#env(s)}/secrets/${enc(key)}/restore`, {})).secret
  }
  history(s: Scope, key: string, opts: { reveal?: boolean } = {}): Promise<{ secret: Secret; versions: SecretVersion[] }> {
    return this.#request('GET', `${this.#env(s)}/secrets/${enc(key)}/versions${opts.reveal ? '?reveal=true' : ''}`)
  }
  async rollback(s: Scope, key: string, version: number, opts: { ifVersion?: number } = {}): Promise<Secret> {
    return (await this.#request<{ secret: Secret }>('POST', `${this.#env(s)}/secrets/${enc(key)}/rollback`, { version, ...opts })).secret
  }
  async listTokens(ws: string): Promise<TokenInfo[]> {
    return (await this.#request<{ tokens: TokenInfo[] }>('GET', `/v1/workspaces/${enc(ws)}/tokens`)).tokens
  }
  createToken(ws: string, input: { name: string; expiresInDays?: number }): Promise<{ token: string; info: TokenInfo }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/tokens`, input)
  }
  async revokeToken(ws: string, id: string): Promise<TokenInfo> {
    return (await this.#request<{ info: TokenInfo }>('DELETE', `/v1/workspaces/${enc(ws)}/tokens/${enc(id)}`)).info
  }
  async listMembers(ws: string): Promise<Member[]> {
    return (await this.#request<{ members: Member[] }>('GET', `/v1/workspaces/${enc(ws)}/members`)).members
  }
  async setMemberRole(ws: string, userId: string, role: string): Promise<Member> {
    return (await this.#request<{ member: Member }>('PUT', `/v1/workspaces/${enc(ws)}/members/${enc(userId)}`, { role })).member
  }
  removeMember(ws: string, userId: string): Promise<{ member: Member; revokedTokens: number }> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}/members/${enc(userId)}`)
  }
  /** Gives a workspace member a role on a project (admin, developer, viewer). */
  async setProjectMember(
    ws: string,
    project: string,
    userId: string,
    role: string,
  ): Promise<{ userId: string; email: string; role: string }> {
    return (
      await this.#request<{ member: { userId: string; email: string; role: string } }>(
        'PUT',
        `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/members/${enc(userId)}`,
        { role },
      )
    ).member
  }
  async setRestricted(s: Scope, restricted: boolean): Promise<Environment> {
    return (await this.#request<{ environment: Environment }>('PUT', `${this.#env(s)}/restriction`, { restricted })).environment
  }
  async grantEnvironment(s: Scope, userId: string, access: 'read' | 'write'): Promise<{ userId: string; email: string; access: string }> {
    return (
      await this.#request<{ grant: { userId: string; email: string; access: string } }>('PUT', `${this.#env(s)}/grants/${enc(userId)}`, {
        access,
      })
    ).grant
  }
  createInvitation(
    ws: string,
    input: { email: string; role?: string; project?: string; projectRole?: string; expiresInDays?: number },
  ): Promise<{ invitation: Invitation; token: string; acceptUrl: string; acceptCommand: string; mailed: boolean }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/invitations`, input)
  }
  async listInvitations(ws: string): Promise<Invitation[]> {
    return (await this.#request<{ invitations: Invitation[] }>('GET', `/v1/workspaces/${enc(ws)}/invitations`)).invitations
  }
  async revokeInvitation(ws: string, id: string): Promise<Invitation> {
    return (await this.#request<{ invitation: Invitation }>('DELETE', `/v1/workspaces/${enc(ws)}/invitations/${enc(id)}`)).invitation
  }
  /** Accepts an invitation as the signed-in person; with `tokenName`, also returns a personal token for the new workspace (once). */
  acceptInvitation(
    token: string,
    tokenName?: string,
  ): Promise<{
    workspace: Workspace
    role: string
    project: { id: string; role: string } | null
    token: string | null
    tokenInfo: TokenInfo | null
  }> {
    return this.#request('POST', '/v1/invitations/accept', { token, ...(tokenName ? { tokenName } : {}) })
  }
  createMachine(
    ws: string,
    input: { name: string; scopes: ScopeInput[]; allowedCidrs?: string[]; tokenTtlSeconds?: number },
  ): Promise<{ machine: Machine; clientId: string; clientSecret: string }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/machines`, input)
  }
  async listMachines(ws: string): Promise<Machine[]> {
    return (await this.#request<{ machines: Machine[] }>('GET', `/v1/workspaces/${enc(ws)}/machines`)).machines
  }
  revokeMachine(ws: string, id: string): Promise<{ machine: Machine; liveTokens: number }> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}/machines/${enc(id)}`)
  }
  /** Exchanges a machine identity's client credentials for an access token (needs no token of its own). */
  machineToken(
    clientId: string,
    clientSecret: string,
  ): Promise<{ accessToken: string; tokenType: 'Bearer'; expiresIn: number; expiresAt: string }> {
    return this.#request('POST', '/v1/machine/token', { clientId, clientSecret })
  }
  createServiceToken(
    ws: string,
    input: { name: string; scopes: ScopeInput[]; expiresInDays?: number },
  ): Promise<{ token: string; info: ServiceToken }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/service-tokens`, input)
  }
  async listServiceTokens(ws: string): Promise<ServiceToken[]> {
    return (await this.#request<{ tokens: ServiceToken[] }>('GET', `/v1/workspaces/${enc(ws)}/service-tokens`)).tokens
  }
  async revokeServiceToken(ws: string, id: string): Promise<ServiceToken> {
    return (await this.#request<{ info: ServiceToken }>('DELETE', `/v1/workspaces/${enc(ws)}/service-tokens/${enc(id)}`)).info
  }
  auditEntries(ws: string, after = 0, limit = 1000): Promise<{ entries: AuditEntry[]; next: number | null }> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/entries?after=${after}&limit=${limit}`)
  }
  async auditPublicKey(): Promise<string> {
    return (await this.#request<{ publicKey: string }>('GET', '/v1/audit/public-key')).publicKey
  }
  /** The newest signed checkpoint (null before the first) and the key that signs them. */
  auditCheckpoint(ws: string): Promise<{ checkpoint: AuditCheckpoint | null; publicKey: string }> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/checkpoint`)
  }
  /** Signs a checkpoint of the log as it is now (or returns the newest if it covers it). */
  issueAuditCheckpoint(ws: string): Promise<{ checkpoint: AuditCheckpoint; publicKey: string }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/audit/checkpoints`, {})
  }
  inclusionProof(
    ws: string,
    ref: { seq?: number; id?: string },
    treeSize?: number,
  ): Promise<{ entry: AuditEntry; leafIndex: number; treeSize: number; leafHash: string; proof: string[]; rootHash: string }> {
    const q = new URLSearchParams()
    if (ref.seq !== undefined) q.set('seq', String(ref.seq))
    if (ref.id !== undefined) q.set('id', ref.id)
    if (treeSize !== undefined) q.set('treeSize', String(treeSize))
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/proofs/inclusion?${q}`)
  }
  consistencyProof(
    ws: string,
    from: number,
    to?: number,
  ): Promise<{ from: number; to: number; proof: string[]; fromRoot: string; toRoot: string }> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/proofs/consistency?from=${from}${to === undefined ? '' : `&to=${to}`}`)
  }
  /** Rotates the environment's data key; the answer carries the reseal job. */
  rotateDataKey(s: Scope): Promise<{ key: { id: string; version: number; previousVersion: number }; job: KeyJob }> {
    return this.#request('POST', `${this.#env(s)}/keys/rotate`, {})
  }
  /** The environment's data-key versions (never the keys) and latest reseal jobs. */
  dataKeyStatus(s: Scope): Promise<{ versions: KeyVersion[]; jobs: KeyJob[] }> {
    return this.#request('GET', `${this.#env(s)}/keys`)
  }
  async keyJob(ws: string, id: string): Promise<KeyJob> {
    return (await this.#request<{ job: KeyJob }>('GET', `/v1/workspaces/${enc(ws)}/key-jobs/${enc(id)}`)).job
  }
  /**
   * Deletes the workspace (Owner): its keys are destroyed at once and its rows purged later.
   * `confirm` must be the workspace's slug.
   */
  deleteWorkspace(ws: string, confirm: string): Promise<{ receipt: DeletionReceipt; dataKeysShredded: number; tokensRevoked: number }> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}`, { confirm })
  }
  /** Seals (or unseals) an environment: people then reveal or write its values only through a break-glass grant. */
  async sealEnvironment(s: Scope, sealed: boolean): Promise<{ id: string; projectId: string; sealed: boolean }> {
    return (
      await this.#request<{ environment: { id: string; projectId: string; sealed: boolean } }>('PUT', `${this.#env(s)}/seal`, { sealed })
    ).environment
  }
  async breakGlassList(ws: string, status?: BreakGlassRequest['status']): Promise<BreakGlassRequest[]> {
    return (
      await this.#request<{ requests: BreakGlassRequest[] }>(
        'GET',
        `/v1/workspaces/${enc(ws)}/break-glass${status ? `?status=${status}` : ''}`,
      )
    ).requests
  }
  async breakGlassRequest(
    ws: string,
    input: { project: string; environment: string; access: 'read' | 'read-write'; reason: string; durationMinutes: number },
  ): Promise<BreakGlassRequest> {
    return (await this.#request<{ request: BreakGlassRequest }>('POST', `/v1/workspaces/${enc(ws)}/break-glass`, input)).request
  }
  async breakGlassGet(ws: string, id: string): Promise<BreakGlassRequest> {
    return (await this.#request<{ request: BreakGlassRequest }>('GET', `/v1/workspaces/${enc(ws)}/break-glass/${enc(id)}`)).request
  }
  /** Approves, denies or revokes a break-glass request. */
  async breakGlassAct(ws: string, id: string, act: 'approve' | 'deny' | 'revoke', comment?: string): Promise<BreakGlassRequest> {
    const body = act === 'revoke' || comment === undefined ? {} : { comment }
    return (await this.#request<{ request: BreakGlassRequest }>('POST', `/v1/workspaces/${enc(ws)}/break-glass/${enc(id)}/${act}`, body))
      .request
  }
  /** Every audit entry of the workspace, in chain order. */
  async *allAuditEntries(ws: string): AsyncGenerator<AuditEntry> {
    let after = 0
    for (;;) {
      const page = await this.auditEntries(ws, after, 5000)
      yield* page.entries
      if (page.next === null) return
      after = page.next
    }
  }
}
