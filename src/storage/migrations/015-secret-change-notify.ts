import type { Migration } from './migration.js'
import { runStatements } from './ddl.js'

/**
 * Change notifications for `coffer run --watch` (GET …/environments/:environment/events): on
 * PostgreSQL, every secret created, updated, deleted or restored (an INSERT, or an UPDATE of
 * `current_version` or `deleted`, on `secrets`) notifies channel `coffer_secrets` with
 * `<workspace id>:<environment id>` — delivered at COMMIT to every node that LISTENs, so a write
 * on one node reaches a watcher on another. The payload names no key and carries no value.
 * A trigger, so no code path (a bulk write, a copy, a rollback, a host command) can forget.
 * Nothing on SQLite: one node, which hears its own writes in process.
 */
export const secretChangeNotify: Migration = {
  version: 15,
  name: 'secret-change-notify',
  async up(tx, engine) {
    if (engine !== 'postgres') return
    await runStatements(tx, [
      `CREATE FUNCTION coffer_secret_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('coffer_secrets', NEW.workspace_id || ':' || NEW.environment_id);
          RETURN NULL;
        END $$`,
      `CREATE TRIGGER secrets_changed AFTER INSERT OR UPDATE OF current_version, deleted ON secrets
        FOR EACH ROW EXECUTE FUNCTION coffer_secret_changed()`,
    ])
  },
}
