import type { FastifyBaseLogger } from 'fastify'
import type { z } from 'zod'
import type { Action } from '../access/policy.js'
import type { AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import type { CofferError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { AuthRateLimitOptions } from './rate-limit.js'
import type { Method } from './route.js'
import type { Person } from './stages.js'

export type { Person } from './stages.js'

// Routes that are not under /v1/workspaces/:workspace: sign-in and the other public
// authentication endpoints, and a person's own account. They run through the account
// pipeline (auth-pipeline.ts), which — like the workspace pipeline — authenticates, checks
// CSRF, asks the policy, validates, runs the handler and writes its audit entries; a person's
// events go to the log of every workspace they belong to.

/** What an account or public handler receives. */
export interface AuthHandlerContext<P, Q, B, X> {
  readonly app: AppContext
  /** The batch transaction for `write` routes; the read handle for `read` routes. */
  readonly db: Executor
  /** Account routes: the signed-in person. Public routes: undefined. */
  readonly person: Person | undefined
  readonly params: P
  readonly query: Q
  readonly body: B
  /** What `prepare` returned. */
  readonly prepared: X
  readonly client: { readonly ip: string; readonly userAgent: string }
  /**
   * The request's cookies and its path with query string (the OIDC callback checks both), and
   * its Accept header (a browser's navigation asks for text/html).
   */
  readonly request: { readonly cookies: Readonly<Record<string, string | undefined>>; readonly url: string; readonly accept: string }
  readonly requestId: string
  readonly now: Date
}

/**
 * A handler's outcome. `audit` is required: an empty list says on purpose that nothing is
 * recorded (e.g. a sign-up by someone who belongs to no workspace yet).
 */
export interface AuthHandlerResult<R> {
  body: R
  audit: AuditEvent | AuditEvent[] | null
  /**
   * Public routes: the person the events are about. They go to the log of every workspace
   * this person belongs to; the actor is this person, or `anonymous` when `anonymous` is set.
   */
  auditUser?: string
  /** The actor is not proven (a failed sign-in): recorded as anonymous, the id naming the account tried. */
  anonymous?: boolean
  /** The actor when it is not a person: the machine identity a workload proved it is (an OIDC token exchange). */
  actor?: { type: 'machine'; id: string }
  /** Fail the request with this error once the audit entries are committed (a failed sign-in is recorded, then refused). */
  fail?: CofferError
  /**
   * A failure that names no account, so it belongs to no workspace's log: logged (without
   * the email) and counted in coffer_auth_failures_unattributed_total.
   */
  unattributed?: { event: string; reason: string }
  /** Sets the session cookie to this value, or clears it. */
  session?: { set: string } | { clear: true }
  /** Answer with a redirect (302 for GET, 303 otherwise) instead of a JSON body. */
  redirect?: string
  /** Sets or clears other cookies (the OIDC sign-in state). */
  cookies?: Array<{ name: string; value: string | null; path: string; maxAge?: number }>
  /** Runs after the transaction committed (sending mail); a failure is logged, the request still succeeds. */
  afterCommit?: (log: FastifyBaseLogger) => Promise<void>
}

/** A route of the account pipeline, declared as data like RouteDef. */
export interface AuthRouteDef<P = unknown, Q = unknown, B = unknown, R = unknown, X = unknown> {
  /** `public`: no credential (sign-in, sign-up, links, OIDC). `account`: the signed-in person's own account. */
  scope: 'public' | 'account'
  method: Method
  url: string
  summary: string
  tag: string
  action: Action
  mode: 'read' | 'write'
  /**
   * Account routes: a person's Bearer token may call this route too. A personal token is a
   * credential of one workspace, and an account route acts for the whole account (every
   * workspace of the person), so by default an account route takes the browser session and
   * answers a token ERR_SESSION_REQUIRED. Set only where a token gains nothing beyond its
   * workspace (ending sessions; a password change, which needs the current password).
   */
  acceptsToken?: true
  /** The sign-in method the route belongs to; it answers ERR_AUTH_METHOD_DISABLED when that method is off. */
  requires?: 'password' | 'oidc'
  params?: z.ZodType<P>
  query?: z.ZodType<Q>
  body?: z.ZodType<B>
  response: z.ZodType<R>
  status?: number
  authRateLimit?: true | AuthRateLimitOptions
  /**
   * HTML forms may post to this route (application/x-www-form-urlencoded): the answer is a
   * 303 redirect to `success` (a path, or one made from the answer and the validated body),
   * or to `failure` with `?error=CODE`. A GET route with `form` is a browser navigation (the
   * OIDC redirects): its errors redirect to `failure` the same way.
   */
  form?: { success: string | ((answer: R, body: B) => string); failure: string | ((body: Record<string, unknown>) => string) }
  /**
   * For a route about one workspace the person may not belong to yet (accepting an
   * invitation): names that workspace from what `prepare` found. Its audit chain is locked
   * before the handler runs and the route's events go to its log only, instead of to the
   * logs of the person's workspaces. Null: the request names no workspace (an unknown
   * machine identity), so no log records it.
   */
  auditWorkspace?(prepared: X): string | null
  /** Slow work before any transaction (password hashing, the identity provider); reads only. */
  prepare?(ctx: Omit<AuthHandlerContext<P, Q, B, undefined>, 'prepared'>): Promise<X>
  /**
   * Network work on what `prepare` found, outside any transaction (no database connection is
   * held while it waits): fetching an OIDC issuer's keys and checking a token with them.
   */
  verify?(ctx: Omit<AuthHandlerContext<P, Q, B, X>, 'db'>): Promise<X>
  handler(ctx: AuthHandlerContext<P, Q, B, X>): Promise<AuthHandlerResult<R>>
}

/** Keeps an account route's type parameters inferred from its schemas. */
export function defineAuthRoute<P, Q, B, R, X = undefined>(def: AuthRouteDef<P, Q, B, R, X>): AuthRouteDef<P, Q, B, R, X> {
  return def
}

// biome-ignore lint/suspicious/noExplicitAny: a table of routes with different schemas; each was checked by defineAuthRoute
export type AnyAuthRoute = AuthRouteDef<any, any, any, any, any>
