import type { FastifyInstance } from 'fastify'
import type { PageRouteDef } from './page-route.js'
import type { StagePlan } from './stages.js'

/** How a page (and a public document: health, readiness, metrics, the API document) runs the stages of the pipeline. */
export const PAGE_STAGES: StagePlan = {
  authenticate: "none up front: a page that shows a person's data reads the session cookie itself and, without one, redirects to sign-in",
  tenant: "none: a page shows only the session's own person and the workspaces they belong to",
  'rate-caps':
    'pages that take a one-time token in the query (an invitation, a device code) are limited per IP like authentication endpoints',
  policy: "the 'public' rule; what a page shows is limited to the session's person",
  validate: 'query values are read defensively (strings only, bounded length, local return paths only)',
  handle: 'render: every value HTML-escaped, a CSP without script, Referrer-Policy strict-origin or stricter',
  audit: 'none: pages only read and render; their forms post to account routes, which audit',
}

/** Registers one page behind the stages of PAGE_STAGES. */
export function registerPageRoute(app: FastifyInstance, route: PageRouteDef): void {
  app.route({
    method: route.method,
    url: route.url,
    config: { action: route.action, pipeline: 'page', ...(route.authRateLimit ? { authRateLimit: route.authRateLimit } : {}) },
    handler: (req, reply) => route.handler(req, reply),
  })
}
