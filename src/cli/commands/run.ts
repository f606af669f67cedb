import { CofferApiError, CofferClient, CofferConnectionError, type Scope, type Secret } from '../../client/client.js'
import { VERSION } from '../../version.js'
import { awsVariables } from '../aws-variables.js'
import { caFromEnv } from '../ca.js'
import { ExitError } from '../exit-error.js'
import type { RunOptions } from '../run-argv.js'
import { planScopes, resolveScopes, type ScopePlan } from '../run-scopes.js'
import { credentials } from '../session.js'

/** What `coffer run` fetched: the merged values (later environments win) and each environment's keys and versions. */
export interface Fetched {
  readonly secrets: Record<string, string>
  /** Per scope, in order: key → version (what --watch compares the server's events with). */
  readonly versions: ReadonlyArray<ReadonlyMap<string, number>>
}

/** How `coffer run` reads the environments it merges: once at start, and again on a change (--watch). */
export interface Source {
  readonly client: CofferClient
  readonly token: string
  readonly plan: ScopePlan
  /** The scopes, once resolved. */
  scopes?: Scope[]
  fetch(): Promise<Fetched>
}

/** Merges lists of secrets in order: a later environment's value wins. */
export function merge(lists: readonly Secret[][]): Fetched {
  const secrets: Record<string, string> = Object.create(null)
  const versions: Array<Map<string, number>> = []
  for (const list of lists) {
    const v = new Map<string, number>()
    for (const s of list) {
      secrets[s.key] = s.value ?? ''
      v.set(s.key, s.version)
    }
    versions.push(v)
  }
  return { secrets, versions }
}

/**
 * Whether a failure means the server cannot be reached (a snapshot may stand in): no
 * connection, a timeout, a 502/503/504 (a gateway without its server, or Coffer without its
 * database), or any 5xx that is not Coffer's own answer (a proxy's page). Never a refusal
 * (401, 403, 404…), nor Coffer's own 500.
 */
export function unreachable(err: unknown): boolean {
  if (err instanceof CofferConnectionError) return true
  if (!(err instanceof CofferApiError) || err.status < 500) return false
  return err.status === 502 || err.status === 503 || err.status === 504 || err.code === 'ERR_HTTP' || err.code === 'ERR_BAD_RESPONSE'
}

/**
 * --db NAME…: a fresh login role from each db role of the (last) environment. Each sets
 * COFFER_DB_<NAME>_URL; the last one also DATABASE_URL and the PG* variables libpq reads.
 */
async function databaseVariables(client: CofferClient, scope: Scope, names: readonly string[]): Promise<Record<string, string>> {
  const vars: Record<string, string> = {}
  for (const name of names) {
    const c = (await client.dbCredentials(scope, name)).credentials
    vars[`COFFER_DB_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`] = c.url
    Object.assign(vars, {
      DATABASE_URL: c.url,
      PGHOST: c.host,
      PGPORT: String(c.port),
      PGDATABASE: c.database,
      PGUSER: c.username,
      PGPASSWORD: c.password,
    })
  }
  return vars
}

/** What the caller of {@link run} may do at its points. */
export interface RunHooks {
  /** Called once the secrets are fetched, just before the command starts (bin/coffer.js saves its code cache here). */
  beforeStart?: () => void
}

/**
 * `coffer run [options] -- CMD [ARGS...]`: fetches the secrets of one or more environments in
 * one audited call each and runs CMD with them as variables (later environments win). CMD
 * takes this process's place where it can (run-exec.ts); otherwise it runs as a child, signals
 * are forwarded to it, and its exit code is returned. CMD does not inherit COFFER_TOKEN unless
 * --pass-token. --watch, --mount and --fallback load their code only when given (and always
 * run CMD as a child: coffer stays to restart it, or to remove the file).
 */
export async function run(argv: string[], opts: RunOptions, hooks: RunHooks = {}): Promise<number> {
  const [command, ...args] = argv
  if (!command) throw new ExitError('Give the command to run after --, e.g. coffer run -- node server.js')
  const withFallback = opts.fallback !== undefined || opts.fallbackOnly === true
  const creds = await credentials(opts)
  const client = new CofferClient({
    url: creds.url,
    token: creds.token,
    userAgent: `coffer-cli/${VERSION}`,
    ca: caFromEnv(),
    // An unreachable server is found out sooner when a snapshot can stand in.
    ...(withFallback ? { timeoutMs: 10_000 } : {}),
  })
  const plan = planScopes(opts)
  const source: Source = {
    client,
    token: creds.token,
    plan,
    async fetch() {
      source.scopes ??= await resolveScopes(client, plan)
      const fetched = merge(await Promise.all(source.scopes.map((s) => client.listSecrets(s, { reveal: true }))))
      if (!opts.db?.length && opts.aws === undefined) return fetched
      const last = source.scopes[source.scopes.length - 1]!
      // Made once per `coffer run` (a restart under --watch keeps them: they expire by themselves).
      if (opts.db?.length) databases ??= await databaseVariables(client, last, opts.db)
      // An STS session of at most an hour: the child's AWS SDK reads these variables.
      if (opts.aws !== undefined) aws ??= awsVariables((await client.awsCredentials(last, opts.aws)).credentials)
      return { secrets: { ...fetched.secrets, ...databases, ...aws }, versions: fetched.versions }
    },
  }
  let databases: Record<string, string> | undefined
  let aws: Record<string, string> | undefined
  const extras = withFallback || opts.watch || opts.mount !== undefined
  // What starts the command loads while the server answers: after a turn of the event loop, in
  // which the connection made by fetch() is established and the request written (loaded at
  // once, it would hold the request back). Without extras, the command takes coffer's place
  // (run-exec.ts); where it cannot, it starts as a child (node:child_process, ~3 ms to load).
  const [fetched, starter] = await Promise.all([
    extras ? undefined : source.fetch(),
    new Promise((resolve) => setImmediate(resolve)).then(async () => {
      const inPlace = extras ? undefined : await import('../run-exec.js')
      return inPlace?.canExec() ? { inPlace, child: undefined } : { inPlace: undefined, child: await import('../run-process.js') }
    }),
  ])
  // The child never sees the token that fetched its secrets unless asked (a secret of that name is set all the same).
  const drop = opts.passToken ? [] : ['COFFER_TOKEN']
  const runOpts = { preserveEnv: !!opts.preserveEnv, drop }
  hooks.beforeStart?.()
  // Returns only where the command cannot take coffer's place: it then starts as a child, which reports why.
  if (fetched && starter.inPlace) starter.inPlace.execInPlace(command, args, fetched.secrets, runOpts)
  const { CommandNotExecutableError, CommandNotFoundError, runWithSecrets } = starter.child ?? (await import('../run-process.js'))
  try {
    if (fetched) return await runWithSecrets(command, args, fetched.secrets, runOpts)
    const { runWithExtras } = await import('../run-extras.js')
    return await runWithExtras(command, args, source, opts, drop)
  } catch (err) {
    if (err instanceof CommandNotFoundError || err instanceof CommandNotExecutableError) {
      throw new ExitError(err.message, { exitCode: err.exitCode, code: err.code })
    }
    throw err
  }
}
