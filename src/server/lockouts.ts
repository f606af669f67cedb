import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import type { Redis } from 'ioredis'
import type { RateLimitConfig } from '../ops/config.js'

// Lockouts as the shared counters in Redis hold them, for the operator's `coffer lockouts`:
// the authentication limits per address (`auth-ip`) and per account (`auth-account`, keyed by
// a hash of the email, so Redis holds no addresses of people) and the bad-credential limit per
// address (`bad-credential`). A counter over its limit is a lockout; `:strikes` beside it
// counts the lockouts that make the next one longer. Keys: `<prefix><limit>:<subject>`.

/** The limits whose counters can lock a client out, and what their subject is. */
export const LOCKOUT_LIMITS = { 'auth-ip': 'address', 'auth-account': 'account', 'bad-credential': 'address' } as const
export type LockoutLimit = keyof typeof LOCKOUT_LIMITS

/** The counter key of an account: a hash of the trimmed, lower-cased name (an email, a client id). */
export function accountKey(account: string): string {
  return createHash('sha256').update(account.trim().toLowerCase().slice(0, 512), 'utf8').digest('base64url').slice(0, 32)
}

/** One locked-out address or account. */
export interface Lockout {
  readonly limit: LockoutLimit
  readonly kind: 'address' | 'account'
  /** The address, or the account's hash (see accountKey). */
  readonly subject: string
  /** Attempts counted in the current window (over `max`: locked out). */
  readonly count: number
  readonly max: number
  /** Seconds until the lockout ends by itself. */
  readonly retryAfterSeconds: number
  /** Lockouts of this subject in the strike period (each doubles the next, up to the cap). */
  readonly strikes: number
}

function maxOf(limit: LockoutLimit, config: RateLimitConfig): number {
  return limit === 'auth-ip' ? config.authPerIp : limit === 'auth-account' ? config.authPerAccount : config.badTokenPerIp
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** `s` with SCAN MATCH's wildcard characters escaped. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/** Every current lockout under the configured prefix, longest remaining first. */
export async function listLockouts(redis: Redis, config: RateLimitConfig): Promise<Lockout[]> {
  const out: Lockout[] = []
  for (const [limit, kind] of Object.entries(LOCKOUT_LIMITS) as Array<[LockoutLimit, 'address' | 'account']>) {
    const max = maxOf(limit, config)
    if (max <= 0) continue
    const ns = `${config.keyPrefix}${limit}:`
    const keys = (await scanKeys(redis, `${globEscape(ns)}*`)).filter((k) => !k.endsWith(':strikes'))
    for (const key of keys) {
      const [count, ttl, strikes] = await redis
        .multi()
        .get(key)
        .pttl(key)
        .get(`${key}:strikes`)
        .exec()
        .then((r) => (r ?? []).map((x) => x[1]))
      const n = Number(count ?? 0)
      if (n <= max) continue
      out.push({
        limit,
        kind,
        subject: key.slice(ns.length),
        count: n,
        max,
        retryAfterSeconds: Math.max(0, Math.ceil(Number(ttl) / 1000)),
        strikes: Number(strikes ?? 0),
      })
    }
  }
  return out.sort((a, b) => b.retryAfterSeconds - a.retryAfterSeconds)
}

/** What to clear: an address (its authentication and bad-credential counters), an account, or every lockout. */
export type LockoutTarget = { address: string } | { account: string } | { all: true }

/** The forms an address can be counted under (an IPv4 client of a dual-stack listener is `::ffff:a.b.c.d`). */
function addressForms(address: string): string[] {
  const a = address.trim().toLowerCase()
  if (isIP(a) === 4) return [a, `::ffff:${a}`]
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  return mapped ? [a, mapped[1]!] : [a]
}

/**
 * Removes the counters (and their strikes, so the next lockout starts at one window again)
 * of `target`; returns how many keys were removed. Per-token minute and month caps are not
 * lockouts and stay.
 */
export async function clearLockouts(redis: Redis, prefix: string, target: LockoutTarget): Promise<number> {
  let keys: string[]
  if ('all' in target) {
    keys = []
    for (const limit of Object.keys(LOCKOUT_LIMITS)) keys.push(...(await scanKeys(redis, `${globEscape(`${prefix}${limit}:`)}*`)))
  } else if ('address' in target) {
    keys = addressForms(target.address).flatMap((a) =>
      ['auth-ip', 'bad-credential'].flatMap((limit) => [`${prefix}${limit}:${a}`, `${prefix}${limit}:${a}:strikes`]),
    )
  } else {
    const k = `${prefix}auth-account:${accountKey(target.account)}`
    keys = [k, `${k}:strikes`]
  }
  let removed = 0
  for (let i = 0; i < keys.length; i += 500) removed += await redis.del(...keys.slice(i, i + 500))
  return removed
}
