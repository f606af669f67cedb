import { bootstrapWorkspace, createContext } from '../../context.js'
import { buildConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { buildSecrets } from '../../ops/secrets.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'

export interface InitOptions {
  dataDir?: string
  email: string
  workspace?: string
  json?: boolean
}

/**
 * `coffer init`: creates the data directory, root key and database (if absent), then a
 * workspace and its Owner, integrates the workspace's first audit entries, and prints the
 * Owner's token once.
 */
export async function init(opts: InitOptions): Promise<void> {
  if (!/^[^\s@]+@[^\s@]+$/.test(opts.email)) throw new ExitError('--email must be an email address.')
  const env = readEnv()
  const config = buildConfig(env, { dataDir: opts.dataDir })
  const ctx = await createContext(config, buildSecrets(env))
  try {
    const r = await bootstrapWorkspace(ctx, { name: opts.workspace ?? 'default', ownerEmail: opts.email })
    // The new workspace's first entries go into its chain and tree now, so the vault starts with
    // nothing queued: the log verifies as complete from the first look, and a server started on
    // it has no audit work waiting (on SQLite it starts its audit thread only when work comes).
    // Should that not finish, a server's sequencer integrates them within its merge delay.
    await ctx.sequencer.catchUp(r.workspace.id)
    if (opts.json) {
      printJson({
        dataDir: config.dataDir,
        database: config.database.engine,
        workspace: r.workspace,
        owner: r.owner,
        token: r.token,
        createdKeyFile: ctx.createdKeyFile,
      })
      return
    }
    info(`Coffer initialised in ${config.dataDir} (${config.database.engine}).`)
    if (ctx.createdKeyFile)
      info(
        `Root key created: ${config.dataDir}/root.key (mode 0600). Keep it safe and out of backups: without it nothing can be decrypted.`,
      )
    info(`Workspace "${r.workspace.name}" (${r.workspace.slug}) with Owner ${r.owner.email}.`)
    info('Owner token (shown once; store it now):')
    process.stdout.write(`${r.token}\n`)
    info(
      `\nNext: coffer server --data-dir ${config.dataDir}   then   coffer login --url http://${config.host}:${config.port} --token <token>`,
    )
  } finally {
    await ctx.close()
  }
}
