import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveProject, resolveWorkspace, type ScopeOptions } from '../session.js'
import type { CofferClient } from '../../client/client.js'
import { PROJECT_ROLES, ROLES as WORKSPACE_ROLES } from '../../api/roles.js'

type Opts = ScopeOptions & { json?: boolean }

/** The workspace roles as the CLI names them. */
const ROLE_LIST = 'owner, admin, member or auditor'

async function userIdOf(client: CofferClient, ws: string, who: string): Promise<string> {
  if (/^[0-9a-f-]{36}$/i.test(who)) return who
  const m = (await client.listMembers(ws)).find((x) => x.email === who.trim().toLowerCase())
  if (!m) throw new ExitError(`No member ${who} in this workspace.`, { code: 'ERR_NOT_FOUND' })
  return m.userId
}

/** `coffer members list`. */
export async function membersList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const members = await client.listMembers(await resolveWorkspace(client, opts))
  if (opts.json) return printJson(members)
  printTable(
    ['EMAIL', 'ROLE', 'USER ID', 'SINCE'],
    members.map((m) => [m.email, m.role, m.userId, m.createdAt]),
  )
}

/** `coffer members set-role EMAIL ROLE`: owner, admin, member or auditor. */
export async function membersSetRole(who: string, role: string, opts: Opts): Promise<void> {
  if (!(WORKSPACE_ROLES as readonly string[]).includes(role)) throw new ExitError(`The role is ${ROLE_LIST}.`)
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const m = await client.setMemberRole(ws, await userIdOf(client, ws, who), role)
  if (opts.json) return printJson(m)
  info(`${m.email} is now ${m.role}.`)
}

/** `coffer members remove EMAIL`: their roles, grants and tokens of this workspace go with them. */
export async function membersRemove(who: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const r = await client.removeMember(ws, await userIdOf(client, ws, who))
  if (opts.json) return printJson(r)
  info(`${r.member.email} removed; ${r.revokedTokens} token(s) revoked.`)
}

/** `coffer members project-role EMAIL ROLE --project P`: admin, developer or viewer. */
export async function membersProjectRole(who: string, role: string, opts: Opts): Promise<void> {
  if (!(PROJECT_ROLES as readonly string[]).includes(role)) throw new ExitError('The project role is admin, developer or viewer.')
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const m = await client.setProjectMember(ws, resolveProject(opts), await userIdOf(client, ws, who), role)
  if (opts.json) return printJson(m)
  info(`${m.email} is ${m.role} of ${resolveProject(opts)}.`)
}

/** `coffer invite create EMAIL [--role R] [--project P --project-role R]`: prints the accept link (and mails it when mail is set up). */
export async function inviteCreate(
  email: string,
  opts: Opts & { role?: string; projectRole?: string; expiresInDays?: string },
): Promise<void> {
  if (opts.role !== undefined && !(WORKSPACE_ROLES as readonly string[]).includes(opts.role))
    throw new ExitError(`The role is ${ROLE_LIST}.`)
  const client = await connect(opts)
  const days = opts.expiresInDays === undefined ? undefined : Number(opts.expiresInDays)
  const r = await client.createInvitation(await resolveWorkspace(client, opts), {
    email,
    ...(opts.role ? { role: opts.role } : {}),
    ...(opts.project ? { project: opts.project, projectRole: opts.projectRole ?? 'developer' } : {}),
    ...(days ? { expiresInDays: days } : {}),
  })
  if (opts.json) return printJson(r)
  info(
    `Invited ${r.invitation.email} as ${r.invitation.role}${r.invitation.projectRole ? ` (${r.invitation.projectRole} of the project)` : ''}; expires ${r.invitation.expiresAt}.`,
  )
  info(r.mailed ? 'The invitation was mailed. The link, once:' : 'Mail is not set up: send them this link yourself (it works once):')
  process.stdout.write(`${r.acceptUrl}\n`)
  info(`or, with the CLI: ${r.acceptCommand}`)
}

/** `coffer invite list`. */
export async function inviteList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const list = await client.listInvitations(await resolveWorkspace(client, opts))
  if (opts.json) return printJson(list)
  printTable(
    ['ID', 'EMAIL', 'ROLE', 'STATE', 'EXPIRES'],
    list.map((i) => [i.id, i.email, i.role, i.state, i.expiresAt]),
  )
}

/** `coffer invite revoke ID`. */
export async function inviteRevoke(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const i = await client.revokeInvitation(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(i)
  info(`Invitation of ${i.email}: ${i.state}.`)
}

/** `coffer invite accept TOKEN [--token-name N]`: as the signed-in person; prints a token for the new workspace when asked. */
export async function inviteAccept(token: string, opts: Opts & { tokenName?: string }): Promise<void> {
  const client = await connect(opts)
  const r = await client.acceptInvitation(token, opts.tokenName)
  if (opts.json) return printJson(r)
  info(`You are now ${r.role} of ${r.workspace.name} (${r.workspace.slug}).`)
  if (r.token) {
    info('Your token for that workspace, shown once (coffer login --token … to keep it):')
    process.stdout.write(`${r.token}\n`)
  }
}

/** `coffer envs restrict [--off]`: developers list keys only unless granted (project admin). */
export async function envsRestrict(opts: Opts & { off?: boolean }): Promise<void> {
  const client = await connect(opts)
  const { resolveScope } = await import('../session.js')
  const e = await client.setRestricted(await resolveScope(client, opts), !opts.off)
  if (opts.json) return printJson(e)
  info(`${e.slug} is ${e.restricted ? 'restricted: developers list keys only unless granted' : 'unrestricted'}.`)
}

/** `coffer envs grant MEMBER read|write`: lets a project member reveal (and write) a restricted environment. */
export async function envsGrant(who: string, access: string, opts: Opts): Promise<void> {
  if (access !== 'read' && access !== 'write') throw new ExitError('The access is read or write.')
  const client = await connect(opts)
  const { resolveScope } = await import('../session.js')
  const scope = await resolveScope(client, opts)
  const g = await client.grantEnvironment(scope, await userIdOf(client, scope.workspace, who), access)
  if (opts.json) return printJson(g)
  info(`${g.email} may ${g.access === 'write' ? 'reveal and write' : 'reveal'} ${scope.environment}.`)
}
