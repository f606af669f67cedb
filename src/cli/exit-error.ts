/**
 * A user-facing failure: the CLI prints the message on one line to stderr and exits with
 * `exitCode`. Anything else that escapes a command is a bug (reported as such).
 */
export class ExitError extends Error {
  readonly exitCode: number
  readonly code: string
  constructor(message: string, options: { exitCode?: number; code?: string } = {}) {
    super(message)
    this.name = 'ExitError'
    this.exitCode = options.exitCode ?? 1
    this.code = options.code ?? 'ERR_CLI'
  }
}
