import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { startWorkerThread } from '../worker-thread.js'
import type { DataKey } from './envelope.js'
import { ResealItemError, resealBatchTransferList, sliceResealBatch, type ResealBatch } from './reseal-batch.js'

/** What a worker is sent: a packed batch and the keys, all transferred, none cloned per item. */
export interface ResealRequest {
  id: number
  /** The old keys then the new one, 32 bytes each, in one buffer zeroed by the worker. */
  keys: Uint8Array
  oldKeys: Array<{ id: string; version: number }>
  next: { id: string; version: number }
  batch: ResealBatch
}

/** The new ciphertexts at the batch's offsets, or the first item that did not open, or a bug. */
export type ResealResponse = { id: number; out: Uint8Array } | { id: number; failed: number } | { id: number; error: string }

const KEY_LENGTH = 32

/**
 * A small pool of worker threads that re-encrypts batches of ciphertexts, so a reseal's AES
 * work runs off the event loop (requests keep being served) and on every core. Batches go
 * packed (see reseal-batch.ts) and are transferred, not cloned. Keys are copied to the
 * workers for one batch and zeroed there afterwards.
 */
export class ResealWorkers {
  readonly #size: number
  #workers: Worker[] = []
  #next = 0
  readonly #pending = new Map<number, { resolve: (r: ResealResponse) => void; reject: (e: unknown) => void }>()

  constructor(size = Math.max(1, Math.min(4, availableParallelism()))) {
    this.#size = size
  }

  #start(): void {
    if (this.#workers.length) return
    for (let i = 0; i < this.#size; i++) {
      const w = startWorkerThread('reseal-worker', import.meta.url)
      w.unref()
      w.on('message', (res: ResealResponse) => {
        const p = this.#pending.get(res.id)
        this.#pending.delete(res.id)
        p?.resolve(res)
      })
      w.on('error', (err) => {
        for (const p of this.#pending.values()) p.reject(err)
        this.#pending.clear()
        this.#workers = []
      })
      this.#workers.push(w)
    }
  }

  /**
   * Re-encrypts every item of `batch` under `next`, split across the threads; returns the new
   * ciphertexts in one buffer at the batch's offsets. Throws ResealItemError with the index
   * (in `batch`) of an item that does not open under the key version it names.
   */
  async reseal(batch: ResealBatch, oldKeys: DataKey[], next: DataKey): Promise<Uint8Array> {
    const out = new Uint8Array(batch.cts.length)
    if (batch.count === 0) return out
    this.#start()
    const per = Math.ceil(batch.count / this.#workers.length)
    const parts: Array<Promise<ResealResponse>> = []
    for (let from = 0, w = 0; from < batch.count; from += per, w++) {
      const id = ++this.#next
      const part = sliceResealBatch(batch, from, Math.min(batch.count, from + per))
      // @NOTE a fresh copy of the keys per part, transferred: nothing of them stays behind
      // on this side, and the worker zeroes the one copy it gets.
      if ([...oldKeys, next].some((k) => k.key.length !== KEY_LENGTH)) throw new TypeError('dek key must be 32 bytes')
      const keys = new Uint8Array(KEY_LENGTH * (oldKeys.length + 1))
      for (const [i, k] of oldKeys.entries()) keys.set(k.key, i * KEY_LENGTH)
      keys.set(next.key, oldKeys.length * KEY_LENGTH)
      const req: ResealRequest = {
        id,
        keys,
        batch: part,
        oldKeys: oldKeys.map((k) => ({ id: k.id, version: k.version })),
        next: { id: next.id, version: next.version },
      }
      parts.push(
        new Promise<ResealResponse>((resolve, reject) => {
          this.#pending.set(id, { resolve, reject })
          try {
            this.#workers[w % this.#workers.length]!.postMessage(req, [...resealBatchTransferList(part), keys.buffer as ArrayBuffer])
          } catch (err) {
            keys.fill(0) // not transferred: this copy is still here
            this.#pending.delete(id)
            reject(err)
          }
        }),
      )
    }
    const results = await Promise.all(parts)
    for (let p = 0; p < results.length; p++) {
      const r = results[p]!
      if ('failed' in r) throw new ResealItemError(p * per + r.failed)
      if ('error' in r) throw new Error(`reseal worker: ${r.error}`)
      out.set(r.out, batch.offsets[p * per]!)
    }
    return out
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    const ws = this.#workers
    this.#workers = []
    await Promise.all(ws.map((w) => w.terminate()))
  }
}
