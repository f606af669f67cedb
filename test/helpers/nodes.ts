// Another Coffer node on a harness's database, and requests to it, for tests that change
// something on one node and check the next request on another (principal and target caches).
import type { FastifyInstance } from 'fastify'
import { type AppContext, createContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import type { JsonBody } from './json-body.js'

export type Node = { app: FastifyInstance; ctx: AppContext }
export type Reply = { status: number; body: JsonBody }

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
export const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

/** One request to `node`, its JSON answer parsed. */
export async function call(
  node: Node,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  headers: Record<string, string>,
  payload?: unknown,
): Promise<Reply> {
  const r = await node.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) })
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined }
}

/** A node started from `settings` (a harness's, to share its database). */
export async function startNode(settings: Record<string, string>): Promise<Node> {
  const e = readEnv(settings)
  const ctx = await createContext(buildConfig(e), buildSecrets(e))
  const app = await buildApp(ctx)
  await app.ready()
  return { app, ctx }
}

/** Waits until `node`'s principal cache is on (PostgreSQL: its LISTEN connection is up). */
export async function cacheOn(node: Node, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!node.ctx.principals.enabled) {
    if (Date.now() > end) throw new Error('the principal cache never came on')
    await sleep(20)
  }
}
