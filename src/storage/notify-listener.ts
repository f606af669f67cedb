import type PgModule from 'pg'
import { loadPg } from './database.js'

// One PostgreSQL connection, kept apart from the pool, that LISTENs on a channel: a pooled
// connection cannot hold a LISTEN (it is handed to other queries), and a notification must
// never wait behind a busy pool. The connection is watched: it is reopened after an error, an
// end or a missed heartbeat, with a pause that doubles from `minBackoffMs` to `maxBackoffMs`.
// The owner is told when the channel is up and when it is down, because notifications sent
// while it is down are lost for good.

/** What a listener tells its owner. */
export interface NotifyHandlers {
  /** A notification arrived on `channel` with `payload`. */
  onNotify(payload: string, channel: string): void
  /** LISTEN is in place: from now on every notification of the channel arrives. */
  onUp(): void
  /** The connection was lost (or could not be opened): notifications may be missed until onUp. */
  onDown(err?: unknown): void
}

/** A running listener. */
export interface NotifyListener {
  /** Whether LISTEN is in place now. */
  readonly up: boolean
  /** Stops listening and closes the connection; no handler is called afterwards. */
  close(): Promise<void>
}

/**
 * Listens on `channel` (or each of several channels, on the one connection) of the database at `url` until closed. Never throws: failures go to
 * `onDown` and a reconnection. `heartbeatMs` (0: none) is how often the idle connection is
 * checked with `SELECT 1`; one that does not answer within `heartbeatMs` is dropped.
 */
export function listenForNotifications(
  url: string,
  channel: string | readonly string[],
  handlers: NotifyHandlers,
  options: { minBackoffMs?: number; maxBackoffMs?: number; heartbeatMs?: number } = {},
): NotifyListener {
  const channels = typeof channel === 'string' ? [channel] : [...channel]
  if (channels.length === 0 || !channels.every((c) => /^[a-z_][a-z0-9_]*$/.test(c)))
    throw new TypeError('each channel must be a plain lower-case identifier')
  const minBackoff = options.minBackoffMs ?? 100
  const maxBackoff = options.maxBackoffMs ?? 5_000
  const heartbeatMs = options.heartbeatMs ?? 10_000
  const pg = loadPg()
  let client: PgModule.Client | undefined
  let up = false
  let closed = false
  let backoff = minBackoff
  let retry: NodeJS.Timeout | undefined
  let heartbeat: NodeJS.Timeout | undefined

  const down = (c: PgModule.Client, err?: unknown) => {
    if (c !== client) return // an older connection's late event
    client = undefined
    clearInterval(heartbeat)
    c.removeAllListeners('notification')
    void c.end().catch(() => {})
    if (closed) return
    up = false
    handlers.onDown(err)
    retry = setTimeout(connect, backoff)
    retry.unref()
    backoff = Math.min(backoff * 2, maxBackoff)
  }

  const connect = () => {
    if (closed) return
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, keepAlive: true })
    client = c
    // @NOTE an unheard 'error' event would crash the process (see openStore).
    c.on('error', (err) => down(c, err))
    c.on('end', () => down(c))
    c.on('notification', (m) => {
      if (c === client && channels.includes(m.channel)) handlers.onNotify(m.payload ?? '', m.channel)
    })
    c.connect()
      .then(() => c.query(channels.map((ch) => `LISTEN ${ch}`).join('; ')))
      .then(() => {
        if (c !== client || closed) return
        up = true
        backoff = minBackoff
        handlers.onUp()
        if (heartbeatMs > 0) {
          heartbeat = setInterval(() => {
            const timer = setTimeout(() => down(c, new Error('heartbeat unanswered')), heartbeatMs)
            timer.unref()
            c.query('SELECT 1').then(
              () => clearTimeout(timer),
              (err: unknown) => {
                clearTimeout(timer)
                down(c, err)
              },
            )
          }, heartbeatMs)
          heartbeat.unref()
        }
      })
      .catch((err: unknown) => down(c, err))
  }

  connect()
  return {
    get up() {
      return up
    },
    async close() {
      closed = true
      up = false
      clearTimeout(retry)
      clearInterval(heartbeat)
      const c = client
      client = undefined
      if (c) {
        c.removeAllListeners('notification')
        await c.end().catch(() => {})
      }
    },
  }
}
