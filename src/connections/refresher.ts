import { randomUUID } from 'node:crypto'
import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import { OAuthProviderError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { OutboundClient } from '../ops/outbound.js'
import type { Store } from '../storage/database.js'
import { SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import type { DataKeys } from '../vault/data-keys.js'
import { findConnectionRow } from './connections.js'
import { markNeedsReconnect, openTokens, storeRefreshed, tokenClientOf } from './links.js'
import { refreshTokens } from './token-endpoint.js'

// Refreshes connection tokens ahead of their expiry, on every node's behalf, so a token nobody
// used for a while is still good (and a provider's idle refresh token does not lapse): a node
// claims links that expire within AHEAD_MS under a lease of its own (SKIP LOCKED on
// PostgreSQL), trades each refresh token at the provider with no transaction open, and stores
// the result (audited as the system). A refusal by the provider marks the link as needing
// re-connecting (audited); a network failure leaves it for the next run. The relay still
// refreshes on use (relay.ts) whatever this job did.

const SYSTEM_ACTOR: AuditActor = { type: 'system', id: 'connection-refresher', ip: '', userAgent: '' }
/** Links expiring within this long are refreshed. */
export const AHEAD_MS = 10 * 60_000
const CLAIM = 20
const LEASE_MS = 60_000

export class ConnectionRefresher {
  readonly node = `refresher-${randomUUID()}`
  readonly #d: { store: Store; keys: DataKeys; outbound: OutboundClient; audit: AuditLog; clock: Clock }

  constructor(deps: { store: Store; keys: DataKeys; outbound: OutboundClient; audit: AuditLog; clock: Clock }) {
    this.#d = deps
  }

  /** Refreshes what is due; returns how many links got fresh tokens. */
  async run(): Promise<number> {
    const { store, clock } = this.#d
    const now = clock()
    const at = now.toISOString()
    const claimed = await writeInScope(store, store.db, SYSTEM_SCOPE, async (tx) => {
      let due = tx
        .selectFrom('connection_links')
        .select('id')
        .where('status', '=', 'connected')
        .where('refresh_token_ct', 'is not', null)
        .where('expires_at', 'is not', null)
        .where('expires_at', '<=', new Date(now.getTime() + AHEAD_MS).toISOString())
        .where((eb) => eb.or([eb('refresher_until', 'is', null), eb('refresher_until', '<', at)]))
        .orderBy('expires_at')
        .limit(CLAIM)
      if (store.engine === 'postgres') due = due.forUpdate().skipLocked()
      const ids = (await due.execute()).map((r) => r.id)
      if (!ids.length) return []
      return tx
        .updateTable('connection_links')
        .set({ refresher: this.node, refresher_until: new Date(now.getTime() + LEASE_MS).toISOString() })
        .where('id', 'in', ids)
        .returning(['id', 'workspace_id'])
        .execute()
    })
    let refreshed = 0
    for (const l of claimed) if (await this.#refresh(l.id, l.workspace_id)) refreshed++
    return refreshed
  }

  async #refresh(id: string, workspaceId: string): Promise<boolean> {
    const { store, keys, outbound, audit, clock } = this.#d
    const loaded = await writeInScope(store, store.db, workspaceId, async (tx) => {
      const link = await tx
        .selectFrom('connection_links')
        .selectAll()
        .where('id', '=', id)
        .where('refresher', '=', this.node)
        .executeTakeFirst()
      if (!link) return null
      const c = await findConnectionRow(tx, workspaceId, link.connection_id)
      const { refreshToken } = await openTokens(tx, keys, link)
      return { link, c, refreshToken, client: await tokenClientOf(tx, keys, c) }
    })
    if (!loaded || loaded.refreshToken === null) return false
    const { link, c, refreshToken, client } = loaded
    const as = link.kind === 'app' ? 'app' : 'personal'
    const release = () =>
      writeInScope(store, store.db, workspaceId, (tx) =>
        tx
          .updateTable('connection_links')
          .set({ refresher: null, refresher_until: null })
          .where('id', '=', id)
          .where('refresher', '=', this.node)
          .execute(),
      )
    try {
      const fresh = await refreshTokens(outbound, client, refreshToken)
      return await writeInScope(store, store.db, workspaceId, async (tx) => {
        const stored = await storeRefreshed(tx, keys, link, fresh, refreshToken, clock())
        if (stored)
          await audit.append(tx, workspaceId, SYSTEM_ACTOR, `conn-refresh-${id}-${Number(link.token_version) + 1}`, {
            action: 'connection.refresh',
            target: { type: 'connection', id: c.id },
            details: { connection: c.name, as, ahead: true },
          })
        return stored
      })
    } catch (err) {
      if (!(err instanceof OAuthProviderError)) {
        await release()
        return false
      }
      await writeInScope(store, store.db, workspaceId, async (tx) => {
        await markNeedsReconnect(tx, link, err.message)
        await audit.append(tx, workspaceId, SYSTEM_ACTOR, `conn-refresh-failed-${id}-${Number(link.token_version)}`, {
          action: 'connection.refresh_failed',
          target: { type: 'connection', id: c.id },
          details: { connection: c.name, as, reason: err.message },
        })
      })
      return false
    }
  }
}
