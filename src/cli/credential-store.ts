/**
 * Where the CLI keeps its login (server URL + API token).
 *
 * Only the operating system's credential store is used (Secret Service on
 * Linux, Keychain on macOS, Credential Manager on Windows). There is
 * deliberately no file fallback: when no OS store is usable,
 * {@link openCredentialStore} returns null and the caller must use
 * {@link credentialsFromEnv} (COFFER_TOKEN) instead.
 *
 * No error raised here contains the token.
 */
import type { ChildProcess } from 'node:child_process'
import type { AsyncEntry as AsyncEntryType, EntryOptions } from '@napi-rs/keyring'

/** A CLI login: the server it talks to and the token it authenticates with. */
export interface Credentials {
  url: string
  token: string
}

/** A place that can hold one set of {@link Credentials}. */
export interface CredentialStore {
  /** The saved credentials, or null when none are saved. */
  load(): Promise<Credentials | null>
  /** Save (or overwrite) the credentials. */
  save(c: Credentials): Promise<void>
  /** Delete the saved credentials; true if something was deleted. */
  remove(): Promise<boolean>
  /** A short human-readable name of the backing store, e.g. `secret-service`. */
  readonly kind: string
}

/**
 * Any failure to use or interpret stored credentials.
 * Guarantees: `code` is `'ERR_CREDENTIAL_STORE'`; the message never contains
 * the token (underlying keyring messages are redacted before use).
 */
export class CredentialStoreError extends Error {
  readonly code = 'ERR_CREDENTIAL_STORE'

  constructor(message: string) {
    super(message)
    this.name = 'CredentialStoreError'
  }
}

/** Keyring service name used for the login entry. */
export const KEYRING_SERVICE = 'coffer'
/** Keyring account name used for the login entry. */
export const KEYRING_ACCOUNT = 'default'
/** Account of the throwaway entry read (never written) by {@link openCredentialStore}. */
export const KEYRING_PROBE_ACCOUNT = '__coffer_probe__'
/** Default upper bound for the availability probe. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000

type KeyringModule = typeof import('@napi-rs/keyring')

let keyringModule: Promise<KeyringModule> | undefined

/** Load the native keyring binding lazily, so commands that never touch it do not pay for it. */
function loadKeyring(): Promise<KeyringModule> {
  keyringModule ??= import('@napi-rs/keyring')
  return keyringModule
}

/**
 * On Linux the binding silently falls back from Secret Service to the kernel
 * keyutils keyring (in-memory, lost on reboot, and often unusable in
 * containers). Pin it to Secret Service so "available" means a real,
 * persistent store.
 */
function entryOptions(): EntryOptions | undefined {
  return process.platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined
}

function platformKind(): string {
  switch (process.platform) {
    case 'linux':
      return 'secret-service'
    case 'darwin':
      return 'macos-keychain'
    case 'win32':
      return 'windows-credential-manager'
    default:
      return 'os-keyring'
  }
}

function describeError(err: unknown, redact: string[]): string {
  let message = err instanceof Error ? err.message : 'unknown error'
  for (const secret of redact) {
    if (secret.length > 0) message = message.split(secret).join('[redacted]')
  }
  return message
}

function validateCredentials(c: Credentials): void {
  if (c === null || typeof c !== 'object' || typeof c.url !== 'string' || typeof c.token !== 'string') {
    throw new CredentialStoreError('credentials must have a string url and token')
  }
  if (c.token.length === 0) throw new CredentialStoreError('the token is empty')
  if (!isHttpUrl(c.url)) throw new CredentialStoreError('the server URL must be an absolute http(s) URL')
}

function isHttpUrl(url: string): boolean {
  try {
    const parsed = new URL(url)
    return parsed.protocol === 'http:' || parsed.protocol === 'https:'
  } catch {
    return false
  }
}

/**
 * Credentials in the OS keyring, as JSON `{"url","token"}` under service
 * `coffer`, account `default`.
 *
 * Guarantees: `load` returns exactly what the last `save` stored (or null);
 * every failure is a {@link CredentialStoreError} without the token. A store
 * can exist yet refuse writes (e.g. a locked keyring with no way to prompt
 * for its password); `save` then rejects.
 */
export class KeyringCredentialStore implements CredentialStore {
  readonly kind: string = platformKind()
  private readonly service: string
  private readonly account: string

  constructor(options: { service?: string; account?: string } = {}) {
    this.service = options.service ?? KEYRING_SERVICE
    this.account = options.account ?? KEYRING_ACCOUNT
  }

  private async entry(redact: string[] = []): Promise<AsyncEntryType> {
    try {
      const { AsyncEntry } = await loadKeyring()
      return new AsyncEntry(this.service, this.account, entryOptions())
    } catch (err) {
      throw new CredentialStoreError(`the ${this.kind} credential store is unavailable: ${describeError(err, redact)}`)
    }
  }

  /** The saved credentials, or null; rejects if the stored entry is malformed or unreadable. */
  async load(): Promise<Credentials | null> {
    const entry = await this.entry()
    let raw: string | null
    try {
      raw = await entry.getPassword()
    } catch (err) {
      throw new CredentialStoreError(`could not read credentials from ${this.kind}: ${describeError(err, [])}`)
    }
    if (raw === null) return null
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      parsed = undefined
    }
    if (
      parsed === null ||
      typeof parsed !== 'object' ||
      typeof (parsed as Record<string, unknown>).url !== 'string' ||
      typeof (parsed as Record<string, unknown>).token !== 'string'
    ) {
      throw new CredentialStoreError(`the credentials stored in ${this.kind} are malformed; log in again`)
    }
    const { url, token } = parsed as Credentials
    return { url, token }
  }

  /** Save or overwrite; rejects on invalid credentials or if the store refuses the write. */
  async save(c: Credentials): Promise<void> {
    validateCredentials(c)
    const payload = JSON.stringify({ url: c.url, token: c.token })
    const entry = await this.entry([c.token, payload])
    try {
      await entry.setPassword(payload)
    } catch (err) {
      throw new CredentialStoreError(`could not save credentials to ${this.kind}: ${describeError(err, [c.token, payload])}`)
    }
  }

  /** Delete the entry; resolves false if there was none. */
  async remove(): Promise<boolean> {
    const entry = await this.entry()
    try {
      return await entry.deletePassword()
    } catch (err) {
      throw new CredentialStoreError(`could not remove credentials from ${this.kind}: ${describeError(err, [])}`)
    }
  }
}

/**
 * Find out whether the OS credential store is usable, by reading a throwaway
 * probe entry (never written, so it cannot trigger an unlock prompt).
 *
 * Guarantees: resolves (never rejects) within about `timeoutMs`; resolves
 * null when the native binding cannot load, no store is reachable (no D-Bus
 * session bus, no Secret Service provider, access denied...) or the probe
 * does not answer in time. Never falls back to a file.
 *
 * On Linux and other D-Bus platforms the probe runs in a short-lived child
 * process: the binding connects to D-Bus synchronously when an entry is
 * created, and a bus that accepts the connection but never answers blocks
 * the calling thread indefinitely, which no in-process timer can interrupt.
 */
export async function openCredentialStore(options: { timeoutMs?: number } = {}): Promise<CredentialStore | null> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
  const usesDbus = process.platform !== 'darwin' && process.platform !== 'win32'
  const available = usesDbus ? await probeInChildProcess(timeoutMs) : await probeInProcess(timeoutMs)
  return available ? new KeyringCredentialStore() : null
}

async function probeInProcess(timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
    timer.unref()
  })
  const probe = (async (): Promise<boolean> => {
    try {
      const { AsyncEntry } = await loadKeyring()
      await new AsyncEntry(KEYRING_SERVICE, KEYRING_PROBE_ACCOUNT, entryOptions()).getPassword()
      return true
    } catch {
      return false
    }
  })()
  try {
    return await Promise.race([probe, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function probeInChildProcess(timeoutMs: number): Promise<boolean> {
  // Loaded here, not with the module: `coffer run` with COFFER_TOKEN never probes.
  const [{ spawn }, { createRequire }] = await Promise.all([import('node:child_process'), import('node:module')])
  let modulePath: string
  try {
    modulePath = createRequire(import.meta.url).resolve('@napi-rs/keyring')
  } catch {
    return false
  }
  const script = [
    `const { Entry } = require(${JSON.stringify(modulePath)});`,
    'try {',
    `  new Entry(${JSON.stringify(KEYRING_SERVICE)}, ${JSON.stringify(KEYRING_PROBE_ACCOUNT)}, ${JSON.stringify(entryOptions() ?? null)}).getPassword();`,
    '  process.exitCode = 0;',
    '} catch {',
    '  process.exitCode = 3;',
    '}',
  ].join('\n')
  // The probe needs none of the parent's loader hooks (e.g. --import tsx).
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return new Promise<boolean>((resolve) => {
    let child: ChildProcess
    try {
      child = spawn(process.execPath, ['-e', script], {
        env,
        stdio: 'ignore',
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        windowsHide: true,
      })
    } catch {
      resolve(false)
      return
    }
    child.once('error', () => resolve(false))
    child.once('exit', (code) => resolve(code === 0))
  })
}

/**
 * Read-only credentials from the environment: `COFFER_TOKEN` (required) and
 * `COFFER_URL` (or `fallbackUrl`, e.g. from a `--url` flag).
 *
 * Guarantees: returns null when `COFFER_TOKEN` is unset or empty; otherwise
 * returns `{ url, token }` with the token exactly as given, or throws a
 * {@link CredentialStoreError} (without the token) when no valid http(s) URL
 * is available.
 */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env, fallbackUrl?: string): Credentials | null {
  const token = env.COFFER_TOKEN
  if (token === undefined || token === '') return null
  const url = env.COFFER_URL !== undefined && env.COFFER_URL !== '' ? env.COFFER_URL : fallbackUrl
  if (url === undefined || url === '') {
    throw new CredentialStoreError('COFFER_TOKEN is set but COFFER_URL is not')
  }
  if (!isHttpUrl(url)) {
    throw new CredentialStoreError('COFFER_URL must be an absolute http(s) URL')
  }
  return { url, token }
}
