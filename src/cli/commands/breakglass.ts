import type { BreakGlassRequest } from '../../client/client.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveScope, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

function describe(r: BreakGlassRequest): string {
  const when =
    r.status === 'active' ? ` until ${r.expiresAt}` : r.status === 'pending' ? ` (${r.approvals}/${r.approvalsRequired} approvals)` : ''
  return `Break-glass request ${r.id}: ${r.access} on ${r.project.slug}/${r.environment.slug} for ${r.durationMinutes} min — ${r.status}${when}.`
}

/** `coffer breakglass request --project P --env E --reason TEXT [--access read|read-write] [--minutes N]`. */
export async function breakglassRequest(opts: Opts & { reason?: string; access?: string; minutes?: string }): Promise<void> {
  const access = opts.access ?? 'read'
  if (access !== 'read' && access !== 'read-write') throw new ExitError('--access must be read or read-write.')
  const minutes = Number(opts.minutes ?? '30')
  if (!Number.isInteger(minutes) || minutes < 1) throw new ExitError('--minutes must be a whole number of minutes.')
  const reason = opts.reason?.trim()
  if (!reason) throw new ExitError('--reason is required: say why you need access (it is audited and shown to approvers).')
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const r = await client.breakGlassRequest(scope.workspace, {
    project: scope.project,
    environment: scope.environment,
    access,
    reason,
    durationMinutes: minutes,
  })
  if (opts.json) return printJson(r)
  process.stdout.write(`${r.id}\n`)
  info(`${describe(r)} It needs ${r.approvalsRequired} approvals from other Owners or Admins: coffer breakglass approve ${r.id}`)
}

/** `coffer breakglass list [--status S]`: requests and grants, newest first. */
export async function breakglassList(opts: Opts & { status?: string }): Promise<void> {
  const statuses = ['pending', 'active', 'expired', 'denied', 'revoked'] as const
  const status = opts.status as (typeof statuses)[number] | undefined
  if (status !== undefined && !statuses.includes(status)) throw new ExitError(`--status must be one of ${statuses.join(', ')}.`)
  const client = await connect(opts)
  const list = await client.breakGlassList(await resolveWorkspace(client, opts), status)
  if (opts.json) return printJson(list)
  if (!list.length) return info('No break-glass requests.')
  printTable(
    ['ID', 'STATUS', 'REQUESTER', 'SCOPE', 'ACCESS', 'MINUTES', 'APPROVALS', 'EXPIRES', 'REASON'],
    list.map((r) => [
      r.id,
      r.status,
      r.requester.email,
      `${r.project.slug}/${r.environment.slug}`,
      r.access,
      r.durationMinutes,
      `${r.approvals}/${r.approvalsRequired}`,
      r.expiresAt ?? '-',
      r.reason.length > 60 ? `${r.reason.slice(0, 57)}...` : r.reason,
    ]),
  )
}

async function act(id: string, opts: Opts & { comment?: string }, what: 'approve' | 'deny' | 'revoke'): Promise<void> {
  const client = await connect(opts)
  const r = await client.breakGlassAct(await resolveWorkspace(client, opts), id, what, opts.comment)
  if (opts.json) return printJson(r)
  info(describe(r))
}

/** `coffer breakglass approve ID [--comment TEXT]`. */
export const breakglassApprove = (id: string, opts: Opts & { comment?: string }) => act(id, opts, 'approve')
/** `coffer breakglass deny ID [--comment TEXT]`: one denial ends the request. */
export const breakglassDeny = (id: string, opts: Opts & { comment?: string }) => act(id, opts, 'deny')
/** `coffer breakglass revoke ID`: the requester or an Owner ends a request or grant now. */
export const breakglassRevoke = (id: string, opts: Opts) => act(id, opts, 'revoke')

async function seal(opts: Opts, sealed: boolean): Promise<void> {
  const client = await connect(opts)
  const scope = await resolveScope(client, opts)
  const e = await client.sealEnvironment(scope, sealed)
  if (opts.json) return printJson(e)
  info(
    sealed
      ? `Sealed ${scope.project}/${scope.environment}: people now reveal or write its values only through a break-glass grant.`
      : `Unsealed ${scope.project}/${scope.environment}: roles decide again.`,
  )
}

/** `coffer envs seal --project P --env E` (Owner/Admin). */
export const envsSeal = (opts: Opts) => seal(opts, true)
/** `coffer envs unseal --project P --env E` (Owner/Admin). */
export const envsUnseal = (opts: Opts) => seal(opts, false)
