import type { ChangeRequest } from '../client/client.js'

// How the CLI describes a change request in one line: by `coffer changes`, and by any write that
// a protected environment turned into one (report.ts, import) — kept apart from the command so
// that `coffer run`'s bundle, which reports such writes too, does not carry `coffer changes`.

/** One line about a change request: its keys, scope and state. */
export function describeChangeRequest(r: ChangeRequest): string {
  const keys = r.changes.map((c) => (c.op === 'set' ? c.key : `${c.key} (${c.op}${c.toVersion ? ` to v${c.toVersion}` : ''})`)).join(', ')
  const tail =
    r.status === 'pending'
      ? ` (${r.approvals}/${r.approvalsRequired} approvals, expires ${r.expiresAt})`
      : r.status === 'stale' && r.outcome
        ? `: nothing was written — ${r.outcome}`
        : ''
  return `Change request ${r.id}: ${r.kind} ${keys} in ${r.project.slug}/${r.environment.slug} — ${r.status}${tail}.`
}

/** What the CLI prints when a write was proposed instead of applied (the environment is protected). */
export function describeProposed(r: ChangeRequest): string {
  return `${describeChangeRequest(r)} ${r.environment.slug} is protected: nothing is written until ${r.approvalsRequired} other Owner(s)/Admin(s) approve: coffer changes approve ${r.id}`
}
