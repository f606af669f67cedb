import { type CommandTable, lazy, option, repeatable, required } from './command-spec.js'

// Every command of `coffer`, its options and help text, in the order `coffer --help` lists
// them. Each command's module is imported only when that command runs, so `coffer run` never
// loads the server, the database drivers or the YAML parser. Commands that run on the server
// host and open the database or key providers themselves live in ./host/; the rest talk to
// the API through src/client and live in ./commands/.

const audit = () => import('./commands/audit.js')
const auditLogCommand = () => import('./commands/audit-log.js')
const breakglass = () => import('./commands/breakglass.js')
const changes = () => import('./commands/changes.js')
const dataKeys = () => import('./commands/keys.js')
const login = () => import('./commands/login.js')
const machine = () => import('./commands/machine.js')
const members = () => import('./commands/members.js')
const projects = () => import('./commands/projects.js')
const secrets = () => import('./commands/secrets.js')
const references = () => import('./commands/references.js')
const token = () => import('./commands/token.js')
const transfer = () => import('./commands/transfer.js')
const webhooks = () => import('./commands/webhooks.js')
const dynamicDb = () => import('./commands/db.js')
const aws = () => import('./commands/aws.js')
const connections = () => import('./commands/connections.js')
const hostBackup = () => import('./host/backup.js')
const hostInit = () => import('./host/init.js')
const hostRootKeys = () => import('./host/root-keys.js')
const hostServer = () => import('./host/server.js')
const hostLockouts = () => import('./host/lockouts.js')
const hostResetLink = () => import('./host/reset-link.js')

const DATA_DIR = option('--data-dir <dir>', 'data directory (default: COFFER_DATA_DIR or ./.coffer)')
const JSON_OUT = option('--json', 'print JSON')
const YES = option('--yes', 'confirm: this cannot be undone')
const SERVER_URL = option('--url <url>', 'server URL (default: COFFER_URL, the login, or http://127.0.0.1:8700)')
const SCOPED = {}
const WORKSPACE_ONLY = { project: false }
const ENV = { env: true }

/** The command table (see command-spec.ts for its shape). */
export const COMMANDS: CommandTable = [
  {
    name: 'init',
    description: 'Create the data directory, root key, database, a workspace and its Owner; print the Owner token once',
    options: [
      DATA_DIR,
      required('--email <email>', 'the Owner’s email'),
      option('--workspace <name>', 'workspace name', 'default'),
      JSON_OUT,
    ],
    run: lazy(hostInit, (m) => m.init),
  },
  {
    name: 'server',
    description: 'Start the API server (creates a workspace and prints its Owner token on first start)',
    options: [
      DATA_DIR,
      option('--host <host>', 'listen address (default: COFFER_HOST or 127.0.0.1)'),
      option('--port <port>', 'listen port (default: COFFER_PORT or 8700)'),
      option('--email <email>', 'Owner email for a new vault (default: COFFER_OWNER_EMAIL or owner@localhost)'),
    ],
    run: lazy(hostServer, (m) => m.server),
  },
  {
    name: 'login',
    description:
      'Sign in in the browser (or with --device, or --token) and keep the token in the OS credential store (with --export: in this shell only)',
    options: [
      required('--url <url>', 'server URL, e.g. http://127.0.0.1:8700'),
      option('--device', 'for hosts without a browser: approve a code in a browser elsewhere'),
      option('--no-browser', 'do not open a browser; only print the address'),
      option('--token <token>', 'keep this existing token instead'),
      option('--export', 'save nothing: print `export COFFER_URL=… COFFER_TOKEN=…` for eval "$(coffer login … --export)"'),
      JSON_OUT,
    ],
    run: lazy(login, (m) => m.login),
  },
  {
    name: 'logout',
    description: 'Revoke the saved token on the server and remove it from the OS credential store',
    run: lazy(login, (m) => m.logout),
  },
  {
    name: 'whoami',
    description: 'Show the user, workspace and role of the token',
    scope: WORKSPACE_ONLY,
    run: lazy(
      () => import('./commands/whoami.js'),
      (m) => m.whoami,
    ),
  },

  {
    name: 'doctor',
    description: 'Check the server (reachable, TLS), the token and its scopes, the clock, the credential store and .coffer.json',
    options: [SERVER_URL, JSON_OUT],
    run: lazy(
      () => import('./commands/doctor.js'),
      (m) => m.doctor,
    ),
  },
  {
    name: 'completion',
    args: [['<shell>', 'bash, zsh or fish']],
    description: 'Print a shell completion script (bash: eval "$(coffer completion bash)")',
    run: lazy(
      () => import('./completion.js'),
      (m) => m.completion,
    ),
  },

  { group: 'projects', description: 'Projects' },
  {
    name: 'projects create',
    args: [['<name>']],
    description: 'Create a project with development, staging and production',
    scope: WORKSPACE_ONLY,
    options: [option('--slug <slug>', 'URL slug (default: from the name)')],
    run: lazy(projects, (m) => m.projectsCreate),
  },
  { name: 'projects list', description: 'List projects', scope: WORKSPACE_ONLY, run: lazy(projects, (m) => m.projectsList) },
  {
    name: 'projects rename',
    args: [
      ['<project>', 'id or slug'],
      ['<name>', 'the new display name (the slug stays)'],
    ],
    description: 'Rename a project (project admin)',
    scope: WORKSPACE_ONLY,
    run: lazy(projects, (m) => m.projectsRename),
  },
  {
    name: 'projects delete',
    args: [['<project>', 'id or slug']],
    description: 'Delete a project and destroy its data keys (Owner/Admin); asks on a terminal without --yes',
    scope: WORKSPACE_ONLY,
    options: [YES, option('--force', 'delete even though it still holds secrets (they are destroyed)')],
    run: lazy(projects, (m) => m.projectsDelete),
  },

  { group: 'envs', description: 'Environments of a project' },
  { name: 'envs list', description: 'List environments', scope: SCOPED, run: lazy(projects, (m) => m.envsList) },
  {
    name: 'envs create',
    args: [['<name>']],
    description: 'Create an environment (with its own data key)',
    scope: SCOPED,
    options: [option('--slug <slug>', 'URL slug (default: from the name)')],
    run: lazy(projects, (m) => m.envsCreate),
  },
  {
    name: 'envs rename',
    args: [
      ['<env>', 'id or slug'],
      ['<name>', 'the new display name (the slug stays)'],
    ],
    description: 'Rename an environment (project admin)',
    scope: SCOPED,
    run: lazy(projects, (m) => m.envsRename),
  },
  {
    name: 'envs delete',
    args: [['<env>', 'id or slug']],
    description: 'Delete an environment and destroy its data key (project admin); asks on a terminal without --yes',
    scope: SCOPED,
    options: [YES, option('--force', 'delete even though it still holds secrets (they are destroyed)')],
    run: lazy(projects, (m) => m.envsDelete),
  },
  {
    name: 'envs restrict',
    description: 'Restrict an environment: developers list keys only unless granted (project admin)',
    scope: ENV,
    options: [option('--off', 'lift the restriction')],
    run: lazy(members, (m) => m.envsRestrict),
  },
  {
    name: 'envs grant',
    args: [
      ['<member>', 'email or user id'],
      ['<access>', 'read (reveal) or write'],
    ],
    description: 'Grant a project member access to a restricted environment',
    scope: ENV,
    run: lazy(members, (m) => m.envsGrant),
  },
  {
    name: 'envs seal',
    description: 'Seal an environment: people reveal or write its values only through a break-glass grant (Owner/Admin)',
    scope: ENV,
    run: lazy(breakglass, (m) => m.envsSeal),
  },
  { name: 'envs unseal', description: 'Unseal an environment (Owner/Admin)', scope: ENV, run: lazy(breakglass, (m) => m.envsUnseal) },
  {
    name: 'envs import',
    description: 'Import every key of other environments (its own keys win; a later --from wins); --none imports nothing (project admin)',
    scope: ENV,
    options: [option('--from <env...>', 'ENV or PROJECT/ENV, several allowed, in order'), option('--none', 'import nothing')],
    run: lazy(references, (m) => m.envsImport),
  },
  {
    name: 'envs personal-overrides',
    args: [['<state>', 'on or off']],
    description: 'Allow members to keep their own value for a key here (never in restricted or sealed environments; project admin)',
    scope: ENV,
    run: lazy(references, (m) => m.envsPersonalOverrides),
  },
  {
    name: 'envs protect',
    description: 'Protect an environment: each write becomes a change request other Owners/Admins approve (Owner/Admin)',
    scope: ENV,
    options: [option('--approvals <n>', 'approvals each change request needs', '1'), option('--off', 'lift the protection')],
    run: lazy(changes, (m) => m.envsProtect),
  },

  {
    name: 'setup',
    description: 'Link this directory to a project and environment (writes .coffer.json, no secret)',
    scope: ENV,
    run: lazy(projects, (m) => m.setup),
  },

  { group: 'secrets', description: 'Secrets of an environment' },
  {
    name: 'secrets set',
    args: [['<pairs...>', 'KEY=VALUE (KEY=- reads stdin)']],
    description: 'Set one or more secrets (several: one atomic write)',
    scope: ENV,
    options: [
      option('--comment <text>', 'comment stored (encrypted) with the value'),
      option('--if-version <n>', 'write only if the current version is n (0: only if new)'),
      option('--personal', 'your own value for the key: only your fetches see it (where the environment allows it)'),
    ],
    run: lazy(secrets, (m) => m.secretsSet),
  },
  {
    name: 'secrets get',
    args: [['<key>']],
    description: 'Print a secret’s value, references resolved (audited)',
    scope: ENV,
    options: [option('--raw', 'the value as stored: references unresolved')],
    run: lazy(secrets, (m) => m.secretsGet),
  },
  {
    name: 'secrets list',
    description: 'List secrets (values only with --reveal, audited)',
    scope: ENV,
    options: [
      option('--reveal', 'show values'),
      option('--deleted', 'include deleted secrets'),
      option('--raw', 'with --reveal: values as stored, references unresolved'),
    ],
    run: lazy(secrets, (m) => m.secretsList),
  },
  {
    name: 'secrets delete',
    args: [['<key>']],
    description: 'Delete a secret (restorable); --personal removes only your override',
    scope: ENV,
    options: [option('--personal', 'remove your personal override, not the secret')],
    run: lazy(secrets, (m) => m.secretsDelete),
  },
  {
    name: 'secrets restore',
    args: [['<key>']],
    description: 'Restore a deleted secret',
    scope: ENV,
    run: lazy(secrets, (m) => m.secretsRestore),
  },
  {
    name: 'secrets history',
    args: [['<key>']],
    description: 'Every version of a secret',
    scope: ENV,
    options: [option('--reveal', 'show values')],
    run: lazy(secrets, (m) => m.secretsHistory),
  },
  {
    name: 'secrets rollback',
    args: [['<key>']],
    description: 'Write a new version equal to an earlier one',
    scope: ENV,
    options: [required('--to <version>', 'the version to copy')],
    run: lazy(secrets, (m) => m.secretsRollback),
  },
  {
    name: 'secrets diff',
    description: 'Compare two environments: keys missing, extra, and different (by keyed fingerprints; values only with --reveal, audited)',
    scope: SCOPED,
    options: [
      required('--from <env>', 'ENV or PROJECT/ENV'),
      required('--to <env>', 'ENV or PROJECT/ENV'),
      option('--reveal', 'show the values of both sides (audited)'),
    ],
    run: lazy(changes, (m) => m.secretsDiff),
  },
  {
    name: 'secrets promote',
    args: [['[keys...]', 'the keys to promote']],
    description:
      'Copy the current values of keys from one environment into another in one atomic write (a change request where it is protected)',
    scope: SCOPED,
    options: [
      required('--from <env>', 'ENV or PROJECT/ENV'),
      required('--to <env>', 'ENV or PROJECT/ENV'),
      option('--all', 'every key of the source'),
      option('--if-state <state>', 'only if the target is still in this state (the `to.state` of `secrets diff --json`)'),
    ],
    run: lazy(changes, (m) => m.secretsPromote),
  },

  {
    name: 'run',
    description: 'Run a command with the environment’s secrets as variables',
    args: [['[command...]', 'the command and its arguments, after --']],
    scope: { json: false },
    options: [
      repeatable(
        '--env <env>',
        'environment id or slug, or PROJECT/ENV for another project; repeat it to merge several (later wins; default: .coffer.json, or the token’s only environment)',
      ),
      option('--preserve-env', 'variables already set win over secrets'),
      option('--pass-token', 'let the command inherit COFFER_TOKEN (it does not by default)'),
      option('--watch', 'restart the command when a secret changes (server-sent events; reconnects by itself)'),
      option('--watch-signal <signal>', 'the signal that stops the command before a restart (default SIGTERM)'),
      option('--watch-debounce <ms>', 'wait this long for more changes before restarting (default 200)'),
      option('--mount <path>', 'also write the secrets to this new 0600 file, removed when coffer exits'),
      option('--format <format>', 'the --mount file’s format: dotenv or json (default dotenv)'),
      option('--fallback [path]', 'keep an encrypted snapshot and use it when the server is unreachable (give PATH as --fallback=PATH)'),
      option('--fallback-max-age <age>', 'the oldest snapshot --fallback may use, e.g. 30m, 24h, 7d (default 24h)'),
      option('--fallback-only', 'use the snapshot without contacting the server'),
      option(
        '--db <name...>',
        'also a fresh PostgreSQL login role from this db role (coffer db): DATABASE_URL, PG* and COFFER_DB_<NAME>_URL',
      ),
      option(
        '--aws <role>',
        'also an STS session of this AWS role (coffer aws), at most an hour: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_CREDENTIAL_EXPIRATION (and AWS_REGION)',
      ),
    ],
    passThroughOptions: true,
    // @NOTE bin/coffer.js runs this command through run-entry.ts (dist/run.cjs, no commander)
    // whenever run-argv.ts reads its command line; test/cli/run-argv.test.ts keeps the two readings equal.
    run: async (argv: string[], opts: Record<string, unknown>) => {
      const { run } = await import('./commands/run.js')
      // The child's exit code is ours, at once: nothing is left to flush, and waiting for
      // the event loop to drain would only add latency to every `coffer run`.
      process.exit(await run(argv, opts))
    },
  },
  {
    name: 'export',
    description: 'Print the environment’s secrets (audited)',
    scope: { env: true, json: false },
    options: [
      option('--format <format>', 'dotenv, json, yaml or shell', 'dotenv'),
      option('--raw', 'values as stored: references unresolved'),
    ],
    run: lazy(transfer, (m) => m.exportSecrets),
  },
  {
    name: 'import',
    args: [['<file>', 'a .env, JSON or YAML file (- for stdin)']],
    description: 'Set every secret of a file in one atomic write',
    scope: ENV,
    options: [option('--format <format>', 'dotenv, json or yaml (default: from the file name or content)')],
    run: lazy(transfer, (m) => m.importSecrets),
  },

  { group: 'audit', description: 'The audit log' },
  {
    name: 'audit log',
    description: 'List audit entries, newest first, with people, projects and environments by name',
    scope: WORKSPACE_ONLY,
    options: [
      option('--actor <who>', 'a member’s email, or an actor id (user, machine or token)'),
      option('--action <action>', 'an action (secret.reveal) or every action under a prefix (secret.*)'),
      option('--target <id>', 'the target’s id'),
      option('--target-type <type>', 'the target’s type (project, environment, secret, …)'),
      option('--since <time>', 'from this time: 2026-05-01, 2026-05-01T10:00:00Z, or back from now: 30m, 24h, 7d'),
      option('--until <time>', 'before this time (same forms)'),
      option('--limit <n>', 'at most this many entries, 1–5000 (default 50)'),
    ],
    run: lazy(auditLogCommand, (m) => m.auditLog),
  },
  {
    name: 'audit verify',
    description:
      'Verify the audit log locally: hash chain, signed checkpoint, Merkle root, and that it extends the last checkpoint seen; --file checks an export offline',
    scope: WORKSPACE_ONLY,
    options: [
      option('--file <file>', 'verify an export (coffer audit export) with no server'),
      option('--public-key <key>', 'the trusted audit public key (or a file holding it) for --file'),
    ],
    run: lazy(audit, (m) => m.auditVerify),
  },
  {
    name: 'audit export',
    description: 'Write the audit log, a fresh signed checkpoint and the public key to a file',
    scope: WORKSPACE_ONLY,
    options: [required('--out <file>', 'the file to write')],
    run: lazy(audit, (m) => m.auditExport),
  },
  {
    name: 'audit proof',
    args: [['<entry>', 'audit entry id or sequence number']],
    description: 'Print an inclusion proof of an entry that anyone can check offline',
    scope: { project: false, json: false },
    options: [option('--out <file>', 'write it to a file instead of stdout')],
    run: lazy(audit, (m) => m.auditProof),
  },
  {
    name: 'audit verify-proof',
    args: [['<file>']],
    description: 'Check an inclusion-proof file offline',
    options: [option('--public-key <key>', 'the trusted audit public key (or a file holding it)'), JSON_OUT],
    run: lazy(audit, (m) => m.auditVerifyProof),
  },

  {
    name: 'reset-link',
    description: 'On the server host: print a one-time password link for an account (an Owner locked out with mail off)',
    args: [['<email>', 'the account']],
    options: [DATA_DIR, JSON_OUT],
    run: lazy(hostResetLink, (m) => m.resetLink),
  },

  { group: 'lockouts', description: 'Rate-limit lockouts in the shared counters (server host, REDIS_URL as for coffer server)' },
  {
    name: 'lockouts list',
    description: 'List the addresses and accounts (by hash) locked out now',
    options: [JSON_OUT],
    run: lazy(hostLockouts, (m) => m.lockoutsList),
  },
  {
    name: 'lockouts clear',
    description: 'End lockouts now: of one address, of one account, or all',
    options: [
      option('--address <address>', 'the client address (its sign-in and bad-credential counters)'),
      option('--account <email>', 'the account (email or client id) whose sign-in attempts are locked'),
      option('--all', 'every lockout'),
      JSON_OUT,
    ],
    run: lazy(hostLockouts, (m) => m.lockoutsClear),
  },

  { group: 'keys', description: 'Root and data keys' },
  {
    name: 'keys init-hsm',
    description: 'Create the root key inside the PKCS#11 token named by COFFER_PKCS11_* (run once)',
    run: lazy(hostRootKeys, (m) => m.keysInitHsm),
  },
  {
    name: 'keys rotate',
    description:
      "Rotate the environment's data key: a new version is primary at once; older versions are resealed in the background, then the old key is destroyed",
    scope: ENV,
    options: [option('--wait', 'follow the reseal with a progress bar until it is done')],
    run: lazy(dataKeys, (m) => m.keysRotate),
  },
  {
    name: 'keys status',
    description: "The environment's data-key versions, usage counts and reseal jobs",
    scope: ENV,
    run: lazy(dataKeys, (m) => m.keysStatus),
  },
  {
    name: 'keys migrate',
    description:
      'Rewrap every data key from the old root-key provider (--from …) to the one the settings now name; stop the servers first; resumable',
    options: [
      required('--from <provider>', 'the old provider: local, pkcs11 or aws-kms'),
      option('--from-key-file <path>', 'local: the old root key file (default: root.key in the data directory)'),
      option('--from-root-key-env <name>', 'local: the environment variable holding the old key in base64'),
      option('--from-key-label <label>', 'pkcs11: the old key’s label'),
      option('--from-token-label <label>', 'pkcs11: the old token’s label (default: COFFER_PKCS11_TOKEN_LABEL)'),
      option('--from-kms-key-id <id>', 'aws-kms: the old KMS key'),
      DATA_DIR,
      JSON_OUT,
    ],
    run: lazy(hostRootKeys, (m) => m.keysMigrate),
  },
  {
    name: 'keys rotate-root',
    description: 'Make a new root key and rewrap every data key under it (secret rows untouched); stop the servers first; resumable',
    options: [
      option('--new-key-label <label>', 'pkcs11: the label of the new key to create in the token'),
      option('--new-kms-key-id <id>', 'aws-kms: the KMS key to move to'),
      DATA_DIR,
      JSON_OUT,
    ],
    run: lazy(hostRootKeys, (m) => m.keysRotateRoot),
  },

  { group: 'backup', description: 'Backups of the vault (on the server host; the same settings as coffer server)' },
  {
    name: 'backup create',
    description: 'Take a signed backup (ciphertext and wrapped keys only) while the servers keep running',
    options: [
      DATA_DIR,
      option('--out <file>', 'the file to write (default: a new file in COFFER_BACKUP_DIR or <data dir>/backups)'),
      JSON_OUT,
    ],
    run: lazy(hostBackup, (m) => m.backupCreate),
  },
  {
    name: 'backup list',
    description: 'List the backups in COFFER_BACKUP_DIR (or <data dir>/backups), newest first',
    options: [DATA_DIR, JSON_OUT],
    run: lazy(hostBackup, (m) => m.backupList),
  },
  {
    name: 'backup verify',
    args: [['<file>']],
    description: "Check a backup's checksums and signature, and that it is this vault's (by the root key, or --public-key)",
    options: [option('--public-key <key>', 'the audit public key (from /v1/audit/public-key) instead of the root key'), DATA_DIR, JSON_OUT],
    run: lazy(hostBackup, (m) => m.backupVerify),
  },
  {
    name: 'backup restore',
    args: [['<file>']],
    description: 'Replace the database with a backup (stop every server first); each workspace log records a signed restore',
    options: [DATA_DIR, JSON_OUT],
    run: lazy(hostBackup, (m) => m.backupRestore),
  },

  { group: 'workspace', description: 'Workspaces' },
  {
    name: 'workspace delete',
    args: [['<slug>']],
    description: 'Delete a workspace (Owner): destroys its keys now, purges its rows later',
    options: [option('--confirm <slug>', 'the workspace slug again (asked for on a terminal when absent)'), SERVER_URL, JSON_OUT],
    run: lazy(
      () => import('./commands/workspace.js'),
      (m) => m.workspaceDelete,
    ),
  },

  { group: 'breakglass', description: 'Break-glass access to sealed environments' },
  {
    name: 'breakglass request',
    description: 'Ask for time-bound access to a sealed environment (needs approvals)',
    scope: ENV,
    options: [
      required('--reason <text>', 'why (audited, shown to approvers)'),
      option('--access <access>', 'read or read-write', 'read'),
      option('--minutes <n>', 'how long the grant lasts once approved', '30'),
    ],
    run: lazy(breakglass, (m) => m.breakglassRequest),
  },
  {
    name: 'breakglass list',
    description: 'List break-glass requests and grants',
    scope: WORKSPACE_ONLY,
    options: [option('--status <status>', 'pending, active, expired, denied or revoked')],
    run: lazy(breakglass, (m) => m.breakglassList),
  },
  {
    name: 'breakglass approve',
    args: [['<id>']],
    description: 'Approve a request (another Owner/Admin)',
    scope: WORKSPACE_ONLY,
    options: [option('--comment <text>', 'a note kept with the approval')],
    run: lazy(breakglass, (m) => m.breakglassApprove),
  },
  {
    name: 'breakglass deny',
    args: [['<id>']],
    description: 'Deny a request; one denial ends it',
    scope: WORKSPACE_ONLY,
    options: [option('--comment <text>', 'a note kept with the denial')],
    run: lazy(breakglass, (m) => m.breakglassDeny),
  },
  {
    name: 'breakglass revoke',
    args: [['<id>']],
    description: 'End a request or grant now (the requester or an Owner)',
    scope: WORKSPACE_ONLY,
    run: lazy(breakglass, (m) => m.breakglassRevoke),
  },

  { group: 'db', description: 'Dynamic PostgreSQL credentials: login roles made on demand that expire' },
  {
    name: 'db create',
    args: [['<name>']],
    description: 'Define how login roles are made in the environment (admin URL from COFFER_DB_ADMIN_URL or stdin; project admin)',
    scope: ENV,
    options: [
      required('--sql <grants>', 'SQL that grants the new role its rights, naming it {{name}}'),
      option('--ttl <seconds>', 'default lifetime (10 to 86400; default 3600, or --max-ttl if lower)'),
      option('--max-ttl <seconds>', 'longest lifetime anyone may ask for (default 3600)'),
      option('--admin-url-stdin', 'read the admin URL from stdin instead of COFFER_DB_ADMIN_URL'),
    ],
    run: lazy(dynamicDb, (m) => m.dbCreate),
  },
  {
    name: 'db list',
    description: "The environment's database roles",
    scope: ENV,
    run: lazy(dynamicDb, (m) => m.dbList),
  },
  {
    name: 'db delete',
    args: [['<name>']],
    description: 'Delete a database role; credentials made from it are dropped',
    scope: ENV,
    run: lazy(dynamicDb, (m) => m.dbDelete),
  },
  {
    name: 'db creds',
    args: [['<name>']],
    description: 'A fresh login role that expires: shell exports (eval "$(coffer db creds NAME)") or JSON',
    scope: ENV,
    options: [option('--ttl <seconds>', 'lifetime (at most the role’s longest)'), option('--format <format>', 'env or json', 'env')],
    run: lazy(dynamicDb, (m) => m.dbCreds),
  },

  { group: 'aws', description: 'AWS role assumption: short-lived STS sessions of roles that trust Coffer with an external ID' },
  {
    name: 'aws external-id',
    description: "The workspace's external ID, which your roles' trust policies require (Owner/Admin)",
    scope: WORKSPACE_ONLY,
    options: [option('--rotate', 'make a new one: roles whose stacks hold the old one are refused until updated')],
    run: lazy(aws, (m) => m.awsExternalId),
  },
  {
    name: 'aws template',
    description: 'The CloudFormation template (JSON) for a read-only role that trusts Coffer with the external ID (Owner/Admin)',
    scope: WORKSPACE_ONLY,
    options: [option('--out <file>', 'save it to a new file instead of printing it')],
    run: lazy(aws, (m) => m.awsTemplate),
  },
  {
    name: 'aws create',
    args: [['<name>']],
    description: 'Register an IAM role for the environment (project admin)',
    scope: ENV,
    options: [
      required('--role-arn <arn>', 'the role to assume (the stack’s RoleArn output)'),
      option('--region <region>', 'handed to the child as AWS_REGION'),
      option('--duration <seconds>', 'the longest session, 900 to 3600 (default 3600)'),
    ],
    run: lazy(aws, (m) => m.awsCreate),
  },
  {
    name: 'aws list',
    description: "The environment's AWS roles",
    scope: ENV,
    run: lazy(aws, (m) => m.awsList),
  },
  {
    name: 'aws delete',
    args: [['<name>']],
    description: 'Forget an AWS role (sessions already issued run out within the hour)',
    scope: ENV,
    run: lazy(aws, (m) => m.awsDelete),
  },
  {
    name: 'aws creds',
    args: [['<name>']],
    description: 'An STS session of the role: shell exports (eval "$(coffer aws creds NAME)") or, with --json, credential_process JSON',
    scope: ENV,
    options: [option('--duration <seconds>', 'session length, 900 to 3600 (default: the role’s longest)')],
    run: lazy(aws, (m) => m.awsCreds),
  },

  { group: 'webhooks', description: 'Signed webhooks: tell other systems what changed (names and versions, never values)' },
  {
    name: 'webhooks create',
    args: [['<url>']],
    description: 'Add an endpoint for chosen events; prints its signing secret once (with --json: {"id","secret",…})',
    scope: WORKSPACE_ONLY,
    options: [
      option('--event <event...>', 'events to send, e.g. secret.updated (repeat, or comma-separate; see docs/webhooks.md)'),
      option('--description <text>', 'a note for people'),
    ],
    run: lazy(webhooks, (m) => m.webhooksCreate),
  },
  {
    name: 'webhooks list',
    description: "The workspace's endpoints, their events and state",
    scope: WORKSPACE_ONLY,
    run: lazy(webhooks, (m) => m.webhooksList),
  },
  {
    name: 'webhooks delete',
    args: [['<id>']],
    description: 'Delete an endpoint and its delivery log',
    scope: WORKSPACE_ONLY,
    run: lazy(webhooks, (m) => m.webhooksDelete),
  },
  {
    name: 'webhooks rotate-secret',
    args: [['<id>']],
    description: 'A new signing secret (printed once); the old one keeps signing beside it for the overlap',
    scope: WORKSPACE_ONLY,
    options: [option('--overlap-hours <n>', 'hours both secrets sign (0 to 168)', '24')],
    run: lazy(webhooks, (m) => m.webhooksRotateSecret),
  },
  {
    name: 'webhooks enable',
    args: [['<id>']],
    description: 'Enable an endpoint that was disabled for failing',
    scope: WORKSPACE_ONLY,
    run: lazy(webhooks, (m) => m.webhooksEnable),
  },
  {
    name: 'webhooks test',
    args: [['<id>']],
    description: 'Send a webhook.test message to the endpoint',
    scope: WORKSPACE_ONLY,
    run: lazy(webhooks, (m) => m.webhooksTest),
  },
  {
    name: 'webhooks deliveries',
    args: [['<id>']],
    description: "An endpoint's messages, newest first: status, attempts, last answer, latency",
    scope: WORKSPACE_ONLY,
    options: [option('--limit <n>', 'how many (1 to 500)', '50')],
    run: lazy(webhooks, (m) => m.webhooksDeliveries),
  },
  {
    name: 'webhooks redeliver',
    args: [['<message-id>']],
    description: 'Send a message again (same webhook-id)',
    scope: WORKSPACE_ONLY,
    run: lazy(webhooks, (m) => m.webhooksRedeliver),
  },
  {
    name: 'webhooks verify',
    args: [['[file]']],
    description: 'Check a received message (body from FILE or stdin) with the secret in COFFER_WEBHOOK_SECRET or --secret-file',
    options: [
      option('--id <id>', 'the webhook-id header'),
      option('--timestamp <seconds>', 'the webhook-timestamp header'),
      option('--signature <sig>', 'the webhook-signature header'),
      option('--secret-file <path>', 'a file holding the signing secret'),
      option('--ignore-age', 'check the signature only (the timestamp may be older than 5 minutes)'),
      JSON_OUT,
    ],
    run: lazy(webhooks, (m) => m.webhooksVerify),
  },

  { group: 'connections', description: 'Third-party OAuth connections: tokens kept sealed, used only through the relay' },
  {
    name: 'connections create',
    args: [['<name>']],
    description: 'Add an OAuth app at a provider (Owner/Admin); the client secret from stdin or a prompt, never the command line',
    scope: WORKSPACE_ONLY,
    options: [
      option('--authorize-url <url>', "the provider's authorization endpoint"),
      option('--token-url <url>', "the provider's token endpoint"),
      option('--client-id <id>', 'the app’s client id'),
      option('--client-secret-stdin', 'read the client secret from stdin'),
      option('--scope <scope...>', 'scopes to ask for (repeat, or space/comma-separate)'),
      option('--api-base <url>', 'the API base URL the tokens may be used against'),
      option('--allow <rule...>', "relay allow-list rules, e.g. 'GET /v1/*' (repeat)"),
      option('--token-auth <how>', 'client authentication at the token endpoint: basic (default) or post'),
    ],
    run: lazy(connections, (m) => m.connectionsCreate),
  },
  {
    name: 'connections list',
    description: "The workspace's connections: API base, allow-list, the app's and your own link state (never a token)",
    scope: WORKSPACE_ONLY,
    run: lazy(connections, (m) => m.connectionsList),
  },
  {
    name: 'connections delete',
    args: [['<name>']],
    description: 'Delete a connection and every token it holds (Owner/Admin)',
    scope: WORKSPACE_ONLY,
    run: lazy(connections, (m) => m.connectionsDelete),
  },
  {
    name: 'connections connect',
    args: [['<name>']],
    description: "Connect the app's own token in the browser (Owner/Admin): prints the URL, waits until it is done",
    scope: WORKSPACE_ONLY,
    options: [option('--no-browser', 'do not open a browser; only print the URL'), option('--no-wait', 'print the URL and return')],
    run: lazy(connections, (m) => m.connectionsConnect),
  },
  {
    name: 'connections link',
    args: [['<name>']],
    description: 'Link your own account at the provider in the browser: prints the URL, waits until it is done',
    scope: WORKSPACE_ONLY,
    options: [option('--no-browser', 'do not open a browser; only print the URL'), option('--no-wait', 'print the URL and return')],
    run: lazy(connections, (m) => m.connectionsLink),
  },
  {
    name: 'connections unlink',
    args: [['<name>']],
    description: 'Remove your own link (your tokens) from a connection',
    scope: WORKSPACE_ONLY,
    run: lazy(connections, (m) => m.connectionsUnlink),
  },
  {
    name: 'proxy',
    args: [['<connection>']],
    description: "A local HTTP server on 127.0.0.1 forwarding to a connection's relay with your Coffer token",
    scope: WORKSPACE_ONLY,
    options: [option('--port <port>', 'port to listen on (default: any free one, printed)'), option('--as <who>', 'me (default) or app')],
    run: lazy(connections, (m) => m.proxy),
  },

  { group: 'changes', description: 'Change requests of protected environments' },
  {
    name: 'changes list',
    description: 'List change requests (a Member sees their own)',
    scope: WORKSPACE_ONLY,
    options: [option('--status <status>', 'pending, applied, rejected, stale or expired')],
    run: lazy(changes, (m) => m.changesList),
  },
  {
    name: 'changes show',
    args: [['<id>']],
    description: 'Show a change request (proposed values only with --reveal, audited)',
    scope: WORKSPACE_ONLY,
    options: [option('--reveal', 'show the proposed values (needs reveal in its environment)')],
    run: lazy(changes, (m) => m.changesShow),
  },
  {
    name: 'changes approve',
    args: [['<id>']],
    description: 'Approve a change request (another Owner/Admin); the last approval needed applies it',
    scope: WORKSPACE_ONLY,
    options: [option('--comment <text>', 'a note kept with the approval')],
    run: lazy(changes, (m) => m.changesApprove),
  },
  {
    name: 'changes reject',
    args: [['<id>']],
    description: 'Reject a change request; one rejection ends it',
    scope: WORKSPACE_ONLY,
    options: [option('--comment <text>', 'a note kept with the rejection')],
    run: lazy(changes, (m) => m.changesReject),
  },

  { group: 'token', description: 'Personal access tokens' },
  {
    name: 'token create',
    args: [['<name>']],
    description: 'Create a token (printed once)',
    scope: WORKSPACE_ONLY,
    options: [option('--expires-in-days <n>', 'expiry in days')],
    run: lazy(token, (m) => m.tokenCreate),
  },
  { name: 'token list', description: 'List your tokens', scope: WORKSPACE_ONLY, run: lazy(token, (m) => m.tokenList) },
  { name: 'token revoke', args: [['<id>']], description: 'Revoke a token', scope: WORKSPACE_ONLY, run: lazy(token, (m) => m.tokenRevoke) },
  {
    name: 'token create-service',
    args: [['<name>']],
    description: "Create a service token scoped to a project's environments (printed once)",
    scope: SCOPED,
    options: [
      option('--env <env...>', 'environments (ids or slugs, several allowed; default: all)'),
      option('--access <access>', 'read (list and reveal) or write', 'read'),
      option('--expires-in-days <n>', 'expiry in days'),
    ],
    run: lazy(token, (m) => m.serviceTokenCreate),
  },
  {
    name: 'token list-services',
    description: "List the workspace's service tokens",
    scope: WORKSPACE_ONLY,
    run: lazy(token, (m) => m.serviceTokenList),
  },
  {
    name: 'token revoke-service',
    args: [['<id>']],
    description: 'Revoke a service token',
    scope: WORKSPACE_ONLY,
    run: lazy(token, (m) => m.serviceTokenRevoke),
  },

  { group: 'machine', description: 'Machine identities: client credentials exchanged for short-lived access tokens' },
  {
    name: 'machine create',
    args: [['<name>']],
    description: 'Create a machine identity (prints its client secret once)',
    scope: SCOPED,
    options: [
      option('--env <env...>', 'environments (ids or slugs, several allowed; default: all)'),
      option('--access <access>', 'read (list and reveal) or write', 'read'),
      option('--cidr <cidr...>', 'allow only these addresses (CIDR), for the exchange and every use of its tokens'),
      option('--ttl <seconds>', 'access-token lifetime, 60–3600 (default 3600)'),
      option('--oidc-issuer <url>', 'trust this OIDC issuer’s ID tokens (e.g. https://token.actions.githubusercontent.com)'),
      repeatable('--oidc-audience <aud>', 'an audience the ID token must name (repeatable)'),
      repeatable('--oidc-claim <name=value>', 'a claim condition, exact or with * globs (repeatable; all must match)'),
      option('--oidc-limit-ttl', 'an access token from an ID token lives no longer than the ID token had left'),
      option('--client-secret', 'with --oidc-issuer: issue a client secret too (default: none)'),
    ],
    run: lazy(machine, (m) => m.machineCreate),
  },
  {
    name: 'machine trust',
    args: [['<id>', 'the machine identity (client id)']],
    description: 'Trust one more OIDC rule for a machine identity: issuer, audiences and claim conditions',
    scope: WORKSPACE_ONLY,
    options: [
      required('--oidc-issuer <url>', 'the OIDC issuer URL'),
      repeatable('--oidc-audience <aud>', 'an audience the ID token must name (repeatable)'),
      repeatable('--oidc-claim <name=value>', 'a claim condition, exact or with * globs (repeatable; all must match)'),
    ],
    run: lazy(machine, (m) => m.machineTrust),
  },
  {
    name: 'machine rules',
    args: [['<id>', 'the machine identity (client id)']],
    description: 'List the OIDC rules a machine identity trusts',
    scope: WORKSPACE_ONLY,
    run: lazy(machine, (m) => m.machineRules),
  },
  {
    name: 'machine untrust',
    args: [
      ['<id>', 'the machine identity (client id)'],
      ['<rule>', 'the rule id (coffer machine rules ID)'],
    ],
    description: 'Remove one OIDC rule of a machine identity',
    scope: WORKSPACE_ONLY,
    run: lazy(machine, (m) => m.machineUntrust),
  },
  { name: 'machine list', description: 'List machine identities', scope: WORKSPACE_ONLY, run: lazy(machine, (m) => m.machineList) },
  {
    name: 'machine revoke',
    args: [['<id>']],
    description: 'Revoke a machine identity and its live access tokens',
    scope: WORKSPACE_ONLY,
    run: lazy(machine, (m) => m.machineRevoke),
  },
  {
    name: 'machine token',
    description:
      'Exchange an OIDC ID token (--oidc-token or COFFER_OIDC_TOKEN), or COFFER_CLIENT_ID and COFFER_CLIENT_SECRET, for an access token and print it (export COFFER_TOKEN=$(coffer machine token))',
    options: [
      option('--url <url>', 'server URL (default: COFFER_URL or http://127.0.0.1:8700)'),
      option('--client-id <id>', 'the client id (default: COFFER_MACHINE_ID or COFFER_CLIENT_ID)'),
      option('--id <id>', 'the same as --client-id'),
      option(
        '--oidc-token <jwt>',
        "the workload's OIDC ID token (default: COFFER_OIDC_TOKEN; the variable keeps it out of the process list)",
      ),
      JSON_OUT,
    ],
    run: lazy(machine, (m) => m.machineToken),
  },

  { group: 'members', description: 'Workspace members and project roles' },
  { name: 'members list', description: 'List members and their roles', scope: WORKSPACE_ONLY, run: lazy(members, (m) => m.membersList) },
  {
    name: 'members set-role',
    args: [
      ['<member>', 'email or user id'],
      ['<role>', 'owner, admin, member or auditor (reads the audit log and metadata, never secrets)'],
    ],
    description: "Change a member's workspace role",
    scope: WORKSPACE_ONLY,
    run: lazy(members, (m) => m.membersSetRole),
  },
  {
    name: 'members remove',
    args: [['<member>', 'email or user id']],
    description: 'Remove a member (their tokens of this workspace are revoked)',
    scope: WORKSPACE_ONLY,
    run: lazy(members, (m) => m.membersRemove),
  },
  {
    name: 'members project-role',
    args: [
      ['<member>', 'email or user id'],
      ['<role>', 'admin, developer or viewer'],
    ],
    description: 'Give a member a role on the project',
    scope: SCOPED,
    run: lazy(members, (m) => m.membersProjectRole),
  },

  { group: 'invite', description: 'Invitations by email' },
  {
    name: 'invite create',
    args: [['<email>']],
    description: 'Invite someone (prints the accept link; mails it when mail is set up)',
    scope: SCOPED,
    options: [
      option('--role <role>', 'workspace role: member, admin, owner or auditor (an auditor takes no --project)', 'member'),
      option('--project-role <role>', 'with --project: admin, developer or viewer', 'developer'),
      option('--expires-in-days <n>', 'days the invitation stays valid (default 7, at most 30)'),
    ],
    run: lazy(members, (m) => m.inviteCreate),
  },
  { name: 'invite list', description: 'List invitations', scope: WORKSPACE_ONLY, run: lazy(members, (m) => m.inviteList) },
  {
    name: 'invite revoke',
    args: [['<id>']],
    description: 'Revoke a pending invitation',
    scope: WORKSPACE_ONLY,
    run: lazy(members, (m) => m.inviteRevoke),
  },
  {
    name: 'invite accept',
    args: [['<token>']],
    description: 'Accept an invitation as the signed-in person',
    scope: WORKSPACE_ONLY,
    options: [option('--token-name <name>', 'also create a personal token for the new workspace (printed once)')],
    run: lazy(members, (m) => m.inviteAccept),
  },
]
