import { readFileSync } from 'node:fs'
import type { DbRoleView } from '../../api/dynamic.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveScope, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

function seconds(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 10 || n > 86_400) throw new ExitError(`${flag} must be a whole number of seconds from 10 to 86400.`)
  return n
}

/**
 * `coffer db create NAME --sql GRANTS [--ttl S] [--max-ttl S]`: the admin URL comes from
 * COFFER_DB_ADMIN_URL or, with --admin-url-stdin, from stdin — never from the command line.
 */
export async function dbCreate(
  name: string,
  opts: Opts & { sql?: string; ttl?: string; maxTtl?: string; adminUrlStdin?: boolean },
): Promise<void> {
  const adminUrl = (opts.adminUrlStdin ? readFileSync(0, 'utf8') : (process.env.COFFER_DB_ADMIN_URL ?? '')).trim()
  if (!adminUrl)
    throw new ExitError('Give the admin URL in COFFER_DB_ADMIN_URL, or on stdin with --admin-url-stdin (never on the command line).')
  if (!opts.sql)
    throw new ExitError(
      'Give the grants with --sql, naming the new role {{name}}: --sql "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{name}}"',
    )
  const ttl = seconds(opts.ttl, '--ttl')
  const maxTtl = seconds(opts.maxTtl, '--max-ttl')
  const client = await connect(opts)
  const role = await client.dbRoleCreate(await resolveScope(client, opts), {
    name,
    adminUrl,
    creationSql: opts.sql,
    ...(ttl !== undefined ? { defaultTtlSeconds: ttl } : {}),
    ...(maxTtl !== undefined ? { maxTtlSeconds: maxTtl } : {}),
  })
  if (opts.json) return printJson(role)
  info(
    `Database role ${role.name} on ${role.target}: credentials live ${role.defaultTtlSeconds} s by default, at most ${role.maxTtlSeconds} s.`,
  )
  info(`Get some: coffer db creds ${role.name}`)
}

/** `coffer db list`. */
export async function dbList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const roles = await client.dbRoleList(await resolveScope(client, opts))
  if (opts.json) return printJson(roles)
  if (!roles.length) return info('No database roles in this environment. Add one: coffer db create NAME --sql "GRANT … TO {{name}}"')
  printTable(
    ['NAME', 'TARGET', 'TTL', 'MAX TTL', 'GRANTS'],
    roles.map((r: DbRoleView) => [
      r.name,
      r.target,
      `${r.defaultTtlSeconds}s`,
      `${r.maxTtlSeconds}s`,
      r.creationSql.length > 60 ? `${r.creationSql.slice(0, 57)}...` : r.creationSql,
    ]),
  )
}

/** `coffer db delete NAME`: its live credentials expire now and are dropped. */
export async function dbDelete(name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const role = await client.dbRoleDelete(await resolveScope(client, opts), name)
  if (opts.json) return printJson(role)
  info(`Deleted database role ${role.name}; credentials made from it are dropped within seconds.`)
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`
}

/** `coffer db creds NAME [--ttl S] [--format env|json]`: a fresh login role, printed once. */
export async function dbCreds(name: string, opts: Opts & { ttl?: string; format?: string }): Promise<void> {
  const format = opts.json ? 'json' : (opts.format ?? 'env')
  if (format !== 'env' && format !== 'json') throw new ExitError('--format must be env or json.')
  const client = await connect(opts)
  const r = await client.dbCredentials(await resolveScope(client, opts), name, seconds(opts.ttl, '--ttl'))
  const c = r.credentials
  if (format === 'json') return printJson(c)
  const vars: Array<[string, string]> = [
    ['DATABASE_URL', c.url],
    ['PGHOST', c.host],
    ['PGPORT', String(c.port)],
    ['PGDATABASE', c.database],
    ['PGUSER', c.username],
    ['PGPASSWORD', c.password],
  ]
  process.stdout.write(`${vars.map(([k, v]) => `export ${k}=${shellQuote(v)}`).join('\n')}\n`)
  info(`Login role ${c.username}, valid until ${c.expiresAt}; then it is dropped.`)
}
