import { isUserError } from './exit-error.js'
import { InternalError } from './internal-error.js'

/** How a failure is printed: one line of text, or (with --json) one JSON object, on stderr. */
export interface ReportOptions {
  json?: boolean
}

/**
 * Prints what went wrong with a command and returns the exit code. A user error is one line,
 * `coffer: <message> (<CODE>)`, or with `json` the object `{"error":{"code","message"}}`, and
 * exits with its code; a bug prints an InternalError asking for a report (with `json`: code
 * ERR_INTERNAL, no stack) and exits with 70. Every message is scrubbed of tokens, URL
 * credentials and $HOME first. A write a protected environment turned into a change request
 * prints the request's id on stdout and what it waits for on stderr, and exits 0.
 */
export async function report(thrown: unknown, options: ReportOptions = {}): Promise<number> {
  // A write to a protected environment was proposed, not applied: no failure, but say so.
  const { CofferChangeRequested } = await import('../client/client.js')
  if (thrown instanceof CofferChangeRequested) {
    const { describeProposed } = await import('./change-request-text.js')
    process.stdout.write(`${thrown.changeRequest.id}\n`)
    process.stderr.write(`${describeProposed(thrown.changeRequest)}\n`)
    return 0
  }
  const { toExitError } = await import('./session.js')
  const err = toExitError(thrown)
  // Loaded only on failure.
  const { scrub } = await import('../scrub.js')
  if (isUserError(err)) {
    const code = (err as { code?: string }).code ?? 'ERR_CLI'
    printError(code, oneLine(scrub(err.message)), options)
    return err.exitCode ?? 1
  }
  const bug = new InternalError(err)
  if (options.json) printError('ERR_INTERNAL', `internal error: ${oneLine(scrub(bug.firstLine))}; this is a bug, please report it`, options)
  else process.stderr.write(bug.report(scrub))
  return bug.exitCode
}

/** Prints one user error as `report` does (commander's usage errors come here too). */
export function printError(code: string, message: string, options: ReportOptions = {}): void {
  const text = oneLine(message)
  if (options.json) {
    process.stderr.write(`${JSON.stringify({ error: { code, message: stripCode(text, code) } })}\n`)
    return
  }
  process.stderr.write(`coffer: ${text.endsWith(`(${code})`) ? text : `${text} (${code})`}\n`)
}

function oneLine(message: string): string {
  return message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ')
}

function stripCode(message: string, code: string): string {
  const suffix = ` (${code})`
  return message.endsWith(suffix) ? message.slice(0, -suffix.length) : message
}
