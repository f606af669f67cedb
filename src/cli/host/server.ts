import { type AppContext, bootstrapFirstWorkspace, createContext, hasWorkspaces } from '../../context.js'
import type { ServerConfig } from '../../ops/config.js'
import type { ServerSecrets } from '../../ops/secrets.js'
import { scrub } from '../../scrub.js'
import { type HeldLock, holdServingLock } from '../../storage/advisory-lock.js'
import { isConnectionError } from '../../storage/connection-errors.js'
import { listenWhileWaiting, type WaitingServer } from '../../server/waiting-server.js'
import { autovacuumOn } from '../../storage/database.js'
import { rowSecurityEnforced } from '../../storage/tenant-scope.js'
import { buildConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { buildSecrets } from '../../ops/secrets.js'
import { buildApp } from '../../server/app.js'
import { loadTls } from '../../server/tls.js'
import { linkUrl } from '../../identity/email-links.js'
import { ownerSetupLink } from '../../identity/member-links.js'
import { cliCommand } from '../cli-command.js'
import { ExitError } from '../exit-error.js'
import { info } from '../output.js'

export interface ServerOptions {
  dataDir?: string
  host?: string
  port?: string
  email?: string
}

/**
 * `coffer server`: starts the API. On an empty database it first creates a workspace and
 * Owner and prints the Owner's token once. SIGINT/SIGTERM drain requests and shut down.
 */
export async function server(opts: ServerOptions): Promise<void> {
  const env = readEnv()
  const config = buildConfig(env, { dataDir: opts.dataDir, host: opts.host, port: opts.port })
  const tls = loadTls(config.tls) // a bad certificate or key stops start-up before the database opens
  const secrets = buildSecrets(env)
  const ownerEmail = opts.email ?? process.env.COFFER_OWNER_EMAIL ?? 'owner@localhost'
  // A node started while its database is away listens at once, alive but not ready, and
  // keeps trying (waiting-server.ts); it never exits for want of a database.
  let waiting: WaitingServer | undefined
  let started: Started | undefined
  for (let attempt = 1; !started; attempt++) {
    try {
      started = await start(config, secrets, ownerEmail)
    } catch (err) {
      if (!isConnectionError(err)) {
        await waiting?.close()
        throw err
      }
      if (!waiting) {
        waiting = await listenWhileWaiting(config.host, config.port, tls).catch((e: unknown) => {
          throw listenError(e, config.host, config.port)
        })
        info(`Waiting for the database; answering on ${waiting.address} meanwhile (/healthz 200, /readyz 503, anything else 503).`)
      }
      const delay = startRetryDelayMs(attempt)
      info(
        `The database cannot be reached (${describeConnectionError(err)}); retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt}).`,
      )
      await new Promise((r) => setTimeout(r, delay))
    }
  }
  const { ctx, serving, firstToken, setupToken } = started
  const firstEmail = ownerEmail
  const app = await buildApp(ctx, { tls })
  let port = config.port
  if (waiting) {
    // The same address the waiting node answered on (also when the port was chosen by the system).
    port = Number(new URL(waiting.address).port)
    await waiting.close()
    info('The database answers: serving.')
  }
  let address: string
  try {
    address = await app.listen({ host: config.host, port })
  } catch (err) {
    // Nothing may keep the process alive after a failed start: it ends with one line.
    await app.close().catch(() => {})
    await ctx.close().catch(() => {})
    await serving?.release()
    throw listenError(err, config.host, port)
  }
  const url = address.replace('[::1]', 'localhost')
  info(
    `Coffer listening on ${url} (${config.database.engine}, data in ${config.dataDir}); dashboard at ${url}/, API reference at ${url}/docs`,
  )
  if (firstToken) {
    info(`\nNew vault: workspace "default" with Owner ${firstEmail}. Owner token (shown once; store it now):\n`)
    info(`    ${firstToken}\n`)
    info(`Get in:  ${cliCommand()} login --url ${url} --token <token>     (or: export COFFER_URL=${url} COFFER_TOKEN=<token>)\n`)
    if (setupToken) {
      info(
        `Browser: set the Owner's password within 1 hour (works once):\n\n    ${linkUrl(config.auth.publicUrlSet ? config.auth.publicUrl : url, 'reset', setupToken)}\n`,
      )
    }
  }
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    info(`${signal}: shutting down`)
    const force = setTimeout(() => process.exit(1), 10_000)
    force.unref()
    await app.close()
    await ctx.close()
    await serving?.release()
    process.exitCode = 0
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

interface Started {
  ctx: AppContext
  serving?: HeldLock
  firstToken?: string
  setupToken?: string
}

/**
 * Opens the database and the services and, on an empty database, creates the first
 * workspace. Throws what stopped it, with nothing left open.
 */
async function start(config: ServerConfig, secrets: ServerSecrets, ownerEmail: string): Promise<Started> {
  // PostgreSQL: every running server holds the serving lock (shared), so that `coffer backup
  // restore` refuses while any node runs — and a node starting during a restore waits for it.
  // (SQLite: the open database file itself tells the restore a server is running.)
  const serving = config.database.engine === 'postgres' ? await holdServingLock(config.database.url) : undefined
  const ctx = await createContext(config, secrets).catch(async (err: unknown) => {
    await serving?.release()
    throw err
  })
  try {
    if ((await rowSecurityEnforced(ctx.store)) === false) {
      info(
        'Warning: DATABASE_URL connects as a superuser or a BYPASSRLS role, so PostgreSQL row-level security (the second wall between workspaces) is not enforced. Connect as a role without them (docs/access.md: PostgreSQL roles and row-level security).',
      )
    }
    if ((await autovacuumOn(ctx.store)) === false) {
      info(
        "Warning: autovacuum is off on this PostgreSQL server. The audit queue and the data keys' counters leave dead rows at the rate of requests, and reads and writes slow down until they are vacuumed: turn autovacuum on (docs/operations.md: Scaling out).",
      )
    }
    if (await hasWorkspaces(ctx)) return { ctx, serving }
    // Null when another node starting at the same time was first: only that node prints a token.
    const first = await bootstrapFirstWorkspace(ctx, { name: 'default', ownerEmail })
    if (!first) return { ctx, serving }
    // With passwords on, the Owner also gets a one-time link to set a password for the browser.
    const setupToken = config.auth.password
      ? (
          await ctx.committer.run((tx) =>
            ownerSetupLink(tx, ctx.audit, { workspaceId: first.workspace.id, userId: first.owner.id }, ctx.clock()),
          )
        ).token
      : undefined
    return { ctx, serving, firstToken: first.token, setupToken }
  } catch (err) {
    await ctx.close().catch(() => {})
    await serving?.release()
    throw err
  }
}

/**
 * A listen failure as the user's: the port taken (ERR_PORT_IN_USE) or not allowed
 * (ERR_PORT_DENIED), in one line; anything else stays a bug.
 */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException)?.code
  const where = `${host}:${port}`
  if (code === 'EADDRINUSE')
    return new ExitError(
      `Port ${port} is already in use on ${host}: stop what listens on ${where}, or choose another port with --port or COFFER_PORT.`,
      {
        code: 'ERR_PORT_IN_USE',
      },
    )
  if (code === 'EACCES')
    return new ExitError(
      `Not allowed to listen on ${where} (EACCES): use a port above 1023 (--port or COFFER_PORT), or the privilege to bind it.`,
      {
        code: 'ERR_PORT_DENIED',
      },
    )
  if (code === 'EADDRNOTAVAIL')
    return new ExitError(`${host} is not an address of this host (EADDRNOTAVAIL): choose one with --host or COFFER_HOST.`, {
      code: 'ERR_PORT_DENIED',
    })
  return err
}

/** The pause before start-up attempt `attempt + 1`: 0.5 s doubling to 5 s, ±20% so nodes spread out. */
function startRetryDelayMs(attempt: number): number {
  return Math.min(5_000, 500 * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4)
}

/** What a connection failure says, without the URL or credentials it might carry. */
function describeConnectionError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown }
  if (typeof e.code === 'string') return e.code
  return typeof e.message === 'string' ? scrub(e.message).slice(0, 120) : 'connection failed'
}
