import type { Breadcrumb, ErrorEvent } from '@sentry/node'
import { scrub } from '../scrub.js'
import { redactUrl } from './redact.js'

// Optional error reports to a Sentry-compatible endpoint (COFFER_SENTRY_DSN). Every event and
// breadcrumb passes `scrubEvent` before it leaves the process: reports carry what went wrong
// and where, never a credential, a cookie, a request body or whose home directory it ran in.

const REDACTED = '[redacted]'

/**
 * Object keys whose values never leave the process, wherever they appear in an event
 * (request headers, contexts, extra data, breadcrumb data).
 */
const SENSITIVE_KEY =
  /authori[sz]ation|cookie|token|secret|passw(or)?d|passphrase|api[-_]?key|private[-_]?key|credential|session|csrf|^pin$|^dsn$|root[-_]?key|forwarded|^x-real-ip$|^ip_address$|^email$/i

/** Parts of an event dropped whole: bodies, query strings, environment, cookies, local variables. */
const DROPPED_KEYS = new Set(['data', 'query_string', 'cookies', 'env', 'vars'])

const TEXT_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  // A header or setting written out in text: `Authorization: Bearer …`, `cookie=…`, `"x-coffer-token":"…"`.
  [/\b(authorization|proxy-authorization|x-coffer-token)(["']?\s*[:=]\s*)(?:[A-Za-z]+\s+)?[^\s;,"']+/gi, `$1$2${REDACTED}`],
  [/\b(cookie|set-cookie)(["']?\s*[:=]\s*)[^\r\n"']*/gi, `$1$2${REDACTED}`],
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`],
  // Coffer's cookies (the session and its CSRF companion), however they are written.
  [/\b(coffer_[a-z_]*)=[^;\s"'&,]*/g, `$1=${REDACTED}`],
  // Secrets carried in query strings: mailed links' tokens, OAuth codes, signatures.
  [
    /([?&](?:token|access_token|refresh_token|id_token|code|password|secret|client_secret|key|sig|signature)=)[^&#\s"']*/gi,
    `$1${REDACTED}`,
  ],
  // Home directories of any user, on Linux, macOS and Windows, and root's.
  [/(^|[^\w.~-])\/(?:home|Users)\/[^/\s"'`:;,)]+/g, '$1~'],
  [/(^|[\s"'`(=:,[])\/root(?=\/|$|[\s"'`)\],])/g, '$1~'],
  [/\b[A-Za-z]:\\(?:Users|Documents and Settings)\\[^\\\s"'`]+/gi, '~'],
]

/**
 * Scrubs one string of an error report: Coffer tokens of every prefix (also cut off), URL
 * credentials (`postgres://user:pass@host`), Authorization and cookie values, secret query
 * parameters and home-directory paths.
 */
export function scrubText(text: string): string {
  let out = scrub(text)
  for (const [re, replacement] of TEXT_RULES) out = out.replace(re, replacement)
  return out
}

function scrubValue(value: unknown, key: string | undefined, depth: number): unknown {
  if (key !== undefined && SENSITIVE_KEY.test(key)) return REDACTED
  if (typeof value === 'string') return scrubText(value)
  if (value === null || typeof value !== 'object') return value
  if (depth > 24) return REDACTED
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, undefined, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    if (DROPPED_KEYS.has(k)) continue
    const scrubbed = scrubValue(v, k, depth + 1)
    if (scrubbed !== undefined) out[k] = scrubbed
  }
  return out
}

/**
 * The event as it may leave the process: every string scrubbed (`scrubText`), every value
 * under a sensitive key (Authorization, cookies, tokens, passwords, secrets, sessions, client
 * addresses) replaced, request bodies, query strings, cookies and stack-frame variables
 * dropped, the request URL stripped of its secret parameters, and no user but an id. Pure:
 * the input is not changed.
 */
export function scrubEvent<T extends object>(event: T): T {
  const out = scrubValue(event, undefined, 0) as Record<string, unknown>
  const request = out.request as Record<string, unknown> | undefined
  if (request && typeof request.url === 'string') request.url = scrubText(redactUrl(request.url))
  const user = out.user as Record<string, unknown> | undefined
  if (user) out.user = typeof user.id === 'string' || typeof user.id === 'number' ? { id: user.id } : undefined
  if (out.user === undefined) delete out.user
  return out as T
}

/** What a report says about where an error happened (never a body or a credential). */
export interface ErrorReportContext {
  /** The request's id (also in the error envelope and the logs). */
  readonly requestId?: string
  readonly method?: string
  /** The request URL; secret query parameters are taken out before it is sent. */
  readonly url?: string
  /** The route's pattern (`/v1/workspaces/:workspace/…`), which names no tenant data. */
  readonly route?: string
  /** The request headers; sensitive ones are dropped by the scrubber. */
  readonly headers?: Record<string, unknown>
  /** The background job that failed. */
  readonly job?: string
}

/** Where unexpected errors are reported. */
export interface ErrorReporter {
  /** True when reports are sent somewhere (COFFER_SENTRY_DSN is set). */
  readonly enabled: boolean
  /** Reports an error; never throws and never waits for the network. */
  capture(err: unknown, context?: ErrorReportContext): void
  /** Waits until queued reports are sent, at most `timeoutMs`; false if some were not. */
  flush(timeoutMs?: number): Promise<boolean>
  /** Sends what is queued (at most `timeoutMs`) and stops. */
  close(timeoutMs?: number): Promise<void>
}

function headerStrings(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : String(v)
  return out
}

/** The reporter without a DSN: reports go nowhere. */
export const NO_ERROR_REPORTS: ErrorReporter = {
  enabled: false,
  capture() {},
  flush: async () => true,
  close: async () => {},
}

/**
 * A reporter sending to `dsn`, or NO_ERROR_REPORTS without one. The SDK is loaded only
 * then, as a client of its own: it installs no global hooks, patches no module and traces
 * nothing; only what `capture` is given is sent, after `scrubEvent`.
 */
export async function startErrorReports(dsn: string | undefined, options: { release: string }): Promise<ErrorReporter> {
  if (!dsn) return NO_ERROR_REPORTS
  const sentry = await import('@sentry/node')
  const client = new sentry.NodeClient({
    dsn,
    release: `coffer@${options.release}`,
    transport: sentry.makeNodeTransport,
    stackParser: sentry.defaultStackParser,
    integrations: [sentry.linkedErrorsIntegration()],
    // The SDK's own collection is off everywhere; what is sent is what `capture` attaches.
    dataCollection: {
      userInfo: false,
      cookies: false,
      httpHeaders: false,
      httpBodies: [],
      urlQueryParams: false,
      databaseQueryData: false,
      queues: false,
      stackFrameVariables: false,
      frameContextLines: 0,
      graphQL: { document: false, variables: false },
      genAI: { inputs: false, outputs: false },
      mcp: { inputs: false, outputs: false },
    },
    sendClientReports: false,
    maxBreadcrumbs: 20,
    beforeSend: (event: ErrorEvent) => scrubEvent(event),
    beforeBreadcrumb: (crumb: Breadcrumb) => scrubEvent(crumb),
  })
  const base = new sentry.Scope()
  base.setClient(client)
  client.init()
  return {
    enabled: true,
    capture(err, context = {}) {
      try {
        const scope = base.clone()
        if (context.requestId) scope.setTag('request_id', context.requestId)
        if (context.route) scope.setTag('route', context.route)
        if (context.job) scope.setTag('job', context.job)
        if (context.method || context.url || context.headers) {
          const request = {
            ...(context.method ? { method: context.method } : {}),
            ...(context.url ? { url: context.url } : {}),
            ...(context.headers ? { headers: headerStrings(context.headers) } : {}),
          }
          scope.addEventProcessor((event) => ({ ...event, request }))
        }
        scope.captureException(err)
      } catch {
        // @NOTE a report that cannot be made must not turn into a second failure.
      }
    },
    flush: (timeoutMs = 2000) => Promise.resolve(client.flush(timeoutMs)),
    async close(timeoutMs = 2000) {
      await client.close(timeoutMs)
    },
  }
}
