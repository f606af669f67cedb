import { systemMillis } from '../ops/clock.js'

/**
 * A bounded LRU cache for plaintext key material with a time-to-live; the only place
 * plaintext DEKs are kept between requests.
 *
 * @NOTE evicted keys are dropped, not zero-filled: a request that fetched a key before an
 * await may still be about to use it, and encrypting under a zeroed key would lose data.
 */
export class DekCache<V extends { key: Buffer }> {
  readonly #max: number
  readonly #ttlMs: number
  readonly #now: () => number
  readonly #map = new Map<string, { value: V; expires: number }>()

  constructor(options: { maxEntries: number; ttlMs: number; now?: () => number }) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) throw new TypeError('maxEntries must be a positive integer')
    if (!(options.ttlMs > 0)) throw new TypeError('ttlMs must be positive')
    this.#max = options.maxEntries
    this.#ttlMs = options.ttlMs
    // @NOTE the system clock, not the context's: this TTL bounds how long plaintext keys stay
    // in memory, and a test clock that stands still or steps back must not stretch it.
    this.#now = options.now ?? systemMillis
  }

  get size(): number {
    return this.#map.size
  }

  /** The cached value, or undefined when absent or expired. */
  get(id: string): V | undefined {
    const e = this.#map.get(id)
    if (!e) return undefined
    if (e.expires <= this.#now()) {
      this.#drop(id)
      return undefined
    }
    this.#map.delete(id)
    this.#map.set(id, e)
    return e.value
  }

  set(id: string, value: V): void {
    if (this.#map.has(id)) this.#drop(id)
    this.#map.set(id, { value, expires: this.#now() + this.#ttlMs })
    while (this.#map.size > this.#max) this.#drop(this.#map.keys().next().value as string)
  }

  delete(id: string): void {
    this.#drop(id)
  }

  /** Drops every entry whose id starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const id of [...this.#map.keys()]) if (id.startsWith(prefix)) this.#drop(id)
  }

  clear(): void {
    for (const id of [...this.#map.keys()]) this.#drop(id)
  }

  #drop(id: string): void {
    this.#map.delete(id)
  }
}
