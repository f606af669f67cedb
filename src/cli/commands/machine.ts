import { CofferClient, type ScopeInput } from '../../client/client.js'
import type { OidcRuleInput } from '../../api/machine-oidc.js'
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

/** The `--oidc-…` flags of `machine create` and `machine trust`. */
export type OidcFlags = { oidcIssuer?: string; oidcAudience?: string[]; oidcClaim?: string[] }

/** The trust rule the `--oidc-…` flags describe, or undefined when none is given. */
export function oidcRuleFromFlags(opts: OidcFlags): OidcRuleInput | undefined {
  const audiences = opts.oidcAudience ?? []
  const claimFlags = opts.oidcClaim ?? []
  if (!opts.oidcIssuer && !audiences.length && !claimFlags.length) return undefined
  if (!opts.oidcIssuer) throw new ExitError('--oidc-issuer URL is required with --oidc-audience and --oidc-claim.')
  if (!audiences.length) throw new ExitError('--oidc-audience AUD is required: the audience your CI requests its ID token for.')
  if (!claimFlags.length)
    throw new ExitError(
      'At least one --oidc-claim NAME=VALUE is required (e.g. sub=repo:acme/web:ref:refs/heads/main): an issuer signs tokens for every repository.',
    )
  const claims: Record<string, string> = {}
  for (const c of claimFlags) {
    const at = c.indexOf('=')
    if (at <= 0 || at === c.length - 1) throw new ExitError(`--oidc-claim must be NAME=VALUE (got ${JSON.stringify(c)}).`)
    claims[c.slice(0, at)] = c.slice(at + 1)
  }
  return { issuer: opts.oidcIssuer, audiences, claims }
}

/**
 * `coffer machine create NAME --project P [--env E]... --access read|write [--cidr C]... [--ttl S]
 * [--oidc-issuer URL --oidc-audience AUD... --oidc-claim NAME=VALUE...] [--oidc-limit-ttl] [--client-secret]`:
 * prints the client secret once — none by default for an identity that trusts an OIDC issuer.
 */
export async function machineCreate(
  name: string,
  opts: ScopeFlags & OidcFlags & { cidr?: string[]; ttl?: string; oidcLimitTtl?: boolean; clientSecret?: boolean },
): Promise<void> {
  const ttl = opts.ttl === undefined ? undefined : Number(opts.ttl)
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60 || ttl > 3600))
    throw new ExitError('--ttl must be a whole number of seconds between 60 and 3600.')
  const rule = oidcRuleFromFlags(opts)
  if (opts.oidcLimitTtl && !rule) throw new ExitError('--oidc-limit-ttl needs an --oidc-issuer rule.')
  const client = await connect(opts)
  const r = await client.createMachine(await resolveWorkspace(client, { ...opts, env: undefined }), {
    name,
    scopes: [scopeFromFlags(opts)],
    ...(opts.cidr?.length ? { allowedCidrs: opts.cidr } : {}),
    ...(ttl ? { tokenTtlSeconds: ttl } : {}),
    ...(rule ? { oidcRules: [rule], clientSecret: opts.clientSecret === true } : {}),
    ...(opts.oidcLimitTtl ? { oidcLimitTtl: true } : {}),
  })
  if (opts.json) return printJson(r)
  if (r.clientSecret === null) {
    info(`Machine identity ${r.machine.name} created. It has no client secret: it trusts ${rule?.issuer}'s ID tokens.`)
    process.stdout.write(`COFFER_CLIENT_ID=${r.clientId}\n`)
    info('In the pipeline: COFFER_TOKEN=$(coffer machine token --id "$COFFER_CLIENT_ID" --oidc-token "$ID_TOKEN") (docs/ci-federation.md)')
    return
  }
  info(`Machine identity ${r.machine.name} created. Its client secret is shown once; keep it in the machine's own secret store.`)
  process.stdout.write(`COFFER_CLIENT_ID=${r.clientId}\nCOFFER_CLIENT_SECRET=${r.clientSecret}\n`)
  info(`Exchange it for an access token (at most ${r.machine.tokenTtlSeconds} s): COFFER_TOKEN=$(coffer machine token)`)
}

/** `coffer machine trust ID --oidc-issuer URL --oidc-audience AUD... --oidc-claim NAME=VALUE...`: adds one trust rule. */
export async function machineTrust(id: string, opts: Opts & OidcFlags): Promise<void> {
  const rule = oidcRuleFromFlags(opts)
  if (!rule) throw new ExitError('Give the rule: --oidc-issuer URL --oidc-audience AUD --oidc-claim NAME=VALUE')
  const client = await connect(opts)
  const rules = await client.addMachineOidcRules(await resolveWorkspace(client, opts), id, [rule])
  if (opts.json) return printJson(rules)
  info(`The machine identity now trusts ${rules.length} OIDC rule(s).`)
  printRules(rules)
}

/** `coffer machine rules ID`: the OIDC issuers the identity trusts. */
export async function machineRules(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const rules = await client.listMachineOidcRules(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(rules)
  if (!rules.length) return info(`No OIDC rules: coffer machine trust ${id} --oidc-issuer URL --oidc-audience AUD --oidc-claim NAME=VALUE`)
  printRules(rules)
}

/** `coffer machine untrust ID RULE`: removes one trust rule. */
export async function machineUntrust(id: string, rule: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const r = await client.removeMachineOidcRule(await resolveWorkspace(client, opts), id, rule)
  if (opts.json) return printJson(r)
  info(`Rule ${r.id} (${r.issuer}) removed: its tokens no longer exchange.`)
}

function printRules(rules: Awaited<ReturnType<CofferClient['listMachineOidcRules']>>): void {
  printTable(
    ['RULE', 'ISSUER', 'AUDIENCES', 'CLAIMS'],
    rules.map((r) => [
      r.id,
      r.issuer,
      r.audiences.join(','),
      Object.entries(r.claims)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
    ]),
  )
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
 * `coffer machine token`: exchanges credentials for an access token and prints it, for
 * `export COFFER_TOKEN=$(coffer machine token)`. With `--oidc-token JWT` (or COFFER_OIDC_TOKEN)
 * a workload's OIDC ID token; otherwise COFFER_CLIENT_ID and COFFER_CLIENT_SECRET. The
 * identity is `--id`/`--client-id`, or COFFER_MACHINE_ID/COFFER_CLIENT_ID.
 */
export async function machineToken(opts: {
  url?: string
  clientId?: string
  id?: string
  oidcToken?: string
  json?: boolean
}): Promise<void> {
  const clientId = opts.id ?? opts.clientId ?? process.env.COFFER_MACHINE_ID ?? process.env.COFFER_CLIENT_ID
  const idToken = opts.oidcToken ?? process.env.COFFER_OIDC_TOKEN
  const secret = process.env.COFFER_CLIENT_SECRET
  if (!clientId) throw new ExitError('Name the machine identity: --id ID (or COFFER_MACHINE_ID / COFFER_CLIENT_ID).')
  if (!idToken && !secret)
    throw new ExitError(
      'Give an OIDC ID token (--oidc-token JWT or COFFER_OIDC_TOKEN), or set COFFER_CLIENT_SECRET (read from the environment only, never from a flag).',
    )
  const url = opts.url ?? process.env.COFFER_URL ?? DEFAULT_URL
  // @NOTE the exchange needs no token: this client's own token is never sent.
  const client = new CofferClient({ url, token: 'none', userAgent: `coffer-cli/${VERSION}` })
  const r = idToken ? await client.machineOidcToken(clientId, idToken.trim()) : await client.machineToken(clientId, secret!)
  if (opts.json) return printJson(r)
  process.stdout.write(`${r.accessToken}\n`)
}
