import { lookup as dnsLookup } from 'node:dns/promises'
import { type IncomingHttpHeaders, request as httpRequest, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP, type LookupFunction } from 'node:net'
import { OutboundFailedError, OutboundRefusedError, OutboundResponseTooLargeError, OutboundTimeoutError, CofferError } from '../errors.js'
import { type AddressPolicy, isNonCanonicalIpv4, writtenHost } from './address-policy.js'

// The one way Coffer makes an HTTP request to an address a user typed (webhooks, OAuth
// providers, connection tests). For every hop it:
// - accepts only http: and https: URLs without credentials, and refuses IPv4 written in any
//   form but dotted-decimal (`2130706433`, `0x7f.1`, `127.1`), which parsers silently turn
//   into another address than a reader sees;
// - resolves the name itself and checks EVERY address it resolves to against the
//   AddressPolicy (one refused address refuses the request: a name with a public and a
//   private record is an attack, not a fallback), then pins the connection to the checked
//   address — the socket never resolves the name again, so a second answer (DNS rebinding)
//   cannot reach anything; TLS still verifies the certificate against the name;
// - opens a fresh connection (no agent pool a pinned socket could leak into);
// - follows redirects only when asked, re-checking every hop from the start, dropping the
//   body on 303 (and 301/302 for POST) and the Authorization header when the origin changes;
// - bounds the whole exchange in time and the response body in size.

/** Resolves a host name to every address it has (the default is the system resolver, which reads /etc/hosts). */
export type Resolve = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>

export interface OutboundRequest {
  readonly method?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array
  /** For the whole exchange, redirects included (default 10 s). */
  readonly timeoutMs?: number
  /** The response body's limit in bytes (default 1 MiB). */
  readonly maxBytes?: number
  /** Redirects followed (default 0: a 3xx is returned as it is). */
  readonly maxRedirects?: number
  /**
   * Refuse plain http: unless the address is on the operator's allow-list (OAuth endpoints and
   * the APIs tokens are sent to: a token never crosses the internet in clear).
   */
  readonly requireHttps?: boolean
}

export interface OutboundResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** The URL that answered (after redirects). */
  readonly url: string
  /** The address the answering connection was pinned to. */
  readonly address: string
}

/** What happened to a request, for the metric. */
export type OutboundOutcome = 'ok' | 'refused' | 'failed' | 'timeout' | 'too-large'

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const DEFAULT_TIMEOUT_MS = 10_000
const DEFAULT_MAX_BYTES = 1 << 20

const systemResolve: Resolve = (host) => dnsLookup(host, { all: true, verbatim: true })

/** A destination that passed every check: where to connect, and under which name. */
interface Checked {
  readonly url: URL
  readonly hostname: string
  readonly address: string
  readonly family: 4 | 6
}

export class OutboundClient {
  readonly #policy: AddressPolicy
  readonly #resolve: Resolve
  readonly #onOutcome: ((outcome: OutboundOutcome) => void) | undefined
  readonly #ca: string | undefined

  /**
   * `resolve`: another resolver (tests use a DNS server of their own); `ca`: certificates to
   * trust instead of the system's (PEM; tests use a private CA).
   */
  constructor(options: { policy: AddressPolicy; resolve?: Resolve; onOutcome?: (outcome: OutboundOutcome) => void; ca?: string }) {
    this.#policy = options.policy
    this.#resolve = options.resolve ?? systemResolve
    this.#onOutcome = options.onOutcome
    this.#ca = options.ca
  }

  /**
   * Checks a URL a user gave without connecting (for validating a webhook endpoint when it is
   * saved): the same checks as a request's first hop, name resolution included. Throws
   * OutboundRefusedError or OutboundFailedError.
   */
  async check(url: string, options: { requireHttps?: boolean } = {}): Promise<void> {
    const dest = await this.#checked(url)
    if (options.requireHttps) this.#secure(dest)
  }

  /** Refuses a plain-http destination the operator did not allow. */
  #secure(dest: Checked): void {
    if (dest.url.protocol === 'http:' && !this.#policy.allows(dest.address))
      throw new OutboundRefusedError('Only https:// URLs are allowed here (plain http only to an address the operator allowed).')
  }

  /** Sends one request through the guard; throws ERR_OUTBOUND_* errors, never a raw socket error. */
  async request(url: string, init: OutboundRequest = {}): Promise<OutboundResponse> {
    const timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), timeoutMs)
    // Name resolution cannot be cancelled: the time limit wins the race instead.
    const expired = new Promise<never>((_, reject) =>
      abort.signal.addEventListener('abort', () => reject(new OutboundTimeoutError(timeoutMs)), { once: true }),
    )
    expired.catch(() => {})
    try {
      const r = await Promise.race([this.#follow(url, init, abort.signal), expired])
      this.#onOutcome?.('ok')
      return r
    } catch (err) {
      const e = abort.signal.aborted && !(err instanceof OutboundRefusedError) ? new OutboundTimeoutError(timeoutMs) : err
      this.#onOutcome?.(outcomeOf(e))
      throw e
    } finally {
      clearTimeout(timer)
    }
  }

  async #follow(url: string, init: OutboundRequest, signal: AbortSignal): Promise<OutboundResponse> {
    let current = url
    let method = (init.method ?? 'GET').toUpperCase()
    let body = init.body
    let headers: Record<string, string> = { ...init.headers }
    const maxRedirects = init.maxRedirects ?? 0
    for (let hop = 0; ; hop++) {
      const dest = await this.#checked(current)
      if (init.requireHttps) this.#secure(dest)
      if (signal.aborted) throw new OutboundTimeoutError(init.timeoutMs ?? DEFAULT_TIMEOUT_MS)
      const r = await send(dest, method, headers, body, init.maxBytes ?? DEFAULT_MAX_BYTES, signal, this.#ca)
      const location = r.headers.location
      if (!REDIRECTS.has(r.status) || location === undefined || maxRedirects === 0) return r
      if (hop >= maxRedirects) throw new OutboundFailedError(`The remote server redirected more than ${maxRedirects} times.`)
      let next: URL
      try {
        next = new URL(location, dest.url)
      } catch {
        throw new OutboundFailedError('The remote server redirected to an invalid URL.')
      }
      if (r.status === 303 || ((r.status === 301 || r.status === 302) && method === 'POST')) {
        method = 'GET'
        body = undefined
        headers = withoutBodyHeaders(headers)
      }
      if (next.origin !== dest.url.origin) headers = withoutHeader(headers, 'authorization')
      current = next.href
    }
  }

  /** Every check of one hop; the address to pin. */
  async #checked(raw: string): Promise<Checked> {
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw new OutboundRefusedError('The URL is not valid.')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundRefusedError('Only http:// and https:// URLs are allowed.')
    if (url.username !== '' || url.password !== '') throw new OutboundRefusedError('The URL may not carry a user name or password.')
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const written = writtenHost(raw)
    if (written === undefined || written === '') throw new OutboundRefusedError('The URL has no host.')
    const pinned = await this.#pinned(hostname, written)
    return { url, hostname, ...pinned }
  }

  /**
   * The checked address to connect to for a host of another protocol (a database server a
   * user named): the same checks as an HTTP request's host. `written` is the host as the user
   * wrote it, when it may differ from `hostname` (a URL parser normalised it).
   */
  async address(hostname: string, written = hostname): Promise<{ address: string; family: 4 | 6 }> {
    try {
      const r = await this.#pinned(hostname.startsWith('[') ? hostname.slice(1, -1) : hostname, written.toLowerCase())
      this.#onOutcome?.('ok')
      return r
    } catch (err) {
      this.#onOutcome?.(outcomeOf(err))
      throw err
    }
  }

  async #pinned(hostname: string, written: string): Promise<{ address: string; family: 4 | 6 }> {
    if (hostname === '') throw new OutboundRefusedError('The URL has no host.')
    if (isNonCanonicalIpv4(written, hostname))
      throw new OutboundRefusedError('The host is an IP address written in a non-canonical form; write it as four decimal numbers.')
    let addresses: ReadonlyArray<{ address: string; family: number }>
    if (isIP(hostname)) addresses = [{ address: hostname, family: isIP(hostname) }]
    else {
      try {
        addresses = await this.#resolve(hostname)
      } catch (err) {
        throw new OutboundFailedError('The host name does not resolve.', { cause: err })
      }
      if (addresses.length === 0) throw new OutboundFailedError('The host name does not resolve.')
    }
    for (const a of addresses) {
      const refusal = this.#policy.refusal(a.address)
      if (refusal) {
        const what = isIP(hostname) ? 'The address is' : 'The host name resolves to an address that is'
        throw new OutboundRefusedError(`${what} not on the public internet (${refusal.range}).`, refusal)
      }
    }
    const first = addresses[0]!
    return { address: first.address, family: first.family === 6 ? 6 : 4 }
  }
}

function outcomeOf(err: unknown): OutboundOutcome {
  if (err instanceof OutboundRefusedError) return 'refused'
  if (err instanceof OutboundTimeoutError) return 'timeout'
  if (err instanceof OutboundResponseTooLargeError) return 'too-large'
  return 'failed'
}

function withoutHeader(headers: Record<string, string>, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== name))
}

function withoutBodyHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !/^content-/i.test(k)))
}

/** One HTTP exchange on a fresh connection pinned to `dest.address`. */
function send(
  dest: Checked,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  maxBytes: number,
  signal: AbortSignal,
  ca: string | undefined,
): Promise<OutboundResponse> {
  // The socket asks this for the name's address: it gets the checked one, whatever DNS says now.
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all)
      (callback as unknown as (e: null, a: unknown[]) => void)(null, [{ address: dest.address, family: dest.family }])
    else callback(null, dest.address, dest.family)
  }
  const options: RequestOptions = {
    method,
    host: dest.hostname,
    port: dest.url.port === '' ? undefined : Number(dest.url.port),
    path: `${dest.url.pathname}${dest.url.search}`,
    headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
    lookup: pinned,
    agent: false,
    signal,
    ...(ca !== undefined ? { ca } : {}),
  }
  const make = dest.url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise<OutboundResponse>((resolve, reject) => {
    const req = make(options, (res) => {
      const declared = Number(res.headers['content-length'] ?? Number.NaN)
      if (declared > maxBytes) {
        res.destroy()
        reject(new OutboundResponseTooLargeError(maxBytes))
        return
      }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBytes) {
          res.destroy()
          reject(new OutboundResponseTooLargeError(maxBytes))
          return
        }
        chunks.push(chunk)
      })
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          url: dest.url.href,
          address: dest.address,
        }),
      )
      res.on('error', (err) => reject(failure(err)))
    })
    req.on('error', (err) => reject(failure(err)))
    if (body !== undefined) req.end(body)
    else req.end()
  })
}

/** A socket or TLS error as the client's own, with a message that echoes nothing the remote sent. */
function failure(err: unknown): CofferError {
  if (err instanceof CofferError) return err
  const code = (err as { code?: string }).code ?? ''
  const what =
    code === 'ECONNREFUSED'
      ? 'the connection was refused'
      : code === 'ECONNRESET'
        ? 'the connection was reset'
        : code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT'
          ? 'the TLS certificate was not accepted'
          : code === 'ABORT_ERR'
            ? 'the request was aborted'
            : 'the request failed'
  return new OutboundFailedError(`The remote server could not be reached: ${what}.`, { cause: err })
}
