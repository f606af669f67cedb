import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity } from './ddl.js'

/**
 * OIDC federation for machine identities (docs/ci-federation.md).
 *
 * - `machine_oidc_rules`: the issuers a machine identity trusts. Each rule names one issuer
 *   URL, the audiences it accepts (JSON list) and the claim conditions that must all match
 *   (JSON object: claim name → exact value or `*` glob). A workload's ID token that satisfies
 *   one rule is exchanged for the identity's usual access token.
 * - `machine_identities.oidc_limit_ttl`: 1 when an access token obtained by an OIDC exchange
 *   must not outlive the ID token it was exchanged for.
 */
export const machineOidcTrust: Migration = {
  version: 19,
  name: 'machine-oidc-trust',
  async up(tx, engine) {
    await runStatements(tx, [
      `CREATE TABLE machine_oidc_rules (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          machine_id TEXT NOT NULL REFERENCES machine_identities(id), issuer TEXT NOT NULL,
          audiences TEXT NOT NULL, claims TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL)`,
      'CREATE INDEX machine_oidc_rules_machine ON machine_oidc_rules (machine_id, created_at)',
      'ALTER TABLE machine_identities ADD COLUMN oidc_limit_ttl INTEGER NOT NULL DEFAULT 0',
      ...tenantRowSecurity(engine, 'machine_oidc_rules'),
    ])
  },
}
