import { bootstrapFirstWorkspace, createContext, hasWorkspaces } from '../../context.js'
import { holdServingLock } from '../../storage/advisory-lock.js'
import { rowSecurityEnforced } from '../../storage/tenant-scope.js'
import { buildConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { buildSecrets } from '../../ops/secrets.js'
import { buildApp } from '../../server/app.js'
import { loadTls } from '../../server/tls.js'
import { linkUrl } from '../../identity/email-links.js'
import { ownerSetupLink } from '../../identity/member-links.js'
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
  // PostgreSQL: every running server holds the serving lock (shared), so that `coffer backup
  // restore` refuses while any node runs — and a node starting during a restore waits for it.
  // (SQLite: the open database file itself tells the restore a server is running.)
  const serving = config.database.engine === 'postgres' ? await holdServingLock(config.database.url) : undefined
  const ctx = await createContext(config, buildSecrets(env)).catch(async (err: unknown) => {
    await serving?.release()
    throw err
  })
  if ((await rowSecurityEnforced(ctx.store)) === false) {
    info(
      'Warning: DATABASE_URL connects as a superuser or a BYPASSRLS role, so PostgreSQL row-level security (the second wall between workspaces) is not enforced. Connect as a role without them (docs/access.md: PostgreSQL roles and row-level security).',
    )
  }
  let firstToken: string | undefined
  let firstEmail: string | undefined
  let setupToken: string | undefined
  if (!(await hasWorkspaces(ctx))) {
    firstEmail = opts.email ?? process.env.COFFER_OWNER_EMAIL ?? 'owner@localhost'
    // Null when another node starting at the same time was first: only that node prints a token.
    const first = await bootstrapFirstWorkspace(ctx, { name: 'default', ownerEmail: firstEmail })
    if (first) {
      firstToken = first.token
      // With passwords on, the Owner also gets a one-time link to set a password for the browser.
      if (config.auth.password) {
        setupToken = (
          await ctx.committer.run((tx) =>
            ownerSetupLink(tx, ctx.audit, { workspaceId: first.workspace.id, userId: first.owner.id }, ctx.clock()),
          )
        ).token
      }
    }
  }
  const app = await buildApp(ctx, { tls })
  const address = await app.listen({ host: config.host, port: config.port })
  const url = address.replace('[::1]', 'localhost')
  info(`Coffer listening on ${url} (${config.database.engine}, data in ${config.dataDir}); API reference at ${url}/docs`)
  if (firstToken) {
    info(`\nNew vault: workspace "default" with Owner ${firstEmail}. Owner token (shown once; store it now):\n`)
    info(`    ${firstToken}\n`)
    info(`Get in:  coffer login --url ${url} --token <token>     (or: export COFFER_URL=${url} COFFER_TOKEN=<token>)\n`)
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
