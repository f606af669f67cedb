import { AuditTamperedError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { AuditLog } from './audit-log.js'
import type { AuditTree, Checkpoint } from './audit-tree.js'

/**
 * Signs a checkpoint of the workspace's log as it is now — after checking that its head, its
 * entries and its tree agree, and integrating what waits in the queue (in `tx`, under the
 * head's lock), so the checkpoint covers every entry queued before it. Every signer goes
 * through here (the API and the scheduled job): a checkpoint is never signed over a tampered
 * log (AuditTamperedError names the problem).
 */
export async function issueCheckedCheckpoint(
  deps: { audit: Pick<AuditLog, 'holdHead' | 'integrity' | 'integrateAll'>; auditTree: Pick<AuditTree, 'issue'> },
  tx: Executor,
  workspaceId: string,
): Promise<Checkpoint> {
  // @NOTE the head first: on PostgreSQL each statement below sees the latest commit, and an
  // integration committing between them would look like entries missing from the log.
  await deps.audit.holdHead(tx, workspaceId)
  const problem = await deps.audit.integrity(tx, workspaceId)
  if (problem) throw new AuditTamperedError(`The audit log was tampered with (${problem.problem}): ${problem.reason}.`)
  await deps.audit.integrateAll(tx, workspaceId)
  return deps.auditTree.issue(tx, workspaceId)
}
