import { scrub } from '../scrub.js'

/** Log paths whose values never reach a log line. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-coffer-token"]',
  'res.headers["set-cookie"]',
  'token',
  'value',
  'body.value',
]

/**
 * Query parameters whose values never reach a log line: the one-time tokens of mailed links,
 * and an OAuth callback's authorization code and state (`/oauth/callback`, the sign-in's).
 */
const SECRET_PARAMS = new Set(['token', 'code', 'state'])
/** Query parameters that carry another local URL (after sign-in), itself redacted the same way. */
const NESTED_URL_PARAMS = new Set(['returnTo'])

/**
 * A request URL (path and query) fit for a log line: the value of a `token` parameter is
 * replaced by `[redacted]`, also inside a `returnTo` that carries such a URL
 * (`/sign-in?returnTo=%2Finvite%3Ftoken%3D…`), and any Coffer token left anywhere is scrubbed.
 */
export function redactUrl(url: string, depth = 0): string {
  const q = url.indexOf('?')
  if (q < 0 || depth > 2) return scrub(url)
  const hash = url.indexOf('#', q)
  const query = url.slice(q + 1, hash < 0 ? undefined : hash)
  const parts = query.split('&').map((part) => {
    const eq = part.indexOf('=')
    if (eq < 0) return part
    const key = safeDecode(part.slice(0, eq))
    if (SECRET_PARAMS.has(key)) return `${part.slice(0, eq)}=[redacted]`
    if (NESTED_URL_PARAMS.has(key))
      return `${part.slice(0, eq)}=${encodeURIComponent(redactUrl(safeDecode(part.slice(eq + 1)), depth + 1))}`
    return part
  })
  return scrub(`${url.slice(0, q)}?${parts.join('&')}`)
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

/**
 * The logger's view of a request (Fastify's default fields), with its URL passed through
 * `redactUrl`: a request line is logged before any route runs, so a link's token would
 * otherwise reach the log with it.
 */
export function requestLogView(req: {
  method: string
  url: string
  host?: string
  ip?: string
  headers?: Record<string, unknown>
  socket?: { remotePort?: number } | null
}): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(req.url),
    version: req.headers?.['accept-version'],
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}
