import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity } from './ddl.js'

/**
 * AWS role assumption (docs/aws.md).
 *
 * - `aws_external_ids`: per workspace, the version of its external ID. The ID itself is not
 *   stored: it is derived from the workspace's integration key and this version, so a
 *   rotation (version + 1) makes a new one and the old one is never sent again. No row means
 *   version 1, never rotated.
 * - `aws_roles`: per environment, a named IAM role Coffer may assume for whoever may reveal
 *   the environment: its ARN, an optional region handed to the child process, and the longest
 *   session (at most 3,600 s). Nothing long-lived of the customer's account is stored: the
 *   credentials STS returns are handed out once and never written down.
 */
export const awsRoles: Migration = {
  version: 20,
  name: 'aws-roles',
  async up(tx, engine) {
    await runStatements(tx, [
      `CREATE TABLE aws_external_ids (
          workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id), version INTEGER NOT NULL,
          rotated_at TEXT NOT NULL, rotated_by TEXT NOT NULL)`,
      `CREATE TABLE aws_roles (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          project_id TEXT NOT NULL, environment_id TEXT NOT NULL, name TEXT NOT NULL,
          role_arn TEXT NOT NULL, region TEXT, max_duration_seconds INTEGER NOT NULL,
          created_at TEXT NOT NULL, created_by TEXT NOT NULL)`,
      'CREATE UNIQUE INDEX aws_roles_name ON aws_roles (environment_id, name)',
      ...tenantRowSecurity(engine, 'aws_external_ids'),
      ...tenantRowSecurity(engine, 'aws_roles'),
    ])
  },
}
