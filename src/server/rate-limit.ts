import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { RateLimitedError, RateLimitUnavailableError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { RateLimitConfig } from '../ops/config.js'
import { MemoryCounters, RedisCounters, rateLimitStore, type CounterBackend } from './rate-limit-store.js'

// Rate limits, counted by @fastify/rate-limit in Redis (REDIS_URL: shared by every node) or
// in memory:
//   - authentication endpoints (a route opts in with `config: { authRateLimit: true }`, or
//     `authRateLimit: true` in defineRoute): per client IP and per account, growing lockout;
//   - requests carrying a bad credential (malformed, unknown, expired, revoked): per IP, so
//     token guessing is throttled, growing lockout;
//   - every authenticated request: per token (or session) per minute and per calendar month.
// Every refusal is the same 429 ERR_RATE_LIMITED with Retry-After, whether or not the
// account exists.

/** How an authentication route names the account an attempt is for. */
export interface AuthRateLimitOptions {
  /** The account (email, client id, …) the request tries; default: `email`, `clientId`, `client_id` or `username` of the body. */
  account?: (req: FastifyRequest) => string | undefined
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Limit this route as an authentication endpoint: per IP and per account, growing lockout. */
    authRateLimit?: true | AuthRateLimitOptions
  }
  interface FastifyInstance {
    /** Per-token caps, called by the pipeline once a request is authenticated. */
    cofferTokenCaps(req: FastifyRequest, reply: FastifyReply, credentialId: string): Promise<void>
  }
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>
type LimitResult = Awaited<ReturnType<Limiter>>

/** The session cookie of browser sign-in; a request carrying one is credentialed like a Bearer one. */
const SESSION_COOKIE = 'coffer_session'
const ACCOUNT_FIELDS = ['email', 'clientId', 'client_id', 'username'] as const

/** The account a body names, by the usual field names. */
function accountFromBody(req: FastifyRequest): string | undefined {
  const body = req.body
  if (!body || typeof body !== 'object') return undefined
  for (const f of ACCOUNT_FIELDS) {
    const v = (body as Record<string, unknown>)[f]
    if (typeof v === 'string' && v.trim() !== '') return v
  }
  return undefined
}

/** A counter key for an account: hashed, so Redis holds no email addresses. */
function accountKey(account: string): string {
  return createHash('sha256').update(account.trim().toLowerCase().slice(0, 512), 'utf8').digest('base64url').slice(0, 32)
}

function carriesCredential(req: FastifyRequest): boolean {
  if (req.headers.authorization) return true
  const cookie = req.headers.cookie
  return typeof cookie === 'string' && cookie.includes(`${SESSION_COOKIE}=`)
}

/** Milliseconds until the next calendar month (UTC) begins, and the month's label. */
export function monthWindow(now: Date): { label: string; ms: number } {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)
  return { label: `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`, ms: Math.max(1000, next - now.getTime()) }
}

/** Throws RateLimitedError (and sets Retry-After: the longest wait) when any limit is exceeded. */
function refuse(reply: FastifyReply, results: LimitResult[]): void {
  const over = results.filter((r) => !r.isAllowed && r.isExceeded)
  if (over.length === 0) return
  const retryAfter = Math.max(1, ...over.map((r) => (r.isAllowed ? 0 : r.ttlInSeconds)))
  void reply.header('retry-after', String(retryAfter))
  throw new RateLimitedError(retryAfter)
}

/**
 * Runs a limiter; when the counters cannot be reached it fails closed (authentication
 * endpoints: 503) or open (per-token caps, the bad-credential check: the request goes on),
 * and logs either way. @NOTE open for those: a Redis outage must not stop every `coffer run`.
 */
async function guarded(req: FastifyRequest, mode: 'open' | 'closed', f: () => Promise<void>): Promise<void> {
  try {
    await f()
  } catch (err) {
    if (err instanceof RateLimitedError) throw err
    req.log.error({ err: { message: (err as Error).message } }, `rate-limit counters unavailable; failing ${mode}`)
    if (mode === 'closed') throw new RateLimitUnavailableError()
  }
}

function counterBackend(config: RateLimitConfig): CounterBackend {
  if (!config.redisUrl) return new MemoryCounters()
  // @NOTE fail fast when Redis is away: a request waits at most ~2 s for it, then `guarded`
  // decides, instead of the request queueing behind a reconnect for ever.
  const redis = new Redis(config.redisUrl, {
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    connectTimeout: 2000,
    enableAutoPipelining: true,
  })
  redis.on('error', () => {}) // reported on the requests that need it
  return new RedisCounters(redis)
}

/**
 * Registers the rate limits on `app` (before any route): the plugin with Coffer's store,
 * the authentication-route hook, the bad-credential hooks, and `app.cofferTokenCaps`.
 */
export async function registerRateLimits(app: FastifyInstance, config: RateLimitConfig, clock: Clock): Promise<void> {
  const backend = counterBackend(config)
  app.addHook('onClose', async () => backend.close())
  await app.register(rateLimit, { global: false, store: rateLimitStore(backend, config.keyPrefix) as never, skipOnError: false })

  const lockout = { lockoutMaxMs: config.lockoutMaxMs }
  const limiter = (name: string, max: number, options: Parameters<FastifyInstance['createRateLimit']>[0]): Limiter | undefined =>
    max > 0 ? app.createRateLimit({ ...options, max, name } as never) : undefined

  const accounts = new WeakMap<FastifyRequest, string>()
  const credentials = new WeakMap<FastifyRequest, string>()
  const authIp = limiter('auth-ip', config.authPerIp, { timeWindow: config.authWindowMs, ...lockout })
  const authAccount = limiter('auth-account', config.authPerAccount, {
    timeWindow: config.authWindowMs,
    ...lockout,
    keyGenerator: (req) => accounts.get(req)!,
  })
  const badCredential = limiter('bad-credential', config.badTokenPerIp, { timeWindow: config.authWindowMs, ...lockout })
  const perMinute = limiter('token-minute', config.tokenPerMinute, { timeWindow: 60_000, keyGenerator: (req) => credentials.get(req)! })
  const perMonth = limiter('token-month', config.tokenPerMonth, {
    timeWindow: () => monthWindow(clock()).ms,
    keyGenerator: (req) => `${monthWindow(clock()).label}:${credentials.get(req)!}`,
  })

  // A client locked out for bad credentials is refused before its credential is looked at.
  if (badCredential) {
    app.addHook('onRequest', async (req, reply) => {
      if (!carriesCredential(req)) return
      await guarded(req, 'open', async () => {
        const seen = await badCredential(req, { increment: false })
        // At the limit: this attempt counts too (so it starts, or keeps, the lockout) and is refused.
        if (!seen.isAllowed && seen.remaining === 0) refuse(reply, [await badCredential(req)])
      })
    })
    app.addHook('onError', async (req, _reply, error) => {
      if ((error as { code?: string }).code === 'ERR_UNAUTHENTICATED' && carriesCredential(req))
        await guarded(req, 'open', async () => {
          await badCredential(req)
        })
    })
  }

  app.addHook('preHandler', async (req, reply) => {
    const opt = req.routeOptions.config.authRateLimit
    if (!opt) return
    await guarded(req, 'closed', async () => {
      const results: LimitResult[] = []
      if (authIp) results.push(await authIp(req))
      const account = (opt === true ? undefined : opt.account?.(req)) ?? accountFromBody(req)
      if (authAccount && account) {
        accounts.set(req, accountKey(account))
        results.push(await authAccount(req))
      }
      refuse(reply, results)
    })
  })

  app.decorate('cofferTokenCaps', async (req: FastifyRequest, reply: FastifyReply, credentialId: string) => {
    credentials.set(req, credentialId)
    await guarded(req, 'open', async () => {
      const results: LimitResult[] = []
      if (perMinute) results.push(await perMinute(req))
      if (perMonth) results.push(await perMonth(req))
      refuse(reply, results)
    })
  })
}
