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

/**
 * The request itself is malformed before any route sees it: a bad request line, an invalid
 * percent-encoding in the URL. The answer echoes none of the input.
 */
export class MalformedRequestError extends CofferError {
  constructor() {
    super('ERR_MALFORMED_REQUEST', 400, 'The request is malformed.')
  }
}

/** A path segment is longer than any Coffer identifier can be. */
export class UriTooLongError extends CofferError {
  constructor() {
    super('ERR_URI_TOO_LONG', 414, 'The request URL is too long.')
  }
}

/** The request's headers exceed the server's limit. */
export class HeadersTooLargeError extends CofferError {
  constructor() {
    super('ERR_HEADERS_TOO_LARGE', 431, 'The request headers are too large.')
  }
}

/** The client did not send a whole request in time. */
export class RequestTimeoutError extends CofferError {
  constructor() {
    super('ERR_REQUEST_TIMEOUT', 408, 'The request was not received in time.')
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

/**
 * The audit log was tampered with: its recorded head, its stored tree, its entries and its
 * signed checkpoints disagree (rows deleted, or the head rewound), so no checkpoint is signed
 * over it. Verification (`GET …/audit/verify`) names what is wrong.
 */
export class AuditTamperedError extends CofferError {
  constructor(message: string) {
    super('ERR_AUDIT_TAMPERED', 409, message)
  }
}

/**
 * The database cannot be reached (a cut network, a restart or failover, a terminated
 * connection). The request was not carried out — or, for a write whose commit was cut off,
 * may have been: read before writing again. The node keeps running and serves again as
 * soon as the database answers.
 */
export class DatabaseUnavailableError extends CofferError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_DATABASE_UNAVAILABLE', 503, 'The database cannot be reached right now; try again shortly.', options)
  }
}

/**
 * The request's transaction kept losing deadlocks or serialization races to other
 * transactions, after every retry (transaction-retry.ts), or on SQLite waited out the busy
 * timeout for the write lock another connection held (write-lock-wait.ts). Nothing of it was written.
 */
export class DatabaseBusyError extends CofferError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_DATABASE_BUSY', 503, 'The database is too busy with conflicting changes right now; nothing was written. Try again.', options)
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

/** A root-key migration or rotation was started on this database and has not finished. */
export class RootKeyMigrationError extends CofferError {
  constructor(readonly migration: { from: string; to: string }) {
    super(
      'ERR_ROOT_KEY_MIGRATION_IN_PROGRESS',
      500,
      `A root-key migration from ${migration.from} to ${migration.to} has not finished: run the same \`coffer keys migrate\` or \`coffer keys rotate-root\` again to finish it before starting the server.`,
    )
  }
}

/** The database was migrated by a newer Coffer than this one. */
export class SchemaTooNewError extends CofferError {
  constructor(found: number, known: number) {
    super(
      'ERR_SCHEMA_TOO_NEW',
      500,
      `The database schema is at version ${found}, but this Coffer knows only up to ${known}. Upgrade Coffer.`,
    )
  }
}

/** A backup file that is not one, is truncated, or whose checksums or signature do not verify. */
export class BackupInvalidError extends CofferError {
  constructor(why: string) {
    super('ERR_BACKUP_INVALID', 500, `The backup is invalid: ${why}. Nothing was changed.`)
  }
}

/** A backup of another vault: signed by another audit key, or its keys are wrapped by another root key. */
export class BackupForeignError extends CofferError {
  constructor(why: string) {
    super('ERR_BACKUP_FOREIGN', 500, `The backup is not this vault's: ${why}. Nothing was changed.`)
  }
}

/** A restore was asked for while a server (or another tool) has the database open. */
export class BackupServerRunningError extends CofferError {
  constructor() {
    super(
      'ERR_BACKUP_SERVER_RUNNING',
      409,
      'A Coffer server (or another Coffer command) is using this database: stop every server on it, then restore. Nothing was changed.',
    )
  }
}

/** The backup cannot be restored into this database as it is (another engine, or another schema version). */
export class BackupSchemaMismatchError extends CofferError {
  constructor(message: string) {
    super('ERR_BACKUP_SCHEMA_MISMATCH', 409, `${message} Nothing was changed.`)
  }
}

/** The server is not ready (still starting, or shutting down). */
export class NotReadyError extends CofferError {
  constructor() {
    super('ERR_NOT_READY', 503, 'The server is not ready.')
  }
}

/**
 * Too many requests from this client, for this account or on this token. The same answer
 * whether or not the account exists; `retryAfter` (seconds) is also sent as `Retry-After`.
 */
export class RateLimitedError extends CofferError {
  readonly retryAfter: number
  constructor(retryAfter: number) {
    super('ERR_RATE_LIMITED', 429, `Too many requests; try again in ${retryAfter} s.`)
    this.retryAfter = retryAfter
  }
}

/** A destructive request did not carry the confirmation it needs (e.g. the workspace slug typed again). */
export class ConfirmationMismatchError extends CofferError {
  constructor(message: string) {
    super('ERR_CONFIRMATION_MISMATCH', 400, message)
  }
}

/**
 * A project or environment still holds secrets: deleting it destroys them for good, so the
 * request must say so with `force: true`.
 */
export class NotEmptyError extends CofferError {
  constructor(message: string) {
    super('ERR_NOT_EMPTY', 409, message)
  }
}

/** The environment is sealed: it is unsealed (by an Owner or Admin, audited) before it can be deleted. */
export class EnvironmentSealedError extends CofferError {
  constructor(message = 'The environment is sealed: an Owner or Admin unseals it first, then it can be deleted.') {
    super('ERR_ENVIRONMENT_SEALED', 409, message)
  }
}

/**
 * Check-and-set on a whole environment failed: its secrets changed since the preview whose
 * `state` was sent as `ifState`. Nothing was written.
 */
export class EnvironmentChangedError extends CofferError {
  readonly state: string
  constructor(state: string) {
    super('ERR_ENVIRONMENT_CHANGED', 409, 'The environment changed since the preview; nothing was written. Preview again and reapply.')
    this.state = state
  }
}

/**
 * The environment is sealed: people reveal or write its values only through an active
 * break-glass grant covering it (issue 4 §4).
 */
export class BreakGlassRequiredError extends CofferError {
  constructor(message = 'This environment is sealed: revealing or writing its values needs an active break-glass grant.') {
    super('ERR_BREAK_GLASS_REQUIRED', 403, message)
  }
}

/** A break-glass request cannot be approved or denied by the person who made it. */
export class BreakGlassSelfApprovalError extends CofferError {
  constructor() {
    super('ERR_BREAK_GLASS_SELF_APPROVAL', 403, 'You cannot approve or deny your own break-glass request.')
  }
}

/** This Owner or Admin has already approved or denied the request. */
export class BreakGlassAlreadyDecidedError extends CofferError {
  constructor() {
    super('ERR_BREAK_GLASS_ALREADY_DECIDED', 409, 'You have already approved or denied this break-glass request.')
  }
}

/** The request is no longer in a state that allows this (approved, denied, revoked, expired). */
export class BreakGlassClosedError extends CofferError {
  constructor(message: string) {
    super('ERR_BREAK_GLASS_CLOSED', 409, message)
  }
}

/** The workspace has fewer other Owners/Admins than the approvals a request needs. */
export class BreakGlassNoApproversError extends CofferError {
  constructor(needed: number, available: number) {
    super(
      'ERR_BREAK_GLASS_NO_APPROVERS',
      409,
      `A break-glass request needs ${needed} approvals from other Owners or Admins, but the workspace has ${available}.`,
    )
  }
}

/**
 * A write the environment's protection does not take directly: it is protected (a write
 * becomes a change request) and this kind of write cannot be proposed (copy into it, restore).
 */
export class EnvironmentProtectedError extends CofferError {
  constructor(message: string) {
    super('ERR_ENVIRONMENT_PROTECTED', 409, message)
  }
}

/** A change request cannot be approved or rejected by the person who made it. */
export class ChangeRequestSelfApprovalError extends CofferError {
  constructor() {
    super('ERR_CHANGE_REQUEST_SELF_APPROVAL', 403, 'You cannot approve or reject your own change request.')
  }
}

/** This Owner or Admin has already approved or rejected the change request. */
export class ChangeRequestAlreadyDecidedError extends CofferError {
  constructor() {
    super('ERR_CHANGE_REQUEST_ALREADY_DECIDED', 409, 'You have already approved or rejected this change request.')
  }
}

/** The change request is no longer pending (applied, rejected, stale or expired). */
export class ChangeRequestClosedError extends CofferError {
  constructor(message: string) {
    super('ERR_CHANGE_REQUEST_CLOSED', 409, message)
  }
}

/** The workspace has fewer other Owners/Admins than the approvals a change request to the environment needs. */
export class ChangeRequestNoApproversError extends CofferError {
  constructor(needed: number, available: number) {
    super(
      'ERR_CHANGE_REQUEST_NO_APPROVERS',
      409,
      `The environment is protected with ${needed} required approvals from other Owners or Admins, but the workspace has ${available}.`,
    )
  }
}

/**
 * Sign-in failed. The same answer for an unknown email, a wrong password and an account that
 * has no password (OIDC), so the answer never says whether an email is registered.
 */
export class InvalidCredentialsError extends CofferError {
  constructor(message = 'The email or password is wrong.') {
    super('ERR_INVALID_CREDENTIALS', 401, message)
  }
}

/** The password is right but the email address is not verified yet. */
export class EmailNotVerifiedError extends CofferError {
  constructor() {
    super('ERR_EMAIL_NOT_VERIFIED', 403, 'Verify your email address first: use the link we mailed you, or ask for a new one.')
  }
}

/** A verification or password-reset link that is unknown, already used or expired. */
export class InvalidLinkError extends CofferError {
  constructor() {
    super('ERR_INVALID_LINK', 400, 'This link is invalid, expired or already used. Ask for a new one.')
  }
}

/** The sign-in method is turned off on this server (e.g. passwords with COFFER_AUTH_MODE=oidc-only). */
export class AuthMethodDisabledError extends CofferError {
  constructor(method = 'This sign-in method') {
    super('ERR_AUTH_METHOD_DISABLED', 403, `${method} is turned off on this server.`)
  }
}

/** The account has no password to check or change (it signs in with SSO or has not set one). */
export class PasswordNotSetError extends CofferError {
  constructor() {
    super('ERR_PASSWORD_NOT_SET', 409, 'This account has no password: sign in with SSO, or set one with a reset link.')
  }
}

/** A cookie-authenticated request that changes state came without a valid CSRF token, or from another site. */
export class CsrfError extends CofferError {
  constructor() {
    super(
      'ERR_CSRF',
      403,
      'The request was refused: its CSRF token is missing or wrong, or it came from another site. Reload the page and try again.',
    )
  }
}

/**
 * A personal token acts only in its own workspace: this account route reaches beyond it (the
 * person's other workspaces, a CLI login, the account export or deletion), so it takes the
 * browser session, where the person signed in with their password or SSO.
 */
export class SessionRequiredError extends CofferError {
  constructor() {
    super('ERR_SESSION_REQUIRED', 403, 'A token acts only in its own workspace: sign in in the browser to do this for your whole account.')
  }
}

/**
 * A sign-in link (verification or password reset) that would hand over more than this
 * workspace: for oneself (only ever mailed), or for a person who also belongs to another
 * workspace.
 */
export class LinkRefusedError extends CofferError {
  constructor(message: string) {
    super('ERR_LINK_REFUSED', 403, message)
  }
}

/**
 * The change would leave a workspace without an Owner: the last Owner cannot delete their
 * account, leave, be removed or be demoted.
 */
export class LastOwnerError extends CofferError {
  constructor(message = 'You are the last Owner of a workspace: make someone else Owner, or delete the workspace, first.') {
    super('ERR_LAST_OWNER', 409, message)
  }
}

/**
 * An auditor holds no project role: giving one to an auditor, or inviting an auditor with
 * one, is refused (the auditor reads the audit log and metadata, never secrets).
 */
export class AuditorProjectRoleError extends CofferError {
  constructor(message = 'An auditor cannot hold a project role: auditors read the audit log and metadata, never secrets.') {
    super('ERR_AUDITOR_PROJECT_ROLE', 409, message)
  }
}

/**
 * The invitation token is unknown, expired, revoked or already used. The four look alike
 * on purpose.
 */
export class InvitationInvalidError extends CofferError {
  constructor() {
    super('ERR_INVITATION_INVALID', 404, 'The invitation is invalid, expired, revoked or already used.')
  }
}

/** The invitation was sent to another email address than the signed-in person's. */
export class InvitationWrongAccountError extends CofferError {
  constructor() {
    super(
      'ERR_INVITATION_WRONG_ACCOUNT',
      403,
      'This invitation was sent to another email address: sign in as the invited person to accept it.',
    )
  }
}

/**
 * Signing up through an invitation for an address that already has an account: the account
 * is never changed by an invitation (its owner signs in and accepts instead).
 */
export class AccountExistsError extends CofferError {
  constructor() {
    super('ERR_ACCOUNT_EXISTS', 409, 'An account with this email address exists: sign in with it, then open the invitation link again.')
  }
}

/**
 * Accepting an invitation in one click (without its token) from an account whose address was
 * confirmed only by an invitation link that an Admin may have handed over: the link is needed.
 */
export class InvitationLinkRequiredError extends CofferError {
  constructor() {
    super(
      'ERR_INVITATION_LINK_REQUIRED',
      403,
      'Open the link of this invitation to accept it: your address was confirmed by an invitation link, which does not accept other invitations by itself.',
    )
  }
}

/** The OIDC callback's state is missing, unknown, already used, or not this browser's. */
export class OidcStateError extends CofferError {
  constructor() {
    super('ERR_OIDC_STATE', 400, 'The sign-in could not be matched to one started in this browser. Start again.')
  }
}

/** The identity provider's answer failed validation (code exchange, ID token, nonce). */
export class OidcFailedError extends CofferError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_OIDC_FAILED', 401, 'Sign-in with the identity provider failed. Start again.', options)
  }
}

/** The identity provider vouched for an email outside COFFER_OIDC_ALLOWED_DOMAINS, or for none, or for an unverified one. */
export class OidcEmailRefusedError extends CofferError {
  constructor(message = 'Your email address is not allowed to sign in here.') {
    super('ERR_OIDC_EMAIL_REFUSED', 403, message)
  }
}

/** The shared rate-limit counters (Redis) cannot be reached: authentication endpoints refuse rather than go unlimited. */
export class RateLimitUnavailableError extends CofferError {
  constructor() {
    super('ERR_RATE_LIMIT_UNAVAILABLE', 503, 'Sign-in is unavailable for a moment; try again shortly.')
  }
}

/**
 * A CLI login code (or device code) is unknown, used, expired, or does not match the PKCE
 * verifier or redirect URI. One answer for all, so a guesser learns nothing.
 */
export class InvalidGrantError extends CofferError {
  constructor() {
    super('ERR_INVALID_GRANT', 400, 'The login code is invalid, expired or already used. Run coffer login again.')
  }
}

/** Device login: nobody has approved (or denied) the code yet; poll again after the interval. */
export class AuthorizationPendingError extends CofferError {
  constructor() {
    super('ERR_AUTHORIZATION_PENDING', 400, 'Waiting for the code to be approved in the browser.')
  }
}

/** Device login: polled sooner than the interval; `interval` is the new interval (seconds). */
export class SlowDownError extends CofferError {
  readonly interval: number
  constructor(interval: number) {
    super('ERR_SLOW_DOWN', 400, `Polling too fast; wait ${interval} s between polls.`)
    this.interval = interval
  }
}

/** Device login: the code expired before anyone approved it. */
export class CodeExpiredError extends CofferError {
  constructor() {
    super('ERR_CODE_EXPIRED', 400, 'The login code expired before it was approved. Run coffer login --device again.')
  }
}

/** Device or browser login: the person denied the request. */
export class AccessDeniedError extends CofferError {
  constructor() {
    super('ERR_ACCESS_DENIED', 403, 'The login was denied in the browser.')
  }
}

/**
 * An outbound request to an address a user gave was refused before any connection: the scheme,
 * credentials in the URL, a non-canonical IP form, or an address outside the public internet
 * (loopback, private, link-local and cloud metadata, IPv4-mapped IPv6…) that
 * COFFER_OUTBOUND_ALLOW does not list. The message names the kind of range, never the address
 * a name resolved to.
 */
export class OutboundRefusedError extends CofferError {
  constructor(
    message: string,
    /** For the server's log and audit: the address and range refused, when a connection was about to be made. */
    readonly refusal?: { readonly address: string; readonly range: string },
  ) {
    super('ERR_OUTBOUND_REFUSED', 400, message)
  }
}

/**
 * A workload's OIDC ID token was not exchanged: whatever check failed (signature, issuer,
 * audience, expiry, claims, a revoked or unknown identity) the caller gets this one answer;
 * the identity's audit log records which check it was.
 */
export class OidcTokenRejectedError extends CofferError {
  constructor() {
    super('ERR_OIDC_TOKEN_REJECTED', 401, 'The ID token was not accepted for this machine identity.')
  }
}

/** An outbound request failed: the name did not resolve, the connection or TLS failed, too many redirects. */
export class OutboundFailedError extends CofferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OUTBOUND_FAILED', 502, message, options)
  }
}

/** An outbound request did not complete within its time limit. */
export class OutboundTimeoutError extends CofferError {
  constructor(ms: number) {
    super('ERR_OUTBOUND_TIMEOUT', 504, `The remote server did not answer within ${ms} ms.`)
  }
}

/** An outbound response was larger than the limit for its use; it was cut off and discarded. */
export class OutboundResponseTooLargeError extends CofferError {
  constructor(limit: number) {
    super('ERR_OUTBOUND_RESPONSE_TOO_LARGE', 502, `The remote server's answer exceeds ${limit} bytes; it was discarded.`)
  }
}

/**
 * A dynamic database credential could not be made or dropped: the server did not answer, or
 * refused the statement. The database server's own message is not passed on (it may echo SQL).
 */
export class DatabaseCredentialError extends CofferError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_DB_CREDENTIALS', 502, what, options)
  }
}

/**
 * AWS STS did not hand out credentials for a registered role: it refused (a trust policy that
 * does not allow Coffer's principal with the workspace's current external ID, a role that does
 * not exist, a session longer than the role allows) or could not be reached. STS's own message
 * is passed on only when it holds nothing that looks like a key or the external ID.
 */
export class AwsAssumeRoleError extends CofferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_AWS_ASSUME_ROLE', 502, message, options)
  }
}

/** The Coffer server has no AWS credentials of its own to call STS with (operator setup: the AWS SDK's default chain). */
export class AwsNoCredentialsError extends CofferError {
  constructor(options?: { cause?: unknown }) {
    super(
      'ERR_AWS_NO_CREDENTIALS',
      503,
      "The Coffer server has no AWS credentials of its own to assume roles with; its operator sets them (the AWS SDK's default chain).",
      options,
    )
  }
}

/**
 * A `${…}` reference (or an import) names an environment the reader may not reveal: the
 * message names the reference and the key holding it, never a value.
 */
export class ReferenceForbiddenError extends CofferError {
  constructor(reference: string, key: string) {
    super('ERR_REFERENCE_FORBIDDEN', 403, `${key} references ${reference}, which you may not read.`)
  }
}

/** A reference names a project, environment or key that does not exist (or that the reader cannot see). */
export class ReferenceNotFoundError extends CofferError {
  constructor(reference: string, key: string) {
    super('ERR_REFERENCE_NOT_FOUND', 422, `${key} references ${reference}, which was not found.`)
  }
}

/** References (or imports) that lead back to where they started; the message lists the chain. */
export class ReferenceCycleError extends CofferError {
  /** `chain`: the keys or environments in the cycle, e.g. "web/dev.A → web/dev.B → web/dev.A". */
  constructor(chain: string) {
    super('ERR_REFERENCE_CYCLE', 422, `References form a cycle: ${chain}.`)
  }
}

/** References (or imports) nested deeper than the limit. */
export class ReferenceDepthError extends CofferError {
  constructor(limit: number, chain: string) {
    super('ERR_REFERENCE_DEPTH', 422, `References are nested deeper than ${limit}: ${chain}.`)
  }
}

/** A `${` that does not open a well-formed reference (write `$${` for a literal `${`). */
export class ReferenceInvalidError extends CofferError {
  constructor(key: string, detail: string) {
    super('ERR_REFERENCE_INVALID', 422, `${key} holds an invalid reference (${detail}); write $\${ for a literal \${.`)
  }
}

/** Personal overrides are not allowed here (the environment's setting, a restriction or a seal), or not for this caller. */
export class PersonalOverrideNotAllowedError extends CofferError {
  constructor(message: string) {
    super('ERR_PERSONAL_OVERRIDE_NOT_ALLOWED', 409, message)
  }
}

/** An OAuth connection's `state` is unknown, was used already, or expired: the flow must start again. */
export class ConnectionStateError extends CofferError {
  constructor() {
    super(
      'ERR_CONNECTION_STATE',
      400,
      'This authorization is unknown, was used already, or expired; start again (coffer connections connect or link).',
    )
  }
}

/** The relay has no token to use: the connection has no app token, or the caller has not linked their own account. */
export class ConnectionNotLinkedError extends CofferError {
  constructor(message: string) {
    super('ERR_CONNECTION_NOT_LINKED', 409, message)
  }
}

/** A connection's token could not be refreshed: someone must connect (or link) again. */
export class ConnectionNeedsReconnectError extends CofferError {
  constructor(message: string) {
    super('ERR_CONNECTION_NEEDS_RECONNECT', 409, message)
  }
}

/** A relay request whose method and path the connection's allow-list does not admit, or whose path leaves the API base. */
export class RelayRefusedError extends CofferError {
  constructor(message: string) {
    super('ERR_RELAY_REFUSED', 403, message)
  }
}

/**
 * The provider's token endpoint refused a code or a refresh token, or answered something that
 * is not a token. Its own message is not passed on (it may echo what Coffer sent).
 */
export class OAuthProviderError extends CofferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OAUTH_PROVIDER', 502, message, options)
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
  'ERR_MALFORMED_REQUEST',
  'ERR_URI_TOO_LONG',
  'ERR_HEADERS_TOO_LARGE',
  'ERR_REQUEST_TIMEOUT',
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
  'ERR_AUDIT_TAMPERED',
  'ERR_CONFIG',
  'ERR_ROOT_KEY_MISMATCH',
  'ERR_ROOT_KEY_MIGRATION_IN_PROGRESS',
  'ERR_SCHEMA_TOO_NEW',
  'ERR_BACKUP_INVALID',
  'ERR_BACKUP_FOREIGN',
  'ERR_BACKUP_SERVER_RUNNING',
  'ERR_BACKUP_SCHEMA_MISMATCH',
  'ERR_DATABASE_UNAVAILABLE',
  'ERR_DATABASE_BUSY',
  'ERR_NOT_READY',
  'ERR_RATE_LIMITED',
  'ERR_RATE_LIMIT_UNAVAILABLE',
  'ERR_INVALID_GRANT',
  'ERR_AUTHORIZATION_PENDING',
  'ERR_SLOW_DOWN',
  'ERR_CODE_EXPIRED',
  'ERR_ACCESS_DENIED',
  'ERR_CONFIRMATION_MISMATCH',
  'ERR_NOT_EMPTY',
  'ERR_ENVIRONMENT_SEALED',
  'ERR_ENVIRONMENT_CHANGED',
  'ERR_BREAK_GLASS_REQUIRED',
  'ERR_BREAK_GLASS_SELF_APPROVAL',
  'ERR_BREAK_GLASS_ALREADY_DECIDED',
  'ERR_BREAK_GLASS_CLOSED',
  'ERR_BREAK_GLASS_NO_APPROVERS',
  'ERR_REFERENCE_FORBIDDEN',
  'ERR_REFERENCE_NOT_FOUND',
  'ERR_REFERENCE_CYCLE',
  'ERR_REFERENCE_DEPTH',
  'ERR_REFERENCE_INVALID',
  'ERR_PERSONAL_OVERRIDE_NOT_ALLOWED',
  'ERR_ENVIRONMENT_PROTECTED',
  'ERR_CHANGE_REQUEST_SELF_APPROVAL',
  'ERR_CHANGE_REQUEST_ALREADY_DECIDED',
  'ERR_CHANGE_REQUEST_CLOSED',
  'ERR_CHANGE_REQUEST_NO_APPROVERS',
  'ERR_INVALID_CREDENTIALS',
  'ERR_EMAIL_NOT_VERIFIED',
  'ERR_INVALID_LINK',
  'ERR_AUTH_METHOD_DISABLED',
  'ERR_PASSWORD_NOT_SET',
  'ERR_CSRF',
  'ERR_SESSION_REQUIRED',
  'ERR_LINK_REFUSED',
  'ERR_LAST_OWNER',
  'ERR_AUDITOR_PROJECT_ROLE',
  'ERR_INVITATION_INVALID',
  'ERR_INVITATION_WRONG_ACCOUNT',
  'ERR_ACCOUNT_EXISTS',
  'ERR_INVITATION_LINK_REQUIRED',
  'ERR_OIDC_STATE',
  'ERR_OIDC_FAILED',
  'ERR_OIDC_EMAIL_REFUSED',
  'ERR_OUTBOUND_REFUSED',
  'ERR_OUTBOUND_FAILED',
  'ERR_OUTBOUND_TIMEOUT',
  'ERR_OUTBOUND_RESPONSE_TOO_LARGE',
  'ERR_DB_CREDENTIALS',
  'ERR_OIDC_TOKEN_REJECTED',
  'ERR_AWS_ASSUME_ROLE',
  'ERR_AWS_NO_CREDENTIALS',
  'ERR_CONNECTION_STATE',
  'ERR_CONNECTION_NOT_LINKED',
  'ERR_CONNECTION_NEEDS_RECONNECT',
  'ERR_RELAY_REFUSED',
  'ERR_OAUTH_PROVIDER',
  'ERR_INTERNAL',
] as const
