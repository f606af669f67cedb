import type { Redis } from 'ioredis'
import { systemMillis } from '../ops/clock.js'
import { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js'

// Counters behind @fastify/rate-limit. The plugin decides what a key is and whether a count
// is over its limit; the store counts. Two backends: Redis (every node shares the counters)
// and process memory (one node). Both implement the same fixed window and the same growing
// lockout, so a deployment behaves alike with and without Redis.

/** What one counted request yields: the count in the current window and the ms left in it. */
export interface Count {
  current: number
  ttl: number
}

/**
 * How a key is counted. `lockoutMaxMs` > 0 turns the window into a growing lockout: the
 * request that first goes over `max` locks the key for `windowMs × 2^(strikes−1)` (capped at
 * `lockoutMaxMs`), where strikes counts the key's lockouts in the last `2 × lockoutMaxMs`.
 */
export interface CountRule {
  windowMs: number
  max: number
  lockoutMaxMs: number
}

/** A place to keep counters. */
export interface CounterBackend {
  /** Counts one request against `key` and returns the new count and the window's time left. */
  hit(key: string, rule: CountRule): Promise<Count>
  /** The count and time left without counting (0, 0 when the key has no live window). */
  peek(key: string): Promise<Count>
  /**
   * Takes back one count of `key` — for an attempt that turned out to succeed — unless the key
   * is locked out (over `max`) or has no live window: a lockout, once reached, runs its course.
   */
  refund(key: string, max: number): Promise<Count>
  close(): Promise<void>
}

// @NOTE one script, so the count, the strike and the expiry change together even when
// several nodes hit the same key at once.
const HIT_LUA = `
local current = redis.call('INCR', KEYS[1])
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], window)
  return {current, window}
end
if cap > 0 and current == max + 1 then
  local strikes = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], cap * 2)
  local ban = math.floor(math.min(window * (2 ^ (strikes - 1)), cap))
  redis.call('PEXPIRE', KEYS[1], ban)
  return {current, ban}
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return {current, ttl}
`

const PEEK_LUA = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(current), ttl}
`

const REFUND_LUA = `
local current = redis.call('GET', KEYS[1])
if not current then return {0, 0} end
current = tonumber(current)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
if current > 0 and current <= tonumber(ARGV[1]) then
  current = redis.call('DECR', KEYS[1])
end
return {current, ttl}
`

type CofferRedis = Redis & {
  cofferRateHit(counter: string, strikes: string, windowMs: number, max: number, cap: number): Promise<[number, number]>
  cofferRatePeek(counter: string): Promise<[number, number]>
  cofferRateRefund(counter: string, max: number): Promise<[number, number]>
}

/** Counters in Redis, shared by every node that uses the same Redis and key prefix. */
export class RedisCounters implements CounterBackend {
  readonly #redis: CofferRedis
  constructor(redis: Redis) {
    redis.defineCommand('cofferRateHit', { numberOfKeys: 2, lua: HIT_LUA })
    redis.defineCommand('cofferRatePeek', { numberOfKeys: 1, lua: PEEK_LUA })
    redis.defineCommand('cofferRateRefund', { numberOfKeys: 1, lua: REFUND_LUA })
    this.#redis = redis as CofferRedis
  }
  async hit(key: string, rule: CountRule): Promise<Count> {
    const [current, ttl] = await this.#redis.cofferRateHit(key, `${key}:strikes`, rule.windowMs, rule.max, rule.lockoutMaxMs)
    return { current: Number(current), ttl: Number(ttl) }
  }
  async peek(key: string): Promise<Count> {
    const [current, ttl] = await this.#redis.cofferRatePeek(key)
    return { current: Number(current), ttl: Number(ttl) }
  }
  async refund(key: string, max: number): Promise<Count> {
    const [current, ttl] = await this.#redis.cofferRateRefund(key, max)
    return { current: Number(current), ttl: Number(ttl) }
  }
  /** Resolves when Redis answers a PING. */
  async ping(): Promise<void> {
    await this.#redis.ping()
  }
  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect())
  }
}

interface Slot {
  count: number
  until: number
}

/**
 * Counters in this process only (no REDIS_URL). At most `maxKeys` keys are kept; the oldest
 * go first, so a flood of distinct keys cannot exhaust memory.
 */
export class MemoryCounters implements CounterBackend {
  readonly #slots = new Map<string, Slot>()
  readonly #maxKeys: number
  readonly #now: () => number
  constructor(options: { maxKeys?: number; now?: () => number } = {}) {
    this.#maxKeys = options.maxKeys ?? 100_000
    // @NOTE the system clock, not the context's: windows and lockouts run on elapsed time, as
    // the Redis counters' TTLs do on Redis's clock, so both backends count alike under a test clock.
    this.#now = options.now ?? systemMillis
  }
  #live(key: string, now: number): Slot | undefined {
    const s = this.#slots.get(key)
    if (s && s.until <= now) {
      this.#slots.delete(key)
      return undefined
    }
    return s
  }
  #set(key: string, slot: Slot): void {
    this.#slots.delete(key)
    this.#slots.set(key, slot)
    while (this.#slots.size > this.#maxKeys) this.#slots.delete(this.#slots.keys().next().value!)
  }
  async hit(key: string, rule: CountRule): Promise<Count> {
    const now = this.#now()
    const slot = this.#live(key, now)
    if (!slot) {
      this.#set(key, { count: 1, until: now + rule.windowMs })
      return { current: 1, ttl: rule.windowMs }
    }
    slot.count++
    if (rule.lockoutMaxMs > 0 && slot.count === rule.max + 1) {
      const sk = `${key}:strikes`
      const strikes = (this.#live(sk, now)?.count ?? 0) + 1
      this.#set(sk, { count: strikes, until: now + rule.lockoutMaxMs * 2 })
      const ban = Math.floor(Math.min(rule.windowMs * 2 ** (strikes - 1), rule.lockoutMaxMs))
      slot.until = now + ban
      return { current: slot.count, ttl: ban }
    }
    return { current: slot.count, ttl: slot.until - now }
  }
  async peek(key: string): Promise<Count> {
    const now = this.#now()
    const slot = this.#live(key, now)
    return slot ? { current: slot.count, ttl: slot.until - now } : { current: 0, ttl: 0 }
  }
  async refund(key: string, max: number): Promise<Count> {
    const now = this.#now()
    const slot = this.#live(key, now)
    if (!slot) return { current: 0, ttl: 0 }
    if (slot.count > 0 && slot.count <= max) slot.count--
    return { current: slot.count, ttl: slot.until - now }
  }
  async close(): Promise<void> {
    this.#slots.clear()
  }
}

/** Rejects with `Error(label)` when `p` has not settled within `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(label)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/**
 * Shared counters (Redis) behind a circuit breaker, with this process's memory as the
 * fallback: every call to `primary` waits at most `timeoutMs`; a call that fails or times out
 * is counted in `fallback` instead, and once the breaker opens every call goes to `fallback`
 * at once, until a probe finds `primary` again. No call ever fails because `primary` is away.
 * @NOTE counts made in memory during an outage are not copied into Redis afterwards: the
 * shared counters resume from what Redis holds.
 */
export class FallbackCounters implements CounterBackend {
  readonly breaker: CircuitBreaker
  readonly #primary: CounterBackend
  readonly #fallback: CounterBackend
  readonly #timeoutMs: number
  constructor(
    primary: CounterBackend,
    fallback: CounterBackend,
    options: Omit<CircuitBreakerOptions, 'probe'> & { timeoutMs: number; probe: () => Promise<unknown> },
  ) {
    this.#primary = primary
    this.#fallback = fallback
    this.#timeoutMs = options.timeoutMs
    const probe = options.probe
    this.breaker = new CircuitBreaker({ ...options, probe: () => withTimeout(probe(), options.timeoutMs, 'probe timed out') })
  }
  async #call(onPrimary: () => Promise<Count>, onFallback: () => Promise<Count>): Promise<Count> {
    if (this.breaker.isOpen) return onFallback()
    try {
      const r = await withTimeout(onPrimary(), this.#timeoutMs, `no answer within ${this.#timeoutMs} ms`)
      this.breaker.success()
      return r
    } catch (err) {
      this.breaker.failure((err as Error).message)
      return onFallback()
    }
  }
  hit(key: string, rule: CountRule): Promise<Count> {
    return this.#call(
      () => this.#primary.hit(key, rule),
      () => this.#fallback.hit(key, rule),
    )
  }
  peek(key: string): Promise<Count> {
    return this.#call(
      () => this.#primary.peek(key),
      () => this.#fallback.peek(key),
    )
  }
  refund(key: string, max: number): Promise<Count> {
    return this.#call(
      () => this.#primary.refund(key, max),
      () => this.#fallback.refund(key, max),
    )
  }
  async close(): Promise<void> {
    this.breaker.stop()
    await Promise.all([this.#primary.close(), this.#fallback.close()])
  }
}

/** The parameters @fastify/rate-limit hands a store (its merged options), as far as we use them. */
interface StoreParams {
  name?: string
  lockoutMaxMs?: number
}
type Callback = (err: Error | null, res: Count | null) => void

/**
 * The store class @fastify/rate-limit instantiates (its `store` option): each limiter made
 * with `createRateLimit({ name, … })` gets a child store whose keys are
 * `<prefix><name>:<key>`, counted in `backend`.
 */
export function rateLimitStore(backend: CounterBackend, prefix: string) {
  return class CofferRateStore {
    readonly #ns: string
    readonly #lockoutMaxMs: number
    constructor(params: StoreParams, ns = prefix) {
      this.#ns = ns
      this.#lockoutMaxMs = params.lockoutMaxMs ?? 0
    }
    incr(key: string, cb: Callback, timeWindow: number, max: number): void {
      backend.hit(this.#ns + key, { windowMs: timeWindow, max, lockoutMaxMs: this.#lockoutMaxMs }).then(
        (r) => cb(null, r),
        (e: Error) => cb(e, null),
      )
    }
    read(key: string, cb: Callback): void {
      backend.peek(this.#ns + key).then(
        (r) => cb(null, r),
        (e: Error) => cb(e, null),
      )
    }
    child(params: StoreParams): CofferRateStore {
      if (!params.name) throw new Error('every Coffer rate limiter needs a name')
      return new CofferRateStore(params, `${prefix}${params.name}:`)
    }
  }
}
