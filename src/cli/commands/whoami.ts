import { info, printJson } from '../output.js'
import { connect, type ServerOptions } from '../session.js'

/** `coffer whoami`: the user, workspace and role the token belongs to (or the integration). */
export async function whoami(opts: ServerOptions & { json?: boolean }): Promise<void> {
  const client = await connect(opts)
  const me = await client.me()
  if (opts.json) return printJson({ url: client.url, ...me })
  if (me.user) {
    process.stdout.write(`${me.user.email}\n`)
    info(`${me.role} of workspace ${me.workspace.name} (${me.workspace.slug}) at ${client.url}`)
    return
  }
  // A machine identity's access token or a service token: an integration, not a member.
  process.stdout.write(`${me.integration?.type} ${me.integration?.name} (${me.integration?.id})\n`)
  info(`integration of workspace ${me.workspace.name} (${me.workspace.slug}) at ${client.url}`)
}
