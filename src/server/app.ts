import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AppContext } from '../context.js'
import {
  CofferError, InternalError, MalformedBodyError, NotReadyError, PayloadTooLargeError, RouteNotFoundError,
  UnsupportedMediaTypeError, ValidationError,
} from '../errors.js'
import { auditVerifyJob, checkpointJob, startJobs } from '../ops/jobs.js'
import { Metrics } from '../ops/metrics.js'
import { redactPaths, scrub } from '../ops/redact.js'
import { VERSION } from '../version.js'
import { docsPage, DOCS_CSS } from './docs-page.js'
import { openApiDocument } from './openapi.js'
import { registerRoute } from './pipeline.js'
import type { AnyRoute } from './route.js'
import { auditRoutes } from './routes/audit-routes.js'
import { identityRoutes } from './routes/identity-routes.js'
import { projectRoutes } from './routes/project-routes.js'
import { secretRoutes } from './routes/secret-routes.js'

/** Every /v1 route of the API, in documentation order. */
export const API_ROUTES: AnyRoute[] = [...identityRoutes, ...projectRoutes, ...secretRoutes, ...auditRoutes]

const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
const DOCS_CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/** Maps any error to the one envelope; unknown errors become ERR_INTERNAL and are logged. */
function toCofferError(err: FastifyError | Error): CofferError {
  if (err instanceof CofferError) return err
  const code = (err as FastifyError).code
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError()
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError()
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new MalformedBodyError('The request body is empty; send JSON.')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new MalformedBodyError()
  }
  if (err instanceof SyntaxError && (err as FastifyError).statusCode === 400) return new MalformedBodyError()
  if ((err as FastifyError).statusCode === 400 && typeof code === 'string' && code.startsWith('FST_ERR')) return new ValidationError('The request is malformed.')
  return new InternalError()
}

/**
 * Builds the HTTP server on a context: security headers on every response, one error
 * envelope, the /v1 API behind the request pipeline, health, readiness and the API document.
 */
export async function buildApp(ctx: AppContext, options: { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: ctx.config.logLevel, redact: { paths: redactPaths, censor: '[redacted]' } },
    bodyLimit: ctx.config.bodyLimit,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: false,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 300, ignoreTrailingSlash: true },
  })
  // The API speaks JSON only: Fastify's default text/plain parser would let a plain-text body
  // (a CORS "simple" request) through to the routes instead of answering 415.
  app.removeContentTypeParser('text/plain')
  let ready = false

  // Every route declares its policy action; a route registered without one is a bug.
  app.addHook('onRoute', (r) => {
    if (r.url.startsWith('/v1/') && !r.config?.action) throw new Error(`route ${r.method} ${r.url} has no policy action`)
  })

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains; preload')
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('cross-origin-resource-policy', 'same-origin')
    reply.header('cache-control', 'no-store')
    reply.header('x-request-id', req.id)
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP)
    return payload
  })

  app.setErrorHandler((thrown, req, reply) => {
    const err = thrown instanceof Error ? thrown : new Error(String(thrown))
    const e = toCofferError(err)
    if (e.status >= 500) req.log.error({ err: { type: err.name, code: (err as FastifyError).code, message: scrub(err.message), stack: scrub(err.stack ?? '') } }, 'request failed')
    const body: { error: Record<string, unknown> } = { error: { code: e.code, message: e.message, requestId: req.id } }
    if (e instanceof ValidationError && e.issues.length) body.error.issues = e.issues
    void reply.code(e.status).type('application/json; charset=utf-8').send(body)
  })
  app.setNotFoundHandler((req, reply) => {
    const e = new RouteNotFoundError()
    void reply.code(404).send({ error: { code: e.code, message: e.message, requestId: req.id } })
  })

  const publicRoute = { config: { action: 'public' } }
  app.get('/healthz', publicRoute, async () => ({ status: 'ok' }))
  app.get('/readyz', publicRoute, async () => {
    if (!ready) throw new NotReadyError()
    await ctx.store.db.selectFrom('coffer_schema').select('version').limit(1).execute()
    return { status: 'ready' }
  })
  // Anyone may fetch the key that signs audit checkpoints: verifying needs no account.
  app.get('/v1/audit/public-key', publicRoute, async () => ({ publicKey: ctx.auditTree.verifierKey, algorithm: 'Ed25519', format: 'C2SP signed-note verifier key' }))
  const doc = openApiDocument(API_ROUTES, VERSION)
  app.get('/v1/openapi.json', publicRoute, async () => doc)
  const page = docsPage(doc as never, API_ROUTES)
  app.get('/docs', publicRoute, async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CSP).send(page))
  app.get('/docs/style.css', publicRoute, async (_req, reply) => reply.type('text/css; charset=utf-8').send(DOCS_CSS))

  for (const r of API_ROUTES) registerRoute(app, ctx, r)

  const metrics = new Metrics()
  app.get('/metrics', publicRoute, async (_req, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render(ctx.committer.stats)))

  let stopJobs: (() => Promise<void>) | undefined
  app.addHook('onReady', async () => {
    stopJobs = startJobs([
      checkpointJob(ctx, metrics, ctx.config.audit.checkpointIntervalMs),
      auditVerifyJob(ctx, metrics, app.log, ctx.config.audit.verifyIntervalMs),
    ], app.log)
    ready = true
  })
  app.addHook('preClose', async () => {
    ready = false
    await stopJobs?.()
  })
  return app
}
