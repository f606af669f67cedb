import { randomUUID } from 'node:crypto'
import type { Transaction } from 'kysely'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { decide } from '../access/policy.js'
import type { AuditActor } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import {
  AuthMethodDisabledError,
  CofferError,
  CsrfError,
  ForbiddenError,
  InternalError,
  SessionRequiredError,
  UnsupportedMediaTypeError,
} from '../errors.js'
import { workspacesOf } from '../identity/accounts.js'
import type { Metrics } from '../ops/metrics.js'
import type { Executor } from '../storage/database.js'
import type { Database } from '../storage/schema.js'
import { readInScope, setScope, SYSTEM_SCOPE } from '../storage/tenant-scope.js'
import type { AnyAuthRoute, AuthHandlerResult, Person } from './auth-route.js'
import { appendEvents, auditFailure, authenticatePerson, clientOf, eventsOf, parse, personPrincipal, type StagePlan } from './stages.js'
import { authAttemptSucceeded } from './rate-limit.js'
import { clearSessionCookie, CSRF_FIELD, sameOrigin, setSessionCookie } from './session-auth.js'

// Account and sign-in routes: those outside /v1/workspaces/:workspace (sign-in, links, OIDC,
// a person's own account, the CLI login's exchanges). A person's events are appended to the
// log of every workspace they belong to, chains locked in id order; a failure that names no
// account is logged and counted instead.

/** How an account or sign-in route runs the stages of the pipeline. */
export const ACCOUNT_STAGES: StagePlan = {
  authenticate:
    "account routes: the session cookie with its CSRF check (a form's token), or a person's Bearer token where the route accepts one (`acceptsToken`; else ERR_SESSION_REQUIRED); public routes: none, but a form must come from this origin (login CSRF), and a route whose sign-in method is off answers ERR_AUTH_METHOD_DISABLED",
  tenant:
    'none in the URL: the events go to every workspace of the person (account routes, or the account a public route names), or to the one workspace `auditWorkspace` names',
  'rate-caps': "account routes: the credential's caps; authentication endpoints: per IP and account (in a hook)",
  policy:
    "account routes: `decide` on the action for the person outside any workspace (only `person` rules allow); public routes: the 'public' rule",
  validate: 'params, query and body (a form body without its CSRF field) with the Zod schemas',
  handle:
    '`prepare` (slow work, reads only), `verify` (network work, outside any transaction), then the handler — write routes in a transaction of their own after the chains are locked',
  audit:
    "the handler must decide (an empty list on purpose); events in the change's transaction, or committed before a read's answer; failed sign-ins recorded, then refused",
}

const FORM_TYPE = 'application/x-www-form-urlencoded'

function isForm(req: FastifyRequest): boolean {
  return (
    String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase() === FORM_TYPE
  )
}

/**
 * Runs `work` in a transaction of its own, in SYSTEM_SCOPE: it spans the person's workspaces.
 * @NOTE a fresh partition keeps the unit alone in its batch: two units that each lock several
 * audit chains must not share a transaction, or two batches could lock chains in crossing
 * orders. The fresh partition id only names the batch; the scope is widened right away.
 */
function runAlone<T>(ctx: AppContext, work: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
  return ctx.committer.run(async (tx) => {
    await setScope(tx, ctx.store.engine, SYSTEM_SCOPE)
    return work(tx)
  }, randomUUID())
}

/**
 * How long recording a failed sign-in takes (a moving average): an answer about an unknown
 * account is held back as long, so that both answers take similar time.
 */
class FailureCommitCost {
  #ms = 0
  observe(ms: number): void {
    this.#ms = this.#ms === 0 ? ms : this.#ms * 0.8 + ms * 0.2
  }
  async wait(spent: number): Promise<void> {
    const left = this.#ms - spent
    if (left > 0.5) await new Promise((resolve) => setTimeout(resolve, left))
  }
}

/** Registers one account or public route behind the account pipeline. */
function registerAccountRoute(
  app: FastifyInstance,
  ctx: AppContext,
  route: AnyAuthRoute,
  metrics: Metrics,
  failureCommit: FailureCommitCost,
): void {
  app.route({
    method: route.method,
    url: route.url,
    config: { action: route.action, pipeline: 'account', ...(route.authRateLimit ? { authRateLimit: route.authRateLimit } : {}) },
    handler: async (req, reply) => {
      const form = isForm(req)
      try {
        if (form && !route.form) throw new UnsupportedMediaTypeError()
        return await run(req, reply, form)
      } catch (err) {
        // A page's form gets its answer as a redirect back to a page that explains the code;
        // a refused forgery gets the plain error.
        if (!(form || route.method === 'GET') || !route.form || !(err instanceof CofferError) || err instanceof CsrfError) throw err
        const back =
          typeof route.form.failure === 'function' ? route.form.failure((req.body ?? {}) as Record<string, unknown>) : route.form.failure
        return reply
          .code(303)
          .header('location', `${back}${back.includes('?') ? '&' : '?'}error=${encodeURIComponent(err.code)}`)
          .send()
      }
    },
  })

  async function run(req: FastifyRequest, reply: FastifyReply, form: boolean): Promise<unknown> {
    const auth = ctx.config.auth
    if (route.requires === 'password' && !auth.password) throw new AuthMethodDisabledError('Password sign-in')
    if (route.requires === 'oidc' && !auth.oidc) throw new AuthMethodDisabledError('Sign-in with SSO')
    const rawBody = form ? { ...(req.body as Record<string, unknown>) } : req.body
    const formToken = form ? (rawBody as Record<string, unknown>)[CSRF_FIELD] : undefined
    if (form) delete (rawBody as Record<string, unknown>)[CSRF_FIELD]

    let person: Person | undefined
    if (route.scope === 'account') {
      person = await authenticatePerson(ctx, req, formToken)
      // A token of one workspace does not act for the whole account (docs/access.md).
      if (person.tokenId && !route.acceptsToken) throw new SessionRequiredError()
      await app.cofferTokenCaps(req, reply, person.sessionId ?? person.tokenId ?? person.userId)
      const d = decide(personPrincipal(person), route.action, { workspaceId: '' })
      if (!d.allow) throw new ForbiddenError()
    } else if (route.method !== 'GET' && !sameOrigin(ctx, req)) {
      // Login CSRF: a public form posted from another site is refused too.
      throw new CsrfError()
    }
    const params = parse(route.params, req.params, 'params')
    const query = parse(route.query, req.query, 'query')
    const body = parse(route.body, rawBody, 'body')
    const client = clientOf(req)
    const now = ctx.clock()
    const request = { cookies: { ...(req.cookies ?? {}) }, url: req.url, accept: String(req.headers.accept ?? '') }
    const base = { app: ctx, person, params, query, body, client, request, requestId: req.id, now }
    let prepared = route.prepare ? await readInScope(ctx.store, SYSTEM_SCOPE, (db) => route.prepare!({ ...base, db })) : undefined
    if (route.verify) prepared = await route.verify({ ...base, prepared })

    // Account routes know their person's workspaces up front (a deletion removes the memberships).
    // A route about one workspace (auditWorkspace) records there only.
    const userId = person?.userId
    const named = route.auditWorkspace ? route.auditWorkspace(prepared) : undefined
    const known = route.auditWorkspace
      ? named
        ? [named]
        : []
      : userId
        ? await readInScope(ctx.store, SYSTEM_SCOPE, (db) => workspacesOf(db, userId))
        : undefined
    const actorFor = (r: AuthHandlerResult<unknown>): AuditActor => {
      if (r.actor) return { ...r.actor, ip: client.ip, userAgent: client.userAgent }
      const id = person?.userId ?? r.auditUser ?? ''
      return { type: r.anonymous ? 'anonymous' : 'user', id, ip: client.ip, userAgent: client.userAgent }
    }
    const record = async (tx: Executor, r: AuthHandlerResult<unknown>) => {
      if (r.audit === undefined) throw new InternalError('an account route returned no audit decision')
      const events = eventsOf(r.audit)
      if (events.length === 0) return
      const workspaces = known ?? (r.auditUser ? await workspacesOf(tx, r.auditUser) : [])
      await appendEvents(ctx, tx, workspaces, actorFor(r), req.id, events)
    }

    let result: AuthHandlerResult<unknown>
    if (route.mode === 'write') {
      const started = performance.now()
      result = await runAlone(ctx, async (tx) => {
        const r = await route.handler({ ...base, db: tx, prepared })
        await record(tx, r)
        return r
      })
      if (result.fail && eventsOf(result.audit).length) failureCommit.observe(performance.now() - started)
      // @NOTE a failure for a known account waits for its audit entry to be durable; one for
      // an unknown email writes nothing. It waits about as long, so the time of the answer
      // does not tell whether the email is registered.
      else if (result.fail && result.unattributed) await failureCommit.wait(performance.now() - started)
    } else {
      result = await readInScope(ctx.store, SYSTEM_SCOPE, (db) => route.handler({ ...base, db, prepared }))
      if (eventsOf(result.audit).length) {
        const r = result
        try {
          await runAlone(ctx, async (tx) => record(tx, r))
        } catch (err) {
          throw auditFailure(err)
        }
      }
    }

    if (result.unattributed) {
      metrics.authFailuresUnattributed.inc(1, { event: result.unattributed.event, reason: result.unattributed.reason })
      req.log.warn(
        { auth: { event: result.unattributed.event, reason: result.unattributed.reason, ip: client.ip } },
        'authentication failure for no known account',
      )
    }
    if (result.afterCommit) {
      // Not awaited: mail goes out in the background, so an answer takes as long whether or not a mail is sent.
      void result
        .afterCommit(req.log)
        .catch((err: unknown) => req.log.warn({ err: { message: (err as Error).message } }, 'after-commit step failed'))
    }
    if (result.fail) throw result.fail
    authAttemptSucceeded(req)
    if (result.session && 'set' in result.session) setSessionCookie(ctx, req, reply, result.session.set)
    if (result.session && 'clear' in result.session) clearSessionCookie(ctx, req, reply)
    for (const c of result.cookies ?? []) {
      const opts = {
        httpOnly: true,
        sameSite: 'lax' as const,
        path: c.path,
        secure: ctx.config.auth.publicUrl.startsWith('https:') || req.protocol === 'https',
      }
      if (c.value === null) void reply.clearCookie(c.name, opts)
      else void reply.setCookie(c.name, c.value, { ...opts, ...(c.maxAge ? { maxAge: c.maxAge } : {}) })
    }
    if (result.redirect)
      return reply
        .code(route.method === 'GET' ? 302 : 303)
        .header('location', result.redirect)
        .send()
    if (form && route.form) {
      const to = typeof route.form.success === 'function' ? route.form.success(result.body, body) : route.form.success
      return reply.code(303).header('location', to).send()
    }
    reply.code(route.status ?? 200)
    return result.body
  }
}

/**
 * Registers every account and sign-in route in a context of their own, the only one that
 * also accepts HTML form bodies: the workspace API keeps answering 415 to them.
 */
export async function registerAccountRoutes(
  app: FastifyInstance,
  ctx: AppContext,
  routes: AnyAuthRoute[],
  metrics: Metrics,
): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser(FORM_TYPE, { parseAs: 'string' }, (_req, body, done) => {
      const out: Record<string, string> = Object.create(null)
      for (const [k, v] of new URLSearchParams(body as string)) out[k] = v
      done(null, { ...out })
    })
    const failureCommit = new FailureCommitCost()
    for (const r of routes) registerAccountRoute(scope, ctx, r, metrics, failureCommit)
  })
}
