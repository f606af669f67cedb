import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * A keyed fingerprint of each version's value, computed when the version is written: an
 * HMAC-SHA256 under a key derived from the workspace's fingerprint key (the one the audit log
 * fingerprints values with), so the environment matrix and the `.env` preview compare values
 * without decrypting them. It says only whether two values of one workspace are equal; without
 * the workspace's fingerprint key (wrapped by the root key) no guess can be checked against it.
 * Versions written before this step have none (NULL) and are compared by decrypting them.
 */
export const valueFingerprints: Migration = {
  version: 10,
  name: 'value-fingerprints',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [`ALTER TABLE secret_versions ADD COLUMN value_fingerprint ${blob}`])
  },
}
