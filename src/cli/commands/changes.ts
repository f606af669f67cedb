import type { EnvironmentDiffAnswer } from '../../client/client.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { describeChangeRequest as describe } from '../change-request-text.js'
import { connect, resolveProject, resolveScope, resolveWorkspace, type ScopeOptions } from '../session.js'

// Environment diff and promotion, protected environments and their change requests.

type Opts = ScopeOptions & { json?: boolean }

/** `ENV` or `PROJECT/ENV` (another project of the workspace). */
function placeOf(ref: string | undefined, flag: string, project: string): { project: string; environment: string } {
  if (!ref) throw new ExitError(`${flag} is required: an environment (ENV, or PROJECT/ENV).`)
  const parts = ref.split('/')
  if (parts.length > 2 || parts.some((p) => p === '')) throw new ExitError(`${flag} takes ENV or PROJECT/ENV, not ${JSON.stringify(ref)}.`)
  return parts.length === 2 ? { project: parts[0]!, environment: parts[1]! } : { project, environment: parts[0]! }
}

function label(p: { project: string; environment: string }): string {
  return `${p.project}/${p.environment}`
}

/** `coffer secrets diff --from A --to B [--reveal] [--json]`: missing, extra and different keys (by fingerprint). */
export async function secretsDiff(opts: Opts & { from?: string; to?: string; reveal?: boolean }): Promise<void> {
  const client = await connect(opts)
  const workspace = await resolveWorkspace(client, opts)
  const project = opts.from?.includes('/') && opts.to?.includes('/') ? (opts.project ?? '') : resolveProject(opts)
  const from = placeOf(opts.from, '--from', project)
  const to = placeOf(opts.to, '--to', project)
  const d = await client.diffEnvironments(
    { workspace, project: from.project, environment: from.environment },
    { environment: to.environment, project: to.project },
    { reveal: !!opts.reveal },
  )
  if (opts.json) return printJson(d)
  printDiff(d, label(from), label(to), !!opts.reveal)
}

function printDiff(d: EnvironmentDiffAnswer, from: string, to: string, reveal: boolean): void {
  const rows: Array<Array<string | number>> = []
  const value = (v: string | undefined) => (v === undefined ? '' : JSON.stringify(v))
  const add = (what: string, list: EnvironmentDiffAnswer['missing']) => {
    for (const e of list)
      rows.push([e.key, what, e.fromVersion || '-', e.toVersion || '-', ...(reveal ? [value(e.fromValue), value(e.toValue)] : [])])
  }
  add(`missing in ${to}`, d.missing)
  add(`extra in ${to}`, d.extra)
  add('different', d.different)
  add('not compared', d.uncompared)
  const same = d.same.length
  if (!rows.length) {
    info(`${from} and ${to} hold the same ${same} keys with equal values.`)
    return
  }
  printTable(['KEY', 'DIFFERENCE', `${from} V`, `${to} V`, ...(reveal ? [`${from} VALUE`, `${to} VALUE`] : [])], rows)
  info(
    `${d.missing.length} missing, ${d.extra.length} extra, ${d.different.length} different, ${same} equal` +
      (d.valuesCompared ? '' : ` (values not compared: you may not reveal both environments)`) +
      `. Promote with: coffer secrets promote KEY… --from ${from} --to ${to}`,
  )
}

/** `coffer secrets promote KEY… --from A --to B [--all] [--if-state S]`: one atomic write into B (a change request where B is protected). */
export async function secretsPromote(
  keys: string[],
  opts: Opts & { from?: string; to?: string; all?: boolean; ifState?: string },
): Promise<void> {
  if (opts.all && keys.length) throw new ExitError('Give KEY… or --all, not both.')
  if (!opts.all && !keys.length) throw new ExitError('Give the keys to promote, or --all.')
  const client = await connect(opts)
  const workspace = await resolveWorkspace(client, opts)
  const project = opts.from?.includes('/') && opts.to?.includes('/') ? (opts.project ?? '') : resolveProject(opts)
  const from = placeOf(opts.from, '--from', project)
  const to = placeOf(opts.to, '--to', project)
  const r = await client.promote(
    { workspace, project: to.project, environment: to.environment },
    {
      from: { project: from.project, environment: from.environment },
      ...(opts.all ? { all: true } : { keys }),
      ...(opts.ifState !== undefined ? { ifState: opts.ifState } : {}),
    },
  )
  if (opts.json) return printJson(r)
  const list = (es: Array<{ key: string; newVersion: number | null }>) => es.map((e) => `${e.key} (v${e.newVersion})`).join(', ')
  info(
    `Promoted from ${label(from)} to ${label(to)}: ${r.adds.length} added${r.adds.length ? ` ${list(r.adds)}` : ''}, ` +
      `${r.changes.length} changed${r.changes.length ? ` ${list(r.changes)}` : ''}, ${r.unchanged.length} already equal.`,
  )
}

/** `coffer envs protect --approvals N` (or `--off`): writes to the environment become change requests. */
export async function envsProtect(opts: Opts & { approvals?: string; off?: boolean }): Promise<void> {
  const approvals = opts.off ? 0 : Number(opts.approvals ?? '1')
  if (!Number.isInteger(approvals) || approvals < 0 || approvals > 10)
    throw new ExitError('--approvals must be a whole number from 1 to 10.')
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const e = await client.protectEnvironment(scope, approvals)
  if (opts.json) return printJson(e)
  info(
    approvals > 0
      ? `Protected ${scope.project}/${scope.environment}: each write becomes a change request that ${approvals} other Owner(s)/Admin(s) approve (coffer changes list).`
      : `${scope.project}/${scope.environment} is no longer protected: writes apply at once.`,
  )
}

/** `coffer changes list [--status S]`. */
export async function changesList(opts: Opts & { status?: string }): Promise<void> {
  const statuses = ['pending', 'applied', 'rejected', 'stale', 'expired'] as const
  const status = opts.status as (typeof statuses)[number] | undefined
  if (status !== undefined && !statuses.includes(status)) throw new ExitError(`--status must be one of ${statuses.join(', ')}.`)
  const client = await connect(opts)
  const list = await client.listChangeRequests(await resolveWorkspace(client, opts), status)
  if (opts.json) return printJson(list)
  if (!list.length) return info('No change requests.')
  printTable(
    ['ID', 'STATUS', 'KIND', 'REQUESTER', 'SCOPE', 'KEYS', 'APPROVALS', 'CREATED'],
    list.map((r) => [
      r.id,
      r.status,
      r.kind,
      r.requester.email ?? r.requester.id,
      `${r.project.slug}/${r.environment.slug}`,
      r.changes.map((c) => c.key).join(','),
      `${r.approvals}/${r.approvalsRequired}`,
      r.createdAt,
    ]),
  )
}

/** `coffer changes show ID [--reveal]`: keys and versions; the proposed values only with --reveal (audited). */
export async function changesShow(id: string, opts: Opts & { reveal?: boolean }): Promise<void> {
  const client = await connect(opts)
  const r = await client.getChangeRequest(await resolveWorkspace(client, opts), id, { reveal: !!opts.reveal })
  if (opts.json) return printJson(r)
  info(describe(r))
  printTable(
    ['KEY', 'OP', 'BASE VERSION', ...(opts.reveal ? ['VALUE'] : [])],
    r.changes.map((c) => [
      c.key,
      c.op === 'rollback' ? `rollback to v${c.toVersion}` : c.op,
      c.baseVersion,
      ...(opts.reveal ? [c.value === undefined ? '' : JSON.stringify(c.value)] : []),
    ]),
  )
}

async function decide(id: string, opts: Opts & { comment?: string }, decision: 'approve' | 'reject'): Promise<void> {
  const client = await connect(opts)
  const r = await client.decideChangeRequest(await resolveWorkspace(client, opts), id, decision, opts.comment)
  if (opts.json) printJson(r)
  if (r.status === 'stale') {
    throw new ExitError(
      `Change request ${r.id} is stale: ${r.outcome}. Nothing was written; propose it again (ERR_CHANGE_REQUEST_STALE).`,
      { code: 'ERR_CHANGE_REQUEST_STALE' },
    )
  }
  if (!opts.json) info(describe(r))
}

/** `coffer changes approve ID [--comment TEXT]`: the last approval needed applies it. */
export const changesApprove = (id: string, opts: Opts & { comment?: string }) => decide(id, opts, 'approve')
/** `coffer changes reject ID [--comment TEXT]`: one rejection ends it. */
export const changesReject = (id: string, opts: Opts & { comment?: string }) => decide(id, opts, 'reject')
