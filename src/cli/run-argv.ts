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
  env?: string
  preserveEnv?: true
}

/** `coffer run`'s command line, read: the command to start with its arguments, and the options. */
export interface RunInvocation {
  readonly command: string[]
  readonly opts: RunOptions
}

const VALUE_OPTIONS: Readonly<Record<string, 'url' | 'workspace' | 'project' | 'env'>> = {
  '--url': 'url',
  '--workspace': 'workspace',
  '--project': 'project',
  '--env': 'env',
}

/**
 * Reads the arguments after `run` exactly as commander reads them for the `run` command, or
 * returns null when they are not among the spellings read here (then commander decides).
 * Guarantees: a non-null answer has a non-empty command; options take the last value given.
 */
export function parseRunArgs(args: readonly string[]): RunInvocation | null {
  const opts: RunOptions = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    // `--` ends the options; so does the first argument that is not one (commander's
    // passThroughOptions): what follows belongs to the command, `--` and options included.
    if (arg === '--') return invocation(args.slice(i + 1), opts)
    if (arg.length < 2 || arg[0] !== '-') return invocation(args.slice(i), opts)
    if (arg === '--preserve-env') {
      opts.preserveEnv = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = VALUE_OPTIONS[eq === -1 ? arg : arg.slice(0, eq)]
    if (name === undefined) return null
    if (eq !== -1) {
      opts[name] = arg.slice(eq + 1)
      continue
    }
    const value = args[++i]
    // @NOTE commander takes a value that looks like an option (`--env --project x`) as the
    // value; such a line is most likely a forgotten value, and commander says what it makes of it.
    if (value === undefined || (value.length > 1 && value[0] === '-')) return null
    opts[name] = value
  }
  return null
}

function invocation(command: string[], opts: RunOptions): RunInvocation | null {
  return command.length === 0 ? null : { command, opts }
}
