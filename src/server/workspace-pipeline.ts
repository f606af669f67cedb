import type { FastifyInstance } from 'fastify'
import { breakGlassDecision, grantUseEvent, plaintextUse, type ActiveGrant } from '../access/break-glass.js'
import { authorize, type Action, type Principal } from '../access/policy.js'
import { resolveTarget } from '../access/target.js'
import type { AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import { AuditUnavailableError, CofferError, InternalError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { authenticateRequest } from './session-auth.js'
import { matchWorkspace, type Workspace } from '../vault/workspace-service.js'
import type { AnyRoute, HandlerContext, HandlerResult, Target } from './route.js'
import {
  actorOf,
  appendEvents,
  authenticatePerson,
  bearerAuth,
  eventsOf,
  lockChains,
  parse,
  personPrincipal,
  type StagePlan,
} from './stages.js'

// The workspace API (/v1/workspaces/:workspace/…, and the few /v1 routes placed by their
// body): the kind of route behind most of the API.

/** How a workspace route runs the stages of the pipeline. */
export const WORKSPACE_STAGES: StagePlan = {
  authenticate:
    'a Bearer token of any kind, or the session cookie with its CSRF check; `auth: none` routes skip it and are placed by their body',
  tenant:
    "the URL's :workspace must be the credential's (another answers 404); `tenantFromBody` routes find it from the validated body instead",
  'rate-caps': "the credential's per-minute and per-month caps (authentication endpoints: per IP and account, in a hook)",
  policy:
    'the project and environment the URL names, then `decide` on the action (elevated by a query flag), then break-glass for sealed environments',
  validate: 'params, query and body with the Zod schemas, after the policy: a caller learns no input rule where it may not act',
  handle: 'read routes in a read-only transaction in the tenant scope; write routes in a group-committed transaction after the chain lock',
  audit: "the handler's events (a write must return one) in the change's transaction, or committed before a read's answer; fails closed",
}

/** The route's action, or its stronger one when the query flag that elevates it is true (checked before validation). */
function actionOf(route: AnyRoute, rawQuery: unknown): Action {
  if (!route.elevate) return route.action
  const v = (rawQuery as Record<string, unknown> | undefined)?.[route.elevate.flag]
  return v === 'true' || v === '1' ? route.elevate.action : route.action
}

/**
 * Registers a workspace route on `app`, behind the stages of WORKSPACE_STAGES. Audit
 * entries are written here — in the same transaction as a write, or committed before a
 * read's response — and a failure to write them fails the request.
 */
export function registerWorkspaceRoute(app: FastifyInstance, ctx: AppContext, route: AnyRoute): void {
  app.route({
    method: route.method,
    url: route.url,
    config: { action: route.action, pipeline: 'workspace', ...(route.authRateLimit ? { authRateLimit: route.authRateLimit } : {}) },
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
          who = personPrincipal(await authenticatePerson(ctx, req)) // authenticate
          await app.cofferTokenCaps(req, reply, who.tokenId) // rate caps
          authorize(who, action, { workspaceId: who.workspaceId }) // policy (the person's rule)
        }
        params = parse(route.params, req.params, 'params') // validate
        query = parse(route.query, req.query, 'query')
        body = parse(route.body, req.body, 'body')
        const placed = await readInScope(ctx.store, SYSTEM_SCOPE, (db) =>
          route.tenantFromBody!({ app: ctx, db, body, principal: who, ip: req.ip }),
        ) // tenant
        const p = placed.principal ?? who
        if (!p) throw new InternalError('a route placed by its body named no principal')
        principal = p
        workspace = placed.workspace
        authorize(principal, action, { workspaceId: workspace.id }) // policy (the workspace's)
      } else {
        // authenticate: a Bearer token, or (with no Authorization header) the browser's session cookie and its CSRF check.
        const auth = await authenticateRequest(ctx, req, () => bearerAuth(ctx, req))
        principal = auth.principal
        // tenant
        const wsRef = (req.params as Record<string, string | undefined>).workspace ?? auth.workspace.id
        await app.cofferTokenCaps(req, reply, principal.tokenId) // rate caps
        workspace = matchWorkspace(auth.workspace, wsRef)
        const ws = workspace
        const who = principal
        // Tenant, then role, then input: a caller learns nothing about a route's input rules
        // (400) where it may not act (404 for another tenant or an invisible project, 403 for
        // a weaker role). All of it, and a read route's handler, on one read in the
        // workspace's row-level security scope.
        const prepared = await readInScope(ctx.store, ws.id, async (db) => {
          // policy
          const t = await resolveTarget(db, who, ws.id, req.params)
          authorize(who, action, t.resource)
          const tgt: Target = { ...(t.project ? { project: t.project } : {}), ...(t.environment ? { environment: t.environment } : {}) }
          // validate
          const pa = parse(route.params, req.params, 'params')
          const qu = parse(route.query, req.query, 'query')
          const bo = parse(route.body, req.body, 'body')
          // policy, continued — break-glass, after the role decision: in a sealed environment a
          // person reveals or writes values only through an active grant, and each such request
          // is audited with the grant's id.
          const known = t.environment ? { id: t.environment.id, sealed: t.environment.sealed } : undefined
          const g = plaintextUse(action, qu) ? await breakGlassDecision(db, who, action, ws.id, pa, qu, ctx.clock(), known) : null
          // handle (read routes, on this same read)
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
      const audit = (tx: Executor, events: AuditEvent[]) => appendEvents(ctx, tx, [workspace.id], actor, req.id, events)

      let result: HandlerResult<unknown>
      if (route.mode === 'write') {
        result = await ctx.committer.run(async (tx) => {
          // @NOTE the chain lock before the change: changing first would lock rows (a secret),
          // then wait for the chain held by another node's batch that waits for those rows —
          // a deadlock, and a failed write.
          await lockChains(ctx, tx, [workspace.id])
          // handle
          const r = await route.handler({ ...base, db: tx } satisfies HandlerContext<unknown, unknown, unknown>)
          // audit
          const events = eventsOf(r.audit)
          if (events.length === 0) throw new InternalError('write route returned no audit event')
          await audit(tx, withGrantUse(events))
          return r.finish ? { ...r, body: await r.finish(tx) } : r
        }, workspace.id)
      } else {
        result = readResult ?? (await readInScope(ctx.store, workspace.id, (db) => route.handler({ ...base, db })))
        if (result.finish) throw new InternalError('a read route cannot finish in a transaction')
        // audit
        const events = withGrantUse(eventsOf(result.audit))
        if (events.length) {
          try {
            await ctx.committer.run((tx) => audit(tx, events), workspace.id)
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
