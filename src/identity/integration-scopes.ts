import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { GrantAccess, IntegrationScope } from './principal.js'
import { ValidationError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import { findEnvironment, findProject } from '../vault/project-service.js'

// What a workspace integration (machine identity or service token) may touch: projects,
// environments of each, read or write. Scopes are given by reference (id or slug) and stored
// by id, so renaming a project or environment keeps them.

/** A scope as the API takes it. */
export interface ScopeInput {
  project: string
  environments: string[] | '*'
  access: GrantAccess
}

/** Resolves scope references inside `workspaceId` (404 for an unknown project or environment). */
export async function resolveScopes(db: Executor, workspaceId: string, input: ScopeInput[]): Promise<IntegrationScope[]> {
  const out: IntegrationScope[] = []
  for (const s of input) {
    const project = await findProject(db, workspaceId, s.project)
    let environments: string[] | '*' = '*'
    if (s.environments !== '*') {
      environments = []
      for (const ref of s.environments) {
        const id = (await findEnvironment(db, project, ref)).id
        if (!environments.includes(id)) environments.push(id)
      }
    }
    if (out.some((o) => o.projectId === project.id))
      throw new ValidationError('Name each project in one scope only.', [{ path: 'body.scopes', message: 'duplicate project' }])
    out.push({ projectId: project.id, environments, access: s.access })
  }
  return out
}

/** Parses stored scopes (JSON). */
export function parseScopes(json: string): IntegrationScope[] {
  return JSON.parse(json) as IntegrationScope[]
}

/** A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address; throws ValidationError otherwise. */
export function checkCidr(cidr: string): string {
  const [addr, bits, ...rest] = cidr.trim().split('/')
  const v4 = isIPv4(addr ?? '')
  const v6 = isIPv6(addr ?? '')
  const n = bits === undefined ? (v4 ? 32 : 128) : /^\d{1,3}$/.test(bits) ? Number(bits) : -1
  if (rest.length || (!v4 && !v6) || n < 0 || n > (v4 ? 32 : 128)) {
    throw new ValidationError(`Not an IP address or CIDR range: ${cidr.slice(0, 64)}`, [
      { path: 'body.allowedCidrs', message: 'invalid CIDR' },
    ])
  }
  return `${addr}/${n}`
}

/** Whether `ip` is inside one of `cidrs` (an empty list allows every address). */
export function ipAllowed(cidrs: readonly string[], ip: string): boolean {
  if (cidrs.length === 0) return true
  const list = new BlockList()
  for (const c of cidrs) {
    const [addr, bits] = c.split('/')
    list.addSubnet(addr!, Number(bits), isIPv4(addr!) ? 'ipv4' : 'ipv6')
  }
  // @NOTE IPv4 clients of a dual-stack socket arrive as ::ffff:a.b.c.d.
  const plain = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip
  if (isIPv4(plain)) return list.check(plain, 'ipv4')
  if (isIPv6(plain)) return list.check(plain, 'ipv6')
  return false
}
