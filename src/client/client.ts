import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

// The typed HTTP client of the Coffer API, shared by the CLI, the tests and SDK users. It
// depends on nothing but the platform.

/**
 * One HTTP exchange over node:http(s). @NOTE not fetch: loading Node's fetch costs a CLI
 * ~50 ms at start and keeps the process alive ~100 ms after the last request, which
 * `coffer run` pays on every invocation.
 */
function send(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest
    const req = request(u, { method, headers, timeout: 60_000 }, (res) => {
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

export interface Workspace { id: string; slug: string; name: string; createdAt: string }
export interface Project { id: string; workspaceId: string; slug: string; name: string; createdAt: string }
export interface Environment { id: string; projectId: string; slug: string; name: string; createdAt: string }
export interface Secret {
  id: string; key: string; version: number; deleted: boolean; tags: string[]; createdAt: string; updatedAt: string
  value?: string; comment?: string | null
}
export interface SecretVersion {
  version: number; origin: 'set' | 'rollback' | 'delete' | 'restore'; originVersion: number | null; deleted: boolean
  tags: string[]; createdAt: string; createdBy: string; value?: string | null; comment?: string | null
}
export interface TokenInfo { id: string; name: string; display: string; createdAt: string; expiresAt: string | null; revokedAt: string | null; lastUsedAt: string | null }
export interface Me { user: { id: string; email: string }; workspace: Workspace; role: string; tokenId: string }
export interface AuditEntry {
  workspaceId: string; seq: number; id: string; time: string; actor: { type: string; id: string; ip: string; userAgent: string }
  requestId: string; action: string; target: { type: string; id: string }; details: string; prevHash: string; hash: string
}
export interface AuditCheckpoint { treeSize: number; rootHash: string; note: string; createdAt: string }
export interface SecretWrite { value: string; comment?: string; tags?: string[]; ifVersion?: number }
/** Project and environment (ids or slugs) inside a workspace (id or slug). */
export interface Scope { workspace: string; project: string; environment: string }

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

/** A client for one server and one token. */
export class CofferClient {
  readonly url: string
  readonly #token: string
  readonly #userAgent: string

  constructor(options: { url: string; token: string; userAgent?: string }) {
    this.url = options.url.replace(/\/+$/, '')
    this.#token = options.token
    this.#userAgent = options.userAgent ?? 'coffer-client'
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8')
    let res: { status: number; text: string }
    try {
      res = await send(this.url + path, method, {
        authorization: `Bearer ${this.#token}`,
        'user-agent': this.#userAgent,
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
      }, payload)
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
    return (await this.#request<{ environments: Environment[] }>('GET', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/environments`)).environments
  }
  async createEnvironment(ws: string, project: string, input: { name: string; slug?: string }): Promise<Environment> {
    return (await this.#request<{ environment: Environment }>('POST', `/v1/workspaces/${enc(ws)}/projects/${enc(project)}/environments`, input)).environment
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
    return (await this.#request<{ secret: Secret }>('GET', `${this.#env(s)}/secrets/${enc(key)}${opts.reveal ? '?reveal=true' : ''}`)).secret
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
  inclusionProof(ws: string, ref: { seq?: number; id?: string }, treeSize?: number): Promise<{ entry: AuditEntry; leafIndex: number; treeSize: number; leafHash: string; proof: string[]; rootHash: string }> {
    const q = new URLSearchParams()
    if (ref.seq !== undefined) q.set('seq', String(ref.seq))
    if (ref.id !== undefined) q.set('id', ref.id)
    if (treeSize !== undefined) q.set('treeSize', String(treeSize))
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/proofs/inclusion?${q}`)
  }
  consistencyProof(ws: string, from: number, to?: number): Promise<{ from: number; to: number; proof: string[]; fromRoot: string; toRoot: string }> {
    return this.#request('GET', `/v1/workspaces/${enc(ws)}/audit/proofs/consistency?from=${from}${to === undefined ? '' : `&to=${to}`}`)
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
