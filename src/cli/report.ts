import { isUserError } from './exit-error.js'
import { InternalError } from './internal-error.js'

/**
 * Prints what went wrong with a command and returns the exit code: a user error prints one
 * line (`coffer: <message>`) and exits with its code; a bug prints an InternalError asking for
 * a report and exits with 70. Commander's own errors are main()'s (commander has printed them).
 * A write a protected environment turned into a change request prints the request's id on
 * stdout and what it waits for on stderr, and exits 0.
 */
export async function report(thrown: unknown): Promise<number> {
  // A write to a protected environment was proposed, not applied: no failure, but say so.
  const { CofferChangeRequested } = await import('../client/client.js')
  if (thrown instanceof CofferChangeRequested) {
    const { describeProposed } = await import('./commands/changes.js')
    process.stdout.write(`${thrown.changeRequest.id}\n`)
    process.stderr.write(`${describeProposed(thrown.changeRequest)}\n`)
    return 0
  }
  const { toExitError } = await import('./session.js')
  const err = toExitError(thrown)
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
