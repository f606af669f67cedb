import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { Binding, DataKey } from './envelope.js'

/** One ciphertext to move from its old key version to the new key. */
export interface ResealItem {
  ct: Uint8Array
  binding: Binding
  oldVersion: number
}

export interface ResealRequest {
  id: number
  oldKeys: Array<{ id: string; version: number; key: Uint8Array }>
  next: { id: string; version: number; key: Uint8Array }
  items: ResealItem[]
}

export type ResealResponse = { id: number; out: Uint8Array[] } | { id: number; failed: number }

/** Thrown when an item does not open under the key version it names. */
export class ResealItemError extends Error {
  constructor(readonly index: number) {
    super('a ciphertext does not open under the key version it names')
  }
}

function workerUrl(): URL {
  // From src/ (tsx) the worker is the .ts beside this file; in the bundle, dist/reseal-worker.js.
  for (const rel of ['./reseal-worker.ts', './reseal-worker.js', '../reseal-worker.js']) {
    const u = new URL(rel, import.meta.url)
    if (existsSync(fileURLToPath(u))) return u
  }
  throw new Error('reseal-worker not found beside the code')
}

/**
 * A small pool of worker threads that re-encrypts batches of ciphertexts, so a reseal's AES
 * work runs off the event loop (requests keep being served) and on every core. Keys are
 * copied to the workers for one batch and zeroed there afterwards.
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
      const url = workerUrl()
      // @NOTE from src/ (tests, benchmarks) the worker registers tsx itself: Node 20 workers
      // do not inherit the parent's --import hooks.
      const w = url.pathname.endsWith('.ts')
        ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}) })`, { eval: true })
        : new Worker(url)
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

  /** Re-encrypts `items` under `next`; the result is in the same order. */
  async reseal(items: ResealItem[], oldKeys: DataKey[], next: DataKey): Promise<Buffer[]> {
    if (items.length === 0) return []
    this.#start()
    const per = Math.ceil(items.length / this.#workers.length)
    const parts: Array<Promise<ResealResponse>> = []
    for (let i = 0, w = 0; i < items.length; i += per, w++) {
      const id = ++this.#next
      const req: ResealRequest = {
        id, items: items.slice(i, i + per),
        oldKeys: oldKeys.map((k) => ({ id: k.id, version: k.version, key: k.key })),
        next: { id: next.id, version: next.version, key: next.key },
      }
      parts.push(new Promise<ResealResponse>((resolve, reject) => {
        this.#pending.set(id, { resolve, reject })
        this.#workers[w % this.#workers.length]!.postMessage(req)
      }))
    }
    const results = await Promise.all(parts)
    const out: Buffer[] = []
    for (let p = 0; p < results.length; p++) {
      const r = results[p]!
      if ('failed' in r) throw new ResealItemError(p * per + r.failed)
      for (const ct of r.out) out.push(Buffer.from(ct.buffer, ct.byteOffset, ct.byteLength))
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
