import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * Data-key rotation: a usage counter on every data key, reseal jobs with a lease, and a guard
 * that no secret version can ever name a data key that no longer exists (a real foreign key
 * on PostgreSQL; triggers on SQLite, which cannot add one to an existing table).
 */
export const keyRotation: Migration = {
  version: 3,
  name: 'key-rotation',
  async up(tx, engine) {
    const { big } = types(engine)
    const guard =
      engine === 'postgres'
        ? [
            `ALTER TABLE secret_versions ADD CONSTRAINT secret_versions_dek_fk FOREIGN KEY (dek_id, dek_version) REFERENCES data_keys (id, version)`,
          ]
        : [
            `CREATE TRIGGER secret_versions_dek_exists BEFORE INSERT ON secret_versions
            WHEN NEW.dek_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM data_keys WHERE id = NEW.dek_id AND version = NEW.dek_version)
            BEGIN SELECT RAISE(ABORT, 'secret version names a data key that does not exist'); END`,
            `CREATE TRIGGER secret_versions_dek_exists_update BEFORE UPDATE OF dek_id, dek_version ON secret_versions
            WHEN NEW.dek_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM data_keys WHERE id = NEW.dek_id AND version = NEW.dek_version)
            BEGIN SELECT RAISE(ABORT, 'secret version names a data key that does not exist'); END`,
            `CREATE TRIGGER data_keys_in_use BEFORE DELETE ON data_keys
            WHEN EXISTS (SELECT 1 FROM secret_versions WHERE dek_id = OLD.id AND dek_version = OLD.version)
            BEGIN SELECT RAISE(ABORT, 'data key is still in use'); END`,
          ]
    await runStatements(tx, [
      `ALTER TABLE data_keys ADD COLUMN encryptions ${big} NOT NULL DEFAULT 0`,
      // Every existing ciphertext counts as one encryption under its key.
      `UPDATE data_keys SET encryptions = (SELECT COUNT(value_ct) + COUNT(comment_ct) FROM secret_versions
        WHERE secret_versions.dek_id = data_keys.id AND secret_versions.dek_version = data_keys.version)`,
      `CREATE TABLE key_jobs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        project_id TEXT NOT NULL, environment_id TEXT NOT NULL, dek_id TEXT NOT NULL, target_version INTEGER NOT NULL,
        state TEXT NOT NULL, reason TEXT NOT NULL, total ${big} NOT NULL, done ${big} NOT NULL,
        lease_owner TEXT, lease_until ${big} NOT NULL DEFAULT 0, error TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, finished_at TEXT)`,
      // The resealer walks the versions under old key versions in this order.
      `CREATE INDEX secret_versions_dek_walk ON secret_versions (dek_id, dek_version, secret_id, version)`,
      `DROP INDEX secret_versions_dek`,
      `CREATE INDEX key_jobs_state ON key_jobs (state)`,
      `CREATE INDEX key_jobs_scope ON key_jobs (workspace_id, environment_id, created_at)`,
      ...guard,
    ])
  },
}
