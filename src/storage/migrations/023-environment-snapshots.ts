import type { Engine, Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * Environment snapshots (src/vault/environment-snapshots.ts): per environment, its revealed
 * list — every live secret at its current version, value and comment included — sealed as ONE
 * ciphertext under the environment's data key, so a fetch opens one ciphertext instead of one
 * per value. A snapshot is derived, never the authority: the rows are.
 *
 * `generation` counts the changes to the environment's secrets; `built_generation` is the
 * generation `body_ct` was built at. A snapshot is served only while the two are equal.
 * Triggers keep it so, in the change's own transaction, whatever code path writes:
 * - any INSERT or UPDATE of `secrets`, and any UPDATE of `secret_versions` (a reseal), bumps
 *   `generation` and drops the ciphertext at once. It is an upsert: a builder that has just
 *   created the row and not yet committed makes the writer wait for it (PostgreSQL), so a
 *   change can never slip between a build's read of the rows and its commit unseen;
 * - a DELETE of either (an environment or workspace being removed) deletes the row.
 * INSERTs of `secret_versions` always come with a change of `secrets`.
 *
 * On PostgreSQL the triggers are deferred to COMMIT: the environment's row is locked only from
 * its writer's commit to the end of it, not from its first change, so writers of one
 * environment do not queue on it for their whole transaction. A build takes the data key's
 * row before this one, as a writer does (docs/architecture.md, "Lock order").
 */
function sqliteTriggers(): string[] {
  const bump = `INSERT INTO environment_snapshots (environment_id, workspace_id, project_id, generation)
      VALUES (NEW.environment_id, NEW.workspace_id, NEW.project_id, 1)
      ON CONFLICT (environment_id) DO UPDATE SET generation = generation + 1, built_generation = NULL, body_ct = NULL;`
  const drop = 'DELETE FROM environment_snapshots WHERE environment_id = OLD.environment_id;'
  return [
    `CREATE TRIGGER secrets_snapshot_insert AFTER INSERT ON secrets BEGIN ${bump} END`,
    `CREATE TRIGGER secrets_snapshot_update AFTER UPDATE ON secrets BEGIN ${bump} END`,
    `CREATE TRIGGER secrets_snapshot_delete AFTER DELETE ON secrets BEGIN ${drop} END`,
    `CREATE TRIGGER secret_versions_snapshot_update AFTER UPDATE ON secret_versions BEGIN ${bump} END`,
    `CREATE TRIGGER secret_versions_snapshot_delete AFTER DELETE ON secret_versions BEGIN ${drop} END`,
  ]
}

function postgresTriggers(): string[] {
  return [
    `CREATE FUNCTION coffer_snapshot_stale() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          DELETE FROM environment_snapshots WHERE environment_id = OLD.environment_id;
        ELSE
          INSERT INTO environment_snapshots (environment_id, workspace_id, project_id, generation)
            VALUES (NEW.environment_id, NEW.workspace_id, NEW.project_id, 1)
            ON CONFLICT (environment_id) DO UPDATE
              SET generation = environment_snapshots.generation + 1, built_generation = NULL, body_ct = NULL;
        END IF;
        RETURN NULL;
      END $$`,
    `CREATE CONSTRAINT TRIGGER secrets_snapshot_stale AFTER INSERT OR UPDATE OR DELETE ON secrets
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_snapshot_stale()`,
    `CREATE CONSTRAINT TRIGGER secret_versions_snapshot_stale AFTER UPDATE OR DELETE ON secret_versions
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_snapshot_stale()`,
  ]
}

function statements(engine: Engine): string[] {
  const { blob, big } = types(engine)
  return [
    `CREATE TABLE environment_snapshots (
        environment_id TEXT PRIMARY KEY REFERENCES environments(id),
        workspace_id TEXT NOT NULL REFERENCES workspaces(id),
        project_id TEXT NOT NULL,
        generation ${big} NOT NULL,
        built_generation ${big},
        body_ct ${blob},
        built_at TEXT)`,
    ...(engine === 'postgres' ? postgresTriggers() : sqliteTriggers()),
  ]
}

export const environmentSnapshots: Migration = {
  version: 23,
  name: 'environment-snapshots',
  async up(tx, engine) {
    await runStatements(tx, statements(engine))
  },
}
