import { ExitError } from '../exit-error.js'
import { connect, resolveScope, type ScopeOptions } from '../session.js'

/**
 * `coffer run [--preserve-env] -- CMD [ARGS...]`: fetches the environment's secrets in one
 * audited call and runs CMD with them as variables; signals are forwarded and CMD's exit
 * code is returned. Nothing is written to disk.
 */
export async function run(argv: string[], opts: ScopeOptions & { preserveEnv?: boolean }): Promise<number> {
  const [command, ...args] = argv
  if (!command) throw new ExitError('Give the command to run after --, e.g. coffer run -- node server.js')
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  // The request is on the wire when listSecrets returns: what starts the command
  // (node:child_process) loads while the server answers.
  const [listed, { CommandNotExecutableError, CommandNotFoundError, runWithSecrets }] = await Promise.all([
    client.listSecrets(scope, { reveal: true }),
    import('../run-process.js'),
  ])
  const secrets: Record<string, string> = {}
  for (const s of listed) secrets[s.key] = s.value ?? ''
  try {
    return await runWithSecrets(command, args, secrets, { preserveEnv: !!opts.preserveEnv })
  } catch (err) {
    if (err instanceof CommandNotFoundError || err instanceof CommandNotExecutableError) {
      throw new ExitError(err.message, { exitCode: err.exitCode, code: err.code })
    }
    throw err
  }
}
