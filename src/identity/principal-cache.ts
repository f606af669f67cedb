import type { Metrics } from '../ops/metrics.js'
import type { Executor } from '../storage/database.js'
import type { Workspace } from '../vault/workspace-service.js'
import type { CredentialUse } from './credential-use.js'
import { ipAllowed } from './integration-scopes.js'
import { QueryTemplate } from '../storage/query-template.js'
import type { Principal } from './principal.js'
import type { SessionInfo } from './sessions.js'

// The per-node cache of what authentication resolves: a credential (by the SHA-256 of the
// token or session id, never the credential itself) → its principal and workspace. It spares
// the workspace API the credential's own look-up on every request, and keeps revocation exact:
//
// - Every change that can end or narrow an acceptance bumps an epoch in the database, in the
//   change's own transaction (triggers of migration 12: no code path can forget). An entry
//   remembers the epochs of its scopes (its workspace; for a person, also their user id) as
//   read by the same statement that read the credential, and the request confirms them inside
//   its own read transaction, before the policy decides: a changed epoch throws the entry away
//   and the request authenticates again from the database. So a revocation committed on any
//   node is seen by the next request on every node — the same guarantee as without the cache.
// - On PostgreSQL each node also LISTENs on `coffer_auth` and drops the entries of a notified
//   scope at once; while that connection is down (or not yet up) the cache is bypassed and
//   emptied, so that it never holds an entry no notification could reach.
// - An entry lives at most `ttlMs` (a backstop), never past the credential's own expiry or a
//   session's idle limit, and the cache holds at most `max` entries (least recently used go).
// - Only acceptances are cached. Anything an entry cannot vouch for — expired by its own
//   clock, a machine token used from an address outside its allow-list — is a miss, and the
//   database decides, as before.

/** The epochs of the scopes an acceptance was read under (0 for a scope never bumped). */
export interface Stamp {
  readonly scopes: readonly string[]
  readonly epochs: readonly number[]
}

/** What authentication found for a credential, as the cache keeps it. */
export interface CachedAuth {
  readonly principal: Principal
  readonly workspace: Workspace
  /** Bearer tokens: the last-use bookkeeping; this node moves `lastUsedAt` on when it records a use. */
  use?: CredentialUse
  /** Sessions: the session; this node moves `lastSeenAt` on when it records activity. */
  session?: SessionInfo
  /** Sessions: the idle limit the session ends after. */
  readonly idleMs?: number
  /** Machine access tokens: the identity's allow-list, checked on every request. */
  readonly allowedCidrs?: readonly string[]
  readonly stamp: Stamp
  /** Epoch milliseconds after which the entry is not used: read time + TTL, or the credential's expiry if sooner. */
  readonly until: number
}

/** A cache entry a request was authenticated from; the request confirms its stamp in its own read before the policy decides. */
export interface FromCache {
  readonly key: string
  readonly entry: CachedAuth
}

/** How the cache counts, in ctx.metrics. */
type CacheMetrics = Pick<Metrics, 'principalCacheLookups' | 'principalCacheInvalidations' | 'principalCacheEntries'>

/** The stamp of an acceptance read with the epochs of `scopes` (nulls: never bumped). */
export function stampOf(scopes: readonly string[], epochs: ReadonlyArray<number | string | null | undefined>): Stamp {
  return { scopes, epochs: epochs.map((e) => Number(e ?? 0)) }
}

// @NOTE run on every request answered from the cache: compiled once (see QueryTemplate). A
// stamp has one scope (an integration's workspace) or two (a person's workspace and user id);
// the one-scope case names its scope twice.
const EPOCHS = new QueryTemplate<'a' | 'b'>((db, p) =>
  db
    .selectFrom('auth_epochs')
    .select(['scope', 'epoch'])
    .where('scope', 'in', [p('a'), p('b')]),
)

/** Whether the epochs of `stamp`'s scopes are still the ones it was read under (one indexed read, in `db`'s transaction). */
export async function stampIsCurrent(db: Executor, stamp: Stamp): Promise<boolean> {
  const [a, b = a, ...more] = stamp.scopes
  const rows =
    a !== undefined && more.length === 0
      ? (await EPOCHS.run<{ scope: string; epoch: number | string }>(db, { a, b })).rows
      : await db.selectFrom('auth_epochs').select(['scope', 'epoch']).where('scope', 'in', stamp.scopes).execute()
  const now = new Map(rows.map((r) => [r.scope, Number(r.epoch)]))
  return stamp.scopes.every((s, i) => (now.get(s) ?? 0) === stamp.epochs[i])
}

/** Bounded, TTL-limited, epoch-checked cache of acceptances; see the file's comment. */
export class PrincipalCache {
  readonly #entries = new Map<string, CachedAuth>()
  readonly #max: number
  readonly #ttlMs: number
  readonly #metrics: CacheMetrics | undefined
  #enabled: boolean

  /**
   * `enabled`: false until a notification channel is up (PostgreSQL); `max` 0 or `ttlMs` 0
   * turns the cache off for good.
   */
  constructor(options: { max: number; ttlMs: number; enabled?: boolean; metrics?: CacheMetrics }) {
    this.#max = options.max
    this.#ttlMs = options.ttlMs
    this.#metrics = options.metrics
    this.#enabled = options.enabled ?? true
  }

  /** Whether lookups may be answered from memory now. */
  get enabled(): boolean {
    return this.#enabled && this.#max > 0 && this.#ttlMs > 0
  }

  /** Entries held (for tests and the gauge). */
  get size(): number {
    return this.#entries.size
  }

  /**
   * The entry for `key` if it may be used at `now` from `ip`, else undefined (a miss: the
   * caller reads the database). An entry past its time is dropped.
   */
  get(key: string, now: Date, ip: string): CachedAuth | undefined {
    if (!this.enabled) return undefined
    const e = this.#entries.get(key)
    const t = now.getTime()
    let usable = e !== undefined && e.until > t
    if (e && usable && e.session && e.idleMs !== undefined) usable = Date.parse(e.session.lastSeenAt) + e.idleMs > t
    if (e && !usable) this.#drop(key)
    // @NOTE an address outside the allow-list is not refused from memory: the database decides (and refuses).
    if (e && usable && e.allowedCidrs && !ipAllowed(e.allowedCidrs, ip)) usable = false
    this.#metrics?.principalCacheLookups.inc(1, { result: usable ? 'hit' : 'miss' })
    if (!usable || !e) return undefined
    // Least recently used goes first: a hit moves the entry to the end of the map's order.
    this.#entries.delete(key)
    this.#entries.set(key, e)
    return e
  }

  /**
   * Keeps what authentication found for `key`, read at `now`, until the TTL or `expiresAt`
   * (the credential's own end), whichever is sooner. Nothing is kept while the cache is off.
   */
  set(key: string, entry: Omit<CachedAuth, 'until'>, now: Date, expiresAt?: string | null): CachedAuth {
    const until = Math.min(now.getTime() + this.#ttlMs, expiresAt ? Date.parse(expiresAt) : Number.POSITIVE_INFINITY)
    const e: CachedAuth = { ...entry, until }
    if (!this.enabled || !(until > now.getTime())) return e
    this.#entries.delete(key)
    this.#entries.set(key, e)
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value as string)
    this.#metrics?.principalCacheEntries.set(this.#entries.size)
    return e
  }

  /** Drops the entry for `key` whose epochs changed (the request then reads the database). */
  invalidate(key: string): void {
    if (this.#drop(key)) this.#metrics?.principalCacheInvalidations.inc(1, { reason: 'epoch' })
  }

  /** Drops every entry that depends on `scope` (a workspace or user id): a change was notified. */
  invalidateScope(scope: string): void {
    let n = 0
    for (const [k, e] of this.#entries) {
      if (e.stamp.scopes.includes(scope)) {
        this.#entries.delete(k)
        n++
      }
    }
    if (n) this.#metrics?.principalCacheInvalidations.inc(n, { reason: 'notified' })
    this.#metrics?.principalCacheEntries.set(this.#entries.size)
  }

  /** Turns lookups off and forgets everything (the notification channel is down), or back on. */
  setEnabled(on: boolean): void {
    if (!on && this.#entries.size) {
      this.#metrics?.principalCacheInvalidations.inc(this.#entries.size, { reason: 'channel-down' })
      this.#entries.clear()
      this.#metrics?.principalCacheEntries.set(0)
    }
    this.#enabled = on
  }

  #drop(key: string): boolean {
    const had = this.#entries.delete(key)
    if (had) this.#metrics?.principalCacheEntries.set(this.#entries.size)
    return had
  }
}
