// Which failures mean "the database cannot be reached" rather than "the query was wrong":
// the answer decides between 503 ERR_DATABASE_UNAVAILABLE (the client retries; the node stays
// up) and an internal error.

/** SQLSTATE classes and codes of a lost or refused connection (PostgreSQL). */
const CONNECTION_SQLSTATES = new Set([
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '57P01', // admin_shutdown (pg_terminate_backend, a fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, in recovery)
  '53300', // too_many_connections
])

/** Socket errors of a connection that failed or died. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

/** What node-postgres says when a connection ends under it or cannot be had in time. */
const DRIVER_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
]

/**
 * Whether `err` (or an error in its `cause` chain) says the database could not be reached or
 * the connection died — not that a statement failed.
 */
export function isConnectionError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (CONNECTION_SQLSTATES.has(code) || SOCKET_CODES.has(code))) return true
    const message = (e as { message?: unknown }).message
    if (typeof message === 'string' && DRIVER_MESSAGES.some((m) => message.startsWith(m))) return true
    if (e instanceof AggregateError && e.errors.some((x) => isConnectionError(x))) return true
  }
  return false
}
