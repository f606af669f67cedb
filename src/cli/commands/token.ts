import { ExitError } from '../exit-error.js'
import { Names } from '../names.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

/** `coffer token create NAME [--expires-in-days N]`: a new personal token, printed once. */
export async function tokenCreate(name: string, opts: Opts & { expiresInDays?: string }): Promise<void> {
  const days = opts.expiresInDays === undefined ? undefined : Number(opts.expiresInDays)
  if (days !== undefined && (!Number.isInteger(days) || days < 1)) throw new ExitError('--expires-in-days must be a whole number of days.')
  const client = await connect(opts)
  const r = await client.createToken(await resolveWorkspace(client, opts), { name, ...(days ? { expiresInDays: days } : {}) })
  if (opts.json) return printJson(r)
  info(`Token ${r.info.name} (${r.info.id}) created${r.info.expiresAt ? `, expires ${r.info.expiresAt}` : ''}. It is shown once:`)
  process.stdout.write(`${r.token}\n`)
}

/** `coffer token list`: your tokens (never the tokens themselves). */
export async function tokenList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const tokens = await client.listTokens(await resolveWorkspace(client, opts))
  if (opts.json) return printJson(tokens)
  printTable(
    ['ID', 'NAME', 'TOKEN', 'CREATED', 'EXPIRES', 'STATUS'],
    tokens.map((t) => [t.id, t.name, t.display, t.createdAt, t.expiresAt ?? 'never', t.revokedAt ? 'revoked' : 'active']),
  )
}

/** `coffer token revoke ID`. */
export async function tokenRevoke(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const t = await client.revokeToken(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(t)
  info(`Token ${t.name} (${t.id}) revoked.`)
}

/** `coffer token create-service NAME --project P [--env E]... --access read|write [--expires-in-days N]`: a service token, printed once. */
export async function serviceTokenCreate(
  name: string,
  opts: import('./machine.js').ScopeFlags & { expiresInDays?: string },
): Promise<void> {
  const days = opts.expiresInDays === undefined ? undefined : Number(opts.expiresInDays)
  if (days !== undefined && (!Number.isInteger(days) || days < 1)) throw new ExitError('--expires-in-days must be a whole number of days.')
  const { scopeFromFlags } = await import('./machine.js')
  const client = await connect(opts)
  const r = await client.createServiceToken(await resolveWorkspace(client, { ...opts, env: undefined }), {
    name,
    scopes: [scopeFromFlags(opts)],
    ...(days ? { expiresInDays: days } : {}),
  })
  if (opts.json) return printJson(r)
  info(
    `Service token ${r.info.name} (${r.info.id}) created${r.info.expiresAt ? `, expires ${r.info.expiresAt}` : ''}. It is shown once (use it as COFFER_TOKEN):`,
  )
  process.stdout.write(`${r.token}\n`)
}

/** `coffer token list-services`. */
export async function serviceTokenList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const tokens = await client.listServiceTokens(ws)
  if (opts.json) return printJson(tokens)
  const names = new Names(client, ws)
  printTable(
    ['ID', 'NAME', 'TOKEN', 'SCOPES', 'EXPIRES', 'LAST USED', 'STATUS'],
    await Promise.all(
      tokens.map(async (t) => [
        t.id,
        t.name,
        t.display,
        await names.scopes(t.scopes),
        t.expiresAt ?? 'never',
        t.lastUsedAt ?? 'never',
        t.revokedAt ? 'revoked' : 'active',
      ]),
    ),
  )
}

/** `coffer token revoke-service ID`. */
export async function serviceTokenRevoke(id: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const t = await client.revokeServiceToken(await resolveWorkspace(client, opts), id)
  if (opts.json) return printJson(t)
  info(`Service token ${t.name} (${t.id}) revoked.`)
}
