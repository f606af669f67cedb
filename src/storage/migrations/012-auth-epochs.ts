import type { Engine, Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * What a credential's authentication depends on, per table: the column that names the scope
 * whose epoch a change bumps (a workspace id, or a user id for what belongs to a person), and
 * the columns whose UPDATE matters. "Last used" and "last seen" bookkeeping (`last_used_at`,
 * `last_seen_at`) is absent on purpose: it is written once a minute and changes no decision.
 * INSERTs are absent too: a new row cannot make a cached acceptance wrong (and a restore,
 * which only inserts, then bumps nothing).
 */
const WATCHED: ReadonlyArray<{ table: string; scope: string; columns: string[] }> = [
  { table: 'workspaces', scope: 'id', columns: ['slug', 'name', 'deleted_at'] },
  { table: 'users', scope: 'id', columns: ['email'] },
  { table: 'memberships', scope: 'workspace_id', columns: ['role', 'user_id', 'workspace_id'] },
  { table: 'tokens', scope: 'workspace_id', columns: ['revoked_at', 'expires_at', 'token_hash', 'user_id', 'workspace_id'] },
  {
    table: 'service_tokens',
    scope: 'workspace_id',
    columns: ['revoked_at', 'expires_at', 'token_hash', 'scopes', 'name', 'workspace_id'],
  },
  {
    table: 'machine_identities',
    scope: 'workspace_id',
    columns: ['revoked_at', 'scopes', 'allowed_cidrs', 'name', 'workspace_id'],
  },
  { table: 'machine_tokens', scope: 'workspace_id', columns: ['expires_at', 'token_hash', 'machine_id', 'workspace_id'] },
  { table: 'sessions', scope: 'user_id', columns: ['revoked_at', 'expires_at', 'user_id'] },
]

function sqliteTriggers(t: (typeof WATCHED)[number]): string[] {
  const bump = (row: 'OLD' | 'NEW') =>
    `INSERT INTO auth_epochs (scope, epoch) VALUES (${row}.${t.scope}, 1) ON CONFLICT (scope) DO UPDATE SET epoch = epoch + 1;`
  return [
    `CREATE TRIGGER ${t.table}_auth_update AFTER UPDATE OF ${t.columns.join(', ')} ON ${t.table}
      BEGIN ${bump('OLD')} ${bump('NEW')} END`,
    `CREATE TRIGGER ${t.table}_auth_delete AFTER DELETE ON ${t.table} BEGIN ${bump('OLD')} END`,
  ]
}

function postgresTriggers(t: (typeof WATCHED)[number]): string[] {
  return [
    `CREATE TRIGGER ${t.table}_auth_update AFTER UPDATE OF ${t.columns.join(', ')} ON ${t.table}
      FOR EACH ROW EXECUTE FUNCTION coffer_auth_changed('${t.scope}')`,
    `CREATE TRIGGER ${t.table}_auth_delete AFTER DELETE ON ${t.table}
      FOR EACH ROW EXECUTE FUNCTION coffer_auth_changed('${t.scope}')`,
  ]
}

function functions(engine: Engine): string[] {
  if (engine !== 'postgres') return []
  return [
    // Bumps a scope's epoch and tells every listening node (delivered at COMMIT, not before).
    `CREATE FUNCTION coffer_auth_bump(k TEXT) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO auth_epochs (scope, epoch) VALUES (k, 1) ON CONFLICT (scope) DO UPDATE SET epoch = auth_epochs.epoch + 1;
        PERFORM pg_notify('coffer_auth', k);
      END $$`,
    // TG_ARGV[0]: the column that names the scope; an UPDATE that moves a row bumps both scopes.
    `CREATE FUNCTION coffer_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE o TEXT; n TEXT;
      BEGIN
        IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD) ->> TG_ARGV[0]; PERFORM coffer_auth_bump(o); END IF;
        IF TG_OP <> 'DELETE' THEN
          n := to_jsonb(NEW) ->> TG_ARGV[0];
          IF n IS DISTINCT FROM o THEN PERFORM coffer_auth_bump(n); END IF;
        END IF;
        RETURN NULL;
      END $$`,
  ]
}

/**
 * Authentication epochs, for the per-node principal cache (src/identity/principal-cache.ts).
 * Every change that can end or narrow a credential's acceptance — a token, service token,
 * machine identity or access token revoked, expired early or deleted; a membership changed or
 * removed; a session ended; a user's email changed or the user deleted; a workspace renamed or
 * deleted — bumps, in the change's own transaction, the epoch of the workspace (or, for
 * sessions and users, of the person) it belongs to. Triggers do it, so no code path can forget.
 * A cached principal remembers the epochs it was read under and is used only while they are
 * unchanged; on PostgreSQL the bump also notifies channel `coffer_auth` with the scope.
 */
export const authEpochs: Migration = {
  version: 12,
  name: 'auth-epochs',
  async up(tx, engine) {
    const { big } = types(engine)
    await runStatements(tx, [
      // @NOTE `scope`, not `workspace_id`: a person's scope is their user id; the table is not
      // a tenant table and has no row-level security (it holds counters, nothing of a tenant).
      `CREATE TABLE auth_epochs (scope TEXT PRIMARY KEY, epoch ${big} NOT NULL)`,
      ...functions(engine),
      ...WATCHED.flatMap((t) => (engine === 'postgres' ? postgresTriggers(t) : sqliteTriggers(t))),
    ])
  },
}
