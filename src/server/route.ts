import type { Transaction } from 'kysely'
import type { z } from 'zod'
import type { Action, Principal } from '../access/policy.js'
import type { AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import type { Executor } from '../storage/database.js'
import type { Database } from '../storage/schema.js'
import type { Workspace } from '../vault/workspace-service.js'

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** What a handler receives. `db` is the batch transaction for `write` routes. */
export interface HandlerContext<P, Q, B> {
  readonly app: AppContext
  readonly db: Executor
  readonly principal: Principal
  /** The workspace named by `:workspace`, already checked to be the principal's. */
  readonly workspace: Workspace
  readonly params: P
  readonly query: Q
  readonly body: B
  readonly requestId: string
}

/**
 * A handler's outcome: the response body and what the audit log must record. The pipeline
 * writes the audit entries; a handler never calls the audit log itself.
 */
export interface HandlerResult<R> {
  body: R
  audit?: AuditEvent | AuditEvent[] | null
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
  params?: z.ZodType<P>
  query?: z.ZodType<Q>
  body?: z.ZodType<B>
  response: z.ZodType<R>
  status?: number
  handler(ctx: HandlerContext<P, Q, B>): Promise<HandlerResult<R>>
}

/** Helper that keeps a route's type parameters inferred from its schemas. */
export function defineRoute<P, Q, B, R>(def: RouteDef<P, Q, B, R>): RouteDef<P, Q, B, R> {
  return def
}

export type AnyRoute = RouteDef<any, any, any, any>
export type Tx = Transaction<Database>
