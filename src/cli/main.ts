import { CommanderError } from 'commander'
import { buildProgram } from './program.js'
import { report } from './report.js'

/**
 * The CLI entry point: runs argv through the command table (command-table.ts) and sets the
 * exit code. A user error prints one line (`coffer: <message>`) and exits with its code; a
 * bug prints an InternalError asking for a report and exits with 70 (report.ts). Commander
 * has printed its own errors: their exit code is all that is left to set.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    process.exitCode = err instanceof CommanderError ? err.exitCode : await report(err)
  }
}
