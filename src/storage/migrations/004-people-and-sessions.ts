import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * People sign in: a password hash (Argon2id, PHC string) and email verification on users,
 * how the account came to be (an OIDC-created account never gets a password), browser
 * sessions, single-use email links (verification, password reset), OpenID Connect identities
 * and the short-lived state of OIDC sign-ins in flight. Every secret-bearing column holds a
 * SHA-256 hash only (session ids, link tokens, OIDC state).
 */
export const peopleAndSessions: Migration = {
  version: 4,
  name: 'people-and-sessions',
  async up(tx, engine) {
    const { blob } = types(engine)
    await runStatements(tx, [
      `ALTER TABLE users ADD COLUMN password_hash TEXT`,
      `ALTER TABLE users ADD COLUMN email_verified_at TEXT`,
      `ALTER TABLE users ADD COLUMN created_via TEXT NOT NULL DEFAULT 'invite'`,
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY, id_hash ${blob} NOT NULL UNIQUE, user_id TEXT NOT NULL REFERENCES users(id),
        method TEXT NOT NULL, created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        ip TEXT NOT NULL, user_agent TEXT NOT NULL, revoked_at TEXT)`,
      `CREATE INDEX sessions_user ON sessions (user_id)`,
      `CREATE TABLE email_links (
        id TEXT PRIMARY KEY, token_hash ${blob} NOT NULL UNIQUE, user_id TEXT NOT NULL REFERENCES users(id),
        purpose TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)`,
      `CREATE INDEX email_links_user ON email_links (user_id)`,
      `CREATE TABLE user_identities (
        issuer TEXT NOT NULL, subject TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(id),
        email TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT NOT NULL, PRIMARY KEY (issuer, subject))`,
      `CREATE INDEX user_identities_user ON user_identities (user_id)`,
      `CREATE TABLE oidc_flows (
        state_hash ${blob} PRIMARY KEY, nonce TEXT NOT NULL, code_verifier TEXT NOT NULL, return_to TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL)`,
      // Account export lists the entries a person made.
      `CREATE INDEX audit_entries_actor ON audit_entries (actor_id)`,
    ])
  },
}
