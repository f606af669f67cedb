import { randomInt } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import type { AuditActor, AuditLog } from '../audit/audit-log.js'
import { CofferError } from '../errors.js'
import type { Clock } from '../ops/clock.js'
import type { OutboundClient } from '../ops/outbound.js'
import type { Store } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import type { DataKeys } from '../vault/data-keys.js'
import { type SigningEndpoint, signingEndpoint } from './endpoints.js'

// Sending queued messages. A node claims due messages under a lease (PostgreSQL: SKIP LOCKED,
// so nodes take different ones), signs each per Standard Webhooks with every secret that
// signs now, POSTs it through the guarded outbound client, and records the answer under its
// lease: delivered on 2xx; otherwise the next attempt after the retry schedule (with jitter),
// or failed once the schedule is spent. An endpoint that failed every attempt for the whole
// schedule (about a day by default) is disabled, with an audit entry. A node that dies while
// sending loses its lease; the message is sent again (receivers deduplicate on webhook-id).

export interface DeliveryConfig {
  /** Delays before the 2nd, 3rd… attempt; the message fails after the last. */
  readonly retryDelaysMs: readonly number[]
  /** The time limit of one attempt. */
  readonly timeoutMs: number
}

/** The default schedule: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h — eleven attempts over about 24 hours. */
export const DEFAULT_RETRY_DELAYS_MS = [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 28_800].map((s) => s * 1000)

const CLAIM = 20
const RESPONSE_LIMIT = 64 * 1024
const SYSTEM_ACTOR: AuditActor = { type: 'system', id: 'webhooks', ip: '', userAgent: '' }

/** The signature header value for a message: one `v1,…` per secret, space-separated. */
export function signatureOf(secrets: readonly string[], id: string, at: Date, payload: string): string {
  return secrets.map((s) => new Webhook(s).sign(id, at, payload)).join(' ')
}

interface Claimed {
  readonly id: string
  readonly workspace_id: string
  readonly endpoint_id: string
  readonly payload: string
  readonly attempts: number
}

export interface DeliveryDeps {
  readonly store: Store
  readonly keys: DataKeys
  readonly outbound: OutboundClient
  readonly audit: AuditLog
  readonly clock: Clock
  readonly config: DeliveryConfig
  /** This node's name in leases. */
  readonly node: string
  readonly userAgent: string
  readonly onAttempt?: (outcome: 'delivered' | 'retry' | 'failed') => void
}

/** ± 20 % jitter, so that retries of many messages spread out. */
function jittered(ms: number): number {
  if (ms < 10) return ms
  const spread = Math.floor(ms * 0.2)
  return ms - spread + randomInt(2 * spread + 1)
}

export class WebhookDelivery {
  readonly #d: DeliveryDeps

  constructor(deps: DeliveryDeps) {
    this.#d = deps
  }

  /** Claims due messages and sends them; returns how many were attempted. */
  async runOnce(): Promise<number> {
    const claimed = await this.#claim()
    await Promise.all(claimed.map((m) => this.#send(m)))
    return claimed.length
  }

  async #claim(): Promise<Claimed[]> {
    const { store, clock, node, config } = this.#d
    const now = clock()
    const at = now.toISOString()
    const until = new Date(now.getTime() + config.timeoutMs * 2 + 5_000).toISOString()
    // Most ticks find nothing due: a read says so without a write transaction.
    const any = await readInScope(store, SYSTEM_SCOPE, (db) =>
      db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', at)
        .limit(1)
        .executeTakeFirst(),
    )
    if (!any) return []
    return writeInScope(store, store.db, SYSTEM_SCOPE, async (tx) => {
      let due = tx
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', at)
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', at)]))
        .orderBy('next_attempt_at')
        .limit(CLAIM)
      if (store.engine === 'postgres') due = due.forUpdate().skipLocked()
      const ids = (await due.execute()).map((r) => r.id)
      if (ids.length === 0) return []
      return tx
        .updateTable('webhook_deliveries')
        .set({ lease_holder: node, lease_until: until })
        .where('id', 'in', ids)
        .returning(['id', 'workspace_id', 'endpoint_id', 'payload', 'attempts'])
        .execute()
    })
  }

  async #send(m: Claimed): Promise<void> {
    const { store, keys, clock, outbound, config, userAgent } = this.#d
    const endpoint = await readInScope(store, m.workspace_id, (db) => signingEndpoint(db, keys, m.workspace_id, m.endpoint_id, clock()))
    if (!endpoint) return // deleted with its messages
    if (endpoint.disabled) {
      await this.#record(m, endpoint, { ok: false, status: null, error: 'ERR_WEBHOOK_DISABLED', latencyMs: null }, true)
      return
    }
    const at = clock()
    const headers = {
      'content-type': 'application/json',
      'user-agent': userAgent,
      'webhook-id': m.id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signatureOf(endpoint.secrets, m.id, at, m.payload),
    }
    const t0 = performance.now()
    let result: { ok: boolean; status: number | null; error: string | null; latencyMs: number | null }
    try {
      const r = await outbound.request(endpoint.url, {
        method: 'POST',
        headers,
        body: m.payload,
        timeoutMs: config.timeoutMs,
        maxBytes: RESPONSE_LIMIT,
      })
      const ok = r.status >= 200 && r.status < 300
      result = { ok, status: r.status, error: ok ? null : `HTTP ${r.status}`, latencyMs: Math.round(performance.now() - t0) }
    } catch (err) {
      result = {
        ok: false,
        status: null,
        error: err instanceof CofferError ? err.code : 'ERR_OUTBOUND_FAILED',
        latencyMs: Math.round(performance.now() - t0),
      }
    }
    await this.#record(m, endpoint, result, false)
  }

  /** Records an attempt under this node's lease (a lease lost meanwhile records nothing). */
  async #record(
    m: Claimed,
    endpoint: SigningEndpoint,
    r: { ok: boolean; status: number | null; error: string | null; latencyMs: number | null },
    final: boolean,
  ): Promise<void> {
    const { store, clock, config, node, audit } = this.#d
    const now = clock()
    const at = now.toISOString()
    const attempts = m.attempts + (final ? 0 : 1)
    const exhausted = final || attempts > config.retryDelaysMs.length
    const status = r.ok ? 'delivered' : exhausted ? 'failed' : 'pending'
    const next = r.ok || exhausted ? at : new Date(now.getTime() + jittered(config.retryDelaysMs[attempts - 1] ?? 0)).toISOString()
    const outcome = r.ok ? 'delivered' : exhausted ? 'failed' : 'retry'
    await writeInScope(store, store.db, m.workspace_id, async (tx) => {
      const updated = await tx
        .updateTable('webhook_deliveries')
        .set({
          status,
          attempts,
          next_attempt_at: next,
          last_error: r.error,
          // A message refused without an attempt (its endpoint disabled) keeps its last answer.
          ...(final ? {} : { last_status: r.status, last_latency_ms: r.latencyMs, last_attempt_at: at }),
          delivered_at: r.ok ? at : null,
          lease_holder: null,
          lease_until: null,
        })
        .where('id', '=', m.id)
        .where('lease_holder', '=', node)
        .executeTakeFirst()
      if (Number(updated.numUpdatedRows) === 0 || final) return
      if (r.ok) {
        await tx
          .updateTable('webhook_endpoints')
          .set({ failing_since: null })
          .where('id', '=', endpoint.id)
          .where('failing_since', 'is not', null)
          .execute()
        return
      }
      const since = endpoint.failingSince ?? at
      if (endpoint.failingSince === null)
        await tx
          .updateTable('webhook_endpoints')
          .set({ failing_since: at })
          .where('id', '=', endpoint.id)
          .where('failing_since', 'is', null)
          .execute()
      // Failing for (about) the whole schedule, not once in a while: disable it.
      const span = config.retryDelaysMs.reduce((a, b) => a + b, 0)
      if (exhausted && now.getTime() - Date.parse(since) >= span * 0.8) {
        const changed = await tx
          .updateTable('webhook_endpoints')
          .set({ disabled_at: at, disabled_reason: `every delivery failed since ${since}` })
          .where('id', '=', endpoint.id)
          .where('disabled_at', 'is', null)
          .executeTakeFirst()
        if (Number(changed.numUpdatedRows) > 0)
          await audit.append(tx, m.workspace_id, SYSTEM_ACTOR, `webhook-${m.id}`, {
            action: 'webhook.disabled',
            target: { type: 'webhook', id: endpoint.id },
            details: { failingSince: since, lastError: r.error, message: m.id },
          })
      }
    })
    this.#d.onAttempt?.(outcome)
  }
}
