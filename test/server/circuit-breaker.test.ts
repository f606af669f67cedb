// The circuit breaker's states, and the counters behind it: closed → open after failures in
// a row (or at once when the connection is lost) → probing → closed when the service answers;
// each change reported once. While open, nothing waits on the service.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type BreakerState, CircuitBreaker } from '../../src/server/circuit-breaker.js'
import { type Count, type CounterBackend, FallbackCounters, MemoryCounters } from '../../src/server/rate-limit-store.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A service whose answers the test decides: up, failing at once, or never answering. */
class Service implements CounterBackend {
  mode: 'up' | 'down' | 'hang' = 'up'
  calls = 0
  readonly counts = new MemoryCounters()
  async #answer<T>(f: () => Promise<T>): Promise<T> {
    this.calls++
    if (this.mode === 'down') throw new Error('connection refused')
    if (this.mode === 'hang') return new Promise<T>(() => {})
    return f()
  }
  hit(key: string, rule: Parameters<CounterBackend['hit']>[1]): Promise<Count> {
    return this.#answer(() => this.counts.hit(key, rule))
  }
  peek(key: string): Promise<Count> {
    return this.#answer(() => this.counts.peek(key))
  }
  refund(key: string, max: number): Promise<Count> {
    return this.#answer(() => this.counts.refund(key, max))
  }
  ping(): Promise<void> {
    return this.#answer(async () => {})
  }
  async close(): Promise<void> {}
}

describe('CircuitBreaker', () => {
  test('closed → open at the threshold (once) → probes while open → closed when a probe succeeds (once)', async () => {
    const changes: BreakerState[] = []
    let up = false
    let probes = 0
    const b = new CircuitBreaker({
      failureThreshold: 3,
      probeIntervalMs: 20,
      probe: async () => {
        probes++
        if (!up) throw new Error('down')
      },
      onChange: (s) => changes.push(s),
    })
    b.failure('x')
    b.failure('x')
    b.success() // a success in between resets the run
    b.failure('x')
    b.failure('x')
    assert.equal(b.state, 'closed')
    b.failure('x')
    assert.equal(b.state, 'open')
    b.failure('x')
    b.trip('again')
    assert.deepEqual(changes, ['open'], 'reported once')
    await sleep(90)
    assert.ok(probes >= 2, `probes while open: ${probes}`)
    assert.equal(b.state, 'open', 'failed probes keep it open')
    up = true
    await sleep(60)
    assert.equal(b.state, 'closed')
    assert.deepEqual(changes, ['open', 'closed'])
    const after = probes
    await sleep(60)
    assert.equal(probes, after, 'no probes while closed')
    b.trip('connection closed')
    assert.equal(b.state, 'open', 'a lost connection opens it at once')
    b.stop()
    b.trip('after stop')
    await sleep(60)
    assert.deepEqual(changes, ['open', 'closed', 'open'], 'nothing after stop')
  })

  test('probeNow probes at once instead of waiting for the interval', async () => {
    const changes: BreakerState[] = []
    const b = new CircuitBreaker({ failureThreshold: 1, probeIntervalMs: 60_000, probe: async () => {}, onChange: (s) => changes.push(s) })
    b.failure('x')
    b.probeNow()
    await sleep(10)
    assert.deepEqual(changes, ['open', 'closed'])
    b.stop()
  })
})

describe('FallbackCounters', () => {
  const rule = { windowMs: 60_000, max: 5, lockoutMaxMs: 0 }

  test('a service that hangs costs one timeout per call until the breaker opens, then nothing', async () => {
    const svc = new Service()
    const changes: BreakerState[] = []
    const c = new FallbackCounters(svc, new MemoryCounters(), {
      timeoutMs: 200,
      failureThreshold: 2,
      probeIntervalMs: 30,
      probe: () => svc.ping(),
      onChange: (s) => changes.push(s),
    })
    assert.deepEqual(await c.hit('k', rule), { current: 1, ttl: 60_000 })
    assert.equal(svc.calls, 1)
    svc.mode = 'hang'
    let t0 = performance.now()
    assert.equal((await c.hit('k', rule)).current, 1, 'counted in memory instead (which starts afresh)')
    assert.ok(performance.now() - t0 >= 190, 'waited for the timeout')
    await c.hit('k', rule)
    assert.deepEqual(changes, ['open'])
    const callsWhenOpened = svc.calls
    t0 = performance.now()
    for (let i = 0; i < 20; i++) await c.hit('k', rule)
    assert.ok(performance.now() - t0 < 150, `20 calls while open (none waits 200 ms) took ${(performance.now() - t0).toFixed(1)} ms`)
    assert.equal((await c.peek('k')).current, 22, 'the fallback counted them')
    svc.mode = 'up'
    await sleep(120)
    assert.deepEqual(changes, ['open', 'closed'])
    assert.ok(svc.calls > callsWhenOpened, 'the probe reached the service')
    await c.hit('k', rule)
    assert.equal((await svc.counts.peek('k')).current, 2, 'counting resumed in the service')
    await c.close()
  })

  test('a service that fails at once falls back without waiting', async () => {
    const svc = new Service()
    svc.mode = 'down'
    const c = new FallbackCounters(svc, new MemoryCounters(), {
      timeoutMs: 1000,
      failureThreshold: 3,
      probeIntervalMs: 1000,
      probe: () => svc.ping(),
      onChange: () => {},
    })
    const t0 = performance.now()
    for (let i = 0; i < 5; i++) assert.equal((await c.hit('k', rule)).current, i + 1)
    assert.ok(performance.now() - t0 < 100)
    assert.equal(c.breaker.state, 'open')
    assert.equal(svc.calls, 3, 'the service was asked until the breaker opened, then not')
    await c.close()
  })
})
