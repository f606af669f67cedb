import { CommanderError } from 'commander'
import { buildProgram } from './program.js'
import { printError, report } from './report.js'

/** Commander's answers that are not failures of the command line: help and the version. */
const COMMANDER_SHOWN = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version'])

/** A command-line mistake commander found (unknown command or option, missing argument): exit 2. */
export const USAGE_EXIT_CODE = 2

/**
 * The CLI entry point: runs argv through the command table (command-table.ts) and sets the
 * exit code. Every failure is one line on stderr with a stable code — `coffer: <message>
 * (<CODE>)`, or with --json `{"error":{"code","message"}}` — and a non-zero exit code: a
 * user error its own (report.ts), a usage error commander found ERR_USAGE and 2, a bug an
 * InternalError asking for a report and 70.
 */
export async function main(argv: string[]): Promise<void> {
  const json = wantsJson(argv)
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    if (!(err instanceof CommanderError)) {
      process.exitCode = await report(err, { json })
      return
    }
    if (COMMANDER_SHOWN.has(err.code)) {
      process.exitCode = err.exitCode
      return
    }
    const hint = err.code === 'commander.unknownCommand' ? ' Run coffer --help for the commands.' : ''
    printError('ERR_USAGE', `${err.message.replace(/^error: /, '')}${hint}`, { json })
    process.exitCode = USAGE_EXIT_CODE
  }
}

/** --json before any `--` (after it, the words are another program's). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--')
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json')
}
