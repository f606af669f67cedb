import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { bootstrapWorkspace, createContext, type AppContext, type ContextOverrides } from '../../src/context.js'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'
import { buildSecrets } from '../../src/ops/secrets.js'
import { buildApp } from '../../src/server/app.js'
import type { Kysely } from 'kysely'
import { openStore, type Store } from '../../src/storage/database.js'
import type { Database } from '../../src/storage/schema.js'
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
  /** Integrates every audit entry both workspaces queued so far (before reading audit rows directly). */
  settle(): Promise<void>
  /**
   * The database as its owner sees it, for tests that inspect or tamper with rows directly.
   * On PostgreSQL the application connects as a role bound by row-level security (which sees
   * nothing outside a tenant scope); this handle is the schema owner's and sees everything.
   * On SQLite it is the application's own handle.
   */
  db: Kysely<Database>
  /** The settings the context was built from (another node on the same database starts from them). */
  settings: Record<string, string>
  close(): Promise<void>
}

/** Starts a harness with two workspaces on `engine`; `close` removes everything it made. */
export async function startHarness(
  engine: EngineName,
  env: Record<string, string> = {},
  overrides: Omit<ContextOverrides, 'store'> = {},
): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'coffer-test-'))
  let dropDb: (() => Promise<void>) | undefined
  // @NOTE rate limits on authentication and bad credentials are off here: suites send dozens
  // of bad tokens and failed sign-ins from one address on purpose. test/server/rate-limit*.test.ts
  // turn them on (pass the COFFER_RATE_* settings in `env`).
  const raw: Record<string, string> = {
    COFFER_DATA_DIR: dataDir,
    COFFER_LOG_LEVEL: 'silent',
    COFFER_RATE_AUTH_PER_IP: '0',
    COFFER_RATE_AUTH_PER_ACCOUNT: '0',
    COFFER_RATE_BAD_TOKEN_PER_IP: '0',
    ...env,
  }
  let owner: Store | undefined
  if (engine === 'postgres') {
    // As in production (README, PostgreSQL): the schema owner migrates, the application
    // connects as a role that owns nothing and cannot bypass row-level security.
    const db = await createTestDatabase({ appRole: true })
    raw.DATABASE_URL = db.appUrl!
    raw.COFFER_MIGRATION_DATABASE_URL = db.url
    dropDb = db.drop
    owner = openStore({ engine: 'postgres', url: db.url })
  }
  const e = readEnv(raw)
  const ctx = await createContext(buildConfig(e), buildSecrets(e), overrides)
  const app = await buildApp(ctx)
  await app.ready()
  const suffix = randomBytes(3).toString('hex')
  const wa = await bootstrapWorkspace(ctx, { name: `Acme ${suffix}`, ownerEmail: 'owner@acme.test' })
  const wb = await bootstrapWorkspace(ctx, { name: `Globex ${suffix}`, ownerEmail: 'owner@globex.test' })
  // Tests start from integrated chains (the sequencer would integrate the bootstrap entries within the merge delay).
  for (const ws of [wa.workspace.id, wb.workspace.id]) await ctx.sequencer.catchUp(ws)
  return {
    engine,
    dataDir,
    ctx,
    app,
    db: owner?.db ?? ctx.store.db,
    settings: { ...raw },
    a: { token: wa.token, slug: wa.workspace.slug, id: wa.workspace.id },
    b: { token: wb.token, slug: wb.workspace.slug, id: wb.workspace.id },
    /** Integrates every entry both workspaces queued so far (the sequencer would, within the merge delay). */
    async settle() {
      for (const ws of [wa.workspace.id, wb.workspace.id]) await ctx.sequencer.catchUp(ws)
    },
    async close() {
      await app.close()
      await ctx.close()
      await owner?.close()
      await rm(dataDir, { recursive: true, force: true })
      if (dropDb) await dropDb()
    },
  }
}

/** A small request helper over app.inject with a Bearer token. */
export function api(app: FastifyInstance, token: string) {
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload: payload as object }),
    })
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, headers: res.headers }
  }
  return {
    get: (url: string) => call('GET', url),
    post: (url: string, body?: unknown) => call('POST', url, body ?? {}),
    put: (url: string, body?: unknown) => call('PUT', url, body),
    del: (url: string) => call('DELETE', url),
  }
}
