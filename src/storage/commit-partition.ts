import { isUuid } from '../crypto/encoding.js'

// The group committer's partitions (a batch holds units of one partition only), and what a
// batch of each takes first. A workspace's writes are serialised across nodes by the
// workspace write lock (src/storage/advisory-lock.ts) — as they were by the audit chain's head
// before the audit log was sequenced — except work that locks only its own rows: a read's
// audit entries, the audit sequencer (it locks the head), and the secret writes that lock the
// secret's row. Anything else (bookkeeping, jobs without a workspace) is system work.

const ROWS = ':rows'

/** The partition of a workspace's serialised writes: its batches take the workspace write lock first. */
export function writePartition(workspaceId: string): string {
  return workspaceId
}

/** The partition of a workspace's work that locks only its own rows: no workspace write lock. */
export function rowLockedPartition(workspaceId: string): string {
  return workspaceId + ROWS
}

/** The workspace a partition's batches run in (null: the system scope), and whether they take its write lock. */
export function partitionOf(partition: string): { workspaceId: string | null; serialised: boolean } {
  const rows = partition.endsWith(ROWS)
  const id = rows ? partition.slice(0, -ROWS.length) : partition
  if (!isUuid(id)) return { workspaceId: null, serialised: false }
  return { workspaceId: id, serialised: !rows }
}
