import type {
  AuditActivity,
  AuditActivityQuery,
  AuditCheckpoint,
  AuditEntries,
  AuditEntriesQuery,
  AuditEntry,
  PendingAudit,
  AuditPublicKey,
  AuditRestores,
  ConsistencyProof,
  InclusionProof,
  IssuedCheckpoint,
  LatestCheckpoint,
} from '../api/audit.js'
import type {
  BreakGlassDecisionInput,
  BreakGlassList,
  BreakGlassRequest,
  BreakGlassRequestAnswer,
  BreakGlassRequestInput,
  SealAnswer,
  SealInput,
} from '../api/break-glass.js'
import type { ChangeRequest, ChangeRequestAnswer, ChangeRequestList, ProtectionAnswer } from '../api/change-requests.js'
import type { EnvironmentDiffAnswer, PromoteAnswer, PromoteInput } from '../api/promote.js'
import type { CliTokenGrant, DeviceLogin, DeviceLoginInput, DevicePollInput, LoginCodeExchange } from '../api/cli-login.js'
import type { ErrorEnvelope } from '../api/errors.js'
import type { IntegrationScope, ScopeInput } from '../api/integration-scopes.js'
import type {
  AcceptedInvitation,
  AcceptInvitationInput,
  CreatedInvitation,
  CreateInvitationInput,
  Invitation,
  InvitationAnswer,
  InvitationList,
} from '../api/invitations.js'
import type { KeyJob, KeyJobAnswer, KeyRotation, KeyStatus, KeyVersion } from '../api/keys.js'
import type {
  CreatedMachine,
  CreateMachineInput,
  Machine,
  MachineAccessToken,
  MachineList,
  MachineRevocation,
  MachineTokenInput,
} from '../api/machines.js'
import type { Me } from '../api/me.js'
import type { AddOidcRulesInput, OidcRule, OidcRuleInput, OidcRuleList, OidcTokenInput } from '../api/machine-oidc.js'
import type { WebhookDeliveryView, WebhookView } from '../api/webhooks.js'
import type { DbCredentialsAnswer, DbRoleView } from '../api/dynamic.js'
import type { AwsCredentialsAnswer, AwsExternalIdAnswer, AwsRoleView } from '../api/aws.js'
import type {
  EnvironmentGrant,
  GrantAnswer,
  GrantInput,
  Member,
  MemberAnswer,
  MemberList,
  MemberRemoval,
  MemberRoleInput,
  ProjectMember,
  ProjectMemberAnswer,
  ProjectRoleInput,
  RestrictionInput,
} from '../api/members.js'
import type {
  CreateEnvironmentInput,
  CreateProjectInput,
  DeletionInput,
  Environment,
  EnvironmentAnswer,
  EnvironmentDeletionAnswer,
  EnvironmentImportsInput,
  EnvironmentList,
  EnvironmentMatrix,
  Project,
  ProjectAnswer,
  ProjectDeletionAnswer,
  ProjectDetail,
  ProjectList,
  PersonalOverridesSettingInput,
  RenameEnvironmentInput,
  RenameProjectInput,
} from '../api/projects.js'
import type {
  PersonalOverrideAnswer,
  PersonalOverrideWrite,
  EnvironmentState,
  Secret,
  SecretAnswer,
  SecretApply,
  SecretApplyAnswer,
  SecretCopy,
  SecretCopyAnswer,
  SecretBulkWrite,
  SecretHistory,
  SecretList,
  SecretRollback,
  SecretVersion,
  SecretWrite,
} from '../api/secrets.js'
import type {
  CreatedServiceToken,
  CreateServiceTokenInput,
  ServiceToken,
  ServiceTokenInfo,
  ServiceTokenList,
} from '../api/service-tokens.js'
import type { CreatedToken, CreateTokenInput, TokenInfo, TokenInfoAnswer, TokenList } from '../api/tokens.js'
import type { DeleteWorkspaceInput, DeletionReceipt, WorkspaceDeletion } from '../api/workspace-deletion.js'
import type { Workspace } from '../api/workspaces.js'
import type { AuthorizeAnswer, ConnectionView, CreateConnectionBody } from '../api/connections.js'
import { EventStreamReader } from './events.js'
import type { RelayAnswer, RelayCall } from './relay-request.js'
import { Http1Connections } from './http1.js'

// The typed HTTP client of the Coffer API, shared by the CLI, the tests and SDK users. It
// depends on nothing but the platform at run time: its request and response types are those
// of the API's contract (src/api), imported as types only, so the client never loads zod.

export type {
  AuditCheckpoint,
  ChangeRequest,
  EnvironmentDiffAnswer,
  PromoteAnswer,
  AuditEntry,
  BreakGlassRequest,
  CliTokenGrant,
  DeletionReceipt,
  Environment,
  EnvironmentState,
  IntegrationScope,
  Invitation,
  KeyJob,
  KeyVersion,
  Machine,
  Me,
  Member,
  Project,
  ScopeInput,
  Secret,
  SecretVersion,
  SecretWrite,
  ServiceToken,
  TokenInfo,
  Workspace,
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

/**
 * A write to a protected environment was not applied: the server stored it as a change
 * request (HTTP 202) that other Owners/Admins approve. Thrown by every write method, whose
 * answer would otherwise be what was written.
 */
export class CofferChangeRequested extends Error {
  readonly changeRequest: ChangeRequest
  constructor(changeRequest: ChangeRequest) {
    super(`The environment is protected: change request ${changeRequest.id} waits for ${changeRequest.approvalsRequired} approvals.`)
    this.name = 'CofferChangeRequested'
    this.changeRequest = changeRequest
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

/**
 * A name the server checks (a role, say): the API's names are offered, and any string is
 * accepted because the CLI passes on what a person typed and the server answers
 * ERR_VALIDATION for a wrong one.
 */
type Named<T extends string> = T | (string & {})

/** `?a=1&b=x` of the defined fields of `q` ('' when none). */
function searchOf(q: object): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}

/** A client for one server and one token. */
export class CofferClient {
  readonly url: string
  readonly #token: string
  readonly #userAgent: string
  readonly #ca: string | Buffer | undefined
  readonly #timeoutMs: number | undefined
  #connections: Http1Connections | undefined

  /**
   * `ca`: PEM certificate(s) of a private certificate authority that https:// servers are
   * verified against (instead of the system's); verification is never turned off.
   */
  /** `token` may be '' for the calls that need none (the CLI login's exchanges). */
  /** `timeoutMs`: how long one request may go without a byte before it fails (default 60 s). */
  constructor(options: { url: string; token: string; userAgent?: string; ca?: string | Buffer; timeoutMs?: number }) {
    this.url = options.url.replace(/\/+$/, '')
    this.#token = options.token
    this.#userAgent = options.userAgent ?? 'coffer-client'
    this.#ca = options.ca
    this.#timeoutMs = options.timeoutMs
  }

  #transport(): Http1Connections {
    this.#connections ??= new Http1Connections(this.url, {
      ...(this.#ca ? { ca: this.#ca } : {}),
      ...(this.#timeoutMs ? { timeoutMs: this.#timeoutMs } : {}),
    })
    return this.#connections
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8')
    let res: { status: number; text: string }
    try {
      // @NOTE not fetch: loading Node's fetch costs a CLI ~50 ms at start and keeps the process
      // alive ~100 ms after the last request, which `coffer run` pays on every invocation; not
      // node:http either (see http1.ts).
      const target = new URL(this.url + path)
      res = await this.#transport().send(
        method,
        target.pathname + target.search,
        {
          ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
          'user-agent': this.#userAgent,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
        payload,
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
    if (res.status < 200 || res.status >= 300) throw this.#apiError(res, json)
    const proposed = (json as { changeRequest?: ChangeRequest } | undefined)?.changeRequest
    if (res.status === 202 && proposed) throw new CofferChangeRequested(proposed)
    return json as T
  }

  /** The error of a non-2xx answer. Whatever answered may not be Coffer (a proxy): every field of the envelope may be missing. */
  #apiError(res: { status: number; text: string }, json?: unknown): CofferApiError {
    if (json === undefined) {
      try {
        json = res.text ? JSON.parse(res.text) : undefined
      } catch {
        // Not JSON (a proxy's page): the status alone.
      }
    }
    const e = (json as { error?: Partial<ErrorEnvelope['error']> } | undefined)?.error
    return new CofferApiError(res.status, e?.code ?? 'ERR_HTTP', e?.message ?? `HTTP ${res.status}`, e?.requestId)
  }
  /**
   * GET /healthz (no token needed): whether the server answers, and the time its Date header
   * says, so a caller can measure clock skew. Throws CofferConnectionError when unreachable.
   */
  async health(): Promise<{ status: number; date: string | undefined }> {
    this.#connections ??= new Http1Connections(this.url, this.#ca ? { ca: this.#ca } : {})
    try {
      const res = await this.#connections.send('GET', `${new URL(this.url).pathname.replace(/\/$/, '')}/healthz`, {
        'user-agent': this.#userAgent,
        accept: 'application/json',
      })
      return { status: res.status, date: res.date }
    } catch (err) {
      throw new CofferConnectionError(this.url, err)
    }
  }

  #env(s: Scope): string {
    return `/v1/workspaces/${enc(s.workspace)}/projects/${enc(s.project)}/environments/${enc(s.environment)}`
  }

  /** CLI login (no token needed): exchanges a one-time code and its PKCE verifier for a CLI token. */
  exchangeLoginCode(input: LoginCodeExchange): Promise<CliTokenGrant> {
    return this.#request('POST', '/v1/cli/token', input)
  }
  /** CLI login (no token needed): starts a device login. */
  startDeviceLogin(clientName: string): Promise<DeviceLogin> {
    return this.#request('POST', '/v1/cli/device', { clientName } satisfies DeviceLoginInput)
  }
  /** CLI login (no token needed): one poll; throws CofferApiError ERR_AUTHORIZATION_PENDING, ERR_SLOW_DOWN, … until approved. */
  pollDeviceLogin(deviceCode: string): Promise<CliTokenGrant> {
    return this.#request('POST', '/v1/cli/device/token', { deviceCode } satisfies DevicePollInput)
  }
  me(): Promise<Me> {
    return this.#request('GET', '/v1/me')
  }
  workspace(ws: string): Promise<Workspace> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}`)
  }
  async listProjects(ws: string): Promise<Project[]> {
    return (await this.#request<ProjectList>('GET', `/v1/workspaces/${enc(ws)}/projects`)).projects
  }
  createProject(ws: string, input: CreateProjectInput): Promise<ProjectDetail> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/projects`, input)
  }
  project(ws: string, project: string): Promise<ProjectDetail> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}`)
  }
  async listEnvironments(ws: string, project: string): Promise<Environment[]> {
    return (await this.#request<EnvironmentList>('GET', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/environments`)).environments
  }
  async createEnvironment(ws: string, project: string, input: CreateEnvironmentInput): Promise<Environment> {
    return (await this.#request<EnvironmentAnswer>('POST', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/environments`, input))
      .environment
  }
  /** Renames a project (its display name; the slug never changes). */
  async renameProject(ws: string, project: string, name: string): Promise<Project> {
    const body = { name } satisfies RenameProjectInput
    return (await this.#request<ProjectAnswer>('PATCH', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}`, body)).project
  }
  /** Deletes a project: `confirm` is its slug; `force` while it holds secrets. Its data keys are destroyed. */
  deleteProject(ws: string, project: string, input: DeletionInput): Promise<ProjectDeletionAnswer> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}`, input)
  }
  /** Renames an environment (its display name; the slug never changes). */
  async renameEnvironment(s: Scope, name: string): Promise<Environment> {
    return (await this.#request<EnvironmentAnswer>('PATCH', this.#env(s), { name } satisfies RenameEnvironmentInput)).environment
  }
  /** Deletes an environment: `confirm` is its slug; `force` while it holds secrets. Its data key is destroyed. */
  deleteEnvironment(s: Scope, input: DeletionInput): Promise<EnvironmentDeletionAnswer> {
    return this.#request('DELETE', this.#env(s), input)
  }
  /** Every key of a project's environments: present or missing, version, keyed fingerprint (never values). */
  environmentMatrix(ws: string, project: string): Promise<EnvironmentMatrix> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/matrix`)
  }
  /** Applies a set of values (a pasted .env): `dryRun` answers the diff; `ifState` makes the write check-and-set. */
  applySecrets(s: Scope, input: SecretApply): Promise<SecretApplyAnswer> {
    return this.#request('POST', `${this.#env(s)}/secrets/apply`, input)
  }
  /** Copies keys (value, comment, tags) from the scope to another environment of the workspace, atomically. */
  copySecrets(s: Scope, input: SecretCopy): Promise<SecretCopyAnswer> {
    return this.#request('POST', `${this.#env(s)}/secrets/copy`, input)
  }
  /**
   * Compares the scope's environment (from) with `to`: keys missing there, extra there,
   * different or equal by keyed fingerprints; with `reveal`, the values too (audited).
   */
  diffEnvironments(
    s: Scope,
    to: { environment: string; project?: string },
    opts: { reveal?: boolean } = {},
  ): Promise<EnvironmentDiffAnswer> {
    const q = searchOf({ to: to.environment, toProject: to.project, reveal: opts.reveal ? 'true' : undefined })
    return this.#request('GET', `${this.#env(s)}/diff${q}`)
  }
  /** Promotes keys (or all) from another environment into the scope's, atomically (a change request where it is protected). */
  promote(s: Scope, input: PromoteInput): Promise<PromoteAnswer> {
    return this.#request('POST', `${this.#env(s)}/promote`, input)
  }
  /** Protects the environment: each write becomes a change request needing `approvals` (0 lifts it). */
  async protectEnvironment(s: Scope, approvals: number): Promise<ProtectionAnswer['environment']> {
    return (await this.#request<ProtectionAnswer>('PUT', `${this.#env(s)}/protection`, { approvals })).environment
  }
  async listChangeRequests(ws: string, status?: ChangeRequest['status']): Promise<ChangeRequest[]> {
    return (await this.#request<ChangeRequestList>('GET', `/v1/workspaces/${enc(ws)}/change-requests${searchOf({ status })}`))
      .changeRequests
  }
  /** One change request; with `reveal`, its proposed values (needs reveal in its environment; audited). */
  async getChangeRequest(ws: string, id: string, opts: { reveal?: boolean } = {}): Promise<ChangeRequest> {
    const q = opts.reveal ? '?reveal=true' : ''
    return (await this.#request<ChangeRequestAnswer>('GET', `/v1/workspaces/${enc(ws)}/change-requests/${enc(id)}${q}`)).changeRequest
  }
  async decideChangeRequest(ws: string, id: string, decision: 'approve' | 'reject', comment?: string): Promise<ChangeRequest> {
    const body = comment === undefined ? {} : { comment }
    return (await this.#request<ChangeRequestAnswer>('POST', `/v1/workspaces/${enc(ws)}/change-requests/${enc(id)}/${decision}`, body))
      .changeRequest
  }
  /** The environment's secrets; with `reveal`, decrypted (audited on the server). */
  /**
   * The environment's secrets; with `reveal`, decrypted (audited on the server): imported keys
   * added, your personal overrides applied, references resolved — `raw` leaves references as stored.
   */
  async listSecrets(s: Scope, opts: { reveal?: boolean; includeDeleted?: boolean; raw?: boolean } = {}): Promise<Secret[]> {
    const q = new URLSearchParams()
    if (opts.reveal) q.set('reveal', 'true')
    if (opts.includeDeleted) q.set('includeDeleted', 'true')
    if (opts.raw) q.set('raw', 'true')
    const qs = q.size ? `?${q}` : ''
    return (await this.#request<SecretList>('GET', `${this.#env(s)}/secrets${qs}`)).secrets
  }
  /**
   * Watches an environment (server-sent events): `onState` receives its keys and versions —
   * never values — at once and after every change. `done` rejects with CofferApiError when the
   * server refuses the watch or ends it (a revoked or expired credential: its code), and with
   * CofferConnectionError when the connection fails, drops, or stays silent for `idleMs`
   * (the server sends a comment every 15 s); it resolves only after `close()`.
   */
  watchEnvironment(
    s: Scope,
    onState: (state: EnvironmentState) => void,
    options: { idleMs?: number } = {},
  ): { done: Promise<void>; close: () => void } {
    const target = new URL(`${this.url}${this.#env(s)}/events`)
    let ended: CofferApiError | undefined
    let closed = false
    const reader = new EventStreamReader((event, data) => {
      if (ended || closed) return
      try {
        if (event === 'secrets') onState(JSON.parse(data) as EnvironmentState)
        else if (event === 'end') {
          const e = JSON.parse(data) as { code?: string; status?: number; message?: string }
          ended = new CofferApiError(e.status ?? 500, e.code ?? 'ERR_HTTP', e.message ?? 'The server ended the stream.')
          stream.close()
        }
      } catch {
        ended = new CofferApiError(200, 'ERR_BAD_RESPONSE', 'The server sent an event that is not JSON.')
        stream.close()
      }
    })
    const stream = this.#transport().stream(
      target.pathname + target.search,
      {
        ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
        'user-agent': this.#userAgent,
        accept: 'text/event-stream',
      },
      (status) => status === 200,
      (chunk) => reader.push(chunk),
      options.idleMs ?? 45_000,
    )
    const done = stream.done.then(
      (res) => {
        if (ended) throw ended
        if (closed) return
        if (res.status !== 200) throw this.#apiError(res)
        throw new CofferConnectionError(this.url, Object.assign(new Error('the stream ended'), { code: 'ECONNRESET' }))
      },
      (err: unknown) => {
        if (ended) throw ended
        if (closed) return
        throw new CofferConnectionError(this.url, err)
      },
    )
    return {
      done,
      close: () => {
        closed = true
        stream.close()
      },
    }
  }

  /** One secret; with `reveal`, its value as you see it (`raw`: references unresolved). */
  async getSecret(s: Scope, key: string, opts: { reveal?: boolean; raw?: boolean } = {}): Promise<Secret> {
    const q = new URLSearchParams()
    if (opts.reveal) q.set('reveal', 'true')
    if (opts.raw) q.set('raw', 'true')
    const qs = q.size ? `?${q}` : ''
    return (await this.#request<SecretAnswer>('GET', `${this.#env(s)}/secrets/${enc(key)}${qs}`)).secret
  }
  /** Sets your personal override of `key`: only your fetches see it. */
  async setPersonalOverride(s: Scope, key: string, value: string): Promise<PersonalOverrideAnswer['override']> {
    const body = { value } satisfies PersonalOverrideWrite
    return (await this.#request<PersonalOverrideAnswer>('PUT', `${this.#env(s)}/secrets/${enc(key)}/personal`, body)).override
  }
  /** Removes your personal override of `key`. */
  async deletePersonalOverride(s: Scope, key: string): Promise<PersonalOverrideAnswer['override']> {
    return (await this.#request<PersonalOverrideAnswer>('DELETE', `${this.#env(s)}/secrets/${enc(key)}/personal`)).override
  }
  /** Sets the environments this one imports (replacing the list; empty: none). */
  async setImports(s: Scope, imports: EnvironmentImportsInput['imports']): Promise<Environment> {
    const body = { imports } satisfies EnvironmentImportsInput
    return (await this.#request<EnvironmentAnswer>('PUT', `${this.#env(s)}/imports`, body)).environment
  }
  /** Allows (or stops allowing) members' personal overrides in the environment. */
  async setPersonalOverridesAllowed(s: Scope, allowed: boolean): Promise<Environment> {
    const body = { allowed } satisfies PersonalOverridesSettingInput
    return (await this.#request<EnvironmentAnswer>('PUT', `${this.#env(s)}/personal-overrides`, body)).environment
  }
  async setSecret(s: Scope, key: string, input: SecretWrite): Promise<Secret> {
    return (await this.#request<SecretAnswer>('PUT', `${this.#env(s)}/secrets/${enc(key)}`, input)).secret
  }
  /** Sets many secrets atomically. */
  async setSecrets(s: Scope, secrets: SecretBulkWrite['secrets']): Promise<Secret[]> {
    return (await this.#request<SecretList>('POST', `${this.#env(s)}/secrets`, { secrets } satisfies SecretBulkWrite)).secrets
  }
  async deleteSecret(s: Scope, key: string, opts: { ifVersion?: number } = {}): Promise<Secret> {
    const qs = opts.ifVersion === undefined ? '' : `?ifVersion=${opts.ifVersion}`
    return (await this.#request<SecretAnswer>('DELETE', `${this.#env(s)}/secrets/${enc(key)}${qs}`)).secret
  }
  async restoreSecret(s: Scope, key: string): Promise<Secret> {
    return (await this.#request<SecretAnswer>('POST', `${this.#env(s)}/secrets/${enc(key)}/restore`, {})).secret
  }
  history(s: Scope, key: string, opts: { reveal?: boolean } = {}): Promise<SecretHistory> {
    return this.#request('GET', `${this.#env(s)}/secrets/${enc(key)}/versions${opts.reveal ? '?reveal=true' : ''}`)
  }
  async rollback(s: Scope, key: string, version: SecretRollback['version'], opts: Pick<SecretRollback, 'ifVersion'> = {}): Promise<Secret> {
    const body = { version, ...opts } satisfies SecretRollback
    return (await this.#request<SecretAnswer>('POST', `${this.#env(s)}/secrets/${enc(key)}/rollback`, body)).secret
  }
  async listTokens(ws: string): Promise<TokenInfo[]> {
    return (await this.#request<TokenList>('GET', `/v1/workspaces/${enc(ws)}/tokens`)).tokens
  }
  createToken(ws: string, input: CreateTokenInput): Promise<CreatedToken> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/tokens`, input)
  }
  async revokeToken(ws: string, id: string): Promise<TokenInfo> {
    return (await this.#request<TokenInfoAnswer>('DELETE', `/v1/workspaces/${enc(ws)}/tokens/${enc(id)}`)).info
  }
  async listMembers(ws: string): Promise<Member[]> {
    return (await this.#request<MemberList>('GET', `/v1/workspaces/${enc(ws)}/members`)).members
  }
  async setMemberRole(ws: string, userId: string, role: Named<MemberRoleInput['role']>): Promise<Member> {
    return (await this.#request<MemberAnswer>('PUT', `/v1/workspaces/${enc(ws)}/members/${enc(userId)}`, { role })).member
  }
  removeMember(ws: string, userId: string): Promise<MemberRemoval> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}/members/${enc(userId)}`)
  }
  /** Gives a workspace member a role on a project (admin, developer, viewer). */
  async setProjectMember(ws: string, project: string, userId: string, role: Named<ProjectRoleInput['role']>): Promise<ProjectMember> {
    return (
      await this.#request<ProjectMemberAnswer>('PUT', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/members/${enc(userId)}`, {
        role,
      })
    ).member
  }
  async setRestricted(s: Scope, restricted: boolean): Promise<Environment> {
    return (await this.#request<EnvironmentAnswer>('PUT', `${this.#env(s)}/restriction`, { restricted } satisfies RestrictionInput))
      .environment
  }
  async grantEnvironment(s: Scope, userId: string, access: GrantInput['access']): Promise<EnvironmentGrant> {
    return (await this.#request<GrantAnswer>('PUT', `${this.#env(s)}/grants/${enc(userId)}`, { access } satisfies GrantInput)).grant
  }
  createInvitation(
    ws: string,
    input: Omit<CreateInvitationInput, 'role' | 'projectRole'> & {
      role?: Named<NonNullable<CreateInvitationInput['role']>>
      projectRole?: Named<NonNullable<CreateInvitationInput['projectRole']>>
    },
  ): Promise<CreatedInvitation> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/invitations`, input)
  }
  async listInvitations(ws: string): Promise<Invitation[]> {
    return (await this.#request<InvitationList>('GET', `/v1/workspaces/${enc(ws)}/invitations`)).invitations
  }
  async revokeInvitation(ws: string, id: string): Promise<Invitation> {
    return (await this.#request<InvitationAnswer>('DELETE', `/v1/workspaces/${enc(ws)}/invitations/${enc(id)}`)).invitation
  }
  /** Accepts an invitation as the signed-in person; with `tokenName`, also returns a personal token for the new workspace (once). */
  acceptInvitation(token: string, tokenName?: string): Promise<AcceptedInvitation> {
    return this.#request('POST', '/v1/invitations/accept', { token, ...(tokenName ? { tokenName } : {}) } satisfies AcceptInvitationInput)
  }
  createMachine(ws: string, input: CreateMachineInput): Promise<CreatedMachine> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/machines`, input)
  }
  async listMachines(ws: string): Promise<Machine[]> {
    return (await this.#request<MachineList>('GET', `/v1/workspaces/${enc(ws)}/machines`)).machines
  }
  revokeMachine(ws: string, id: string): Promise<MachineRevocation> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}/machines/${enc(id)}`)
  }
  /** Exchanges a machine identity's client credentials for an access token (needs no token of its own). */
  machineToken(clientId: string, clientSecret: string): Promise<MachineAccessToken> {
    return this.#request('POST', '/v1/machine/token', { clientId, clientSecret } satisfies MachineTokenInput)
  }
  /** Exchanges a workload's OIDC ID token for the access token of machine identity `clientId` (needs no token of its own). */
  machineOidcToken(clientId: string, idToken: string): Promise<MachineAccessToken> {
    return this.#request('POST', '/v1/machine/oidc-token', { clientId, idToken } satisfies OidcTokenInput)
  }
  /** The OIDC trust rules of a machine identity. */
  async listMachineOidcRules(ws: string, machine: string): Promise<OidcRule[]> {
    return (await this.#request<OidcRuleList>('GET', `/v1/workspaces/${enc(ws)}/machines/${enc(machine)}/oidc-rules`)).rules
  }
  /** Adds OIDC trust rules to a machine identity; returns all of its rules. */
  async addMachineOidcRules(ws: string, machine: string, rules: OidcRuleInput[]): Promise<OidcRule[]> {
    return (
      await this.#request<OidcRuleList>('POST', `/v1/workspaces/${enc(ws)}/machines/${enc(machine)}/oidc-rules`, {
        rules,
      } satisfies AddOidcRulesInput)
    ).rules
  }
  /** Removes one OIDC trust rule of a machine identity. */
  async removeMachineOidcRule(ws: string, machine: string, rule: string): Promise<OidcRule> {
    return (await this.#request<{ rule: OidcRule }>('DELETE', `/v1/workspaces/${enc(ws)}/machines/${enc(machine)}/oidc-rules/${enc(rule)}`))
      .rule
  }
  createServiceToken(ws: string, input: CreateServiceTokenInput): Promise<CreatedServiceToken> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/service-tokens`, input)
  }
  async listServiceTokens(ws: string): Promise<ServiceToken[]> {
    return (await this.#request<ServiceTokenList>('GET', `/v1/workspaces/${enc(ws)}/service-tokens`)).tokens
  }
  async revokeServiceToken(ws: string, id: string): Promise<ServiceToken> {
    return (await this.#request<ServiceTokenInfo>('DELETE', `/v1/workspaces/${enc(ws)}/service-tokens/${enc(id)}`)).info
  }
  auditEntries(ws: string, after = 0, limit = 1000): Promise<AuditEntries> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/entries?after=${after}&limit=${limit}`)
  }
  /** A page of the log narrowed by actor, action (or `prefix.*`), target and time; `order: 'desc'` pages newest first through `before`. */
  findAuditEntries(ws: string, q: AuditEntriesQuery): Promise<AuditEntries> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/entries${searchOf(q)}`)
  }
  /** Entries per UTC day over `days` days (default 30), with the same filters. */
  auditActivity(ws: string, q: AuditActivityQuery = {}): Promise<AuditActivity> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/activity${searchOf(q)}`)
  }
  async auditPublicKey(): Promise<string> {
    return (await this.#request<AuditPublicKey>('GET', '/v1/audit/public-key')).publicKey
  }
  /** The newest signed checkpoint (null before the first) and the key that signs them. */
  auditCheckpoint(ws: string): Promise<LatestCheckpoint> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/checkpoint`)
  }
  /** Signs a checkpoint of the log as it is now (or returns the newest if it covers it). */
  issueAuditCheckpoint(ws: string): Promise<IssuedCheckpoint> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/audit/checkpoints`, {})
  }
  inclusionProof(ws: string, ref: { seq?: number; id?: string }, treeSize?: number): Promise<InclusionProof> {
    const q = new URLSearchParams()
    if (ref.seq !== undefined) q.set('seq', String(ref.seq))
    if (ref.id !== undefined) q.set('id', ref.id)
    if (treeSize !== undefined) q.set('treeSize', String(treeSize))
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/proofs/inclusion?${q}`)
  }
  /** Signed restore records of the workspace's log (one per restore from a backup), oldest first. */
  auditRestores(ws: string): Promise<AuditRestores> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/restores`)
  }
  consistencyProof(ws: string, from: number, to?: number): Promise<ConsistencyProof> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/proofs/consistency?from=${from}${to === undefined ? '' : `&to=${to}`}`)
  }
  /** Rotates the environment's data key; the answer carries the reseal job. */
  rotateDataKey(s: Scope): Promise<KeyRotation> {
    return this.#request('POST', `${this.#env(s)}/keys/rotate`, {})
  }
  /** The environment's data-key versions (never the keys) and latest reseal jobs. */
  dataKeyStatus(s: Scope): Promise<KeyStatus> {
    return this.#request('GET', `${this.#env(s)}/keys`)
  }
  async keyJob(ws: string, id: string): Promise<KeyJob> {
    return (await this.#request<KeyJobAnswer>('GET', `/v1/workspaces/${enc(ws)}/key-jobs/${enc(id)}`)).job
  }
  /**
   * Deletes the workspace (Owner): its keys are destroyed at once and its rows purged later.
   * `confirm` must be the workspace's slug.
   */
  deleteWorkspace(ws: string, confirm: string): Promise<WorkspaceDeletion> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}`, { confirm } satisfies DeleteWorkspaceInput)
  }
  /** Seals (or unseals) an environment: people then reveal or write its values only through a break-glass grant. */
  async sealEnvironment(s: Scope, sealed: boolean): Promise<SealAnswer['environment']> {
    return (await this.#request<SealAnswer>('PUT', `${this.#env(s)}/seal`, { sealed } satisfies SealInput)).environment
  }
  async breakGlassList(ws: string, status?: BreakGlassRequest['status']): Promise<BreakGlassRequest[]> {
    return (await this.#request<BreakGlassList>('GET', `/v1/workspaces/${enc(ws)}/break-glass${status ? `?status=${status}` : ''}`))
      .requests
  }
  async breakGlassRequest(ws: string, input: BreakGlassRequestInput): Promise<BreakGlassRequest> {
    return (await this.#request<BreakGlassRequestAnswer>('POST', `/v1/workspaces/${enc(ws)}/break-glass`, input)).request
  }
  async breakGlassGet(ws: string, id: string): Promise<BreakGlassRequest> {
    return (await this.#request<BreakGlassRequestAnswer>('GET', `/v1/workspaces/${enc(ws)}/break-glass/${enc(id)}`)).request
  }
  async dbRoleCreate(
    s: Scope,
    input: { name: string; adminUrl: string; creationSql: string; defaultTtlSeconds?: number; maxTtlSeconds?: number },
  ): Promise<DbRoleView> {
    return (await this.#request<{ role: DbRoleView }>('POST', `${this.#env(s)}/db-roles`, input)).role
  }
  async dbRoleList(s: Scope): Promise<DbRoleView[]> {
    return (await this.#request<{ roles: DbRoleView[] }>('GET', `${this.#env(s)}/db-roles`)).roles
  }
  async dbRoleDelete(s: Scope, name: string): Promise<DbRoleView> {
    return (await this.#request<{ role: DbRoleView }>('DELETE', `${this.#env(s)}/db-roles/${enc(name)}`)).role
  }
  async dbCredentials(s: Scope, name: string, ttlSeconds?: number): Promise<DbCredentialsAnswer> {
    return this.#request('POST', `${this.#env(s)}/db-roles/${enc(name)}/credentials`, ttlSeconds === undefined ? {} : { ttlSeconds })
  }
  /** The workspace's AWS external ID (Owners and Admins; audited). */
  async awsExternalId(ws: string): Promise<AwsExternalIdAnswer> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/aws/external-id`)
  }
  /** A new external ID; roles whose stacks still hold the old one are refused by STS until updated. */
  async awsExternalIdRotate(ws: string): Promise<AwsExternalIdAnswer> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/aws/external-id/rotate`, {})
  }
  /** The CloudFormation template (JSON) for a read-only role that trusts Coffer with the external ID. */
  async awsTemplate(ws: string): Promise<Record<string, unknown>> {
    return (await this.#request<{ template: Record<string, unknown> }>('GET', `/v1/workspaces/${enc(ws)}/aws/template`)).template
  }
  async awsRoleCreate(
    s: Scope,
    input: { name: string; roleArn: string; region?: string; maxDurationSeconds?: number },
  ): Promise<AwsRoleView> {
    return (await this.#request<{ role: AwsRoleView }>('POST', `${this.#env(s)}/aws-roles`, input)).role
  }
  async awsRoleList(s: Scope): Promise<AwsRoleView[]> {
    return (await this.#request<{ roles: AwsRoleView[] }>('GET', `${this.#env(s)}/aws-roles`)).roles
  }
  async awsRoleDelete(s: Scope, name: string): Promise<AwsRoleView> {
    return (await this.#request<{ role: AwsRoleView }>('DELETE', `${this.#env(s)}/aws-roles/${enc(name)}`)).role
  }
  /** An STS session of the role (at most an hour), shown once. */
  async awsCredentials(s: Scope, name: string, durationSeconds?: number): Promise<AwsCredentialsAnswer> {
    return this.#request(
      'POST',
      `${this.#env(s)}/aws-roles/${enc(name)}/credentials`,
      durationSeconds === undefined ? {} : { durationSeconds },
    )
  }
  async webhookCreate(
    ws: string,
    input: { url: string; events: string[]; description?: string },
  ): Promise<{ webhook: WebhookView; secret: string }> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/webhooks`, input)
  }
  async connectionCreate(ws: string, input: CreateConnectionBody): Promise<ConnectionView> {
    return (await this.#request<{ connection: ConnectionView }>('POST', `/v1/workspaces/${enc(ws)}/connections`, input)).connection
  }
  async connectionList(ws: string): Promise<ConnectionView[]> {
    return (await this.#request<{ connections: ConnectionView[] }>('GET', `/v1/workspaces/${enc(ws)}/connections`)).connections
  }
  async connectionGet(ws: string, id: string): Promise<ConnectionView> {
    return (await this.#request<{ connection: ConnectionView }>('GET', `/v1/workspaces/${enc(ws)}/connections/${enc(id)}`)).connection
  }
  async connectionDelete(ws: string, id: string): Promise<ConnectionView> {
    return (await this.#request<{ connection: ConnectionView }>('DELETE', `/v1/workspaces/${enc(ws)}/connections/${enc(id)}`)).connection
  }
  /** Starts the authorization flow: the provider URL to open (`app`: the connection's own token, Owners and Admins). */
  async connectionAuthorize(ws: string, id: string, kind: 'app' | 'personal'): Promise<AuthorizeAnswer> {
    return this.#request('POST', `/v1/workspaces/${enc(ws)}/connections/${enc(id)}/authorize`, { kind })
  }
  /** Removes your own link (your tokens) from a connection. */
  async connectionUnlink(ws: string, id: string): Promise<{ connection: ConnectionView; unlinked: boolean }> {
    return this.#request('DELETE', `/v1/workspaces/${enc(ws)}/connections/${enc(id)}/link`)
  }
  /**
   * One call to the connection's API through the relay, bytes both ways. Coffer's own refusals
   * (ERR_RELAY_REFUSED, ERR_CONNECTION_NOT_LINKED, …) throw CofferApiError; the provider's
   * answers, whatever their status, are returned as they came (the relay marks them with a
   * `coffer-relay` header).
   */
  async connectionRelay(ws: string, id: string, call: RelayCall): Promise<RelayAnswer> {
    let res: RelayAnswer
    const base = `${this.url}/v1/workspaces/${enc(ws)}/connections/${enc(id)}/relay`
    try {
      // node:http and node:https load for a relay call only (`coffer run` never makes one).
      const { relayRequest } = await import('./relay-request.js')
      res = await relayRequest(base, this.#token, call, { userAgent: this.#userAgent, ...(this.#ca ? { ca: this.#ca } : {}) })
    } catch (err) {
      throw new CofferConnectionError(this.url, err)
    }
    if (res.headers['coffer-relay'] === undefined && (res.status < 200 || res.status >= 300))
      throw this.#apiError({ status: res.status, text: res.body.toString('utf8') })
    return res
  }
  async webhookList(ws: string): Promise<WebhookView[]> {
    return (await this.#request<{ webhooks: WebhookView[] }>('GET', `/v1/workspaces/${enc(ws)}/webhooks`)).webhooks
  }
  async webhookDelete(ws: string, id: string): Promise<WebhookView> {
    return (await this.#request<{ webhook: WebhookView }>('DELETE', `/v1/workspaces/${enc(ws)}/webhooks/${enc(id)}`)).webhook
  }
  async webhookRotateSecret(ws: string, id: string, overlapHours?: number): Promise<{ webhook: WebhookView; secret: string }> {
    return this.#request(
      'POST',
      `/v1/workspaces/${enc(ws)}/webhooks/${enc(id)}/rotate-secret`,
      overlapHours === undefined ? {} : { overlapHours },
    )
  }
  async webhookEnable(ws: string, id: string): Promise<WebhookView> {
    return (await this.#request<{ webhook: WebhookView }>('POST', `/v1/workspaces/${enc(ws)}/webhooks/${enc(id)}/enable`, {})).webhook
  }
  async webhookTest(ws: string, id: string): Promise<WebhookDeliveryView> {
    return (await this.#request<{ delivery: WebhookDeliveryView }>('POST', `/v1/workspaces/${enc(ws)}/webhooks/${enc(id)}/test`, {}))
      .delivery
  }
  async webhookDeliveries(ws: string, id: string, limit?: number): Promise<WebhookDeliveryView[]> {
    const q = limit === undefined ? '' : `?limit=${limit}`
    return (
      await this.#request<{ deliveries: WebhookDeliveryView[] }>('GET', `/v1/workspaces/${enc(ws)}/webhooks/${enc(id)}/deliveries${q}`)
    ).deliveries
  }
  async webhookRedeliver(ws: string, deliveryId: string): Promise<WebhookDeliveryView> {
    return (
      await this.#request<{ delivery: WebhookDeliveryView }>(
        'POST',
        `/v1/workspaces/${enc(ws)}/webhook-deliveries/${enc(deliveryId)}/redeliver`,
        {},
      )
    ).delivery
  }
  /** Approves, denies or revokes a break-glass request. */
  async breakGlassAct(ws: string, id: string, act: 'approve' | 'deny' | 'revoke', comment?: string): Promise<BreakGlassRequest> {
    const body: BreakGlassDecisionInput = act === 'revoke' || comment === undefined ? {} : { comment }
    return (await this.#request<BreakGlassRequestAnswer>('POST', `/v1/workspaces/${enc(ws)}/break-glass/${enc(id)}/${act}`, body)).request
  }
  /**
   * Every audit entry of the workspace, in chain order. `onPending` is told what the last page
   * says still waits in the queue (entries not yet integrated into the chain).
   */
  async *allAuditEntries(ws: string, onPending?: (pending: PendingAudit) => void): AsyncGenerator<AuditEntry> {
    let after = 0
    for (;;) {
      const page = await this.auditEntries(ws, after, 5000)
      yield* page.entries
      if (page.next === null) {
        if (page.pending) onPending?.(page.pending)
        return
      }
      after = page.next
    }
  }
}
