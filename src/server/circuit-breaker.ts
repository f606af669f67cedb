// A circuit breaker in front of a shared service (Redis, for the rate-limit counters). Closed:
// calls go to the service. After `failureThreshold` failures in a row, or at once when the
// connection is known to be lost, it opens: callers use their fallback without waiting on the
// service. While open, a probe runs every `probeIntervalMs`; the first probe that succeeds
// closes it. Each change of state is reported once, never per call.

export type BreakerState = 'closed' | 'open'

export interface CircuitBreakerOptions {
  /** Failures in a row that open the breaker. */
  readonly failureThreshold: number
  /** How often an open breaker asks the service again. */
  readonly probeIntervalMs: number
  /** Asks the service whether it answers; resolves when it does, rejects (or times out) when not. */
  readonly probe: () => Promise<unknown>
  /** Called once on each change of state (`open`: the fallback is in use). */
  readonly onChange: (state: BreakerState, reason: string) => void
}

/** Guarantees: at most one probe at a time; `onChange` fires only when the state really changes. */
export class CircuitBreaker {
  #state: BreakerState = 'closed'
  #failures = 0
  #timer: NodeJS.Timeout | undefined
  #probing = false
  #stopped = false
  readonly #options: CircuitBreakerOptions

  constructor(options: CircuitBreakerOptions) {
    if (!(options.failureThreshold >= 1)) throw new TypeError('failureThreshold must be at least 1')
    if (!(options.probeIntervalMs >= 1)) throw new TypeError('probeIntervalMs must be at least 1')
    this.#options = options
  }

  get state(): BreakerState {
    return this.#state
  }

  /** True while callers should skip the service and use their fallback. */
  get isOpen(): boolean {
    return this.#state === 'open'
  }

  /** A call to the service succeeded. */
  success(): void {
    this.#failures = 0
  }

  /** A call to the service failed (an error or a timeout); opens the breaker at the threshold. */
  failure(reason: string): void {
    if (this.#state === 'open') return
    this.#failures++
    if (this.#failures >= this.#options.failureThreshold) this.trip(reason)
  }

  /** Opens the breaker now (the connection is gone: no call could succeed). */
  trip(reason: string): void {
    if (this.#stopped || this.#state === 'open') return
    this.#state = 'open'
    this.#failures = 0
    this.#options.onChange('open', reason)
    this.#schedule()
  }

  /** Probes now instead of at the next interval (e.g. the connection came back). */
  probeNow(): void {
    if (this.#state === 'open') void this.#probe()
  }

  /** Stops probing for good (the process is closing). */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule(): void {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    this.#timer = setTimeout(() => void this.#probe(), this.#options.probeIntervalMs)
    this.#timer.unref()
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#stopped || this.#state !== 'open') return
    this.#probing = true
    let ok = false
    try {
      await this.#options.probe()
      ok = true
    } catch {
      ok = false
    } finally {
      this.#probing = false
    }
    if (this.#stopped || this.#state !== 'open') return
    if (ok) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#state = 'closed'
      this.#failures = 0
      this.#options.onChange('closed', 'the service answered a probe')
    } else {
      this.#schedule()
    }
  }
}
