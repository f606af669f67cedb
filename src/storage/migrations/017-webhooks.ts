import type { Migration } from './migration.js'
import { runStatements, tenantRowSecurity, types } from './ddl.js'

/**
 * Outbound webhooks (docs/webhooks.md).
 *
 * - `webhook_endpoints`: a workspace's endpoints: URL, chosen events, and the signing secret
 *   encrypted under the workspace's integration key (AAD: workspace, endpoint, secret version,
 *   field). A rotated secret keeps the previous one until `previous_until`, and deliveries are
 *   signed with both until then. `failing_since` marks an endpoint whose last delivery failed;
 *   one that keeps failing is disabled (`disabled_at`, `disabled_reason`). `from_seq`: the log's
 *   end when the endpoint was made; it gets only events after it.
 * - `webhook_cursors`: per workspace, the last integrated audit entry (seq) turned into
 *   deliveries. Deliveries come from the integrated audit log, in the same transaction that
 *   moves the cursor: every event is delivered once per endpoint, and never before it is
 *   in the tamper-evident chain.
 * - `webhook_deliveries`: the queue and the delivery log in one: a message (id = the
 *   `webhook-id` header, the same on every retry), its payload (keys and versions, never
 *   values), its state (pending, delivered, failed), attempts, the next attempt's time, the
 *   last answer's status, error and latency, and the lease of the node sending it.
 */
export const webhooks: Migration = {
  version: 17,
  name: 'webhooks',
  async up(tx, engine) {
    const { blob, big } = types(engine)
    await runStatements(tx, [
      `CREATE TABLE webhook_endpoints (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id), url TEXT NOT NULL,
          events TEXT NOT NULL, description TEXT NOT NULL, from_seq ${big} NOT NULL,
          secret_version INTEGER NOT NULL, secret_ct ${blob} NOT NULL,
          previous_secret_version INTEGER, previous_secret_ct ${blob}, previous_until TEXT,
          failing_since TEXT, disabled_at TEXT, disabled_reason TEXT,
          created_at TEXT NOT NULL, created_by TEXT NOT NULL)`,
      'CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, created_at)',
      `CREATE TABLE webhook_cursors (workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id), seq ${big} NOT NULL)`,
      `CREATE TABLE webhook_deliveries (
          id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces(id),
          endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
          event TEXT NOT NULL, payload TEXT NOT NULL, audit_seq ${big},
          status TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TEXT NOT NULL,
          last_status INTEGER, last_error TEXT, last_latency_ms INTEGER, last_attempt_at TEXT,
          delivered_at TEXT, lease_holder TEXT, lease_until TEXT, created_at TEXT NOT NULL)`,
      'CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)',
      'CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at)',
      ...tenantRowSecurity(engine, 'webhook_endpoints'),
      ...tenantRowSecurity(engine, 'webhook_cursors'),
      ...tenantRowSecurity(engine, 'webhook_deliveries'),
    ])
  },
}
