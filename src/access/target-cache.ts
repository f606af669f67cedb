import type { Metrics } from '../ops/metrics.js'
import type { Executor } from '../storage/database.js'
import type { Principal } from './policy.js'
import { type ResolvedTarget, resolveTarget } from './target.js'

// The per-node cache of resolved targets: (workspace, caller, project and environment named in
// the URL) → what resolveTarget found — the project, the environment, the caller's project role
// and environment grant. It spares a request answered from the principal cache its two look-ups
// (of four indexed reads on the path of a single secret's read), and stays exact:
//
// - Every change that can alter a resolution bumps the workspace's epoch in the change's own
//   transaction (triggers of migration 22 on projects, environments, project_members and
//   environment_grants: no code path can forget). An entry remembers the epoch it was resolved
//   under, and is used only by a request that has just read the same epoch in its own read
//   transaction (the principal cache's confirmation). So a project renamed or deleted, an
//   environment sealed or restricted, a member demoted or a grant taken away on any node is
//   seen by the next request on every node, as without the cache.
// - An entry is resolved after the epoch was read, in the same transaction: its rows are never
//   older than its epoch (at worst newer, which costs one miss).
// - Only what exists is kept (a missing project or environment is looked up every time), at
//   most `max` entries (least recently used go); entries are frozen, shared by the requests.

/** What a request knows of its workspace's epoch: read in its own transaction, or not at all. */
export type WorkspaceEpoch = number | undefined

export class TargetCache {
  readonly #entries = new Map<string, { epoch: number; target: ResolvedTarget }>()
  readonly #max: number
  readonly #metrics: Pick<Metrics, 'targetCacheLookups'> | undefined

  constructor(options: { max: number; metrics?: Pick<Metrics, 'targetCacheLookups'> }) {
    this.#max = options.max
    this.#metrics = options.metrics
  }

  /**
   * resolveTarget, answered from memory when `epoch` (the workspace's, read in `db`'s
   * transaction) is the one the entry was resolved under; without an epoch, straight from the
   * database and nothing kept.
   */
  async resolve(db: Executor, principal: Principal, workspaceId: string, params: unknown, epoch: WorkspaceEpoch): Promise<ResolvedTarget> {
    const p = (params ?? {}) as Record<string, unknown>
    if (epoch === undefined || this.#max <= 0 || typeof p.project !== 'string') return resolveTarget(db, principal, workspaceId, params)
    const environment = typeof p.environment === 'string' ? p.environment : undefined
    // @NOTE the caller's part of a resolution is their project role and environment grant,
    // which only a person has: every other principal resolves the same (user '').
    const user = principal.type === 'user' ? principal.userId : ''
    // @NOTE JSON, not a joined string: the refs are the URL's, any text, and must not alias.
    const key = JSON.stringify([workspaceId, user, p.project, environment ?? null])
    const hit = this.#entries.get(key)
    if (hit && hit.epoch === epoch) {
      this.#metrics?.targetCacheLookups.inc(1, { result: 'hit' })
      this.#entries.delete(key)
      this.#entries.set(key, hit)
      return hit.target
    }
    this.#metrics?.targetCacheLookups.inc(1, { result: 'miss' })
    const target = await resolveTarget(db, principal, workspaceId, params)
    const found = target.project !== undefined && (environment === undefined || target.environment !== undefined)
    if (!found) {
      if (hit) this.#entries.delete(key)
      return target
    }
    const frozen = freeze(target)
    this.#entries.delete(key)
    this.#entries.set(key, { epoch, target: frozen })
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value as string)
    return frozen
  }
}

/** `stamp`'s epoch of `workspaceId`, when the stamp was read under it (a confirmed principal cache entry). */
export function workspaceEpochOf(
  stamp: { readonly scopes: readonly string[]; readonly epochs: readonly number[] },
  workspaceId: string,
): WorkspaceEpoch {
  const i = stamp.scopes.indexOf(workspaceId)
  return i === -1 ? undefined : stamp.epochs[i]
}

function freeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) freeze(v)
    Object.freeze(o)
  }
  return o
}
