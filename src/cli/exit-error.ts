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

/**
 * Codes the CLI itself reports (beside the server's, in src/errors.ts), documented in
 * docs/errors.md. The CLI prints them as `coffer: <message> (<code>)`, or with --json as
 * `{"error":{"code","message"}}` on stderr (report.ts).
 */
export const CLI_ERROR_CODES = [
  'ERR_CLI',
  'ERR_NOT_LOGGED_IN',
  'ERR_NO_PROJECT',
  'ERR_NO_CREDENTIAL_STORE',
  'ERR_LOGIN_TIMEOUT',
  'ERR_CREDENTIAL_STORE',
  'ERR_CONNECTION',
  'ERR_BAD_RESPONSE',
  'ERR_HTTP',
  'ERR_COMMAND_NOT_FOUND',
  'ERR_COMMAND_NOT_EXECUTABLE',
  'ERR_SECRET_ENV',
  'ERR_IMPORT_FORMAT',
  'ERR_AUDIT_CHAIN_BROKEN',
  'ERR_WEBHOOK_SIGNATURE',
  'ERR_CHANGE_REQUEST_STALE',
  'ERR_USAGE',
  'ERR_MOUNT_EXISTS',
  'ERR_FALLBACK_UNAVAILABLE',
  'ERR_PORT_IN_USE',
  'ERR_PORT_DENIED',
  'ERR_CONFIRMATION_REQUIRED',
  'ERR_DOCTOR_FAILED',
] as const

/**
 * A failure the CLI reports as the user's, on one line: an ExitError, or any error carrying a
 * stable `ERR_` code (the server's CofferErrors raised by host commands, ConfigError,
 * FormatError). Anything else is a bug (InternalError).
 */
export function isUserError(err: unknown): err is Error & { exitCode?: number } {
  return (
    err instanceof ExitError ||
    (err as { code?: string })?.code === 'ERR_CONFIG' ||
    !!(err as { code?: string })?.code?.startsWith?.('ERR_')
  )
}
