import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * References, imports and personal overrides (issue 16 §1–2).
 *
 * - `environments.imports`: a JSON array of the environment ids this environment imports (all
 *   their keys; its own keys win), in order; NULL when it imports nothing, so the hot
 *   environment fetch knows from the row it already reads that there is nothing to merge.
 * - `environments.personal_overrides`: 1 when members may keep their own value for a key
 *   here (never honoured in restricted or sealed environments); 0 by default.
 * - `personal_overrides`: one member's own value for one key of one environment, encrypted
 *   under the environment's data key like a secret's value, its associated data bound to the
 *   row (id, version) and to the member (the field name carries the user id). Only that
 *   member's fetches read it; it has no history (a new value replaces the row, version + 1).
 */
export const referencesAndOverrides: Migration = {
  version: 13,
  name: 'references-and-overrides',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `ALTER TABLE environments ADD COLUMN imports TEXT`,
      `ALTER TABLE environments ADD COLUMN personal_overrides INTEGER NOT NULL DEFAULT 0`,
      `CREATE TABLE personal_overrides (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, project_id TEXT NOT NULL,
          environment_id TEXT NOT NULL REFERENCES environments(id), user_id TEXT NOT NULL, key TEXT NOT NULL,
          version INTEGER NOT NULL, value_ct ${blob} NOT NULL, dek_id TEXT NOT NULL, dek_version INTEGER NOT NULL,
          created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
          UNIQUE (environment_id, user_id, key))`,
      `CREATE INDEX personal_overrides_member ON personal_overrides (workspace_id, user_id)`,
    ])
  },
}
