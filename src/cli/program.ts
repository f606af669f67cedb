import { Command } from 'commander'
import { VERSION } from '../version.js'
import type { CommandSpec, CommandTable, ScopeFlags } from './command-spec.js'
import { COMMANDS } from './command-table.js'

/**
 * The commander program of a command table (by default the CLI's own). Every command and
 * group throws instead of exiting (exitOverride), so main() alone prints errors and sets the exit code.
 */
export function buildProgram(table: CommandTable = COMMANDS): Command {
  const program = new Command('coffer')
    .description('Coffer — a self-hosted secrets vault: server and CLI')
    .version(VERSION)
    .enablePositionalOptions()
    // main() prints commander's errors itself, as one line with a code (or JSON with --json);
    // subcommands inherit this setting from the program.
    .configureOutput({ outputError: () => {} })
  const groups = new Map<string, Command>()
  for (const entry of table) {
    if ('group' in entry) groups.set(entry.group, program.command(entry.group).description(entry.description))
    else addCommand(program, groups, entry)
  }
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.exitOverride()
  return program
}

function addCommand(program: Command, groups: ReadonlyMap<string, Command>, spec: CommandSpec): void {
  const words = spec.name.split(' ')
  const parent = words.length === 1 ? program : groups.get(words[0] ?? '')
  if (!parent || words.length > 2) throw new Error(`command table: "${spec.name}" needs its group declared before it`)
  const cmd = parent.command(words[words.length - 1] ?? '').description(spec.description)
  for (const [name, description] of spec.args ?? []) cmd.argument(name, description)
  if (spec.scope) addScopeOptions(cmd, spec.scope)
  for (const o of spec.options ?? []) {
    if (o.required) cmd.requiredOption(o.flags, o.description)
    else if (o.repeatable) cmd.option(o.flags, o.description, (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    else if (o.default !== undefined) cmd.option(o.flags, o.description, o.default)
    else cmd.option(o.flags, o.description)
  }
  if (spec.passThroughOptions) cmd.passThroughOptions()
  cmd.action(spec.run)
}

function addScopeOptions(cmd: Command, scope: ScopeFlags): void {
  cmd.option('--url <url>', 'server URL (default: COFFER_URL, the login, or http://127.0.0.1:8700)')
  cmd.option('--workspace <ws>', 'workspace id or slug (default: .coffer.json, else the token’s workspace)')
  if (scope.project !== false) cmd.option('--project <project>', 'project id or slug (default: .coffer.json)')
  if (scope.env) cmd.option('--env <env>', 'environment id or slug (default: .coffer.json)')
  if (scope.json !== false) cmd.option('--json', 'print JSON')
}
