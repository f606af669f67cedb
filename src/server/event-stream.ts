import { PassThrough } from 'node:stream'
import type { FastifyReply } from 'fastify'
import type { AppContext } from '../context.js'
import { CofferError } from '../errors.js'
import { databaseFailure } from './stages.js'

// A server-sent event stream of a route's answer (`events` routes, e.g. the environment watch
// behind `coffer run --watch`). The stream opens with the answer the request was placed with
// and then sends it again each time it changes. Every check re-places the request — the
// credential authenticated again (the principal cache confirms its epochs), the policy decided
// again, the answer read again in the tenant's scope — so a revoked or expired credential, a
// removed member, a deleted environment ends the stream with an `end` event naming the code,
// and nothing is sent that a fresh request would not be answered. Checks run on a hint (a
// change of the environment or of a credential, on any node) and at least every
// `recheckMs`; a route's `follows` adds the environments an answer depends on to the hints it
// wakes on (those it imports or references); every `pollMs` while this node may miss hints (its LISTEN connection is down).

/** How often a stream is checked without a hint, and how often it sends a comment to keep proxies from closing it. */
export interface EventStreamTiming {
  readonly recheckMs: number
  readonly pollMs: number
  readonly keepAliveMs: number
}

export const EVENT_STREAM_TIMING: EventStreamTiming = { recheckMs: 5_000, pollMs: 1_000, keepAliveMs: 15_000 }

/** One frame of an event stream: `event` and one JSON `data` line (JSON holds no newline). */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/**
 * Answers `reply` with an event stream: `first` at once as event `event`, then `reread()`'s
 * answer whenever it differs from the last one sent. `reread` throws to end the stream: a
 * CofferError (401, 403, 404…) ends it with `end` and its code; a database outage with `end`
 * ERR_DATABASE_UNAVAILABLE (the client reconnects). The watcher is removed when the client
 * goes away, when the stream ends, and when the node stops.
 */
export function serveEvents(
  ctx: AppContext,
  reply: FastifyReply,
  opts: {
    event: string
    first: unknown
    workspaceId: string
    environmentId: string
    userId: string | null
    reread: () => Promise<unknown>
    /** The other environments an answer depends on: their changes wake the stream too. */
    follows?: (answer: unknown) => readonly string[]
    timing?: EventStreamTiming
  },
): FastifyReply {
  const timing = opts.timing ?? EVENT_STREAM_TIMING
  const out = new PassThrough()
  let last = JSON.stringify(opts.first)
  const follows = new Set<string>(opts.follows?.(opts.first))
  const follow = (answer: unknown) => {
    if (!opts.follows) return
    follows.clear()
    for (const id of opts.follows(answer)) follows.add(id)
  }
  let closed = false
  let busy = false
  let again = false
  let sinceCheck = 0
  let sinceWrite = 0

  const close = () => {
    if (closed) return
    closed = true
    clearInterval(tick)
    unwatch()
    ctx.metrics.eventStreams.set(ctx.secretChanges.size)
    out.end()
  }
  const end = (err: unknown) => {
    const known = err instanceof CofferError ? err : databaseFailure(err)
    const code = known?.code ?? 'ERR_INTERNAL'
    if (!known) reply.log.error({ err: { message: (err as Error)?.message } }, 'an event stream failed')
    if (!closed) out.write(frame('end', { code, status: known?.status ?? 500, message: known?.message ?? 'The stream failed.' }))
    close()
  }
  const check = async () => {
    if (closed) return
    if (busy) {
      again = true
      return
    }
    busy = true
    sinceCheck = 0
    try {
      do {
        again = false
        const answer = await opts.reread()
        const now = JSON.stringify(answer)
        if (closed) return
        if (now !== last) {
          follow(answer)
          last = now
          sinceWrite = 0
          out.write(`event: ${opts.event}\ndata: ${now}\n\n`)
        }
      } while (again && !closed)
    } catch (err) {
      end(err)
    } finally {
      busy = false
    }
  }
  const step = Math.min(timing.pollMs, timing.recheckMs)
  const tick = setInterval(() => {
    sinceCheck += step
    sinceWrite += step
    if (sinceWrite >= timing.keepAliveMs && !closed) {
      sinceWrite = 0
      out.write(': keep-alive\n\n')
    }
    if (sinceCheck >= (ctx.secretChanges.live ? timing.recheckMs : timing.pollMs)) void check()
  }, step)
  const unwatch = ctx.secretChanges.watch({
    workspaceId: opts.workspaceId,
    environmentId: opts.environmentId,
    follows,
    userId: opts.userId,
    wake: () => void check(),
    close,
  })
  ctx.metrics.eventStreams.set(ctx.secretChanges.size)
  reply.raw.once('close', close)
  out.write(`retry: 1000\n${frame(opts.event, opts.first)}`)
  reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-store')
    // @NOTE a buffering reverse proxy (nginx) would hold the events back.
    .header('x-accel-buffering', 'no')
  return reply.send(out)
}
