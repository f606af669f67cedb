import type { IncomingHttpHeaders } from 'node:http'
import type { Transaction } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { z } from 'zod'
import type { Proposal } from '../access/change-requests.js'
import type { Action, Principal } from '../access/policy.js'
import type { AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import type { Executor } from '../storage/database.js'
import type { AuthRateLimitOptions } from './rate-limit.js'
import type { Database } from '../storage/schema.js'
import type { Environment, Project } from '../vault/project-service.js'
import type { Workspace } from '../vault/workspace-service.js'

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** What the pipeline resolved from the route's `:project` and `:environment`. */
export interface Target {
  readonly project?: Project
  readonly environment?: Environment
}

/** What a handler receives. `db` is the batch transaction for `write` routes. */
export interface HandlerContext<P, Q, B> {
  readonly app: AppContext
  readonly db: Executor
  readonly principal: Principal
  /** The workspace named by `:workspace`, already checked to be the principal's. */
  readonly workspace: Workspace
  /**
   * The project and environment named by `:project` and `:environment`, already found in
   * the workspace and checked visible to the principal (absent when the route names none).
   */
  readonly target: Target
  readonly params: P
  readonly query: Q
  readonly body: B
  readonly requestId: string
  /** The client's address (the socket's; Coffer trusts no proxy header). */
  readonly ip: string
  /** The request's path and query as sent (percent-encoded), and its headers: for the relay, which forwards them. */
  readonly request: { readonly url: string; readonly headers: IncomingHttpHeaders }
}

/**
 * A handler's outcome: the response body and what the audit log must record. The pipeline
 * writes the audit entries; a handler never calls the audit log itself.
 */
export type HandlerResult<R> = HandlerOutcome<R> &
  (
    | { body: R; json?: undefined }
    | {
        body?: undefined
        /**
         * The answer already written (`compiledResponse` routes only): exactly the bytes the
         * compiled serializer would write for the schema's shape, sent as they are. An environment
         * fetch answered from its snapshot sends the snapshot's own bytes so (vault/environment-snapshots.ts).
         */
        json: Buffer
      }
  )

/** What a handler answers besides its body. */
export interface HandlerOutcome<R> {
  audit?: AuditEvent | AuditEvent[] | null
  /**
   * `write` routes only: runs in the same transaction right after the audit entries are
   * appended, and its result becomes the response body (a workspace deletion records the
   * final audit tree head, which includes its own entry, this way).
   */
  finish?: (tx: Executor) => Promise<R>
  /** Runs after the transaction committed; a failure is logged and does not fail the request. */
  afterCommit?: (log: FastifyBaseLogger) => Promise<void>
  /** The answer's status when it is not the route's (202: a write to a protected environment became a change request). */
  status?: number
  /** Headers of the answer (a `rawBody` route answering with the bytes it relayed). */
  headers?: Readonly<Record<string, string>>
}

/**
 * One API route, declared as data. The pipeline authenticates, validates params, query and
 * body with the Zod schemas, resolves the workspace (404 for any other tenant's), asks the
 * policy about `action`, runs the handler — for `write` routes inside a group-committed
 * transaction together with the audit entries — and maps errors to the error envelope.
 */
export interface RouteDef<P = unknown, Q = unknown, B = unknown, R = unknown> {
  method: Method
  url: string
  summary: string
  tag: string
  action: Action
  /**
   * `write`: the handler and its audit entries run in one transaction (group commit).
   * `read`: the handler reads outside a transaction; any audit entry it returns is committed
   * before the response is sent, and the request fails if it cannot be.
   */
  mode: 'read' | 'write'
  /**
   * A stronger action the request takes when the query flag `flag` is true (`reveal=true`
   * turns `secret.read` into `secret.reveal`), decided before the input is validated.
   */
  elevate?: { readonly flag: string; readonly action: Action }
  /**
   * A route that reads the audit log (`read` mode): before its handler runs, the entries of the
   * workspace queued until then are integrated (or, when another node sequences the workspace,
   * waited for up to twice the merge delay), so a client reads what it just did in the chain.
   */
  readsAuditLog?: true
  /**
   * A `write` route on the secrets of the one environment its URL names, whose handler locks
   * the rows it changes (`FOR UPDATE`) and retries a lost creation race: its transaction takes
   * that environment's write lock instead of the workspace's, which serialises every other
   * write of a workspace across nodes (src/storage/commit-partition.ts). For the hot secret
   * writes only; anything that checks a rule across rows (the last Owner, approvals) must
   * leave it unset.
   *
   * `key`: it locks the one secret its `:key` names. Such writes hold the environment's lock
   * shared, so batches of several nodes run at once, each running its units in key order.
   * `keys`: it locks several secrets, holding the lock exclusively.
   */
  locksOwnRows?: 'key' | 'keys'
  /**
   * `none`: no Authorization header or session is needed; `tenantFromBody` authenticates
   * (the machine credential exchange). Default: a Bearer token or the session cookie.
   */
  auth?: 'none'
  /**
   * For routes whose workspace is named by the request body, not by the URL or the token
   * (accepting an invitation, exchanging machine credentials): runs after the body is
   * validated, in the system scope, and returns the workspace — and, for `auth: 'none'`,
   * the principal. A request it cannot place answers 404.
   */
  tenantFromBody?: (args: {
    app: AppContext
    db: Executor
    body: B
    principal: Principal | null
    ip: string
  }) => Promise<{ workspace: Workspace; principal?: Principal }>
  params?: z.ZodType<P>
  query?: z.ZodType<Q>
  body?: z.ZodType<B>
  response: z.ZodType<R>
  /**
   * Serialize the answer with a serializer compiled from `response` (its JSON Schema, as the
   * OpenAPI document gives it, through Fastify's fast-json-stringify) instead of
   * JSON.stringify: for large answers on hot paths (an environment's values). It writes
   * exactly the schema's properties; the handler must return the schema's shape.
   */
  compiledResponse?: true
  /**
   * A `read` route answered as a server-sent event stream (src/server/event-stream.ts): its
   * handler's answer is sent at once as event `event`, then again whenever it changes; each
   * check re-runs the whole request (authentication, policy, handler), so the stream ends —
   * with an `end` event and the code a fresh request would get — once the credential is revoked
   * or expires or access is lost. `environment` routes only; the handler must audit nothing.
   * `follows`: the ids of other environments (of the workspace) whose changes must also wake
   * the stream — those an answer depends on (imports, references).
   */
  events?: { readonly event: string; readonly follows?: (body: R) => readonly string[] }
  status?: number
  /**
   * A `secret.write` route on the URL's environment: when that environment is protected
   * (`changeApprovals` > 0) the pipeline does not run the handler; it asks this for the
   * operations the request would perform (checked, values included) and stores them as a
   * change request, answering 202 `{ changeRequest }` (src/access/change-requests.ts). A
   * `secret.write` route without it is refused there (ERR_ENVIRONMENT_PROTECTED). Null: the
   * request changes nothing (a dry run), and the handler runs as usual.
   */
  propose?: (ctx: HandlerContext<P, Q, B>) => Promise<Proposal | null>
  /**
   * An authentication endpoint (password check, sign-in, token or code exchange): limited
   * per client IP and per account with a growing lockout (see rate-limit.ts).
   */
  authRateLimit?: true | AuthRateLimitOptions
  /**
   * The request body is taken as it came, whatever its type (a Buffer, or undefined when there
   * is none), and the handler may answer with a Buffer and its own headers: the connection
   * relay (src/connections/relay.ts), which forwards bodies it does not read. Such routes are
   * registered in a context of their own, so every other route keeps answering 415.
   */
  rawBody?: true
  /**
   * A `read` route whose handler waits on a remote server (the connection relay): it runs after
   * the placing read has ended, in no transaction, and opens its own short reads
   * (`readInScope`) and writes (the committer), so no database connection or snapshot is held
   * while it waits, and a read retried after a lost connection never repeats its remote call.
   * Its `db` is NOT in the tenant's scope: it must not be used.
   */
  outsideTransaction?: true
  handler(ctx: HandlerContext<P, Q, B>): Promise<HandlerResult<R>>
}

/** Helper that keeps a route's type parameters inferred from its schemas. */
export function defineRoute<P, Q, B, R>(def: RouteDef<P, Q, B, R>): RouteDef<P, Q, B, R> {
  return def
}

// biome-ignore lint/suspicious/noExplicitAny: a table of routes with different schemas; each was checked by defineRoute
export type AnyRoute = RouteDef<any, any, any, any>
export type Tx = Transaction<Database>
