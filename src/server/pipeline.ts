import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { breakGlassDecision, grantUseEvent, plaintextUse, type ActiveGrant } from '../access/break-glass.js'
import { actorId, authorize, type Action, type Principal } from '../access/policy.js'
import { resolveTarget } from '../access/target.js'
import type { AuditActor, AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import { AuditUnavailableError, CofferError, InternalError, UnauthenticatedError, ValidationError } from '../errors.js'
import { recordUse, useIsStale } from '../identity/credential-use.js'
import { authenticate } from '../identity/identity-service.js'
import type { Executor } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { authenticateRequest, checkCsrf, currentSession, sessionCookieOf } from './session-auth.js'
import { matchWorkspace, type Workspace } from '../vault/workspace-service.js'
import type { AnyRoute, HandlerContext, HandlerResult, Target } from './route.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on every route: the policy action, or 'public' for unauthenticated endpoints. */
    action?: string
  }
}

/** Validates `value` with `schema`; a mismatch throws ValidationError naming the fields under `where`. */
export function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}))
  if (r.success) return r.data
  const issues = r.error.issues.map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }))
  throw new ValidationError(`Invalid ${where}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`.slice(0, 500), issues)
}

/** The Bearer token of the Authorization header; a missing or malformed header throws UnauthenticatedError. */
export function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization
  if (!h) throw new UnauthenticatedError()
  const m = /^Bearer ([^\s]+)$/i.exec(h.trim())
  if (!m) throw new UnauthenticatedError('Send the token as: Authorization: Bearer <token>.')
  return m[1]!
}

function actorOf(req: FastifyRequest, p: Principal): AuditActor {
  const ua = req.headers['user-agent']
  return { type: p.type, id: actorId(p), ip: req.ip, userAgent: typeof ua === 'string' ? ua : '' }
}

/** The route's action, or its stronger one when the query flag that elevates it is true (checked before validation). */
function actionOf(route: AnyRoute, rawQuery: unknown): Action {
  if (!route.elevate) return route.action
  const v = (rawQuery as Record<string, unknown> | undefined)?.[route.elevate.flag]
  return v === 'true' || v === '1' ? route.elevate.action : route.action
}

/**
 * Authenticates the Bearer token (any kind: a person's, a service token, a machine access
 * token) in the system scope, and records its last use — at most once a minute, without
 * making the request wait for that write.
 */
async function bearerAuth(ctx: AppContext, req: FastifyRequest) {
  const r = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => authenticate(db, bearer(req), ctx.clock(), req.ip))
  const now = ctx.clock()
  if (useIsStale(r.use, now)) {
    void ctx.committer
      .run((tx) => recordUse(tx, r.use, now), `use:${r.use.id}`)
      .catch((err: unknown) => req.log.warn({ err: { message: (err as Error).message } }, "could not record a credential's last use"))
  }
  return r
}

/**
 * The person behind a route placed by its body (accepting an invitation): a Bearer token, or
 * the session cookie with its CSRF check. Unlike workspace routes, no membership is needed.
 */
async function authenticatePerson(ctx: AppContext, req: FastifyRequest): Promise<Principal> {
  if (req.headers.authorization !== undefined || !sessionCookieOf(req)) {
    return (await bearerAuth(ctx, req)).principal
  }
  const s = await currentSession(ctx, req)
  if (!s) throw new UnauthenticatedError('Your session has ended; sign in again.')
  checkCsrf(ctx, req, s.cookieValue)
  return { type: 'user', userId: s.user.id, email: s.user.email, tokenId: s.session.id, workspaceId: '', role: 'member' }
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
    config: { action: route.action, ...(route.authRateLimit ? { authRateLimit: route.authRateLimit } : {}) },
    handler: async (req, reply) => {
      const action = actionOf(route, req.query)
      let principal: Principal
      let workspace: Workspace
      let target: Target = {}
      let params: unknown
      let query: unknown
      let body: unknown
      let grant: ActiveGrant | null = null
      let readResult: HandlerResult<unknown> | undefined
      if (route.tenantFromBody) {
        // The workspace is named by the body (an invitation, a machine credential): the
        // person (if the route needs one), then the input, then where the body points —
        // anything it cannot place answers 404.
        let who: Principal | null = null
        if (route.auth !== 'none') {
          who = await authenticatePerson(ctx, req)
          await app.cofferTokenCaps(req, reply, who.tokenId)
          authorize(who, action, { workspaceId: who.workspaceId })
        }
        params = parse(route.params, req.params, 'params')
        query = parse(route.query, req.query, 'query')
        body = parse(route.body, req.body, 'body')
        const placed = await readInScope(ctx.store, SYSTEM_SCOPE, (db) =>
          route.tenantFromBody!({ app: ctx, db, body, principal: who, ip: req.ip }),
        )
        const p = placed.principal ?? who
        if (!p) throw new InternalError('a route placed by its body named no principal')
        principal = p
        workspace = placed.workspace
        authorize(principal, action, { workspaceId: workspace.id })
      } else {
        // A Bearer token, or (with no Authorization header) the browser's session cookie and its CSRF check.
        const auth = await authenticateRequest(ctx, req, () => bearerAuth(ctx, req))
        principal = auth.principal
        await app.cofferTokenCaps(req, reply, principal.tokenId)
        const wsRef = (req.params as Record<string, string | undefined>).workspace ?? auth.workspace.id
        workspace = matchWorkspace(auth.workspace, wsRef)
        const ws = workspace
        const who = principal
        // Tenant, then role, then input: a caller learns nothing about a route's input rules
        // (400) where it may not act (404 for another tenant or an invisible project, 403 for
        // a weaker role). All of it, and a read route's handler, on one read in the
        // workspace's row-level security scope.
        const prepared = await readInScope(ctx.store, ws.id, async (db) => {
          const t = await resolveTarget(db, who, ws.id, req.params)
          authorize(who, action, t.resource)
          const tgt: Target = { ...(t.project ? { project: t.project } : {}), ...(t.environment ? { environment: t.environment } : {}) }
          const pa = parse(route.params, req.params, 'params')
          const qu = parse(route.query, req.query, 'query')
          const bo = parse(route.body, req.body, 'body')
          // Break-glass (issue 4 §4), after the role decision: in a sealed environment a person
          // reveals or writes values only through an active grant, and each such request is
          // audited with the grant's id.
          const known = t.environment ? { id: t.environment.id, sealed: t.environment.sealed } : undefined
          const g = plaintextUse(action, qu) ? await breakGlassDecision(db, who, action, ws.id, pa, qu, ctx.clock(), known) : null
          const r =
            route.mode === 'read'
              ? await route.handler({
                  app: ctx,
                  principal: who,
                  workspace: ws,
                  target: tgt,
                  params: pa,
                  query: qu,
                  body: bo,
                  requestId: req.id,
                  ip: req.ip,
                  db,
                })
              : undefined
          return { tgt, pa, qu, bo, g, r }
        })
        target = prepared.tgt
        params = prepared.pa
        query = prepared.qu
        body = prepared.bo
        grant = prepared.g
        readResult = prepared.r
      }
      const withGrantUse = (events: AuditEvent[]) => (grant ? [...events, grantUseEvent(grant, action, route.method, route.url)] : events)

      const actor = actorOf(req, principal)
      const base = { app: ctx, principal, workspace, target, params, query, body, requestId: req.id, ip: req.ip }
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
          await appendAll(tx, withGrantUse(events))
          return r.finish ? { ...r, body: await r.finish(tx) } : r
        }, workspace.id)
      } else {
        result = readResult ?? (await readInScope(ctx.store, workspace.id, (db) => route.handler({ ...base, db })))
        if (result.finish) throw new InternalError('a read route cannot finish in a transaction')
        const events = withGrantUse(eventsOf(result.audit))
        if (events.length) {
          try {
            await ctx.committer.run((tx) => appendAll(tx, events), workspace.id)
          } catch (err) {
            throw err instanceof CofferError ? err : new AuditUnavailableError({ cause: err })
          }
        }
      }
      if (result.afterCommit)
        await result
          .afterCommit(req.log)
          .catch((err: unknown) => req.log.warn({ err: { message: (err as Error).message } }, 'after-commit step failed'))
      reply.code(route.status ?? 200)
      return result.body
    },
  })
}
