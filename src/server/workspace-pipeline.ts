import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { breakGlassDecision, grantUseEvent, plaintextUse, type ActiveGrant } from '../access/break-glass.js'
import { createChangeRequest } from '../access/change-requests.js'
import { actorId, authorize, type Action, type Principal } from '../access/policy.js'
import { workspaceEpochOf } from '../access/target-cache.js'
import type { AuditEvent } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import { EnvironmentProtectedError, InternalError, NotFoundError } from '../errors.js'
import { environmentPartition, writePartition } from '../storage/commit-partition.js'
import type { Executor } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import { notifyChangeApprovers } from './change-notify.js'
import { serveEvents } from './event-stream.js'
import { schemaOf } from './openapi.js'
import { authAttemptSucceeded } from './rate-limit.js'
import { authenticateRequest } from './session-auth.js'
import type { Environment } from '../vault/project-service.js'
import { matchWorkspace, type Workspace } from '../vault/workspace-service.js'
import type { AnyRoute, HandlerContext, HandlerResult, Target } from './route.js'
import {
  actorOf,
  auditFailure,
  appendEvents,
  authenticatePerson,
  bearerAuth,
  confirmCached,
  eventsOf,
  parse,
  personPrincipal,
  StaleAuthentication,
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
  handle:
    'read routes in a read-only transaction in the tenant scope (the connection relay, `outsideTransaction`, after it, with short reads of its own); write routes in a group-committed transaction — a secret write to a protected environment is stored as a change request instead (202)',
  audit:
    "the handler's events (a write must return one) queued in the change's transaction, or committed before a read's answer; fails closed; the sequencer integrates them into the chain",
}

/** The route's action, or its stronger one when the query flag that elevates it is true (checked before validation). */
function actionOf(route: AnyRoute, rawQuery: unknown): Action {
  if (!route.elevate) return route.action
  const v = (rawQuery as Record<string, unknown> | undefined)?.[route.elevate.flag]
  return v === 'true' || v === '1' ? route.elevate.action : route.action
}

/** What the stages up to `validate` established about a request. */
interface Placed {
  readonly action: Action
  readonly principal: Principal
  readonly workspace: Workspace
  readonly target: Target
  readonly params: unknown
  readonly query: unknown
  readonly body: unknown
  /** The active break-glass grant a sealed environment's plaintext is reached through. */
  readonly grant: ActiveGrant | null
  /** A read route's result, when the handler already ran on the placing read. */
  readResult?: HandlerResult<unknown>
}

/**
 * authenticate → tenant → rate caps → policy → validate for a route whose workspace the body
 * names (an invitation, a machine credential): the person (if the route needs one), then the
 * input, then where the body points — anything it cannot place answers 404.
 */
async function placeByBody(
  app: FastifyInstance,
  ctx: AppContext,
  route: AnyRoute,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<Placed> {
  const action = actionOf(route, req.query)
  let who: Principal | null = null
  if (route.auth !== 'none') {
    who = personPrincipal(await authenticatePerson(ctx, req))
    await app.cofferTokenCaps(req, reply, who.tokenId)
    authorize(who, action, { workspaceId: who.workspaceId })
  }
  const params = parse(route.params, req.params, 'params')
  const query = parse(route.query, req.query, 'query')
  const body = parse(route.body, req.body, 'body')
  const placed = await readInScope(ctx.store, SYSTEM_SCOPE, (db) =>
    route.tenantFromBody!({ app: ctx, db, body, principal: who, ip: req.ip }),
  )
  const principal = placed.principal ?? who
  if (!principal) throw new InternalError('a route placed by its body named no principal')
  authorize(principal, action, { workspaceId: placed.workspace.id })
  return { action, principal, workspace: placed.workspace, target: {}, params, query, body, grant: null }
}

/**
 * authenticate → tenant → rate caps → policy → validate for a route under
 * /v1/workspaces/:workspace, and — for a read route — the handler on the same read. The
 * credential may be answered from this node's principal cache (`fresh` false): the read then
 * first confirms the cached acceptance's epochs, and a stale one — or a cached workspace the
 * URL does not match — makes the request start over from the database, so a cache never
 * refuses, or accepts, what the database would not.
 */
async function placeByUrl(
  app: FastifyInstance,
  ctx: AppContext,
  route: AnyRoute,
  req: FastifyRequest,
  reply: FastifyReply,
  fresh = false,
  counted?: string,
): Promise<Placed> {
  const action = actionOf(route, req.query)
  // A Bearer token, or (with no Authorization header) the browser's session cookie and its CSRF check.
  const cache = { cache: !fresh }
  const auth = await authenticateRequest(ctx, req, () => bearerAuth(ctx, req, cache), cache)
  const cached = 'cached' in auth ? auth.cached : undefined
  const principal = auth.principal
  // A request started over counts once against its credential's caps.
  if (counted !== principal.tokenId) await app.cofferTokenCaps(req, reply, principal.tokenId)
  const again = () => placeByUrl(app, ctx, route, req, reply, true, principal.tokenId)
  let workspace: Workspace
  try {
    workspace = matchWorkspace(auth.workspace, (req.params as Record<string, string | undefined>).workspace ?? auth.workspace.id)
  } catch (err) {
    if (cached) return again()
    throw err
  }
  // Tenant, then role, then input: a caller learns nothing about a route's input rules (400)
  // where it may not act (404 for another tenant or an invisible project, 403 for a weaker
  // role). All of it, and a read route's handler, on one read in the workspace's row-level
  // security scope.
  try {
    return await readInScope(ctx.store, workspace.id, async (db) => {
      await confirmCached(ctx, db, cached)
      // A confirmed cache entry's workspace epoch was just read in this transaction: the
      // project and environment may come from memory while it is unchanged.
      const epoch = cached ? workspaceEpochOf(cached.entry.stamp, workspace.id) : undefined
      const t = await ctx.targets.resolve(db, principal, workspace.id, req.params, epoch)
      authorize(principal, action, t.resource)
      const target: Target = { ...(t.project ? { project: t.project } : {}), ...(t.environment ? { environment: t.environment } : {}) }
      const params = parse(route.params, req.params, 'params')
      const query = parse(route.query, req.query, 'query')
      const body = parse(route.body, req.body, 'body')
      // Break-glass, after the role decision: in a sealed environment a person reveals or writes
      // values only through an active grant, and each such request is audited with the grant's id.
      const known = t.environment ? { id: t.environment.id, sealed: t.environment.sealed } : undefined
      const grant = plaintextUse(action, query)
        ? await breakGlassDecision(db, principal, action, workspace.id, params, query, ctx.clock(), known)
        : null
      const placed: Placed = { action, principal, workspace, target, params, query, body, grant }
      if (route.mode === 'read' && !route.readsAuditLog && !route.outsideTransaction)
        placed.readResult = await route.handler(handlerContext(ctx, req, placed, db))
      return placed
    })
  } catch (err) {
    if (err instanceof StaleAuthentication) return again()
    throw err
  }
}

/** What a handler receives: the placed request and its database handle. */
function handlerContext(ctx: AppContext, req: FastifyRequest, p: Placed, db: Executor): HandlerContext<unknown, unknown, unknown> {
  return {
    db,
    app: ctx,
    principal: p.principal,
    workspace: p.workspace,
    target: p.target,
    params: p.params,
    query: p.query,
    body: p.body,
    requestId: req.id,
    ip: req.ip,
    request: { url: req.url, headers: req.headers },
  }
}

/**
 * handle → audit for a write to a protected environment: the route proposes the operations it
 * would perform (checked, not applied), and they are stored as a change request — sealed under
 * the environment's data key — that other Owners/Admins approve (src/access/change-requests.ts);
 * the answer is 202 `{ changeRequest }`, audited `change.request` (keys and versions only). A
 * route that proposes nothing (a dry run) runs as usual. A secret write that cannot be proposed
 * is refused.
 */
async function handleProposal(
  ctx: AppContext,
  route: AnyRoute,
  req: FastifyRequest,
  p: Placed,
  env: Environment,
  audit: (tx: Executor, events: AuditEvent[]) => Promise<unknown>,
): Promise<HandlerResult<unknown>> {
  const propose = route.propose
  if (!propose)
    throw new EnvironmentProtectedError(
      `${env.slug} is protected: this write cannot be proposed as a change request. Use coffer secrets set, delete, rollback or promote.`,
    )
  return ctx.committer.run(async (tx) => {
    const hc = handlerContext(ctx, req, p, tx)
    const proposal = await propose(hc)
    if (!proposal) {
      const r = await route.handler(hc)
      const events = eventsOf(r.audit)
      if (events.length === 0 || r.finish)
        throw new InternalError('a write that proposed nothing must return its audit event and no finish')
      await audit(tx, events)
      return r
    }
    const scope = { workspaceId: p.workspace.id, projectId: env.projectId, environmentId: env.id }
    const { request, approvers } = await createChangeRequest(tx, ctx, {
      scope,
      requesterId: actorId(p.principal),
      proposal,
      approvalsRequired: env.changeApprovals,
      now: ctx.clock(),
    })
    await audit(tx, [
      {
        action: 'change.request',
        target: { type: 'change_request', id: request.id },
        details: {
          project: scope.projectId,
          environment: scope.environmentId,
          kind: proposal.kind,
          changes: request.changes.map((c) => ({ key: c.key, op: c.op, baseVersion: c.baseVersion })),
          approvalsRequired: request.approvalsRequired,
        },
      },
    ])
    return { body: { changeRequest: request }, status: 202, afterCommit: notifyChangeApprovers(ctx, p.workspace, request, approvers) }
  }, writePartition(p.workspace.id))
}

/**
 * handle → audit: a write route's handler and its audit entries in one group-committed
 * transaction; a read route's audit entries committed before its answer. Neither takes the
 * workspace's chain head: entries are queued, and the sequencer integrates them.
 * Fails closed: an entry that cannot be written fails the request.
 */
async function handleAndAudit(ctx: AppContext, route: AnyRoute, req: FastifyRequest, p: Placed): Promise<HandlerResult<unknown>> {
  const withGrantUse = (events: AuditEvent[]) => (p.grant ? [...events, grantUseEvent(p.grant, p.action, route.method, route.url)] : events)
  const actor = actorOf(req, p.principal)
  const audit = (tx: Executor, events: AuditEvent[]) => appendEvents(ctx, tx, [p.workspace.id], actor, req.id, events)
  const protectedEnv = p.target.environment && p.target.environment.changeApprovals > 0 ? p.target.environment : null
  if (route.mode === 'write' && route.action === 'secret.write' && protectedEnv) {
    return handleProposal(ctx, route, req, p, protectedEnv, (tx, events) => audit(tx, withGrantUse(events)))
  }
  if (route.mode === 'write') {
    const { partition, order } = writePartitionOf(route, p)
    return ctx.committer.run(
      async (tx) => {
        const r = await route.handler(handlerContext(ctx, req, p, tx))
        const events = eventsOf(r.audit)
        if (events.length === 0) throw new InternalError('write route returned no audit event')
        await audit(tx, withGrantUse(events))
        return r.finish ? { ...r, body: await r.finish(tx) } : r
      },
      partition,
      order,
    )
  }
  if (route.readsAuditLog) await ctx.sequencer.catchUp(p.workspace.id)
  const result =
    p.readResult ??
    (route.outsideTransaction
      ? await route.handler(handlerContext(ctx, req, p, ctx.store.readDb))
      : await readInScope(ctx.store, p.workspace.id, (db) => route.handler(handlerContext(ctx, req, p, db))))
  if (result.finish) throw new InternalError('a read route cannot finish in a transaction')
  const events = withGrantUse(eventsOf(result.audit))
  if (events.length) {
    try {
      await ctx.readAudits.append(p.workspace.id, actor, req.id, events)
    } catch (err) {
      throw auditFailure(err)
    }
  }
  return result
}

/**
 * The committer partition of a write: a secret write of one environment (`locksOwnRows`) takes
 * that environment's write lock — shared, and in key order, when it locks one secret — and
 * every other write its workspace's (src/storage/commit-partition.ts).
 */
function writePartitionOf(route: AnyRoute, p: Placed): { partition: string; order?: string } {
  const env = p.target.environment
  if (!route.locksOwnRows || !env) return { partition: writePartition(p.workspace.id) }
  const key = (p.params as { key?: unknown }).key
  if (route.locksOwnRows === 'key' && typeof key === 'string')
    return { partition: environmentPartition(p.workspace.id, env.id, true), order: key }
  return { partition: environmentPartition(p.workspace.id, env.id) }
}

/**
 * An `events` route: its first answer, then an event stream that re-places the request (without
 * counting it again against the credential's caps) on every check.
 */
async function streamEvents(
  app: FastifyInstance,
  ctx: AppContext,
  route: AnyRoute,
  req: FastifyRequest,
  reply: FastifyReply,
  placed: Placed,
): Promise<FastifyReply> {
  const env = placed.target.environment
  if (route.mode !== 'read' || route.readsAuditLog || !env) throw new InternalError('an events route must be a read of one environment')
  const first = placed.readResult!
  if (eventsOf(first.audit).length) throw new InternalError('an events route audits nothing')
  authAttemptSucceeded(req)
  const p = placed.principal
  return serveEvents(ctx, reply, {
    event: route.events!.event,
    first: first.body,
    workspaceId: placed.workspace.id,
    environmentId: env.id,
    userId: p.type === 'user' ? p.userId : null,
    ...(route.events!.follows ? { follows: route.events!.follows } : {}),
    reread: async () => {
      const again = await placeByUrl(app, ctx, route, req, reply, false, p.tokenId)
      // The same credential must still name the same environment (a slug reused after a deletion is another one).
      if (again.target.environment?.id !== env.id) throw new NotFoundError('environment')
      return again.readResult!.body
    },
  })
}

/**
 * Registers a workspace route on `app`, behind the stages of WORKSPACE_STAGES. Audit
 * entries are written here — in the same transaction as a write, or committed before a
 * read's response — and a failure to write them fails the request.
 */
export function registerWorkspaceRoute(app: FastifyInstance, ctx: AppContext, route: AnyRoute): void {
  const place = route.tenantFromBody ? placeByBody : placeByUrl
  app.route({
    method: route.method,
    url: route.url,
    config: { action: route.action, pipeline: 'workspace', ...(route.authRateLimit ? { authRateLimit: route.authRateLimit } : {}) },
    ...(route.compiledResponse ? { schema: { response: { [route.status ?? 200]: schemaOf(route.response, 'output') } } } : {}),
    handler: async (req, reply) => {
      const placed = await place(app, ctx, route, req, reply)
      if (route.events) return streamEvents(app, ctx, route, req, reply, placed)
      const result = await handleAndAudit(ctx, route, req, placed)
      // Committed: this node's watchers of the workspace re-read (other nodes hear migration 15's notification).
      if (route.mode === 'write') ctx.secretChanges.workspaceWritten(placed.workspace.id)
      authAttemptSucceeded(req)
      if (result.afterCommit)
        await result
          .afterCommit(req.log)
          .catch((err: unknown) => req.log.warn({ err: { message: (err as Error).message } }, 'after-commit step failed'))
      reply.code(result.status ?? route.status ?? 200)
      if (result.headers) reply.headers(result.headers)
      if (result.json) {
        // Plaintext values (an environment fetch's): zeroed once the answer has left the process, or the request was abandoned.
        const bytes = result.json
        reply.raw.once('close', () => bytes.fill(0))
        return reply.type('application/json; charset=utf-8').send(bytes)
      }
      return result.body
    },
  })
}
