import type { FastifyInstance, InjectOptions } from 'fastify'

// app.inject for any route, event streams included: a 200 event stream (GET …/events) never
// ends by itself, so its answer is read up to the first event and the stream is then dropped
// (the server ends it when the app closes). Any other answer is read whole, as inject does.

/** The answer as a test reads it: the status, and the body (for a stream, up to its first event). */
export interface InjectedAnswer {
  readonly statusCode: number
  readonly body: string
  readonly headers: Record<string, unknown>
}

/** Whether `url` names an event stream route. */
export function isEventStream(url: string): boolean {
  return /\/events(\?|$)/.test(url)
}

/** app.inject, reading a 200 event stream up to its first event. */
export async function injectAny(app: FastifyInstance, opts: InjectOptions & { url: string }): Promise<InjectedAnswer> {
  if (!isEventStream(opts.url)) {
    const res = await app.inject(opts)
    return { statusCode: res.statusCode, body: res.body, headers: res.headers }
  }
  const res = await app.inject({ ...opts, payloadAsStream: true })
  const stream = res.stream()
  let body = ''
  for await (const chunk of stream) {
    body += String(chunk)
    if (res.statusCode === 200 && body.includes('\n\n')) break
  }
  stream.destroy()
  return { statusCode: res.statusCode, body, headers: res.headers }
}
