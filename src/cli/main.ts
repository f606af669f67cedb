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

  program
    .command('init')
    .description('Create the data directory, root key, database, a workspace and its Owner; print the Owner token once')
    .option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
    .requiredOption('--email <email>', 'the Owner’s email')
    .option('--workspace <name>', 'workspace name', 'default')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/init.js'),
        (m) => m.init,
      ),
    )

  program
    .command('server')
    .description('Start the API server (creates a workspace and prints its Owner token on first start)')
    .option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
    .option('--host <host>', 'listen address (default: COFFER_HOST or 127.0.0.1)')
    .option('--port <port>', 'listen port (default: COFFER_PORT or 8700)')
    .option('--email <email>', 'Owner email for a new vault (default: COFFER_OWNER_EMAIL or owner@localhost)')
    .action(
      lazy(
        () => import('./commands/server.js'),
        (m) => m.server,
      ),
    )

  program
    .command('login')
    .description('Sign in in the browser (or with --device, or --token) and keep the token in the OS credential store')
    .requiredOption('--url <url>', 'server URL, e.g. http://127.0.0.1:8700')
    .option('--device', 'for hosts without a browser: approve a code in a browser elsewhere')
    .option('--no-browser', 'do not open a browser; only print the address')
    .option('--token <token>', 'keep this existing token instead')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/login.js'),
        (m) => m.login,
      ),
    )
  program
    .command('logout')
    .description('Revoke the saved token on the server and remove it from the OS credential store')
    .action(
      lazy(
        () => import('./commands/login.js'),
        (m) => m.logout,
      ),
    )
  scoped(program.command('whoami').description('Show the user, workspace and role of the token'), { project: false }).action(
    lazy(
      () => import('./commands/whoami.js'),
      (m) => m.whoami,
    ),
  )

  const projects = program.command('projects').description('Projects')
  scoped(projects.command('create').argument('<name>').description('Create a project with development, staging and production'), {
    project: false,
  })
    .option('--slug <slug>', 'URL slug (default: from the name)')
    .action(
      lazy(
        () => import('./commands/projects.js'),
        (m) => m.projectsCreate,
      ),
    )
  scoped(projects.command('list').description('List projects'), { project: false }).action(
    lazy(
      () => import('./commands/projects.js'),
      (m) => m.projectsList,
    ),
  )

  const envs = program.command('envs').description('Environments of a project')
  scoped(envs.command('list').description('List environments')).action(
    lazy(
      () => import('./commands/projects.js'),
      (m) => m.envsList,
    ),
  )
  scoped(envs.command('create').argument('<name>').description('Create an environment (with its own data key)'))
    .option('--slug <slug>', 'URL slug (default: from the name)')
    .action(
      lazy(
        () => import('./commands/projects.js'),
        (m) => m.envsCreate,
      ),
    )
  scoped(envs.command('restrict').description('Restrict an environment: developers list keys only unless granted (project admin)'), {
    env: true,
  })
    .option('--off', 'lift the restriction')
    .action(
      lazy(
        () => import('./commands/members.js'),
        (m) => m.envsRestrict,
      ),
    )
  scoped(
    envs
      .command('grant')
      .argument('<member>', 'email or user id')
      .argument('<access>', 'read (reveal) or write')
      .description('Grant a project member access to a restricted environment'),
    { env: true },
  ).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.envsGrant,
    ),
  )
  scoped(
    envs
      .command('seal')
      .description('Seal an environment: people reveal or write its values only through a break-glass grant (Owner/Admin)'),
    { env: true },
  ).action(
    lazy(
      () => import('./commands/breakglass.js'),
      (m) => m.envsSeal,
    ),
  )
  scoped(envs.command('unseal').description('Unseal an environment (Owner/Admin)'), { env: true }).action(
    lazy(
      () => import('./commands/breakglass.js'),
      (m) => m.envsUnseal,
    ),
  )

  scoped(program.command('setup').description('Link this directory to a project and environment (writes .coffer.json, no secret)'), {
    env: true,
  }).action(
    lazy(
      () => import('./commands/projects.js'),
      (m) => m.setup,
    ),
  )

  const secrets = program.command('secrets').description('Secrets of an environment')
  scoped(
    secrets
      .command('set')
      .argument('<pairs...>', 'KEY=VALUE (KEY=- reads stdin)')
      .description('Set one or more secrets (several: one atomic write)'),
    { env: true },
  )
    .option('--comment <text>', 'comment stored (encrypted) with the value')
    .option('--if-version <n>', 'write only if the current version is n (0: only if new)')
    .action(
      lazy(
        () => import('./commands/secrets.js'),
        (m) => m.secretsSet,
      ),
    )
  scoped(secrets.command('get').argument('<key>').description('Print a secret’s raw value (audited)'), { env: true }).action(
    lazy(
      () => import('./commands/secrets.js'),
      (m) => m.secretsGet,
    ),
  )
  scoped(secrets.command('list').description('List secrets (values only with --reveal, audited)'), { env: true })
    .option('--reveal', 'show values')
    .option('--deleted', 'include deleted secrets')
    .action(
      lazy(
        () => import('./commands/secrets.js'),
        (m) => m.secretsList,
      ),
    )
  scoped(secrets.command('delete').argument('<key>').description('Delete a secret (restorable)'), { env: true }).action(
    lazy(
      () => import('./commands/secrets.js'),
      (m) => m.secretsDelete,
    ),
  )
  scoped(secrets.command('restore').argument('<key>').description('Restore a deleted secret'), { env: true }).action(
    lazy(
      () => import('./commands/secrets.js'),
      (m) => m.secretsRestore,
    ),
  )
  scoped(secrets.command('history').argument('<key>').description('Every version of a secret'), { env: true })
    .option('--reveal', 'show values')
    .action(
      lazy(
        () => import('./commands/secrets.js'),
        (m) => m.secretsHistory,
      ),
    )
  scoped(secrets.command('rollback').argument('<key>').description('Write a new version equal to an earlier one'), { env: true })
    .requiredOption('--to <version>', 'the version to copy')
    .action(
      lazy(
        () => import('./commands/secrets.js'),
        (m) => m.secretsRollback,
      ),
    )

  scoped(
    program
      .command('run')
      .description('Run a command with the environment’s secrets as variables')
      .argument('[command...]', 'the command and its arguments, after --'),
    { env: true, json: false },
  )
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
    .action(
      lazy(
        () => import('./commands/transfer.js'),
        (m) => m.exportSecrets,
      ),
    )
  scoped(
    program
      .command('import')
      .argument('<file>', 'a .env, JSON or YAML file (- for stdin)')
      .description('Set every secret of a file in one atomic write'),
    { env: true },
  )
    .option('--format <format>', 'dotenv, json or yaml (default: from the file name or content)')
    .action(
      lazy(
        () => import('./commands/transfer.js'),
        (m) => m.importSecrets,
      ),
    )

  const audit = program.command('audit').description('The audit log')
  scoped(
    audit
      .command('verify')
      .description(
        'Verify the audit log locally: hash chain, signed checkpoint, Merkle root, and that it extends the last checkpoint seen; --file checks an export offline',
      ),
    { project: false },
  )
    .option('--file <file>', 'verify an export (coffer audit export) with no server')
    .option('--public-key <key>', 'the trusted audit public key (or a file holding it) for --file')
    .action(
      lazy(
        () => import('./commands/audit.js'),
        (m) => m.auditVerify,
      ),
    )
  scoped(audit.command('export').description('Write the audit log, a fresh signed checkpoint and the public key to a file'), {
    project: false,
  })
    .requiredOption('--out <file>', 'the file to write')
    .action(
      lazy(
        () => import('./commands/audit.js'),
        (m) => m.auditExport,
      ),
    )
  scoped(
    audit
      .command('proof')
      .argument('<entry>', 'audit entry id or sequence number')
      .description('Print an inclusion proof of an entry that anyone can check offline'),
    { project: false, json: false },
  )
    .option('--out <file>', 'write it to a file instead of stdout')
    .action(
      lazy(
        () => import('./commands/audit.js'),
        (m) => m.auditProof,
      ),
    )
  audit
    .command('verify-proof')
    .argument('<file>')
    .description('Check an inclusion-proof file offline')
    .option('--public-key <key>', 'the trusted audit public key (or a file holding it)')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/audit.js'),
        (m) => m.auditVerifyProof,
      ),
    )

  const keys = program.command('keys').description('Root and data keys')
  keys
    .command('init-hsm')
    .description('Create the root key inside the PKCS#11 token named by COFFER_PKCS11_* (run once)')
    .action(
      lazy(
        () => import('./commands/keys.js'),
        (m) => m.keysInitHsm,
      ),
    )
  scoped(
    keys
      .command('rotate')
      .description(
        "Rotate the environment's data key: a new version is primary at once; older versions are resealed in the background, then the old key is destroyed",
      ),
    { env: true },
  )
    .option('--wait', 'follow the reseal with a progress bar until it is done')
    .action(
      lazy(
        () => import('./commands/keys.js'),
        (m) => m.keysRotate,
      ),
    )
  scoped(keys.command('status').description("The environment's data-key versions, usage counts and reseal jobs"), { env: true }).action(
    lazy(
      () => import('./commands/keys.js'),
      (m) => m.keysStatus,
    ),
  )
  keys
    .command('migrate')
    .description(
      'Rewrap every data key from the old root-key provider (--from …) to the one the settings now name; stop the servers first; resumable',
    )
    .requiredOption('--from <provider>', 'the old provider: local, pkcs11 or aws-kms')
    .option('--from-key-file <path>', 'local: the old root key file (default: root.key in the data directory)')
    .option('--from-root-key-env <name>', 'local: the environment variable holding the old key in base64')
    .option('--from-key-label <label>', 'pkcs11: the old key’s label')
    .option('--from-token-label <label>', 'pkcs11: the old token’s label (default: COFFER_PKCS11_TOKEN_LABEL)')
    .option('--from-kms-key-id <id>', 'aws-kms: the old KMS key')
    .option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/keys.js'),
        (m) => m.keysMigrate,
      ),
    )
  keys
    .command('rotate-root')
    .description('Make a new root key and rewrap every data key under it (secret rows untouched); stop the servers first; resumable')
    .option('--new-key-label <label>', 'pkcs11: the label of the new key to create in the token')
    .option('--new-kms-key-id <id>', 'aws-kms: the KMS key to move to')
    .option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/keys.js'),
        (m) => m.keysRotateRoot,
      ),
    )

  const workspace = program.command('workspace').description('Workspaces')
  workspace
    .command('delete')
    .argument('<slug>')
    .description('Delete a workspace (Owner): destroys its keys now, purges its rows later')
    .option('--confirm <slug>', 'the workspace slug again (asked for on a terminal when absent)')
    .option('--url <url>', 'server URL (default: COFFER_URL, the login, or http://127.0.0.1:8700)')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/workspace.js'),
        (m) => m.workspaceDelete,
      ),
    )

  const breakglass = program.command('breakglass').description('Break-glass access to sealed environments')
  scoped(breakglass.command('request').description('Ask for time-bound access to a sealed environment (needs approvals)'), { env: true })
    .requiredOption('--reason <text>', 'why (audited, shown to approvers)')
    .option('--access <access>', 'read or read-write', 'read')
    .option('--minutes <n>', 'how long the grant lasts once approved', '30')
    .action(
      lazy(
        () => import('./commands/breakglass.js'),
        (m) => m.breakglassRequest,
      ),
    )
  scoped(breakglass.command('list').description('List break-glass requests and grants'), { project: false })
    .option('--status <status>', 'pending, active, expired, denied or revoked')
    .action(
      lazy(
        () => import('./commands/breakglass.js'),
        (m) => m.breakglassList,
      ),
    )
  scoped(breakglass.command('approve').argument('<id>').description('Approve a request (another Owner/Admin)'), { project: false })
    .option('--comment <text>', 'a note kept with the approval')
    .action(
      lazy(
        () => import('./commands/breakglass.js'),
        (m) => m.breakglassApprove,
      ),
    )
  scoped(breakglass.command('deny').argument('<id>').description('Deny a request; one denial ends it'), { project: false })
    .option('--comment <text>', 'a note kept with the denial')
    .action(
      lazy(
        () => import('./commands/breakglass.js'),
        (m) => m.breakglassDeny,
      ),
    )
  scoped(breakglass.command('revoke').argument('<id>').description('End a request or grant now (the requester or an Owner)'), {
    project: false,
  }).action(
    lazy(
      () => import('./commands/breakglass.js'),
      (m) => m.breakglassRevoke,
    ),
  )

  const token = program.command('token').description('Personal access tokens')
  scoped(token.command('create').argument('<name>').description('Create a token (printed once)'), { project: false })
    .option('--expires-in-days <n>', 'expiry in days')
    .action(
      lazy(
        () => import('./commands/token.js'),
        (m) => m.tokenCreate,
      ),
    )
  scoped(token.command('list').description('List your tokens'), { project: false }).action(
    lazy(
      () => import('./commands/token.js'),
      (m) => m.tokenList,
    ),
  )
  scoped(token.command('revoke').argument('<id>').description('Revoke a token'), { project: false }).action(
    lazy(
      () => import('./commands/token.js'),
      (m) => m.tokenRevoke,
    ),
  )

  scoped(
    token
      .command('create-service')
      .argument('<name>')
      .description("Create a service token scoped to a project's environments (printed once)"),
    { project: true },
  )
    .option('--env <env...>', 'environments (ids or slugs, several allowed; default: all)')
    .option('--access <access>', 'read (list and reveal) or write', 'read')
    .option('--expires-in-days <n>', 'expiry in days')
    .action(
      lazy(
        () => import('./commands/token.js'),
        (m) => m.serviceTokenCreate,
      ),
    )
  scoped(token.command('list-services').description("List the workspace's service tokens"), { project: false }).action(
    lazy(
      () => import('./commands/token.js'),
      (m) => m.serviceTokenList,
    ),
  )
  scoped(token.command('revoke-service').argument('<id>').description('Revoke a service token'), { project: false }).action(
    lazy(
      () => import('./commands/token.js'),
      (m) => m.serviceTokenRevoke,
    ),
  )

  const machine = program.command('machine').description('Machine identities: client credentials exchanged for short-lived access tokens')
  scoped(machine.command('create').argument('<name>').description('Create a machine identity (prints its client secret once)'), {
    project: true,
  })
    .option('--env <env...>', 'environments (ids or slugs, several allowed; default: all)')
    .option('--access <access>', 'read (list and reveal) or write', 'read')
    .option('--cidr <cidr...>', 'allow only these addresses (CIDR), for the exchange and every use of its tokens')
    .option('--ttl <seconds>', 'access-token lifetime, 60–3600 (default 3600)')
    .action(
      lazy(
        () => import('./commands/machine.js'),
        (m) => m.machineCreate,
      ),
    )
  scoped(machine.command('list').description('List machine identities'), { project: false }).action(
    lazy(
      () => import('./commands/machine.js'),
      (m) => m.machineList,
    ),
  )
  scoped(machine.command('revoke').argument('<id>').description('Revoke a machine identity and its live access tokens'), {
    project: false,
  }).action(
    lazy(
      () => import('./commands/machine.js'),
      (m) => m.machineRevoke,
    ),
  )
  machine
    .command('token')
    .description(
      'Exchange COFFER_CLIENT_ID and COFFER_CLIENT_SECRET for an access token and print it (export COFFER_TOKEN=$(coffer machine token))',
    )
    .option('--url <url>', 'server URL (default: COFFER_URL or http://127.0.0.1:8700)')
    .option('--client-id <id>', 'the client id (default: COFFER_CLIENT_ID)')
    .option('--json', 'print JSON')
    .action(
      lazy(
        () => import('./commands/machine.js'),
        (m) => m.machineToken,
      ),
    )

  const members = program.command('members').description('Workspace members and project roles')
  scoped(members.command('list').description('List members and their roles'), { project: false }).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.membersList,
    ),
  )
  scoped(
    members
      .command('set-role')
      .argument('<member>', 'email or user id')
      .argument('<role>', 'owner, admin, member or auditor (reads the audit log and metadata, never secrets)')
      .description("Change a member's workspace role"),
    { project: false },
  ).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.membersSetRole,
    ),
  )
  scoped(
    members
      .command('remove')
      .argument('<member>', 'email or user id')
      .description('Remove a member (their tokens of this workspace are revoked)'),
    { project: false },
  ).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.membersRemove,
    ),
  )
  scoped(
    members
      .command('project-role')
      .argument('<member>', 'email or user id')
      .argument('<role>', 'admin, developer or viewer')
      .description('Give a member a role on the project'),
  ).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.membersProjectRole,
    ),
  )

  const invite = program.command('invite').description('Invitations by email')
  scoped(invite.command('create').argument('<email>').description('Invite someone (prints the accept link; mails it when mail is set up)'))
    .option('--role <role>', 'workspace role: member, admin, owner or auditor (an auditor takes no --project)', 'member')
    .option('--project-role <role>', 'with --project: admin, developer or viewer', 'developer')
    .option('--expires-in-days <n>', 'days the invitation stays valid (default 7, at most 30)')
    .action(
      lazy(
        () => import('./commands/members.js'),
        (m) => m.inviteCreate,
      ),
    )
  scoped(invite.command('list').description('List invitations'), { project: false }).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.inviteList,
    ),
  )
  scoped(invite.command('revoke').argument('<id>').description('Revoke a pending invitation'), { project: false }).action(
    lazy(
      () => import('./commands/members.js'),
      (m) => m.inviteRevoke,
    ),
  )
  scoped(invite.command('accept').argument('<token>').description('Accept an invitation as the signed-in person'), { project: false })
    .option('--token-name <name>', 'also create a personal token for the new workspace (printed once)')
    .action(
      lazy(
        () => import('./commands/members.js'),
        (m) => m.inviteAccept,
      ),
    )

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
    process.stderr.write(
      `coffer: internal error: ${scrub((e as Error)?.stack ?? String(e))}\nThis is a bug; please report it with the lines above.\n`,
    )
    process.exitCode = 70
  }
}
