import { Command, CommanderError } from 'commander'
import { VERSION } from '../version.js'
import { ExitError } from './exit-error.js'

// The command table. Each command's module is imported only when that command runs, so
// `coffer run` never loads the server, the database drivers or the YAML parser.

type Action = (...args: any[]) => Promise<void>

function lazy<M>(load: () => Promise<M>, pick: (m: M) => (...args: any[]) => Promise<unknown>): Action {
  return async (...args: unknown[]) => {
    await pick(await load())(...args)
  }
}

function scoped(cmd: Command, opts: { env?: boolean; project?: boolean; json?: boolean } = {}): Command {
  cmd.option('--url <url>', 'server URL (default: COFFER_URL, the login, or http://127.0.0.1:8700)')
  cmd.option('--workspace <ws>', 'workspace id or slug (default: .coffer.json, else the token’s workspace)')
  if (opts.project !== false) cmd.option('--project <project>', 'project id or slug (default: .coffer.json)')
  if (opts.env) cmd.option('--env <env>', 'environment id or slug (default: .coffer.json)')
  if (opts.json !== false) cmd.option('--json', 'print JSON')
  return cmd
}

/** Builds the CLI program. */
export function buildProgram(): Command {
  const program = new Command('coffer')
    .description('Coffer — a self-hosted secrets vault: server and CLI')
    .version(VERSION)
    .enablePositionalOptions()
    .showHelpAfterError('(run coffer --help for usage)')

  program.command('init').description('Create the data directory, root key, database, a workspace and its Owner; print the Owner token once')
    .option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
    .requiredOption('--email <email>', 'the Owner’s email')
    .option('--workspace <name>', 'workspace name', 'default')
    .option('--json', 'print JSON')
    .action(lazy(() => import('./commands/init.js'), (m) => m.init))

  program.command('server').description('Start the API server (creates a workspace and prints its Owner token on first start)')
    .option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
    .option('--host <host>', 'listen address (default: COFFER_HOST or 127.0.0.1)')
    .option('--port <port>', 'listen port (default: COFFER_PORT or 8700)')
    .option('--email <email>', 'Owner email for a new vault (default: COFFER_OWNER_EMAIL or owner@localhost)')
    .action(lazy(() => import('./commands/server.js'), (m) => m.server))

  program.command('login').description('Check a token and keep it in the OS credential store')
    .requiredOption('--url <url>', 'server URL, e.g. http://127.0.0.1:8700')
    .option('--token <token>', 'the token (default: COFFER_TOKEN)')
    .option('--json', 'print JSON')
    .action(lazy(() => import('./commands/login.js'), (m) => m.login))
  program.command('logout').description('Remove the saved login from the OS credential store')
    .action(lazy(() => import('./commands/login.js'), (m) => m.logout))
  scoped(program.command('whoami').description('Show the user, workspace and role of the token'), { project: false })
    .action(lazy(() => import('./commands/whoami.js'), (m) => m.whoami))

  const projects = program.command('projects').description('Projects')
  scoped(projects.command('create').argument('<name>').description('Create a project with development, staging and production'), { project: false })
    .option('--slug <slug>', 'URL slug (default: from the name)')
    .action(lazy(() => import('./commands/projects.js'), (m) => m.projectsCreate))
  scoped(projects.command('list').description('List projects'), { project: false })
    .action(lazy(() => import('./commands/projects.js'), (m) => m.projectsList))

  const envs = program.command('envs').description('Environments of a project')
  scoped(envs.command('list').description('List environments'))
    .action(lazy(() => import('./commands/projects.js'), (m) => m.envsList))
  scoped(envs.command('create').argument('<name>').description('Create an environment (with its own data key)'))
    .option('--slug <slug>', 'URL slug (default: from the name)')
    .action(lazy(() => import('./commands/projects.js'), (m) => m.envsCreate))

  scoped(program.command('setup').description('Link this directory to a project and environment (writes .coffer.json, no secret)'), { env: true })
    .action(lazy(() => import('./commands/projects.js'), (m) => m.setup))

  const secrets = program.command('secrets').description('Secrets of an environment')
  scoped(secrets.command('set').argument('<pairs...>', 'KEY=VALUE (KEY=- reads stdin)').description('Set one or more secrets (several: one atomic write)'), { env: true })
    .option('--comment <text>', 'comment stored (encrypted) with the value')
    .option('--if-version <n>', 'write only if the current version is n (0: only if new)')
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsSet))
  scoped(secrets.command('get').argument('<key>').description('Print a secret’s raw value (audited)'), { env: true })
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsGet))
  scoped(secrets.command('list').description('List secrets (values only with --reveal, audited)'), { env: true })
    .option('--reveal', 'show values')
    .option('--deleted', 'include deleted secrets')
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsList))
  scoped(secrets.command('delete').argument('<key>').description('Delete a secret (restorable)'), { env: true })
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsDelete))
  scoped(secrets.command('restore').argument('<key>').description('Restore a deleted secret'), { env: true })
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsRestore))
  scoped(secrets.command('history').argument('<key>').description('Every version of a secret'), { env: true })
    .option('--reveal', 'show values')
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsHistory))
  scoped(secrets.command('rollback').argument('<key>').description('Write a new version equal to an earlier one'), { env: true })
    .requiredOption('--to <version>', 'the version to copy')
    .action(lazy(() => import('./commands/secrets.js'), (m) => m.secretsRollback))

  scoped(program.command('run').description('Run a command with the environment’s secrets as variables').argument('[command...]', 'the command and its arguments, after --'), { env: true, json: false })
    .option('--preserve-env', 'variables already set win over secrets')
    .passThroughOptions()
    .action(async (argv: string[], opts: Record<string, unknown>) => {
      const { run } = await import('./commands/run.js')
      // The child's exit code is ours, at once: nothing is left to flush, and waiting for
      // the event loop to drain would only add latency to every `coffer run`.
      process.exit(await run(argv, opts))
    })

  scoped(program.command('export').description('Print the environment’s secrets (audited)'), { env: true, json: false })
    .option('--format <format>', 'dotenv, json, yaml or shell', 'dotenv')
    .action(lazy(() => import('./commands/transfer.js'), (m) => m.exportSecrets))
  scoped(program.command('import').argument('<file>', 'a .env, JSON or YAML file (- for stdin)').description('Set every secret of a file in one atomic write'), { env: true })
    .option('--format <format>', 'dotenv, json or yaml (default: from the file name or content)')
    .action(lazy(() => import('./commands/transfer.js'), (m) => m.importSecrets))

  const audit = program.command('audit').description('The audit log')
  scoped(audit.command('verify').description('Verify the audit log locally: hash chain, signed checkpoint, Merkle root, and that it extends the last checkpoint seen; --file checks an export offline'), { project: false })
    .option('--file <file>', 'verify an export (coffer audit export) with no server')
    .option('--public-key <key>', 'the trusted audit public key (or a file holding it) for --file')
    .action(lazy(() => import('./commands/audit.js'), (m) => m.auditVerify))
  scoped(audit.command('export').description('Write the audit log, a fresh signed checkpoint and the public key to a file'), { project: false })
    .requiredOption('--out <file>', 'the file to write')
    .action(lazy(() => import('./commands/audit.js'), (m) => m.auditExport))
  scoped(audit.command('proof').argument('<entry>', 'audit entry id or sequence number').description('Print an inclusion proof of an entry that anyone can check offline'), { project: false, json: false })
    .option('--out <file>', 'write it to a file instead of stdout')
    .action(lazy(() => import('./commands/audit.js'), (m) => m.auditProof))
  audit.command('verify-proof').argument('<file>').description('Check an inclusion-proof file offline')
    .option('--public-key <key>', 'the trusted audit public key (or a file holding it)')
    .option('--json', 'print JSON')
    .action(lazy(() => import('./commands/audit.js'), (m) => m.auditVerifyProof))

  const keys = program.command('keys').description('Root and data keys')
  keys.command('init-hsm').description('Create the root key inside the PKCS#11 token named by COFFER_PKCS11_* (run once)')
    .action(lazy(() => import('./commands/keys.js'), (m) => m.keysInitHsm))

  const token = program.command('token').description('Personal access tokens')
  scoped(token.command('create').argument('<name>').description('Create a token (printed once)'), { project: false })
    .option('--expires-in-days <n>', 'expiry in days')
    .action(lazy(() => import('./commands/token.js'), (m) => m.tokenCreate))
  scoped(token.command('list').description('List your tokens'), { project: false })
    .action(lazy(() => import('./commands/token.js'), (m) => m.tokenList))
  scoped(token.command('revoke').argument('<id>').description('Revoke a token'), { project: false })
    .action(lazy(() => import('./commands/token.js'), (m) => m.tokenRevoke))

  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.exitOverride()
  return program
}

/** The CLI entry point: runs argv and sets the exit code; user errors print one line. */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    const { toExitError } = await import('./session.js')
    const e = toExitError(err)
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode
      return
    }
    if (e instanceof ExitError || (e as { code?: string })?.code === 'ERR_CONFIG' || (e as { code?: string })?.code?.startsWith?.('ERR_')) {
      const { scrub } = await import('../ops/redact.js')
      process.stderr.write(`coffer: ${scrub((e as Error).message)}\n`)
      process.exitCode = (e as ExitError).exitCode ?? 1
      return
    }
    const { scrub } = await import('../ops/redact.js')
    process.stderr.write(`coffer: internal error: ${scrub((e as Error)?.stack ?? String(e))}\nThis is a bug; please report it with the lines above.\n`)
    process.exitCode = 70
  }
}
