import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { type CofferError, HeadersTooLargeError, MalformedRequestError, RequestTimeoutError } from '../errors.js'

// Answers given outside the request pipeline — by Node's HTTP parser, by the router before a
// route matches, by a node still waiting for its database — carry the same security headers
// and the same error envelope as every other answer, and echo nothing of the request.

/** The longest path segment the router accepts (an id or slug is far shorter): longer is 414 ERR_URI_TOO_LONG. */
export const MAX_PARAM_LENGTH = 300

const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/** The security headers of every answer (pages and documents may set a stricter CSP and referrer policy). */
export function securityHeaders(requestId: string): Record<string, string> {
  return {
    'strict-transport-security': 'max-age=31536000; includeSubDomains; preload',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // Pages send strict-origin (their forms need an Origin header for the CSRF check); nothing else sends a referrer.
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store',
    'x-request-id': requestId,
    'content-security-policy': API_CSP,
  }
}

/** The error envelope's JSON. */
export function envelope(e: CofferError, requestId: string): string {
  return JSON.stringify({ error: { code: e.code, message: e.message, requestId } })
}

/**
 * Answers a request Node's HTTP parser refused before Fastify saw it (a bad request line,
 * oversized headers, a timeout) with the envelope and the security headers, then closes the
 * connection. Echoes nothing of the input.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLargeError()
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new RequestTimeoutError()
        : new MalformedRequestError()
  const requestId = randomUUID()
  const body = envelope(e, requestId)
  const headers = {
    ...securityHeaders(requestId),
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  }
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  socket.end(`HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\n${head}\r\n${body}`)
}
