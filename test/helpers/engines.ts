import { describe, test } from 'node:test'
import type { EngineName } from './harness.js'
import { pgAvailable } from './pg.js'

// pgAvailable throws under COFFER_REQUIRE_PG=1; that must fail the run, not skip it.
const pg = await pgAvailable().then(
  (ok) => ({ ok, error: undefined as unknown }),
  (error: unknown) => ({ ok: false, error }),
)

/**
 * Registers `suite` once per storage engine: SQLite always; PostgreSQL when it answers —
 * loudly skipped when it does not, and a failing test when COFFER_REQUIRE_PG=1.
 */
export function describeEachEngine(suite: (engine: EngineName) => void): void {
  for (const engine of ['sqlite', 'postgres'] as const) {
    if (engine === 'postgres') describePostgres(engine, () => suite(engine))
    else describe(engine, () => suite(engine))
  }
}

/** A PostgreSQL-only suite, gated as describeEachEngine gates its PostgreSQL half. */
export function describePostgres(name: string, suite: () => void): void {
  if (pg.error !== undefined) {
    describe(name, () => {
      test('PostgreSQL is required (COFFER_REQUIRE_PG=1)', () => {
        throw pg.error
      })
    })
    return
  }
  describe(name, pg.ok ? {} : { skip: 'PostgreSQL unreachable' }, suite)
}
