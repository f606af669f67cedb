import { CommanderError } from 'commander'
import { isUserError } from './exit-error.js'
import { InternalError } from './internal-error.js'
import { buildProgram } from './program.js'

/**
 * The CLI entry point: runs argv through the command table (command-table.ts) and sets the
 * exit code. A user error prints one line (`coffer: <message>`) and exits with its code; a
 * bug prints an InternalError asking for a report and exits with 70.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    process.exitCode = await report(err)
  }
}

/** Prints what went wrong (commander has printed its own) and returns the exit code. */
async function report(thrown: unknown): Promise<number> {
  const { toExitError } = await import('./session.js')
  const err = toExitError(thrown)
  if (err instanceof CommanderError) return err.exitCode
  // Loaded only on failure: every message is scrubbed of tokens, URL credentials and $HOME.
  const { scrub } = await import('../scrub.js')
  if (isUserError(err)) {
    process.stderr.write(`coffer: ${scrub(err.message)}\n`)
    return err.exitCode ?? 1
  }
  const bug = new InternalError(err)
  process.stderr.write(bug.report(scrub))
  return bug.exitCode
}
