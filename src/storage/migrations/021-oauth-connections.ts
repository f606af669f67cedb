import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity, types } from './ddl.js'

/**
 * Third-party OAuth connections behind a credential-injecting relay (docs/connections.md).
 *
 * - `connections`: per workspace, an OAuth 2.0 app at a provider: its authorization and token
 *   endpoints, client id, the client secret (sealed under the workspace's integration key,
 *   bound to the row and field), the scopes asked for, the API base URL its tokens may be used
 *   against, and the relay's allow-list (`METHOD /path-pattern` rules, JSON).
 * - `connection_links`: the tokens one connection holds: the app's own (`owner` = 'app') and
 *   each member's personal link (`owner` = the member's user id). Access and refresh tokens
 *   are sealed under the integration key with a fresh nonce, their AAD binding the workspace,
 *   the connection, the owner, the field and `token_version` (bumped on every refresh, so an
 *   old ciphertext copied back does not open). `status` is `connected` or `needs_reconnect`
 *   (a refresh failed). A member's links go when their membership does (a trigger).
 *   `refresher`/`refresher_until`: the lease of the node refreshing the link ahead of its expiry.
 * - `connection_states`: authorization flows under way: the SHA-256 of the single-use `state`
 *   (the state itself is never stored), the connection, the kind and owner it links, who
 *   started it, the PKCE verifier (sealed), and the expiry. Consumed by deletion.
 */
export const oauthConnections: Migration = {
  version: 21,
  name: 'oauth-connections',
  async up(tx, engine) {
    const { blob } = types(engine)
    const linkCleanup =
      engine === 'sqlite'
        ? [
            `CREATE TRIGGER memberships_connection_links AFTER DELETE ON memberships
              BEGIN
              DELETE FROM connection_links WHERE workspace_id = OLD.workspace_id AND owner = OLD.user_id;
              DELETE FROM connection_states WHERE workspace_id = OLD.workspace_id AND started_by = OLD.user_id;
              END`,
          ]
        : [
            `CREATE FUNCTION coffer_member_links_gone() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN
                DELETE FROM connection_links WHERE workspace_id = OLD.workspace_id AND owner = OLD.user_id;
                DELETE FROM connection_states WHERE workspace_id = OLD.workspace_id AND started_by = OLD.user_id;
                RETURN OLD;
              END $$`,
            `CREATE TRIGGER memberships_connection_links AFTER DELETE ON memberships
              FOR EACH ROW EXECUTE FUNCTION coffer_member_links_gone()`,
          ]
    await runStatements(tx, [
      `CREATE TABLE connections (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), name TEXT NOT NULL,
          authorize_url TEXT NOT NULL, token_url TEXT NOT NULL, client_id TEXT NOT NULL,
          client_secret_ct ${blob} NOT NULL, token_auth TEXT NOT NULL, scopes TEXT NOT NULL,
          api_base TEXT NOT NULL, allow_rules TEXT NOT NULL,
          created_at TEXT NOT NULL, created_by TEXT NOT NULL)`,
      'CREATE UNIQUE INDEX connections_name ON connections (workspace_id, name)',
      `CREATE TABLE connection_links (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
          kind TEXT NOT NULL, owner TEXT NOT NULL, token_version INTEGER NOT NULL,
          access_token_ct ${blob} NOT NULL, refresh_token_ct ${blob}, expires_at TEXT, scopes TEXT NOT NULL,
          status TEXT NOT NULL, linked_at TEXT NOT NULL, linked_by TEXT NOT NULL,
          refreshed_at TEXT, last_error TEXT, refresher TEXT, refresher_until TEXT)`,
      'CREATE UNIQUE INDEX connection_links_owner ON connection_links (connection_id, owner)',
      'CREATE INDEX connection_links_member ON connection_links (workspace_id, owner)',
      'CREATE INDEX connection_links_expiry ON connection_links (status, expires_at)',
      `CREATE TABLE connection_states (
          state_hash TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
          kind TEXT NOT NULL, owner TEXT NOT NULL, started_by TEXT NOT NULL,
          verifier_ct ${blob} NOT NULL, expires_at TEXT NOT NULL, created_at TEXT NOT NULL)`,
      'CREATE INDEX connection_states_expiry ON connection_states (expires_at)',
      ...tenantRowSecurity(engine, 'connections'),
      ...tenantRowSecurity(engine, 'connection_links'),
      ...tenantRowSecurity(engine, 'connection_states'),
      ...linkCleanup,
    ])
  },
}
