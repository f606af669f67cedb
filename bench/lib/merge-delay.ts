// The audit sequencer's merge delay as a node exports it at /metrics: the histogram
// coffer_audit_merge_delay_seconds (per entry integrated by that node, from queuing to its
// place in the chain). Benchmarks read it before and after a run and report the quantiles of
// the entries integrated in between, across nodes.

export interface DelayHistogram {
  count: number
  /** Cumulative counts per upper bound (seconds), ascending. */
  buckets: Array<{ le: number; count: number }>
}

/** Reads the merge-delay histogram of one node. */
export async function readMergeDelay(baseUrl: string): Promise<DelayHistogram> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const buckets: Array<{ le: number; count: number }> = []
  let count = 0
  for (const line of text.split('\n')) {
    const b = /^coffer_audit_merge_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/.exec(line)
    if (b && b[1] !== '+Inf') buckets.push({ le: Number(b[1]), count: Number(b[2]) })
    const c = /^coffer_audit_merge_delay_seconds_count (\d+)/.exec(line)
    if (c) count = Number(c[1])
  }
  return { count, buckets: buckets.sort((a, b) => a.le - b.le) }
}

/** What several nodes integrated between two readings of each, added up. */
export function delta(before: DelayHistogram[], after: DelayHistogram[]): DelayHistogram {
  const sum: DelayHistogram = { count: 0, buckets: [] }
  after.forEach((a, i) => {
    const b = before[i] ?? { count: 0, buckets: [] }
    sum.count += a.count - b.count
    a.buckets.forEach((x, j) => {
      const prev = b.buckets[j]?.count ?? 0
      const slot = sum.buckets[j] ?? { le: x.le, count: 0 }
      slot.count += x.count - prev
      sum.buckets[j] = slot
    })
  })
  return sum
}

/** The smallest bucket bound that holds quantile `q` of the observations ("≤ 0.25 s"); Infinity past the last bucket; 0 with none. */
export function quantileBound(h: DelayHistogram, q: number): number {
  if (h.count === 0) return 0
  for (const b of h.buckets) if (b.count >= q * h.count) return b.le
  return Number.POSITIVE_INFINITY
}
