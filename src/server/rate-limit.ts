import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { RateLimitedError, RateLimitUnavailableError, UnauthenticatedError } from '../errors.js'
import { systemMillis, type Clock } from '../ops/clock.js'
import type { RateLimitConfig } from '../ops/config.js'
import type { Metrics } from '../ops/metrics.js'
import { scrub } from '../scrub.js'
import { accountKey } from './lockouts.js'
import { FallbackCounters, MemoryCounters, RedisCounters, rateLimitStore, type CounterBackend } from './rate-limit-store.js'

// Rate limits, counted by @fastify/rate-limit in Redis (REDIS_URL: shared by every node) or
// in memory:
//   - authentication endpoints (a route opts in with `config: { authRateLimit: true }`, or
//     `authRateLimit: true` in defineRoute): per client IP and per account, growing lockout;
//   - requests carrying a bad credential (malformed, unknown, expired, revoked): per IP, so
//     token guessing is throttled, growing lockout. Only the failures are counted and refused:
//     a request from a locked-out address whose credential is valid goes on (its own caps
//     apply), so one stale token behind a shared address locks out nobody but itself;
//   - every authenticated request: per token (or session) per minute and per calendar month.
// Every refusal is the same 429 ERR_RATE_LIMITED with Retry-After, whether or not the
// account exists. With Redis, every call waits at most COFFER_REDIS_TIMEOUT; when Redis is
// away the counters fall back to this node's memory behind a circuit breaker (see
// FallbackCounters) and nothing waits on it.

/** How an authentication route names the account an attempt is for. */
export interface AuthRateLimitOptions {
  /** The account (email, client id, …) the request tries; default: `email`, `clientId`, `client_id` or `username` of the body. */
  account?: (req: FastifyRequest) => string | undefined
  /**
   * `failures`: an attempt that succeeds (its handler succeeded, as the pipeline reports) is
   * taken back from the per-address and per-account counts, so only failed attempts lead to a lockout — for routes that check a
   * credential (sign-in, a machine's token exchange), where a team behind one address signs in
   * all day. Every attempt is still counted before it runs (parallel guesses cannot slip past),
   * and a lockout, once reached, refuses every attempt until it ends. Default `attempts`: every
   * attempt counts (routes whose answer does not tell success, such as "forgot password").
   */
  count?: 'attempts' | 'failures'
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Limit this route as an authentication endpoint: per IP and per account, growing lockout. */
    authRateLimit?: true | AuthRateLimitOptions
  }
  interface FastifyInstance {
    /** Per-token caps, called by the pipeline once a request is authenticated. */
    cofferTokenCaps(req: FastifyRequest, reply: FastifyReply, credentialId: string): Promise<void>
    /**
     * Counts a request whose credential was refused (ERR_UNAUTHENTICATED) against its address;
     * returns the 429 to answer instead once the address is locked out (Retry-After set).
     */
    cofferCredentialRefused(req: FastifyRequest, reply: FastifyReply): Promise<RateLimitedError | undefined>
  }
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>
type LimitResult = Awaited<ReturnType<Limiter>>

const succeeded = new WeakSet<FastifyRequest>()

/**
 * Tells the rate limits that `req`'s credential check succeeded, so a route limited with
 * `count: 'failures'` takes its count back once the answer is sent. The pipelines call it when
 * a handler has succeeded; nothing else should.
 */
export function authAttemptSucceeded(req: FastifyRequest): void {
  succeeded.add(req)
}

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

/** True when the request carries a Bearer token or the session cookie (a credential that can be refused). */
export function carriesCredential(req: FastifyRequest): boolean {
  if (req.headers.authorization) return true
  const cookie = req.headers.cookie
  return typeof cookie === 'string' && cookie.includes(`${SESSION_COOKIE}=`)
}

/**
 * Authorization headers this node has seen refused, with the address they came from, by
 * SHA-256: a repeat within a minute is refused without a database read. @NOTE short-lived on
 * purpose: an unknown, revoked or expired token never becomes valid, but a member removed and
 * added again gets their token back, and a machine token is refused outside its allow-list only.
 * Bounded (oldest out first), so a flood of distinct guesses costs nothing but a slot each.
 */
class RefusedCredentials {
  readonly #seen = new Map<string, number>()
  constructor(
    readonly maxEntries: number,
    readonly ttlMs: number,
    readonly now: () => number,
  ) {}
  static fingerprint(ip: string, authorization: string): string {
    return createHash('sha256').update(`${ip}\n${authorization}`, 'utf8').digest('base64url')
  }
  add(fp: string): void {
    this.#seen.delete(fp)
    this.#seen.set(fp, this.now() + this.ttlMs)
    while (this.#seen.size > this.maxEntries) this.#seen.delete(this.#seen.keys().next().value!)
  }
  /** Whether nothing is remembered (then no request needs its fingerprint computed). */
  get empty(): boolean {
    return this.#seen.size === 0
  }
  has(fp: string): boolean {
    const until = this.#seen.get(fp)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.#seen.delete(fp)
    return false
  }
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

/** What the counters report to: the log (once per change) and the fallback gauge. */
interface CounterReports {
  log: FastifyInstance['log']
  metrics: Pick<Metrics, 'redisFallbackActive'>
}

/** Failures in a row (errors or timeouts) that open the breaker when the connection itself stays up. */
const BREAKER_FAILURES = 3
/** How often an open breaker pings Redis. */
const BREAKER_PROBE_MS = 1000

/**
 * The counters: in memory without REDIS_URL; with it, Redis behind a circuit breaker that
 * falls back to memory. Resolves once Redis answered, or at once in fallback when it did not.
 */
async function counterBackend(config: RateLimitConfig, reports: CounterReports): Promise<CounterBackend> {
  if (!config.redisUrl) return new MemoryCounters()
  // @NOTE nothing queues behind a lost connection (enableOfflineQueue: false): a command while
  // Redis is away fails at once and the breaker answers from memory. ioredis keeps
  // reconnecting in the background; its 'error' events are expected then and not logged one by
  // one — the breaker logs the outage once, and its end once.
  // @NOTE ioredis is loaded only with REDIS_URL.
  const { Redis } = await import('ioredis')
  const redis = new Redis(config.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(500, config.redisTimeoutMs * 5),
    commandTimeout: config.redisTimeoutMs,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(100 * times, 2000),
  })
  redis.on('error', () => {})
  const primary = new RedisCounters(redis)
  const counters = new FallbackCounters(primary, new MemoryCounters(), {
    timeoutMs: config.redisTimeoutMs,
    failureThreshold: BREAKER_FAILURES,
    probeIntervalMs: BREAKER_PROBE_MS,
    probe: () => primary.ping(),
    onChange: (state, reason) => {
      reports.metrics.redisFallbackActive.set(state === 'open' ? 1 : 0)
      if (state === 'open')
        reports.log.warn(
          { reason: scrub(reason) },
          "Redis is unreachable: rate limits are counted in this node's memory (per node) until it answers again",
        )
      else reports.log.info('Redis answers again: rate limits are shared through it again')
    },
  })
  redis.on('close', () => counters.breaker.trip('the connection to Redis closed'))
  redis.on('ready', () => counters.breaker.probeNow())
  // Start-up waits for the first connection (at most the connect timeout), so the first
  // requests neither fail over needlessly nor wait.
  const connected = await new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      redis.off('error', onError)
      resolve(ok)
    }
    const onReady = () => done(true)
    const onError = () => done(false)
    const timer = setTimeout(() => done(false), Math.max(500, config.redisTimeoutMs * 5))
    if (redis.status === 'ready') done(true)
    redis.once('ready', onReady)
    redis.once('error', onError)
  })
  if (!connected) counters.breaker.trip('Redis did not answer at start-up')
  return counters
}

/**
 * Registers the rate limits on `app` (before any route): the plugin with Coffer's store,
 * the authentication-route hook, the bad-credential hooks, and `app.cofferTokenCaps`.
 */
export async function registerRateLimits(
  app: FastifyInstance,
  config: RateLimitConfig,
  clock: Clock,
  metrics: Pick<Metrics, 'redisFallbackActive'>,
): Promise<void> {
  const backend = await counterBackend(config, { log: app.log, metrics })
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

  // Bad credentials: only the refused ones are counted, after they were refused, so a valid
  // credential costs no counter and no extra read. A Bearer token this node already saw
  // refused is refused again without a database read; once its address is over the limit,
  // every refused credential from it answers 429 instead of 401 (and the lockout grows as the
  // authentication limits' does), while valid credentials from the same address go on.
  const refused = new RefusedCredentials(10_000, 60_000, systemMillis)
  if (badCredential) {
    app.addHook('onRequest', async (req) => {
      const h = req.headers.authorization
      // @NOTE no hash on the hot path while nothing was refused lately.
      if (h && !refused.empty && refused.has(RefusedCredentials.fingerprint(req.ip, h))) throw new UnauthenticatedError()
    })
  }
  app.decorate('cofferCredentialRefused', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!badCredential || !carriesCredential(req)) return undefined
    const h = req.headers.authorization
    if (h) refused.add(RefusedCredentials.fingerprint(req.ip, h))
    try {
      await guarded(req, 'open', async () => refuse(reply, [await badCredential(req)]))
    } catch (err) {
      if (err instanceof RateLimitedError) return err
      throw err
    }
    return undefined
  })

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
      if (opt !== true && opt.count === 'failures') counted.add(req)
    })
  })
  // A credential check that succeeded takes its count back: only failures lead to a lockout.
  // @NOTE success is what the pipeline says (authAttemptSucceeded), not the status: a form's
  // failure answers 303 too.
  const counted = new WeakSet<FastifyRequest>()
  app.addHook('onResponse', async (req) => {
    if (!counted.has(req) || !succeeded.has(req)) return
    const keys: Array<[string, number]> = []
    if (authIp) keys.push([`${config.keyPrefix}auth-ip:${req.ip}`, config.authPerIp])
    const account = accounts.get(req)
    if (authAccount && account) keys.push([`${config.keyPrefix}auth-account:${account}`, config.authPerAccount])
    await Promise.all(keys.map(([key, max]) => backend.refund(key, max))).catch((err: unknown) =>
      req.log.warn({ err: { message: (err as Error).message } }, 'rate-limit refund failed'),
    )
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
