import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { bootstrapWorkspace, createContext, type AppContext } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import { createTestDatabase } from './pg.js'

export type EngineName = 'sqlite' | 'postgres'

/** A running Coffer (context + Fastify app, not listening) on a fresh database. */
export interface Harness {
  engine: EngineName
  dataDir: string
  ctx: AppContext
  app: FastifyInstance
  /** Workspace A's owner token, slug and id; workspace B is another tenant. */
  a: { token: string; slug: string; id: string }
  b: { token: string; slug: string; id: string }
  close(): Promise<void>
}

/** Starts a harness with two workspaces on `engine`; `close` removes everything it made. */
export async function startHarness(engine: EngineName, env: Record<string, string> = {}): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'coffer-test-'))
  let dropDb: (() => Promise<void>) | undefined
  const raw: Record<string, string> = { COFFER_DATA_DIR: dataDir, COFFER_LOG_LEVEL: 'silent', ...env }
  if (engine === 'postgres') {
    const db = await createTestDatabase()
    raw.DATABASE_URL = db.url
    dropDb = db.drop
  }
  const e = readEnv(raw)
  const ctx = await createContext(buildConfig(e), buildSecrets(e))
  const app = await buildApp(ctx)
  await app.ready()
  const suffix = randomBytes(3).toString('hex')
  const wa = await bootstrapWorkspace(ctx, { name: `Acme ${suffix}`, ownerEmail: 'owner@acme.test' })
  const wb = await bootstrapWorkspace(ctx, { name: `Globex ${suffix}`, ownerEmail: 'owner@globex.test' })
  return {
    engine, dataDir, ctx, app,
    a: { token: wa.token, slug: wa.workspace.slug, id: wa.workspace.id },
    b: { token: wb.token, slug: wb.workspace.slug, id: wb.workspace.id },
    async close() {
      await app.close()
      await ctx.close()
      await rm(dataDir, { recursive: true, force: true })
      if (dropDb) await dropDb()
    },
  }
}

/** A small request helper over app.inject with a Bearer token. */
export function api(app: FastifyInstance, token: string) {
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) })
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, headers: res.headers }
  }
  return {
    get: (url: string) => call('GET', url),
    post: (url: string, body?: unknown) => call('POST', url, body ?? {}),
    put: (url: string, body?: unknown) => call('PUT', url, body),
    del: (url: string) => call('DELETE', url),
  }
}
