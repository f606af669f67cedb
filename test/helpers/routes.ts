import assert from 'node:assert/strict'
import type { AnyRoute } from '../../src/server/route.js'

/** The route's URL with every `:param` replaced from `refs` (each must be given). */
export function fillUrl(url: string, refs: Record<string, string>): string {
  return url.replace(/:([A-Za-z]+)/g, (_m, name: string) => {
    const v = refs[name]
    assert.ok(v, `a value for :${name}`)
    return encodeURIComponent(v)
  })
}

/**
 * A body that passes the route's schema, taken from `samples` (keyed "METHOD url"), so that
 * what a test exercises is authentication and authorisation, not validation. A new route
 * with a body fails here until a sample is added.
 */
export function sampleBody(r: AnyRoute, samples: Record<string, unknown>): unknown {
  if (!r.body) return r.method === 'POST' ? {} : undefined
  const sample = samples[`${r.method} ${r.url}`] ?? {}
  assert.ok(r.body.safeParse(sample).success, `add a valid sample body for ${r.method} ${r.url}`)
  return sample
}
