import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'

// One call through a connection's relay (`…/connections/:id/relay/<path>`), as bytes both
// ways: the answer is the provider API's, not Coffer's JSON (except Coffer's own refusals).
// node:http here, not the client's JSON transport: bodies of any type pass through unread.

/** The provider API's answer, as the relay passed it on. */
export interface RelayAnswer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

export interface RelayCall {
  readonly method: string
  /** The path under the connection's API base, with its query string, e.g. `/v1/me?x=1`. */
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: Buffer
  /** Use the connection's app token (Owners and Admins) instead of your own. */
  readonly asApp?: boolean
}

/** Sends `call` to `url` (the relay URL of the connection) with `token`. */
export function relayRequest(
  url: string,
  token: string,
  call: RelayCall,
  options: { ca?: string | Buffer; userAgent: string },
): Promise<RelayAnswer> {
  const target = new URL(url.replace(/\/+$/, '') + (call.path.startsWith('/') ? call.path : `/${call.path}`))
  const make = target.protocol === 'https:' ? httpsRequest : httpRequest
  const headers: Record<string, string> = {
    ...call.headers,
    authorization: `Bearer ${token}`,
    'user-agent': options.userAgent,
    ...(call.asApp ? { 'coffer-relay-as': 'app' } : {}),
    ...(call.body !== undefined ? { 'content-length': String(call.body.length) } : {}),
  }
  return new Promise<RelayAnswer>((resolve, reject) => {
    const req = make(target, { method: call.method.toUpperCase(), headers, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(call.body)
  })
}
