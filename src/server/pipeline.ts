import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { authorize, type Principal } from '../access/policy.js'
import type { AuditActor, AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import { AuditUnavailableError, CofferError, InternalError, UnauthenticatedError, ValidationError } from '../errors.js'
import { authenticate } from '../identity/identity-service.js'
import type { Executor } from '../storage/database.js'
import { matchWorkspace } from '../vault/workspace-service.js'
import type { AnyRoute, HandlerContext } from './route.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on every route: the policy action, or 'public' for unauthenticated endpoints. */
    action?: string
  }
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}))
  if (r.success) return r.data
  const issues = r.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }))
  throw new ValidationError(`Invalid ${where}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`.slice(0, 500), issues)
}

function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization
  if (!h) throw new UnauthenticatedError()
  const m = /^Bearer ([^\s]+)$/i.exec(h.trim())
  if (!m) throw new UnauthenticatedError('Send the token as: Authorization: Bearer <token>.')
  return m[1]!
}

function actorOf(req: FastifyRequest, p: Principal): AuditActor {
  const ua = req.headers['user-agent']
  return { type: 'user', id: p.userId, ip: req.ip, userAgent: typeof ua === 'string' ? ua : '' }
}

function eventsOf(audit: AuditEvent | AuditEvent[] | null | undefined): AuditEvent[] {
  if (!audit) return []
  return Array.isArray(audit) ? audit : [audit]
}

/**
 * Registers `route` on `app` behind the one request pipeline. Audit entries are written
 * here — in the same transaction as a write, or committed before a read's response — and a
 * failure to write them fails the request.
 */
export function registerRoute(app: FastifyInstance, ctx: AppContext, route: AnyRoute): void {
  app.route({
    method: route.method,
    url: route.url,
    config: { action: route.action },
    handler: async (req, reply) => {
      const { principal, workspace: own } = await authenticate(ctx.store.readDb, bearer(req))
      // Tenant, then role, then input: a caller learns nothing about a route's input rules
      // (400) where it may not act (404 for another tenant, 403 for a weaker role).
      const wsRef = (req.params as Record<string, string | undefined>).workspace ?? own.id
      const workspace = matchWorkspace(own, wsRef)
      authorize(principal, route.action, workspace.id)
      const params = parse(route.params, req.params, 'params')
      const query = parse(route.query, req.query, 'query')
      const body = parse(route.body, req.body, 'body')

      const actor = actorOf(req, principal)
      const base = { app: ctx, principal, workspace, params, query, body, requestId: req.id }
      const appendAll = async (tx: Executor, events: AuditEvent[]) => {
        for (const e of events) {
          try {
            await ctx.audit.append(tx, workspace.id, actor, req.id, e)
          } catch (err) {
            throw new AuditUnavailableError({ cause: err })
          }
        }
      }

      let result
      if (route.mode === 'write') {
        result = await ctx.committer.run(async (tx) => {
          // @NOTE the chain lock before the change: changing first would lock rows (a secret),
          // then wait for the chain held by another node's batch that waits for those rows —
          // a deadlock, and a failed write.
          try {
            await ctx.audit.lock(tx, workspace.id)
          } catch (err) {
            throw new AuditUnavailableError({ cause: err })
          }
          const r = await route.handler({ ...base, db: tx } satisfies HandlerContext<unknown, unknown, unknown>)
          const events = eventsOf(r.audit)
          if (events.length === 0) throw new InternalError('write route returned no audit event')
          await appendAll(tx, events)
          return r
        }, workspace.id)
      } else {
        result = await route.handler({ ...base, db: ctx.store.readDb })
        const events = eventsOf(result.audit)
        if (events.length) {
          try {
            await ctx.committer.run((tx) => appendAll(tx, events), workspace.id)
          } catch (err) {
            throw err instanceof CofferError ? err : new AuditUnavailableError({ cause: err })
          }
        }
      }
      reply.code(route.status ?? 200)
      return result.body
    },
  })
}
