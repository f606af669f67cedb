import { isUuid } from '../crypto/encoding.js'

// The group committer's partitions (a batch holds units of one partition only), and what a
// batch of each takes first. A workspace's writes are serialised across nodes by the
// workspace write lock (src/storage/advisory-lock.ts) — as they were by the audit chain's head
// before the audit log was sequenced — except work that locks only its own rows: a read's
// audit entries, the audit sequencer (it locks the head), and the secret writes that lock the
// secret's row. Anything else (bookkeeping, jobs without a workspace) is system work.

const ROWS = ':rows'
const ENV = ':env:'
const ENV_SHARED = ':env-shared:'

/** The partition of a workspace's serialised writes: its batches take the workspace write lock first. */
export function writePartition(workspaceId: string): string {
  return workspaceId
}

/**
 * The partition of a workspace's work that locks only its own rows: no workspace write lock.
 * A `lane` keeps work that may wait on a row lock (an environment snapshot's build waits for
 * the writers of its environment) out of the batches of work that must not wait behind it (reads' audit entries).
 */
export function rowLockedPartition(workspaceId: string, lane?: string): string {
  return lane ? `${workspaceId}:${lane}${ROWS}` : workspaceId + ROWS
}

/**
 * The partition of the secret writes of one environment: its batches take the environment's
 * write lock (not the workspace's), so writes to one environment meet there — before any row,
 * the environment's data key included — and writes to other environments run beside them.
 *
 * `shared`: for writes that each lock one secret's row (a `PUT` or `DELETE` of one key). Their
 * batches hold the lock shared, so batches of several nodes run at once; each batch runs its
 * units in key order (the committer's `order`), so two batches lock rows in one order, and counts
 * its encryptions at its end (vault/data-keys.ts). Writes of several keys (bulk, promote) hold it
 * exclusively, and a rotation takes it exclusively too: it waits for the shared batches in flight
 * and holds back new ones (advisory locks queue fairly).
 */
export function environmentPartition(workspaceId: string, environmentId: string, shared = false): string {
  return workspaceId + (shared ? ENV_SHARED : ENV) + environmentId
}

/**
 * The workspace a partition's batches run in (null: the system scope), and the write lock they
 * take first: the workspace's, one environment's, or none.
 */
export function partitionOf(partition: string): {
  workspaceId: string | null
  lock: { workspace: string } | { environment: string; shared?: true } | null
} {
  if (partition.endsWith(ROWS)) {
    const id = partition.slice(0, -ROWS.length).split(':')[0] as string
    return isUuid(id) ? { workspaceId: id, lock: null } : { workspaceId: null, lock: null }
  }
  for (const marker of [ENV_SHARED, ENV]) {
    const at = partition.indexOf(marker)
    if (at <= 0) continue
    const id = partition.slice(0, at)
    const env = partition.slice(at + marker.length)
    if (!isUuid(id) || !isUuid(env)) return { workspaceId: null, lock: null }
    return { workspaceId: id, lock: marker === ENV_SHARED ? { environment: env, shared: true } : { environment: env } }
  }
  return isUuid(partition) ? { workspaceId: partition, lock: { workspace: partition } } : { workspaceId: null, lock: null }
}
