// Every error Coffer shows a client or a CLI user carries a stable `code`. Tests assert the
// code, never the message, and `test/errors-doc.test.ts` fails when a code below is missing
// from docs/errors.md. Messages must never contain a secret value, a token or a key.

/** Base class: a stable machine-readable code and the HTTP status it maps to. */
export class CofferError extends Error {
  readonly code: string
  readonly status: number
  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.status = status
  }
}

/** Input that does not match the route's schema or the domain's rules. */
export class ValidationError extends CofferError {
  readonly issues: Array<{ path: string; message: string }>
  constructor(message: string, issues: Array<{ path: string; message: string }> = []) {
    super('ERR_VALIDATION', 400, message)
    this.issues = issues
  }
}

/** The request body is not valid JSON. */
export class MalformedBodyError extends CofferError {
  constructor(message = 'The request body is not valid JSON.') {
    super('ERR_MALFORMED_BODY', 400, message)
  }
}

/** The body exceeds the server's size limit. */
export class PayloadTooLargeError extends CofferError {
  constructor(message = 'The request body is too large.') {
    super('ERR_PAYLOAD_TOO_LARGE', 413, message)
  }
}

/** The body's content type is not JSON. */
export class UnsupportedMediaTypeError extends CofferError {
  constructor(message = 'Send the request body as application/json.') {
    super('ERR_UNSUPPORTED_MEDIA_TYPE', 415, message)
  }
}

/** No credential, or one that is malformed, unknown, expired or revoked. */
export class UnauthenticatedError extends CofferError {
  constructor(message = 'A valid Bearer token is required.') {
    super('ERR_UNAUTHENTICATED', 401, message)
  }
}

/** Authenticated, inside the right workspace, but the role does not allow the action. */
export class ForbiddenError extends CofferError {
  constructor(message = 'Your role does not allow this action.') {
    super('ERR_FORBIDDEN', 403, message)
  }
}

/**
 * The resource does not exist — or it belongs to another workspace. The two look alike on
 * purpose so that ids of other tenants reveal nothing.
 */
export class NotFoundError extends CofferError {
  constructor(what = 'resource') {
    super('ERR_NOT_FOUND', 404, `The ${what} was not found.`)
  }
}

/** No route matches the method and path. */
export class RouteNotFoundError extends CofferError {
  constructor() {
    super('ERR_ROUTE_NOT_FOUND', 404, 'No such endpoint.')
  }
}

/** A unique name is already taken (project, environment, token name). */
export class AlreadyExistsError extends CofferError {
  constructor(what: string) {
    super('ERR_ALREADY_EXISTS', 409, `The ${what} already exists.`)
  }
}

/** Check-and-set failed: the secret's current version is not the one the caller named. */
export class VersionConflictError extends CofferError {
  readonly currentVersion: number
  constructor(currentVersion: number) {
    super('ERR_VERSION_CONFLICT', 409, `The secret is at version ${currentVersion}, not the version given in ifVersion.`)
    this.currentVersion = currentVersion
  }
}

/**
 * A ciphertext could not be opened. Decryption never says why it failed: a wrong key, a
 * moved row and a flipped bit look alike.
 */
export class DecryptionError extends CofferError {
  constructor() {
    super('ERR_DECRYPTION_FAILED', 500, 'A stored value could not be decrypted.')
  }
}

/** The audit entry for this request could not be written, so the request did not happen. */
export class AuditUnavailableError extends CofferError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_AUDIT_UNAVAILABLE', 503, 'The audit log could not be written; the request was not carried out.', options)
  }
}

/** A setting is invalid; the message names the setting. */
export class ConfigError extends CofferError {
  readonly setting: string
  constructor(setting: string, message: string) {
    super('ERR_CONFIG', 500, `${setting}: ${message}`)
    this.setting = setting
  }
}

/** The root key does not open this database's data keys (wrong COFFER_ROOT_KEY or key file). */
export class RootKeyMismatchError extends CofferError {
  constructor() {
    super('ERR_ROOT_KEY_MISMATCH', 500, 'The root key does not match this database: its data keys cannot be unwrapped.')
  }
}

/** The database was migrated by a newer Coffer than this one. */
export class SchemaTooNewError extends CofferError {
  constructor(found: number, known: number) {
    super('ERR_SCHEMA_TOO_NEW', 500, `The database schema is at version ${found}, but this Coffer knows only up to ${known}. Upgrade Coffer.`)
  }
}

/** The server is not ready (still starting, or shutting down). */
export class NotReadyError extends CofferError {
  constructor() {
    super('ERR_NOT_READY', 503, 'The server is not ready.')
  }
}

/** A bug: the client sees only this code and the request id. */
export class InternalError extends CofferError {
  constructor(message = 'An internal error occurred.', options?: { cause?: unknown }) {
    super('ERR_INTERNAL', 500, message, options)
  }
}

/** Every code a client or CLI user can see, for docs/errors.md and its test. */
export const ERROR_CODES = [
  'ERR_VALIDATION',
  'ERR_MALFORMED_BODY',
  'ERR_PAYLOAD_TOO_LARGE',
  'ERR_UNSUPPORTED_MEDIA_TYPE',
  'ERR_UNAUTHENTICATED',
  'ERR_FORBIDDEN',
  'ERR_NOT_FOUND',
  'ERR_ROUTE_NOT_FOUND',
  'ERR_ALREADY_EXISTS',
  'ERR_VERSION_CONFLICT',
  'ERR_DECRYPTION_FAILED',
  'ERR_AUDIT_UNAVAILABLE',
  'ERR_CONFIG',
  'ERR_ROOT_KEY_MISMATCH',
  'ERR_SCHEMA_TOO_NEW',
  'ERR_NOT_READY',
  'ERR_INTERNAL',
] as const
