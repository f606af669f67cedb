import { STEPS } from './migrations/index.js'
import type { Migration } from './migrations/migration.js'

export type { Migration } from './migrations/migration.js'

/**
 * Every migration this version of Coffer knows, in version order: one per file in
 * ./migrations/, listed in ./migrations/index.ts.
 */
export const MIGRATIONS: readonly Migration[] = [...STEPS].sort((a, b) => a.version - b.version)

/** The newest schema version this code knows. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version
