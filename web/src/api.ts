// The dashboard's only way to the server: the public /v1 API, with the session cookie (sent by
// the browser) and the session's CSRF token in `x-csrf-token` on every request that changes
// something. The request and answer types come from src/api — the schemas the server
// validates with — as types only, so the UI cannot drift from the API and ships no zod.
import type { Account } from '../../src/api/account.js'
import type { AuthorizeAnswer, ConnectionView } from '../../src/api/connections.js'
import type { ChangeRequest, ChangeRequestAnswer, ChangeRequestList, ProtectionAnswer } from '../../src/api/change-requests.js'
import type { ErrorEnvelope } from '../../src/api/errors.js'
import type { CreateProjectInput, ProjectDetail, ProjectList } from '../../src/api/projects.js'
import type { SecretAnswer, SecretList, SecretWrite } from '../../src/api/secrets.js'
// Projects and environments: settings, the matrix, bulk edits, history (screens/env).
import type { SealAnswer } from '../../src/api/break-glass.js'
import type { EnvironmentGrant, GrantAnswer, ProjectMember } from '../../src/api/members.js'
import type {
  CreateEnvironmentInput,
  EnvironmentAnswer,
  EnvironmentDeletionAnswer,
  EnvironmentMatrix,
  ProjectAnswer,
  ProjectDeletionAnswer,
} from '../../src/api/projects.js'
import type { SecretApply, SecretApplyAnswer, SecretCopy, SecretCopyAnswer, SecretHistory } from '../../src/api/secrets.js'

export type { Account } from '../../src/api/account.js'
export type { Environment, Project, ProjectDetail } from '../../src/api/projects.js'
export type { Secret } from '../../src/api/secrets.js'
export type { EnvironmentGrant, ProjectMember } from '../../src/api/members.js'
export type { EnvironmentMatrix, MatrixCell, MatrixEnvironment } from '../../src/api/projects.js'
export type { DiffEntry, SecretApplyAnswer, SecretCopyAnswer, SecretVersion } from '../../src/api/secrets.js'

/** An answer of the API that is not a success: its stable code and its message (shown as text). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message)
  }
}

let csrfToken: string | null = null

/** Remembers the session's CSRF token (from GET /v1/account) for the requests that change something. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token
}

/** Where the browser goes when the session has ended: sign-in, and back here afterwards. */
export function signInUrl(): string {
  const here = `${window.location.pathname}${window.location.search}`
  return `/sign-in?returnTo=${encodeURIComponent(here)}`
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  if (res.status === 401) {
    window.location.assign(signInUrl())
    throw new ApiError(401, 'ERR_UNAUTHENTICATED', 'Your session has ended; sign in again.')
  }
  const text = await res.text()
  let json: unknown
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  // A write to a protected environment is not applied: it became a change request.
  const proposed = (json as { changeRequest?: ChangeRequest } | undefined)?.changeRequest
  if (res.status === 202 && proposed) {
    throw new ApiError(
      202,
      'CHANGE_REQUESTED',
      `This environment is protected: nothing was written yet. Your change is change request ${proposed.id.slice(0, 8)}, waiting for ${proposed.approvalsRequired} approval(s) from other Owners or Admins (Change requests).`,
    )
  }
  if (!res.ok) {
    const e = (json as ErrorEnvelope | undefined)?.error
    throw new ApiError(res.status, e?.code ?? 'ERR_UNKNOWN', e?.message ?? `The server answered ${res.status}.`, e?.requestId)
  }
  return json as T
}

const seg = encodeURIComponent
const ws = (w: string) => `/v1/workspaces/${seg(w)}`
const env = (w: string, p: string, e: string) => `${ws(w)}/projects/${seg(p)}/environments/${seg(e)}`

/** Every call the dashboard makes, typed by the API's own schemas. */
export const api = {
  account: () => call<Account>('GET', '/v1/account'),
  signOut: () => call<{ ended: number }>('POST', '/v1/account/sign-out', {}),
  projects: (w: string) => call<ProjectList>('GET', `${ws(w)}/projects`),
  createProject: (w: string, input: CreateProjectInput) => call<ProjectDetail>('POST', `${ws(w)}/projects`, input),
  project: (w: string, p: string) => call<ProjectDetail>('GET', `${ws(w)}/projects/${seg(p)}`),
  secrets: (w: string, p: string, e: string) => call<SecretList>('GET', `${env(w, p, e)}/secrets`),
  /** One value and comment, decrypted: the server records a `secret.reveal` audit entry. */
  reveal: (w: string, p: string, e: string, key: string) => call<SecretAnswer>('GET', `${env(w, p, e)}/secrets/${seg(key)}?reveal=true`),
  /**
   * The shared value as stored (audited like a reveal): `${…}` references unresolved and no
   * personal override — what the edit form starts from, so saving keeps references intact.
   */
  revealStored: (w: string, p: string, e: string, key: string) =>
    call<SecretAnswer>('GET', `${env(w, p, e)}/secrets/${seg(key)}?reveal=true&raw=true`),
  setSecret: (w: string, p: string, e: string, key: string, input: SecretWrite) =>
    call<SecretAnswer>('PUT', `${env(w, p, e)}/secrets/${seg(key)}`, input),
  deleteSecret: (w: string, p: string, e: string, key: string, ifVersion: number) =>
    call<SecretAnswer>('DELETE', `${env(w, p, e)}/secrets/${seg(key)}?ifVersion=${ifVersion}`),

  // Projects and environments: settings, the matrix, bulk edits, history (screens/env).
  renameProject: (w: string, p: string, name: string) => call<ProjectAnswer>('PATCH', `${ws(w)}/projects/${seg(p)}`, { name }),
  /** `confirm` is the slug typed again; `force` deletes secrets too (their data keys are destroyed). */
  deleteProject: (w: string, p: string, confirm: string, force: boolean) =>
    call<ProjectDeletionAnswer>('DELETE', `${ws(w)}/projects/${seg(p)}`, { confirm, force }),
  createEnvironment: (w: string, p: string, input: CreateEnvironmentInput) =>
    call<EnvironmentAnswer>('POST', `${ws(w)}/projects/${seg(p)}/environments`, input),
  renameEnvironment: (w: string, p: string, e: string, name: string) => call<EnvironmentAnswer>('PATCH', env(w, p, e), { name }),
  deleteEnvironment: (w: string, p: string, e: string, confirm: string, force: boolean) =>
    call<EnvironmentDeletionAnswer>('DELETE', env(w, p, e), { confirm, force }),
  /** Keys × environments with keyed fingerprints of the values, never the values. Not audited: it reveals none. */
  matrix: (w: string, p: string) => call<EnvironmentMatrix>('GET', `${ws(w)}/projects/${seg(p)}/matrix`),
  /** A pasted `.env`: with dryRun the diff only; otherwise one atomic write (check-and-set with ifState). */
  applySecrets: (w: string, p: string, e: string, input: SecretApply) =>
    call<SecretApplyAnswer>('POST', `${env(w, p, e)}/secrets/apply`, input),
  copySecrets: (w: string, p: string, e: string, input: SecretCopy) =>
    call<SecretCopyAnswer>('POST', `${env(w, p, e)}/secrets/copy`, input),
  deletedSecrets: (w: string, p: string, e: string) => call<SecretList>('GET', `${env(w, p, e)}/secrets?includeDeleted=true`),
  restoreSecret: (w: string, p: string, e: string, key: string) =>
    call<SecretAnswer>('POST', `${env(w, p, e)}/secrets/${seg(key)}/restore`, {}),
  /** Every version (keys, tags, who, when); with reveal, every version's value — one `secret.reveal_history` audit entry. */
  history: (w: string, p: string, e: string, key: string, reveal = false) =>
    call<SecretHistory>('GET', `${env(w, p, e)}/secrets/${seg(key)}/versions${reveal ? '?reveal=true' : ''}`),
  rollback: (w: string, p: string, e: string, key: string, version: number, ifVersion: number) =>
    call<SecretAnswer>('POST', `${env(w, p, e)}/secrets/${seg(key)}/rollback`, { version, ifVersion }),
  restrict: (w: string, p: string, e: string, restricted: boolean) =>
    call<EnvironmentAnswer>('PUT', `${env(w, p, e)}/restriction`, { restricted }),
  seal: (w: string, p: string, e: string, sealed: boolean) => call<SealAnswer>('PUT', `${env(w, p, e)}/seal`, { sealed }),
  grants: (w: string, p: string, e: string) => call<{ grants: EnvironmentGrant[] }>('GET', `${env(w, p, e)}/grants`),
  setGrant: (w: string, p: string, e: string, user: string, access: 'read' | 'write') =>
    call<GrantAnswer>('PUT', `${env(w, p, e)}/grants/${seg(user)}`, { access }),
  removeGrant: (w: string, p: string, e: string, user: string) => call<GrantAnswer>('DELETE', `${env(w, p, e)}/grants/${seg(user)}`),
  projectMembers: (w: string, p: string) => call<{ members: ProjectMember[] }>('GET', `${ws(w)}/projects/${seg(p)}/members`),
}

/** Query keys: one per resource, invalidated by the mutation that changes it. */
export const keys = {
  account: ['account'] as const,
  projects: (w: string) => ['projects', w] as const,
  project: (w: string, p: string) => ['project', w, p] as const,
  secrets: (w: string, p: string, e: string) => ['secrets', w, p, e] as const,
  // Projects and environments: settings, the matrix, bulk edits, history (screens/env).
  matrix: (w: string, p: string) => ['matrix', w, p] as const,
  deletedSecrets: (w: string, p: string, e: string) => ['deleted-secrets', w, p, e] as const,
  history: (w: string, p: string, e: string, key: string) => ['history', w, p, e, key] as const,
  grants: (w: string, p: string, e: string) => ['grants', w, p, e] as const,
  projectMembers: (w: string, p: string) => ['project-members', w, p] as const,
}

// ── Operations screens (keys, audit, break-glass, workspace settings) ──────────────────────
import type {
  AuditActivity,
  AuditActivityQuery,
  AuditEntries,
  AuditEntriesQuery,
  InclusionProof,
  IssuedCheckpoint,
  LatestCheckpoint,
} from '../../src/api/audit.js'
import type { BreakGlassList, BreakGlassRequestAnswer, BreakGlassRequestInput } from '../../src/api/break-glass.js'
import type { KeyJobAnswer, KeyRotation, KeyStatus } from '../../src/api/keys.js'
import type { MemberList } from '../../src/api/members.js'
import type { WorkspaceDeletion } from '../../src/api/workspace-deletion.js'

export type { AuditCheckpoint, AuditEntry, AuditFilter } from '../../src/api/audit.js'
export type { BreakGlassRequest } from '../../src/api/break-glass.js'
export type { KeyJob, KeyVersion } from '../../src/api/keys.js'
export type { DeletionReceipt } from '../../src/api/workspace-deletion.js'

/** GET …/audit/verify: the server's recomputation of the chain and the newest checkpoint's root. */
export interface AuditVerification {
  ok: boolean
  checked: number
  head: string
  firstBad?: { seq: number; id: string; reason: string; problem: string }
}

function query(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}

/** The operations screens' calls. */
export const opsApi = {
  members: (w: string) => call<MemberList>('GET', `${ws(w)}/members`),
  keyStatus: (w: string, p: string, e: string) => call<KeyStatus>('GET', `${env(w, p, e)}/keys`),
  rotateKey: (w: string, p: string, e: string) => call<KeyRotation>('POST', `${env(w, p, e)}/keys/rotate`, {}),
  keyJob: (w: string, job: string) => call<KeyJobAnswer>('GET', `${ws(w)}/key-jobs/${seg(job)}`),
  auditEntries: (w: string, q: AuditEntriesQuery) => call<AuditEntries>('GET', `${ws(w)}/audit/entries${query(q)}`),
  auditActivity: (w: string, q: AuditActivityQuery) => call<AuditActivity>('GET', `${ws(w)}/audit/activity${query(q)}`),
  auditVerify: (w: string) => call<AuditVerification>('GET', `${ws(w)}/audit/verify`),
  auditCheckpoint: (w: string) => call<LatestCheckpoint>('GET', `${ws(w)}/audit/checkpoint`),
  /** Signs a checkpoint of the log as it is now (itself an audit entry), as `coffer audit export` does. */
  issueCheckpoint: (w: string) => call<IssuedCheckpoint>('POST', `${ws(w)}/audit/checkpoints`, {}),
  inclusionProof: (w: string, id: string, treeSize: number) =>
    call<InclusionProof>('GET', `${ws(w)}/audit/proofs/inclusion${query({ id, treeSize })}`),
  breakGlass: (w: string) => call<BreakGlassList>('GET', `${ws(w)}/break-glass`),
  requestBreakGlass: (w: string, input: BreakGlassRequestInput) => call<BreakGlassRequestAnswer>('POST', `${ws(w)}/break-glass`, input),
  decideBreakGlass: (w: string, id: string, decision: 'approve' | 'deny', comment?: string) =>
    call<BreakGlassRequestAnswer>('POST', `${ws(w)}/break-glass/${seg(id)}/${decision}`, comment ? { comment } : {}),
  revokeBreakGlass: (w: string, id: string) => call<BreakGlassRequestAnswer>('POST', `${ws(w)}/break-glass/${seg(id)}/revoke`, {}),
  /** Crypto-shredding: `confirm` is the slug typed again. Answers the signed receipt. */
  deleteWorkspace: (w: string, confirm: string) => call<WorkspaceDeletion>('DELETE', ws(w), { confirm }),
}

/** The operations screens' query keys. */
export const opsKeys = {
  members: (w: string) => ['members', w] as const,
  keyStatus: (w: string, p: string, e: string) => ['key-status', w, p, e] as const,
  keyJob: (w: string, job: string) => ['key-job', w, job] as const,
  /** Every audit query of a workspace (entries, activity, verification, checkpoint) starts with this. */
  audit: (w: string) => ['audit', w] as const,
  auditEntries: (w: string, filter: object) => ['audit', w, 'entries', filter] as const,
  auditActivity: (w: string, filter: object) => ['audit', w, 'activity', filter] as const,
  auditVerify: (w: string) => ['audit', w, 'verify'] as const,
  auditCheckpoint: (w: string) => ['audit', w, 'checkpoint'] as const,
  breakGlass: (w: string) => ['break-glass', w] as const,
}

// --- Team: members, invitations, tokens and integrations (screens/team) ---
import type {
  CreatedInvitation,
  CreateInvitationInput,
  InvitationAnswer,
  InvitationList,
  MyInvitationAccepted,
  MyInvitationList,
} from '../../src/api/invitations.js'
import type { CreatedMachine, CreateMachineInput, MachineList, MachineRevocation } from '../../src/api/machines.js'
import type { MemberAnswer, MemberRemoval, ProjectMemberAnswer } from '../../src/api/members.js'
import type { ProjectRole, Role } from '../../src/api/roles.js'
import type { CreatedServiceToken, CreateServiceTokenInput, ServiceTokenInfo, ServiceTokenList } from '../../src/api/service-tokens.js'
import type { CreatedToken, CreateTokenInput, TokenInfoAnswer, TokenList } from '../../src/api/tokens.js'

export type { CreatedInvitation, Invitation, MyInvitation } from '../../src/api/invitations.js'
export type { Machine } from '../../src/api/machines.js'
export type { Member } from '../../src/api/members.js'
export type { ProjectRole, Role } from '../../src/api/roles.js'
export type { ServiceToken } from '../../src/api/service-tokens.js'
export type { ScopeInput } from '../../src/api/integration-scopes.js'
export type { TokenInfo } from '../../src/api/tokens.js'

/** The team screens' calls: members, invitations, project roles, personal and service tokens, machine identities. */
export const teamApi = {
  members: (w: string) => call<MemberList>('GET', `${ws(w)}/members`),
  setRole: (w: string, user: string, role: Role) => call<MemberAnswer>('PUT', `${ws(w)}/members/${seg(user)}`, { role }),
  removeMember: (w: string, user: string) => call<MemberRemoval>('DELETE', `${ws(w)}/members/${seg(user)}`),
  projectMembers: (w: string, p: string) => call<{ members: ProjectMember[] }>('GET', `${ws(w)}/projects/${seg(p)}/members`),
  setProjectRole: (w: string, p: string, user: string, role: ProjectRole) =>
    call<ProjectMemberAnswer>('PUT', `${ws(w)}/projects/${seg(p)}/members/${seg(user)}`, { role }),
  removeProjectRole: (w: string, p: string, user: string) =>
    call<ProjectMemberAnswer>('DELETE', `${ws(w)}/projects/${seg(p)}/members/${seg(user)}`),
  invitations: (w: string) => call<InvitationList>('GET', `${ws(w)}/invitations`),
  invite: (w: string, input: CreateInvitationInput) => call<CreatedInvitation>('POST', `${ws(w)}/invitations`, input),
  revokeInvitation: (w: string, id: string) => call<InvitationAnswer>('DELETE', `${ws(w)}/invitations/${seg(id)}`),
  tokens: (w: string) => call<TokenList>('GET', `${ws(w)}/tokens`),
  createToken: (w: string, input: CreateTokenInput) => call<CreatedToken>('POST', `${ws(w)}/tokens`, input),
  revokeToken: (w: string, id: string) => call<TokenInfoAnswer>('DELETE', `${ws(w)}/tokens/${seg(id)}`),
  serviceTokens: (w: string) => call<ServiceTokenList>('GET', `${ws(w)}/service-tokens`),
  createServiceToken: (w: string, input: CreateServiceTokenInput) => call<CreatedServiceToken>('POST', `${ws(w)}/service-tokens`, input),
  revokeServiceToken: (w: string, id: string) => call<ServiceTokenInfo>('DELETE', `${ws(w)}/service-tokens/${seg(id)}`),
  machines: (w: string) => call<MachineList>('GET', `${ws(w)}/machines`),
  createMachine: (w: string, input: CreateMachineInput) => call<CreatedMachine>('POST', `${ws(w)}/machines`, input),
  revokeMachine: (w: string, id: string) => call<MachineRevocation>('DELETE', `${ws(w)}/machines/${seg(id)}`),
  /** The pending invitations addressed to the signed-in person's own address (never their tokens). */
  myInvitations: () => call<MyInvitationList>('GET', '/v1/account/invitations'),
  acceptMyInvitation: (id: string) => call<MyInvitationAccepted>('POST', `/v1/account/invitations/${seg(id)}/accept`, {}),
}

/** The team screens' query keys, one per resource. */
export const teamKeys = {
  members: (w: string) => ['members', w] as const,
  projectMembers: (w: string, p: string) => ['project-members', w, p] as const,
  invitations: (w: string) => ['invitations', w] as const,
  tokens: (w: string) => ['tokens', w] as const,
  serviceTokens: (w: string) => ['service-tokens', w] as const,
  machines: (w: string) => ['machines', w] as const,
  myInvitations: ['my-invitations'] as const,
}

// --- Protected environments and change requests (screens/ops/changes) ---
export type { ChangeRequest } from '../../src/api/change-requests.js'

/** The change-requests screen's calls. */
export const changesApi = {
  list: (w: string) => call<ChangeRequestList>('GET', `${ws(w)}/change-requests`),
  /** The proposed values too: the server checks reveal in the environment and records `change.reveal`. */
  reveal: (w: string, id: string) => call<ChangeRequestAnswer>('GET', `${ws(w)}/change-requests/${seg(id)}?reveal=true`),
  decide: (w: string, id: string, decision: 'approve' | 'reject', comment?: string) =>
    call<ChangeRequestAnswer>('POST', `${ws(w)}/change-requests/${seg(id)}/${decision}`, comment ? { comment } : {}),
  protect: (w: string, p: string, e: string, approvals: number) =>
    call<ProtectionAnswer>('PUT', `${env(w, p, e)}/protection`, { approvals }),
}

/** The change-requests screen's query keys. */
export const changesKeys = {
  list: (w: string) => ['change-requests', w] as const,
}

// --- Webhooks (screens/webhooks) and dynamic database roles (screens/env/db-roles) ---
import type { DbCredentialsAnswer, DbRoleView } from '../../src/api/dynamic.js'
import type { WebhookDeliveryView, WebhookView } from '../../src/api/webhooks.js'

export type { DbCredentialsAnswer, DbRoleView } from '../../src/api/dynamic.js'
export type { WebhookDeliveryView, WebhookView } from '../../src/api/webhooks.js'

/** The webhooks screen's calls (Owners and Admins: `webhook.read`, `webhook.manage`). */
export const webhooksApi = {
  list: (w: string) => call<{ webhooks: WebhookView[] }>('GET', `${ws(w)}/webhooks`),
  /** The answer holds the signing secret: shown once, never kept in the query cache. */
  create: (w: string, input: { url: string; events: string[]; description?: string }) =>
    call<{ webhook: WebhookView; secret: string }>('POST', `${ws(w)}/webhooks`, input),
  remove: (w: string, id: string) => call<{ webhook: WebhookView }>('DELETE', `${ws(w)}/webhooks/${seg(id)}`),
  /** A new signing secret (shown once); the previous one keeps signing beside it for `overlapHours`. */
  rotateSecret: (w: string, id: string, overlapHours: number) =>
    call<{ webhook: WebhookView; secret: string }>('POST', `${ws(w)}/webhooks/${seg(id)}/rotate-secret`, { overlapHours }),
  enable: (w: string, id: string) => call<{ webhook: WebhookView }>('POST', `${ws(w)}/webhooks/${seg(id)}/enable`, {}),
  test: (w: string, id: string) => call<{ delivery: WebhookDeliveryView }>('POST', `${ws(w)}/webhooks/${seg(id)}/test`, {}),
  deliveries: (w: string, id: string, limit = 50) =>
    call<{ deliveries: WebhookDeliveryView[] }>('GET', `${ws(w)}/webhooks/${seg(id)}/deliveries?limit=${limit}`),
  redeliver: (w: string, message: string) =>
    call<{ delivery: WebhookDeliveryView }>('POST', `${ws(w)}/webhook-deliveries/${seg(message)}/redeliver`, {}),
}

/** The webhooks screen's query keys: every one of a workspace starts with `webhooks(w)`. */
export const webhookKeys = {
  webhooks: (w: string) => ['webhooks', w] as const,
  deliveries: (w: string, id: string) => ['webhooks', w, 'deliveries', id] as const,
  lastDelivery: (w: string, id: string) => ['webhooks', w, 'last-delivery', id] as const,
}

/** An environment's dynamic database roles (`db.roles.manage` to define, `db.credentials` to issue). */
export const dbRolesApi = {
  list: (w: string, p: string, e: string) => call<{ roles: DbRoleView[] }>('GET', `${env(w, p, e)}/db-roles`),
  /** `adminUrl` is sealed by the server and never shown back. */
  create: (
    w: string,
    p: string,
    e: string,
    input: { name: string; adminUrl: string; creationSql: string; defaultTtlSeconds?: number; maxTtlSeconds?: number },
  ) => call<{ role: DbRoleView }>('POST', `${env(w, p, e)}/db-roles`, input),
  remove: (w: string, p: string, e: string, name: string) => call<{ role: DbRoleView }>('DELETE', `${env(w, p, e)}/db-roles/${seg(name)}`),
  /** A fresh login role, shown once: kept in the dialog's memory only, never in the query cache. */
  issue: (w: string, p: string, e: string, name: string, ttlSeconds?: number) =>
    call<DbCredentialsAnswer>('POST', `${env(w, p, e)}/db-roles/${seg(name)}/credentials`, ttlSeconds ? { ttlSeconds } : {}),
}

export const dbRoleKeys = {
  list: (w: string, p: string, e: string) => ['db-roles', w, p, e] as const,
}
/** Third-party OAuth connections (the connections screen): link states only, never a token. */
export const connectionsApi = {
  list: (w: string) => call<{ connections: ConnectionView[] }>('GET', `${ws(w)}/connections`),
  authorize: (w: string, id: string, kind: 'app' | 'personal') =>
    call<AuthorizeAnswer>('POST', `${ws(w)}/connections/${seg(id)}/authorize`, { kind }),
  unlink: (w: string, id: string) =>
    call<{ connection: ConnectionView; unlinked: boolean }>('DELETE', `${ws(w)}/connections/${seg(id)}/link`),
  remove: (w: string, id: string) => call<{ connection: ConnectionView }>('DELETE', `${ws(w)}/connections/${seg(id)}`),
}
export const connectionsKey = (w: string) => ['connections', w] as const
