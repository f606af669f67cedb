import { CofferClient, type ScopeInput } from '../../client/client.js'
import { VERSION } from '../../version.js'
import { ExitError } from '../exit-error.js'
import { Names } from '../names.js'
import { info, printJson, printTable } from '../output.js'
import { connect, DEFAULT_URL, resolveProject, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }
/** Options of commands that take several `--env`. */
export type ScopeFlags = Omit<ScopeOptions, 'env'> & { env?: string | string[]; access?: string; json?: boolean }

/** The scope of `--project`, `--env` (repeatable or comma-separated; `*` or none: every environment) and `--access`. */
export function scopeFromFlags(opts: ScopeFlags): ScopeInput {
  const access = opts.access ?? 'read'
  if (access !== 'read' && access !== 'write') throw new ExitError('--access must be read or write.')
  const raw = (Array.isArray(opts.env) ? opts.env : opts.env === undefined ? [] : [opts.env])
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter(Boolean)
  const environments = raw.length === 0 || raw.includes('*') ? '*' : raw
  return { project: resolveProject({ ...(opts.project ? { project: opts.project } : {}) }), environments, access }
}

/** `coffer machine create NAME --project P [--env E]... --access read|write [--cidr C]... [--ttl S]`: prints the client secret once. */
export async function machineCreate(name: string, opts: ScopeFlags & { cidr?: string[]; ttl?: string }): Promise<void> {
  const ttl = opts.ttl === undefined ? undefined : Number(opts.ttl)
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60 || ttl > 3600))
    throw new ExitError('--ttl must be a whole number of seconds between 60 and 3600.')
  const client = await connect(opts)
  const r = await client.createMachine(await resolveWorkspace(client, { ...opts, env: undefined }), {
    name,
    scopes: [scopeFromFlags(opts)],
    ...(opts.cidr?.length ? { allowedCidrs: opts.cidr } : {}),
    ...(ttl ? { tokenTtlSeconds: ttl } : {}),
  })
  if (opts.json) return printJson(r)
  info(`Machine identity ${r.machine.name} created. Its client secret is shown once; keep it in the machine's own secret store.`)
  process.stdout.write(`COFFER_CLIENT_ID=${r.clientId}\nCOFFER_CLIENT_SECRET=${r.clientSecret}\n`)
  info(`Exchange it for an access token (at most ${r.machine.tokenTtlSeconds} s): COFFER_TOKEN=$(coffer machine token)`)
}

/** `coffer machine list`. */
export async function machineList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const machines = await client.listMachines(ws)
  if (opts.json) return printJson(machines)
  if (!machines.length) return info('No machine identities yet: coffer machine create NAME --project P --env E')
  const names = new Names(client, ws)
  printTable(
    ['CLIENT ID', 'NAME', 'SCOPES', 'CIDRS', 'LAST USED', 'STATUS'],
    await Promise.all(
      machines.map(async (m) => [
        m.clientId,
        m.name,
        await names.scopes(m.scopes),
        m.allowedCidrs.join(',') || 'any',
        m.lastUsedAt ?? 'never',
        m.revokedAt ? 'revoked' : 'active',
      ]),
    ),
  )
}

/** `coffer machine revoke ID`: its secret and live access tokens stop working at once. */
export async function machineRevoke(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const r = await client.revokeMachine(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(r)
  info(`Machine identity ${r.machine.name} revoked${r.liveTokens ? `; ${r.liveTokens} live access token(s) ended with it` : ''}.`)
}

/**
 * `coffer machine token`: exchanges COFFER_CLIENT_ID and COFFER_CLIENT_SECRET (or the flags)
 * for an access token and prints it, for `export COFFER_TOKEN=$(coffer machine token)`.
 */
export async function machineToken(opts: { url?: string; clientId?: string; json?: boolean }): Promise<void> {
  const clientId = opts.clientId ?? process.env.COFFER_CLIENT_ID
  const secret = process.env.COFFER_CLIENT_SECRET
  if (!clientId || !secret)
    throw new ExitError('Set COFFER_CLIENT_ID and COFFER_CLIENT_SECRET (the secret is read from the environment only, never from a flag).')
  const url = opts.url ?? process.env.COFFER_URL ?? DEFAULT_URL
  // @NOTE the exchange needs no token: this client's own token is never sent.
  const r = await new CofferClient({ url, token: 'none', userAgent: `coffer-cli/${VERSION}` }).machineToken(clientId, secret)
  if (opts.json) return printJson(r)
  process.stdout.write(`${r.accessToken}\n`)
}
