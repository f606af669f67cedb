/**
 * A bug: anything that escapes a command and is not a user error (an ExitError or another
 * error with a stable `ERR_` code). The CLI prints it with its stack and asks for a report,
 * and exits with 70 (EX_SOFTWARE), so scripts can tell a bug from a refusal.
 */
export class InternalError extends Error {
  readonly exitCode = 70
  constructor(readonly thrown: unknown) {
    super((thrown as Error)?.stack ?? String(thrown))
    this.name = 'InternalError'
  }

  /** The first line of what was thrown (its message, without the stack). */
  get firstLine(): string {
    return this.message.split('\n')[0] ?? ''
  }

  /** The lines printed to stderr, the error text passed through `scrub` first. */
  report(scrub: (text: string) => string): string {
    return `coffer: internal error: ${scrub(this.message)}\nThis is a bug; please report it with the lines above.\n`
  }
}
