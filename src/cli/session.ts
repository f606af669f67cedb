import { CofferApiError, CofferClient, CofferConnectionError, type Scope } from '../client/client.js'
import { VERSION } from '../version.js'
import { caFromEnv } from './ca.js'
import { credentialsFromEnv, openCredentialStore } from './credential-store.js'
import { ExitError } from './exit-error.js'
import { findProjectConfig } from './project-config.js'

export const DEFAULT_URL = 'http://127.0.0.1:8700'

/** Options every command that talks to the server accepts. */
export interface ServerOptions {
  url?: string
}
export interface ScopeOptions extends ServerOptions {
  workspace?: string
  project?: string
  env?: string
}

/**
 * A client for the configured server. The token comes from COFFER_TOKEN (never written
 * anywhere) or else from the OS credential store that `coffer login` filled.
 */
export async function connect(opts: ServerOptions = {}, client: { timeoutMs?: number } = {}): Promise<CofferClient> {
  const { url, token } = await credentials(opts)
  return new CofferClient({ url, token, userAgent: `coffer-cli/${VERSION}`, ca: caFromEnv(), ...client })
}

/** The server's URL and the token: COFFER_TOKEN (with COFFER_URL or --url), else the OS credential store. */
export async function credentials(opts: ServerOptions = {}): Promise<{ url: string; token: string }> {
  const linked = findProjectConfig()?.config
  const explicitUrl = opts.url ?? process.env.COFFER_URL ?? linked?.url
  const fromEnv = credentialsFromEnv({ ...process.env, COFFER_URL: explicitUrl ?? '' }, DEFAULT_URL)
  if (fromEnv) return { url: fromEnv.url, token: fromEnv.token }
  const store = await openCredentialStore()
  const saved = store ? await store.load() : null
  if (!saved) {
    throw new ExitError('Not logged in: run `coffer login --url URL --token TOKEN`, or set COFFER_TOKEN (and COFFER_URL).', {
      code: 'ERR_NOT_LOGGED_IN',
    })
  }
  return { url: explicitUrl ?? saved.url, token: saved.token }
}

/** The workspace from --workspace, .coffer.json, or the token's own workspace. */
export async function resolveWorkspace(client: CofferClient, opts: ScopeOptions): Promise<string> {
  const w = opts.workspace ?? findProjectConfig()?.config.workspace
  return w ?? (await client.me()).workspace.slug
}

/** The project from --project, else .coffer.json. */
export function resolveProject(opts: ScopeOptions): string {
  const p = opts.project ?? findProjectConfig()?.config.project
  if (!p)
    throw new ExitError('No project: pass --project, or run `coffer setup --project P --env E` in this directory.', {
      code: 'ERR_NO_PROJECT',
    })
  return p
}

/** Workspace, project and environment from flags, else .coffer.json (in this directory or a parent). */
export async function resolveScope(client: CofferClient, opts: ScopeOptions): Promise<Scope> {
  const linked = findProjectConfig()?.config ?? {}
  const project = opts.project ?? linked.project
  const environment = opts.env ?? linked.environment
  if (!project || !environment) {
    throw new ExitError('No project/environment: pass --project and --env, or run `coffer setup --project P --env E` in this directory.', {
      code: 'ERR_NO_PROJECT',
    })
  }
  const workspace = opts.workspace ?? linked.workspace ?? (await client.me()).workspace.slug
  return { workspace, project, environment }
}

/** Turns API and connection errors into one-line user errors. */
export function toExitError(err: unknown): unknown {
  if (err instanceof CofferApiError) return new ExitError(`${err.message} (${err.code})`, { code: err.code })
  if (err instanceof CofferConnectionError) return new ExitError(err.message, { code: err.code })
  return err
}
