import { randomUUID } from 'node:crypto'
import type { Store } from '../storage/database.js'
import { readInScope, SYSTEM_SCOPE, writeInScope } from '../storage/tenant-scope.js'
import type { Clock } from '../ops/clock.js'
import { dispatchingWorkspaces, dispatchWorkspace } from './dispatch.js'
import type { WebhookDelivery } from './delivery.js'

// Runs webhook work on every node: each tick turns newly integrated audit entries into
// messages (dispatch.ts) and sends the due ones (delivery.ts). Both are safe on any number of
// nodes at once: the cursor's row lock and the delivery lease keep every message to one node.

export const WEBHOOK_TICK_MS = 500

export class WebhookWorker {
  readonly node = `webhooks-${randomUUID()}`
  readonly #store: Store
  readonly #clock: Clock
  readonly #delivery: WebhookDelivery
  readonly #onError: (err: unknown) => void
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = true
  #again = false

  constructor(deps: { store: Store; clock: Clock; delivery: WebhookDelivery; onError?: (err: unknown) => void }) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#delivery = deps.delivery
    this.#onError = deps.onError ?? (() => {})
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule(WEBHOOK_TICK_MS)
  }

  /** Runs a pass soon (after a redelivery or a test message was queued). */
  kick(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    this.#schedule(0)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#running = this.pass()
        .catch(this.#onError)
        .finally(() => {
          this.#running = undefined
          if (this.#stopped) return
          const again = this.#again
          this.#again = false
          this.#schedule(again ? 0 : WEBHOOK_TICK_MS)
        })
    }, ms)
    this.#timer.unref()
  }

  /** One pass: dispatch every workspace's new entries, then send what is due. */
  async pass(): Promise<void> {
    const store = this.#store
    for (const ws of await readInScope(store, SYSTEM_SCOPE, (db) => dispatchingWorkspaces(db))) {
      for (;;) {
        const r = await writeInScope(store, store.db, ws, (tx) => dispatchWorkspace(tx, store.engine, ws, this.#clock()))
        if (!r.more) break
      }
    }
    while ((await this.#delivery.runOnce()) > 0 && !this.#stopped) {
      // keep sending while messages are due
    }
  }
}
