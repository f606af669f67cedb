import { AuditTamperedError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { AuditLog } from './audit-log.js'
import type { AuditTree, Checkpoint } from './audit-tree.js'

/**
 * Signs a checkpoint of the workspace's log as it is now — after checking that its head, its
 * entries and its tree agree. Every signer goes through here (the API and the scheduled job):
 * a checkpoint is never signed over a tampered log (AuditTamperedError names the problem).
 */
export async function issueCheckedCheckpoint(
  deps: { audit: Pick<AuditLog, 'integrity'>; auditTree: Pick<AuditTree, 'issue'> },
  db: Executor,
  workspaceId: string,
): Promise<Checkpoint> {
  const problem = await deps.audit.integrity(db, workspaceId)
  if (problem) throw new AuditTamperedError(`The audit log was tampered with (${problem.problem}): ${problem.reason}.`)
  return deps.auditTree.issue(db, workspaceId)
}
