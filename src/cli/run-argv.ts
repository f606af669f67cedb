// The arguments of `coffer run`, read without commander: `coffer run` is started before every
// process it wraps, and loading commander and the command table is most of its start-up.
// Only the plain, well-formed spellings are read here; anything else (help, an unknown or
// misspelt option, a missing value, no command) returns null and goes to the full CLI, whose
// commander reading is the reference (test/cli/run-argv.test.ts compares the two).

/** The options of `coffer run`, keyed as commander names them (command-table.ts). */
export interface RunOptions {
  url?: string
  workspace?: string
  project?: string
  /** Every --env, in order (`ENV`, or `PROJECT/ENV`); later ones win. */
  env?: string[]
  preserveEnv?: true
  watch?: true
  watchSignal?: string
  watchDebounce?: string
  mount?: string
  format?: string
  /** --fallback alone (true), or with its PATH. */
  fallback?: true | string
  fallbackMaxAge?: string
  fallbackOnly?: true
  passToken?: true
  /** --db NAME…: dynamic database credentials to add (read by commander only: not among the fast spellings). */
  db?: string[]
  /** --aws ROLE: an STS session of this AWS role (read by commander only, like --db). */
  aws?: string
}
/** `coffer run`'s command line, read: the command to start with its arguments, and the options. */
export interface RunInvocation {
  readonly command: string[]
  readonly opts: RunOptions
}

type ValueOption = 'url' | 'workspace' | 'project' | 'watchSignal' | 'watchDebounce' | 'mount' | 'format' | 'fallbackMaxAge'

const VALUE_OPTIONS: Readonly<Record<string, ValueOption | 'env'>> = {
  '--url': 'url',
  '--workspace': 'workspace',
  '--project': 'project',
  '--env': 'env',
  '--watch-signal': 'watchSignal',
  '--watch-debounce': 'watchDebounce',
  '--mount': 'mount',
  '--format': 'format',
  '--fallback-max-age': 'fallbackMaxAge',
}

const FLAGS: Readonly<Record<string, 'preserveEnv' | 'watch' | 'fallbackOnly' | 'passToken'>> = {
  '--preserve-env': 'preserveEnv',
  '--watch': 'watch',
  '--fallback-only': 'fallbackOnly',
  '--pass-token': 'passToken',
}

/**
 * Reads the arguments after `run` exactly as commander reads them for the `run` command, or
 * returns null when they are not among the spellings read here (then commander decides).
 * Guarantees: a non-null answer has a non-empty command; options take the last value given, but
 * every --env is kept, in order.
 */
export function parseRunArgs(args: readonly string[]): RunInvocation | null {
  const opts: RunOptions = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    // `--` ends the options; so does the first argument that is not one (commander's
    // passThroughOptions): what follows belongs to the command, `--` and options included.
    if (arg === '--') return invocation(args.slice(i + 1), opts)
    if (arg.length < 2 || arg[0] !== '-') return invocation(args.slice(i), opts)
    const flag = FLAGS[arg]
    if (flag !== undefined) {
      opts[flag] = true
      continue
    }
    const eq = arg.indexOf('=')
    const optName = eq === -1 ? arg : arg.slice(0, eq)
    if (optName === '--fallback') {
      // An optional value, as commander reads it: `--fallback=PATH`, or the next argument unless it looks like an option.
      if (eq !== -1) opts.fallback = arg.slice(eq + 1)
      else {
        const next = args[i + 1]
        if (next !== undefined && !(next.length > 1 && next[0] === '-')) {
          opts.fallback = next
          i++
        } else opts.fallback = true
      }
      continue
    }
    const name = VALUE_OPTIONS[optName]
    if (name === undefined) return null
    let value: string | undefined
    if (eq !== -1) value = arg.slice(eq + 1)
    else {
      value = args[++i]
      // @NOTE commander takes a value that looks like an option (`--env --project x`) as the
      // value; such a line is most likely a forgotten value, and commander says what it makes of it.
      if (value === undefined || (value.length > 1 && value[0] === '-')) return null
    }
    if (name === 'env') opts.env = [...(opts.env ?? []), value]
    else opts[name] = value
  }
  return null
}

function invocation(command: string[], opts: RunOptions): RunInvocation | null {
  return command.length === 0 ? null : { command, opts }
}
