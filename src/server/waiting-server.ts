import { randomUUID } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { DatabaseUnavailableError } from '../errors.js'
import { Metrics } from '../ops/metrics.js'
import { answerClientError, envelope, securityHeaders } from './bare-answers.js'
import type { TlsOptions } from './tls.js'

// A node started while its database cannot be reached listens at once, on the address it
// will serve from, and answers as a node that is alive but not ready: /healthz 200 (a
// supervisor leaves it running), /readyz 503 (a load balancer sends it nothing), /metrics
// with coffer_database_available 0 (an alert can fire), and every other request 503
// ERR_DATABASE_UNAVAILABLE with Retry-After. It has no routes and touches no data: once the
// database answers, it closes and the real server listens on the same address.

/** The placeholder listening while the database is away. */
export interface WaitingServer {
  /** `http://host:port` (or https), as the real server will print it. */
  readonly address: string
  /** Stops listening and drops open connections, freeing the address for the real server. */
  close(): Promise<void>
}

/** Listens on `host:port` (port 0: any free port) with the waiting answers. */
export async function listenWhileWaiting(host: string, port: number, tls: TlsOptions | undefined): Promise<WaitingServer> {
  const metrics = new Metrics()
  metrics.databaseAvailable.set(0)
  const unavailable = new DatabaseUnavailableError()
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const requestId = randomUUID()
    const path = (req.url ?? '/').split('?')[0]
    let status = 503
    let type = 'application/json; charset=utf-8'
    let body = envelope(unavailable, requestId)
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/healthz') {
        status = 200
        body = JSON.stringify({ status: 'ok' })
      } else if (path === '/metrics') {
        status = 200
        type = 'text/plain; version=0.0.4; charset=utf-8'
        body = metrics.render({ batches: 0, units: 0 })
      }
    }
    res.writeHead(status, {
      ...securityHeaders(requestId),
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      ...(status === 503 ? { 'retry-after': '5' } : {}),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
  const server = tls ? https.createServer({ ...tls }, handler) : http.createServer(handler)
  server.on('clientError', answerClientError)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const a = server.address() as AddressInfo
  const shownHost = a.family === 'IPv6' ? `[${a.address}]` : a.address
  return {
    address: `${tls ? 'https' : 'http'}://${shownHost}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
