import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import type { AppContext } from '../context.js'
import type { Metrics } from '../ops/metrics.js'
import { ACCOUNT_STAGES, registerAccountRoutes } from './account-pipeline.js'
import type { AnyAuthRoute } from './auth-route.js'
import { PAGE_STAGES, registerPageRoute } from './page-pipeline.js'
import type { PageRouteDef } from './page-route.js'
import type { AnyRoute } from './route.js'
import type { StagePlan } from './stages.js'
import { registerWorkspaceRoute, WORKSPACE_STAGES } from './workspace-pipeline.js'

// The one request pipeline. Every route of the server — the workspace API, the account and
// sign-in routes, the pages and the public documents — is declared as data and registered
// here; each kind runs the named stages of stages.ts (authenticate → tenant → rate caps →
// policy → validate → handle → audit) as its plan says. A route registered on the app any
// other way stops the server at start-up, so no route skips a stage by accident.

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on every route: the policy action, or 'public' for unauthenticated endpoints. */
    action?: string
    /** The kind of route, set only by the pipeline: a route without it was registered around the pipeline. */
    pipeline?: RouteKind
  }
  interface FastifyInstance {
    /** Every route the pipeline registered, of every kind, in registration order. */
    readonly cofferRoutes: readonly AnyRouteDef[]
  }
}

/** The kinds of route, each with its own plan for the stages. */
export type RouteKind = 'workspace' | 'account' | 'page'

/** Any route the pipeline registers. */
export type AnyRouteDef = AnyRoute | AnyAuthRoute | PageRouteDef

/** Each kind's plan for every stage (documented in docs/architecture.md). */
export const STAGE_PLANS: Readonly<Record<RouteKind, StagePlan>> = {
  workspace: WORKSPACE_STAGES,
  account: ACCOUNT_STAGES,
  page: PAGE_STAGES,
}

/** The kind of a route definition. */
export function kindOf(route: AnyRouteDef): RouteKind {
  if ('kind' in route && route.kind === 'page') return 'page'
  if ('scope' in route) return 'account'
  return 'workspace'
}

/**
 * Registers `routes` behind the pipeline, and from now on refuses any route added to `app`
 * without it. Cookie parsing is registered for the whole app (sessions on every kind).
 */
export async function registerRoutes(
  app: FastifyInstance,
  ctx: AppContext,
  routes: readonly AnyRouteDef[],
  metrics: Metrics,
): Promise<void> {
  app.addHook('onRoute', (r) => {
    if (!r.config?.pipeline) throw new Error(`route ${r.method} ${r.url} was registered around the request pipeline`)
    if (!r.config.action) throw new Error(`route ${r.method} ${r.url} has no policy action`)
  })
  app.decorate('cofferRoutes', routes)
  await app.register(fastifyCookie)
  const account: AnyAuthRoute[] = []
  const raw: AnyRoute[] = []
  for (const r of routes) {
    const kind = kindOf(r)
    if (kind === 'workspace' && (r as AnyRoute).rawBody) raw.push(r as AnyRoute)
    else if (kind === 'workspace') registerWorkspaceRoute(app, ctx, r as AnyRoute)
    else if (kind === 'page') registerPageRoute(app, r as PageRouteDef)
    else account.push(r as AnyAuthRoute)
  }
  // Account routes share one context: the only one that also parses HTML form bodies.
  await registerAccountRoutes(app, ctx, account, metrics)
  // Routes that take their body as it came (the connection relay) share another: any type, as bytes.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    for (const r of raw) registerWorkspaceRoute(scope, ctx, r)
  })
}
