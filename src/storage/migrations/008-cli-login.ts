import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * CLI sign-in in the browser: one-time codes of the loopback (PKCE) flow and device
 * authorizations (RFC 8628 style). Codes are stored only as SHA-256 hashes. The workspace a
 * login is for is `for_workspace`, not `workspace_id`: these rows belong to a person's sign-in
 * before any workspace is acting, so they sit outside the tenant tables' row-level security.
 */
export const cliLogin: Migration = {
  version: 8,
  name: 'cli-login',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `CREATE TABLE cli_login_codes (
        code_hash ${blob} PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), for_workspace TEXT NOT NULL,
        code_challenge TEXT NOT NULL, redirect_uri TEXT NOT NULL, client_name TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)`,
      `CREATE TABLE cli_device_codes (
        id TEXT PRIMARY KEY, device_code_hash ${blob} NOT NULL UNIQUE, user_code_hash ${blob} NOT NULL UNIQUE,
        client_name TEXT NOT NULL, status TEXT NOT NULL, poll_interval INTEGER NOT NULL, last_poll_at TEXT,
        user_id TEXT REFERENCES users(id), for_workspace TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, decided_at TEXT)`,
    ])
  },
}
