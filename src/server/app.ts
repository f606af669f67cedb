import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyError, type FastifyReply, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AppContext } from '../context.js'
import {
  CofferError,
  DatabaseBusyError,
  DatabaseUnavailableError,
  MalformedRequestError,
  UriTooLongError,
  InternalError,
  MalformedBodyError,
  NotReadyError,
  PayloadTooLargeError,
  RateLimitUnavailableError,
  RouteNotFoundError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors.js'
import { auditVerifyJob, checkpointJob, keyRotationJob, startJobs } from '../jobs/jobs.js'
import { backupJob } from '../jobs/backup-job.js'
import { breakGlassExpiryJob, changeRequestExpiryJob, purgeJob } from '../jobs/lifecycle-jobs.js'
import { databaseProbeJob } from '../jobs/database-probe.js'
import type { TrustProxy } from '../ops/config.js'
import { redactPaths, requestLogView } from '../ops/redact.js'
import { scrub } from '../scrub.js'
import { pingDatabase } from '../storage/database.js'
import { VERSION } from '../version.js'
import { docsPage, DOCS_CSS } from './docs-page.js'
import { openApiDocument } from './openapi.js'
import { registerRoutes } from './pipeline.js'
import { answerClientError, envelope, MAX_PARAM_LENGTH, securityHeaders } from './bare-answers.js'
import { databaseFailure } from './stages.js'
import { PageTable } from './page-route.js'
import { registerRateLimits } from './rate-limit.js'
import type { AnyAuthRoute } from './auth-route.js'
import { cliLoginPages } from './cli-login-pages.js'
import { webAppPages } from './web-app.js'
import { accountRoutes } from './routes/account-routes.js'
import { authLinkRoutes } from './routes/auth-link-routes.js'
import { authRoutes } from './routes/auth-routes.js'
import { authPages } from './pages/auth-pages.js'
import { invitePages } from './pages/invite-pages.js'
import { cliLoginRoutes } from './routes/cli-login-routes.js'
import { loadTls, type TlsOptions } from './tls.js'
import type { AnyRoute } from './route.js'
import { auditRoutes } from './routes/audit-routes.js'
import { breakGlassRoutes } from './routes/break-glass-routes.js'
import { changeRequestRoutes } from './routes/change-request-routes.js'
import { promoteRoutes } from './routes/promote-routes.js'
import { identityRoutes } from './routes/identity-routes.js'
import { integrationRoutes } from './routes/integration-routes.js'
import { machineOidcAuthRoutes, machineOidcRoutes } from './routes/machine-oidc-routes.js'
import { invitationFormRoutes } from './routes/invitation-form-routes.js'
import { invitationAccountRoutes } from './routes/invitation-account-routes.js'
import { invitationRoutes } from './routes/invitation-routes.js'
import { memberRoutes } from './routes/member-routes.js'
import { keyRoutes } from './routes/key-routes.js'
import { webhookRoutes } from './routes/webhook-routes.js'
import { dynamicRoutes } from './routes/dynamic-routes.js'
import { awsRoutes } from './routes/aws-routes.js'
import { connectionAuthRoutes, connectionRoutes } from './routes/connection-routes.js'
import { projectRoutes } from './routes/project-routes.js'
import { referenceRoutes } from './routes/reference-routes.js'
import { secretRoutes } from './routes/secret-routes.js'
import { workspaceDeletionRoutes } from './routes/workspace-deletion-routes.js'

/** Every /v1 route of the API, in documentation order. */
export const API_ROUTES: AnyRoute[] = [
  ...identityRoutes,
  ...projectRoutes,
  ...memberRoutes,
  ...invitationRoutes,
  ...integrationRoutes,
  ...machineOidcRoutes,
  ...secretRoutes,
  ...referenceRoutes,
  ...promoteRoutes,
  ...keyRoutes,
  ...webhookRoutes,
  ...dynamicRoutes,
  ...awsRoutes,
  ...connectionRoutes,
  ...auditRoutes,
  ...authLinkRoutes,
  ...breakGlassRoutes,
  ...changeRequestRoutes,
  ...workspaceDeletionRoutes,
]

/** Every route outside /v1/workspaces/:workspace (sign-in, account, CLI login), behind the account pipeline. */
export const AUTH_ROUTES: AnyAuthRoute[] = [
  ...authRoutes,
  ...accountRoutes,
  ...cliLoginRoutes,
  ...invitationFormRoutes,
  ...invitationAccountRoutes,
  ...machineOidcAuthRoutes,
  ...connectionAuthRoutes,
]

const DOCS_CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/**
 * Fastify's trustProxy for COFFER_TRUST_PROXY: the client address comes from X-Forwarded-For
 * only through trusted proxies. @NOTE a hop count is given as a function: Fastify takes a bare
 * number as "trust nothing", since a hop count cannot tell a proxy from a client that connects
 * directly; the operator who picks one is told so in docs/operations.md.
 */
function trustProxyOption(t: TrustProxy): FastifyServerOptions['trustProxy'] {
  if (t === false) return false
  if (typeof t === 'number') return (_addr: string, hop: number) => hop < t
  return [...t]
}

/** Maps any error to the one envelope; unknown errors become ERR_INTERNAL and are logged. */
function toCofferError(err: FastifyError | Error): CofferError {
  if (err instanceof CofferError) return err
  const db = databaseFailure(err)
  if (db) return db
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
  if ((err as FastifyError).statusCode === 400 && typeof code === 'string' && code.startsWith('FST_ERR'))
    return new ValidationError('The request is malformed.')
  return new InternalError()
}

/** The request headers an error report may carry: an allow-list (the report's scrubber is the second wall). */
const REPORTED_HEADERS = ['user-agent', 'content-type', 'content-length', 'accept', 'x-request-id'] as const
function reportedHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const h of REPORTED_HEADERS) {
    const v = headers[h]
    if (typeof v === 'string') out[h] = v
  }
  return out
}

/**
 * Server errors worth a report: every 5xx but the states the metrics and readiness already
 * tell (the database, Redis for sign-in limits, or the node itself not being ready).
 */
function isReportable(e: CofferError): boolean {
  return (
    e.status >= 500 &&
    !(e instanceof DatabaseUnavailableError) &&
    !(e instanceof DatabaseBusyError) &&
    !(e instanceof NotReadyError) &&
    !(e instanceof RateLimitUnavailableError)
  )
}

/**
 * Builds the HTTP server on a context: security headers on every response, one error
 * envelope, the /v1 API behind the request pipeline, health, readiness and the API document.
 */
export async function buildApp(
  ctx: AppContext,
  options: { logger?: FastifyServerOptions['logger']; tls?: TlsOptions } = {},
): Promise<FastifyInstance> {
  // With COFFER_TLS_CERT/KEY the server speaks HTTPS only, TLS 1.2 and later.
  const https = options.tls ?? loadTls(ctx.config.tls)
  const app = Fastify({
    ...(https ? { https: { ...https } } : {}),
    // @NOTE a caller's logger options (tests pass a level and a stream) keep the redaction
    // and the request serializer that takes link tokens out of logged URLs.
    logger:
      options.logger === false
        ? false
        : {
            level: ctx.config.logLevel,
            redact: { paths: redactPaths, censor: '[redacted]' },
            serializers: { req: requestLogView },
            ...(typeof options.logger === 'object' ? options.logger : {}),
          },
    bodyLimit: ctx.config.bodyLimit,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: trustProxyOption(ctx.config.trustProxy),
    return503OnClosing: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH, ignoreTrailingSlash: true },
    // The router's own refusals (bad percent-encoding, an over-long segment) get the envelope
    // and the headers too, and echo none of the URL.
    frameworkErrors: (error, req, reply) => {
      const e = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new UriTooLongError() : new MalformedRequestError()
      const r = reply as unknown as FastifyReply
      void r.code(e.status).headers(securityHeaders(req.id)).type('application/json; charset=utf-8').send(envelope(e, req.id))
    },
    clientErrorHandler: answerClientError,
  })
  // The API speaks JSON only: Fastify's default text/plain parser would let a plain-text body
  // (a CORS "simple" request) through to the routes instead of answering 415.
  app.removeContentTypeParser('text/plain')
  let ready = false

  app.addHook('onSend', async (req, reply, payload) => {
    for (const [name, value] of Object.entries(securityHeaders(req.id))) {
      // A page's own CSP, referrer policy and caching (the dashboard's hashed files) stand.
      if ((name === 'referrer-policy' || name === 'content-security-policy' || name === 'cache-control') && reply.hasHeader(name)) continue
      reply.header(name, value)
    }
    return payload
  })

  app.setErrorHandler(async (thrown, req, reply) => {
    const err = thrown instanceof Error ? thrown : new Error(String(thrown))
    let e = toCofferError(err)
    // A refused credential counts against its address; a locked-out address gets 429 instead.
    if (e.code === 'ERR_UNAUTHENTICATED') e = (await app.cofferCredentialRefused(req, reply)) ?? e
    if (e instanceof DatabaseUnavailableError) ctx.metrics.databaseAvailable.set(0)
    if (e instanceof DatabaseUnavailableError || e instanceof DatabaseBusyError)
      req.log.warn({ err: { code: (err as FastifyError).code, message: scrub(err.message) } }, e.message)
    else if (e.status >= 500)
      req.log.error(
        { err: { type: err.name, code: (err as FastifyError).code, message: scrub(err.message), stack: scrub(err.stack ?? '') } },
        'request failed',
      )
    if (isReportable(e))
      ctx.errorReports.capture(err, {
        requestId: req.id,
        method: req.method,
        url: req.url,
        route: req.routeOptions.url,
        headers: reportedHeaders(req.headers),
      })
    const body: { error: Record<string, unknown> } = { error: { code: e.code, message: e.message, requestId: req.id } }
    if (e instanceof ValidationError && e.issues.length) body.error.issues = e.issues
    return reply.code(e.status).type('application/json; charset=utf-8').send(body)
  })
  app.setNotFoundHandler((req, reply) => {
    const e = new RouteNotFoundError()
    void reply.code(404).send({ error: { code: e.code, message: e.message, requestId: req.id } })
  })

  await registerRateLimits(app, ctx.config.rateLimit, ctx.clock, ctx.metrics)

  const metrics = ctx.metrics
  // Health, readiness, metrics, the audit public key and the API document: public answers
  // that read only, registered as pages of the pipeline.
  const documents = new PageTable()
  documents.get('/healthz', {}, async () => ({ status: 'ok' }))
  documents.get('/readyz', {}, async () => {
    if (!ready) throw new NotReadyError()
    await pingDatabase(ctx.store)
    ctx.metrics.databaseAvailable.set(1)
    return { status: 'ready' }
  })
  // Anyone may fetch the key that signs audit checkpoints: verifying needs no account.
  documents.get('/v1/audit/public-key', {}, async () => ({
    publicKey: ctx.auditTree.verifierKey,
    algorithm: 'Ed25519',
    format: 'C2SP signed-note verifier key',
  }))
  const doc = openApiDocument([...API_ROUTES, ...AUTH_ROUTES], VERSION)
  documents.get('/v1/openapi.json', {}, async () => doc)
  const page = docsPage(doc as never)
  documents.get('/docs', {}, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CSP).send(page),
  )
  documents.get('/docs/style.css', {}, async (_req, reply) => reply.type('text/css; charset=utf-8').send(DOCS_CSS))
  documents.get('/metrics', {}, async (_req, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render(ctx.committer.stats)),
  )

  // Every route, of every kind, through the one pipeline.
  await registerRoutes(
    app,
    ctx,
    [
      ...documents.routes,
      ...API_ROUTES,
      ...AUTH_ROUTES,
      ...authPages(ctx),
      ...invitePages(ctx),
      ...cliLoginPages(ctx),
      // Last: its `/*` answers only what no other route does.
      ...webAppPages(ctx),
    ],
    metrics,
  )
  app.addHook('onReady', async () => {
    if (!ctx.mailer.enabled)
      app.log.info(
        'mail is disabled (COFFER_SMTP_URL is not set): Owners and Admins issue verification and reset links for their members through POST /v1/workspaces/:workspace/auth-links; on this host, coffer reset-link EMAIL prints one for any account',
      )
  })
  // A failing sequencer is logged when it starts failing and when it recovers, not every tick.
  const sequencing = new Map<string, boolean>()
  ctx.sequencer.onError((err, workspace) => {
    if (sequencing.get(workspace)) return
    sequencing.set(workspace, true)
    if (databaseFailure(err))
      app.log.warn({ workspace }, 'audit sequencing paused: the database is unavailable; queued entries are integrated when it answers')
    else {
      ctx.errorReports.capture(err, { job: 'audit-sequencer' })
      app.log.error(
        { workspace, err: { message: scrub((err as Error).message ?? String(err)) } },
        'audit sequencing failed; entries stay queued',
      )
    }
  })
  ctx.sequencer.onIntegrated((workspace) => {
    if (sequencing.delete(workspace) || sequencing.delete('')) app.log.info({ workspace }, 'audit sequencing resumed')
  })
  ctx.resealer.observe({
    progress: (j) => metrics.resealedVersions.inc(j.resealed),
    finished: (j) =>
      app.log.info({ job: j.id, destroyedVersions: j.destroyedVersions }, 'reseal finished; old data-key versions destroyed'),
    error: (err, job) => {
      // An outage pauses a reseal (it resumes by itself once the database answers): no failure.
      if (databaseFailure(err)) {
        app.log.warn({ job }, 'reseal paused: the database is unavailable; it resumes when the database answers')
        return
      }
      metrics.resealFailures.inc()
      ctx.errorReports.capture(err, { job: 'reseal' })
      app.log.error({ job, err: { message: scrub((err as Error).message ?? String(err)) } }, 'reseal stopped')
    },
  })
  let stopJobs: (() => Promise<void>) | undefined
  // Expired dynamic database roles are dropped within this long of their expiry.
  const DB_DROP_INTERVAL_MS = 5_000
  app.addHook('onReady', async () => {
    stopJobs = startJobs(
      [
        checkpointJob(ctx, metrics, ctx.config.audit.checkpointIntervalMs, app.log),
        auditVerifyJob(ctx, metrics, app.log, ctx.config.audit.verifyIntervalMs),
        keyRotationJob(ctx, metrics, app.log),
        breakGlassExpiryJob(ctx),
        changeRequestExpiryJob(ctx),
        purgeJob(ctx, app.log),
        databaseProbeJob(ctx, app.log),
        backupJob(ctx, app.log),
        { name: 'db-credentials-dropper', intervalMs: DB_DROP_INTERVAL_MS, run: async () => void (await ctx.dbDropper.run()) },
        // OAuth connection tokens expiring within 10 minutes are refreshed ahead (connections/refresher.ts).
        { name: 'connection-refresher', intervalMs: 60_000, run: async () => void (await ctx.connectionRefresher.run()) },
      ],
      app.log,
      (err, job) => ctx.errorReports.capture(err, { job }),
    )
    ctx.resealer.start(ctx.config.keys.checkIntervalMs)
    ctx.sequencer.start()
    ctx.webhooks.start()
    ready = true
  })
  app.addHook('preClose', async () => {
    ready = false
    // Open event streams would keep the server from closing: each ends, and its client reconnects elsewhere.
    ctx.secretChanges.closeAll()
    await stopJobs?.()
    await ctx.resealer.stop()
    await ctx.sequencer.stop()
    await ctx.webhooks.stop()
  })
  return app
}
