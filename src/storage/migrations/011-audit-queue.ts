import type { Migration } from './migration.js'
import { runStatements, types } from './ddl.js'

/**
 * The sequenced audit log. A request no longer takes its workspace's chain head: it queues its
 * entry in `audit_queue` (in the change's own transaction, or committed before a read's
 * answer), and a sequencer — one per workspace at a time, through the lease kept beside the
 * head in `audit_heads` — integrates queued entries into the hash chain and the Merkle tree
 * in batches, deleting them from the queue in the same transaction. `qid` orders the queue:
 * entries are integrated in qid order within a batch. Queue rows are never updated.
 *
 * Existing chains continue as they are: the queue starts empty, every head keeps its seq,
 * hash and peaks.
 */
export const auditQueue: Migration = {
  version: 11,
  name: 'audit-queue',
  async up(tx, engine) {
    const { big } = types(engine)
    const qid = engine === 'sqlite' ? 'qid INTEGER PRIMARY KEY AUTOINCREMENT' : 'qid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY'
    await runStatements(tx, [
      `CREATE TABLE audit_queue (
          ${qid}, workspace_id TEXT NOT NULL REFERENCES workspaces(id), id TEXT NOT NULL UNIQUE, time TEXT NOT NULL,
          actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_ip TEXT NOT NULL, actor_ua TEXT NOT NULL,
          request_id TEXT NOT NULL, action TEXT NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
          details TEXT NOT NULL)`,
      `CREATE INDEX audit_queue_workspace ON audit_queue (workspace_id, qid)`,
      ...(engine === 'sqlite'
        ? [
            `CREATE TRIGGER audit_queue_no_update BEFORE UPDATE ON audit_queue BEGIN SELECT RAISE(ABORT, 'audit_queue rows are never updated'); END`,
          ]
        : [
            `CREATE FUNCTION audit_queue_no_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_queue rows are never updated'; END $$`,
            `CREATE TRIGGER audit_queue_no_update BEFORE UPDATE ON audit_queue FOR EACH ROW EXECUTE FUNCTION audit_queue_no_update()`,
          ]),
      // The sequencer's lease: which node integrates this workspace's queue, and until when (ms).
      `ALTER TABLE audit_heads ADD COLUMN sequencer TEXT`,
      `ALTER TABLE audit_heads ADD COLUMN sequencer_until ${big} NOT NULL DEFAULT 0`,
    ])
  },
}
