// The shape of the CLI's command table (command-table.ts): data that program.ts turns into
// commander commands. Keeping it data lets a reader see every command, option and help text
// in one place, and keeps each command's code out of start-up until it runs.

/** What commander passes a command: its arguments, then its options, then the command. */
// biome-ignore lint/suspicious/noExplicitAny: commander calls actions with positional arguments of any shape
export type Action = (...args: any[]) => Promise<void>

/** One option: commander's flags (`--env <env>`), its help text, and its default if any. */
export interface OptionSpec {
  readonly flags: string
  readonly description: string
  readonly default?: string
  /** Commander refuses to run the command without it. */
  readonly required?: boolean
  /** Every use is kept, in order, in an array (`--env a --env b`). */
  readonly repeatable?: boolean
}

/**
 * The options every command that talks to the server shares, added before its own:
 * --url and --workspace always, --project unless `project: false`, --env when `env: true`,
 * --json unless `json: false`.
 */
export interface ScopeFlags {
  readonly env?: boolean
  readonly project?: boolean
  readonly json?: boolean
}

/** A command: `name` is its words (`secrets set`); a two-word name needs its group declared before it. */
export interface CommandSpec {
  readonly name: string
  readonly description: string
  /** Positional arguments, commander style (`<key>`, `[command...]`), with optional help text. */
  readonly args?: ReadonlyArray<readonly [name: string, description?: string]>
  readonly scope?: ScopeFlags
  readonly options?: ReadonlyArray<OptionSpec>
  /** Options after the first argument belong to it (`coffer run -- cmd --flag`). */
  readonly passThroughOptions?: boolean
  /** Loads the command's module (only now) and runs it. */
  readonly run: Action
}

/** A group of commands (`secrets`): a name and its help text. */
export interface GroupSpec {
  readonly group: string
  readonly description: string
}

/** The table: groups and commands in the order `coffer --help` lists them. */
export type CommandTable = ReadonlyArray<CommandSpec | GroupSpec>

/** An option with no default. */
export function option(flags: string, description: string, defaultValue?: string): OptionSpec {
  return defaultValue === undefined ? { flags, description } : { flags, description, default: defaultValue }
}

/** An option that may be given several times; its values are kept in order. */
export function repeatable(flags: string, description: string): OptionSpec {
  return { flags, description, repeatable: true }
}

/** An option commander requires. */
export function required(flags: string, description: string): OptionSpec {
  return { flags, description, required: true }
}

/** An Action that imports its module when the command runs, then calls the function `pick` names. */
// biome-ignore lint/suspicious/noExplicitAny: each command's own parameter types
export function lazy<M>(load: () => Promise<M>, pick: (m: M) => (...args: any[]) => Promise<unknown>): Action {
  return async (...args) => {
    await pick(await load())(...args)
  }
}
