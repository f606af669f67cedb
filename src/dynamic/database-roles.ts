import { randomBytes, randomUUID } from 'node:crypto'
import type { Client } from 'pg'
import { type Binding, open, seal } from '../crypto/envelope.js'
import { AlreadyExistsError, DatabaseCredentialError, NotFoundError, ValidationError } from '../errors.js'
import { writtenHost } from '../ops/address-policy.js'
import type { OutboundClient } from '../ops/outbound.js'
import { type Executor, loadPg } from '../storage/database.js'
import type { DataKeys } from '../vault/data-keys.js'

// Dynamic PostgreSQL credentials: a db role names a PostgreSQL server (its admin URL sealed
// under the workspace's integration key) and the grants a new login role gets. Asking for
// credentials makes a fresh role — random name and password, `VALID UNTIL` its expiry — and
// returns them once; a lease row remembers the role (never the password) until the dropper
// (dropper.ts) drops it after expiry. The server's address passes the same SSRF guard as
// every outbound request.

export const MAX_TTL_SECONDS = 24 * 3600
const CONNECT_TIMEOUT_MS = 5_000

/** A db role as the API shows it: never the admin URL's credentials. */
export interface DbRoleView {
  readonly id: string
  readonly name: string
  readonly target: string
  readonly creationSql: string
  readonly defaultTtlSeconds: number
  readonly maxTtlSeconds: number
  readonly createdAt: string
}

/** Credentials handed out once. */
export interface DbCredentials {
  readonly leaseId: string
  readonly username: string
  readonly password: string
  readonly host: string
  readonly port: number
  readonly database: string
  /** A postgres:// URL with the credentials. */
  readonly url: string
  readonly expiresAt: string
}

function binding(workspaceId: string, id: string): Binding {
  return { workspaceId, projectId: '', environmentId: '', recordId: id, recordVersion: 1, field: 'db.admin_url' }
}

interface Target {
  readonly hostname: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: string
  readonly ssl: 'disable' | 'require' | 'verify-full'
}

/** Parses and checks an admin URL (postgres:// or postgresql://, a user, a database). */
export function parseAdminUrl(raw: string): Target {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new ValidationError('The admin URL is not a valid URL.', [{ path: 'body.adminUrl', message: 'invalid URL' }])
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')
    throw new ValidationError('The admin URL must be postgres://USER:PASSWORD@HOST:PORT/DATABASE.', [
      { path: 'body.adminUrl', message: 'scheme' },
    ])
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (!u.username || !database)
    throw new ValidationError('The admin URL must name a user and a database.', [
      { path: 'body.adminUrl', message: 'user or database missing' },
    ])
  const mode = u.searchParams.get('sslmode') ?? 'disable'
  if (mode !== 'disable' && mode !== 'require' && mode !== 'verify-full')
    throw new ValidationError('sslmode must be disable, require or verify-full.', [{ path: 'body.adminUrl', message: 'sslmode' }])
  return {
    hostname: u.hostname,
    port: u.port ? Number(u.port) : 5432,
    database,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    ssl: mode,
  }
}

/** Opens the admin connection to the checked, pinned address of the target. */
async function connect(outbound: OutboundClient, t: Target, raw: string, as?: { user: string; password: string }): Promise<Client> {
  const { address } = await outbound.address(t.hostname, writtenHost(raw) ?? t.hostname)
  const pg = loadPg()
  const client = new pg.Client({
    host: address,
    port: t.port,
    database: t.database,
    user: as?.user ?? t.user,
    password: as?.password ?? t.password,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...(t.ssl === 'disable' ? {} : { ssl: { servername: t.hostname, rejectUnauthorized: t.ssl === 'verify-full' } }),
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (err) {
    throw new DatabaseCredentialError('Could not connect to the database server with the admin URL.', { cause: err })
  }
  return client
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

function quoteLiteral(s: string): string {
  return `'${s.replaceAll("'", "''")}'`
}

function checkTemplate(sql: string): void {
  if (!sql.includes('{{name}}'))
    throw new ValidationError(
      'The grant SQL must name the new role as {{name}} (e.g. GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{name}}).',
      [{ path: 'body.creationSql', message: 'no {{name}}' }],
    )
}

function viewOf(r: {
  id: string
  name: string
  target: string
  creation_sql: string
  default_ttl_seconds: number
  max_ttl_seconds: number
  created_at: string
}): DbRoleView {
  return {
    id: r.id,
    name: r.name,
    target: r.target,
    creationSql: r.creation_sql,
    defaultTtlSeconds: Number(r.default_ttl_seconds),
    maxTtlSeconds: Number(r.max_ttl_seconds),
    createdAt: r.created_at,
  }
}

const VIEW = ['id', 'name', 'target', 'creation_sql', 'default_ttl_seconds', 'max_ttl_seconds', 'created_at'] as const

export interface EnvScope {
  readonly workspaceId: string
  readonly projectId: string
  readonly environmentId: string
}

/**
 * Saves a db role after checking that the admin URL connects (through the SSRF guard) and may
 * create roles.
 */
export async function createDbRole(
  db: Executor,
  keys: DataKeys,
  outbound: OutboundClient,
  scope: EnvScope,
  input: {
    name: string
    adminUrl: string
    creationSql: string
    defaultTtlSeconds: number
    maxTtlSeconds: number
    createdBy: string
    now: Date
  },
): Promise<DbRoleView> {
  const t = parseAdminUrl(input.adminUrl)
  checkTemplate(input.creationSql)
  if (input.defaultTtlSeconds > input.maxTtlSeconds)
    throw new ValidationError('The default lifetime may not exceed the longest one.', [
      { path: 'body.defaultTtlSeconds', message: 'above maxTtlSeconds' },
    ])
  const taken = await db
    .selectFrom('db_roles')
    .select('id')
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('name', '=', input.name)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (taken) throw new AlreadyExistsError('database role')
  const client = await connect(outbound, t, input.adminUrl)
  try {
    const r = await client.query<{ ok: boolean }>('SELECT rolcreaterole OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user')
    if (!r.rows[0]?.ok) throw new ValidationError('The admin URL’s user may not create roles (it needs CREATEROLE).')
  } finally {
    await client.end().catch(() => {})
  }
  const id = randomUUID()
  const key = await keys.integrationKey(db, scope.workspaceId)
  const row = {
    id,
    workspace_id: scope.workspaceId,
    project_id: scope.projectId,
    environment_id: scope.environmentId,
    name: input.name,
    admin_url_ct: seal(key, Buffer.from(input.adminUrl), binding(scope.workspaceId, id)),
    target: `${t.hostname}:${t.port}/${t.database}`,
    creation_sql: input.creationSql,
    default_ttl_seconds: input.defaultTtlSeconds,
    max_ttl_seconds: input.maxTtlSeconds,
    created_at: input.now.toISOString(),
    created_by: input.createdBy,
    deleted_at: null,
  }
  await db.insertInto('db_roles').values(row).execute()
  return viewOf(row)
}

export async function listDbRoles(db: Executor, scope: EnvScope): Promise<DbRoleView[]> {
  const rows = await db
    .selectFrom('db_roles')
    .select(VIEW)
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('deleted_at', 'is', null)
    .orderBy('name')
    .execute()
  return rows.map(viewOf)
}

async function findRow(db: Executor, scope: EnvScope, name: string) {
  const r = await db
    .selectFrom('db_roles')
    .selectAll()
    .where('workspace_id', '=', scope.workspaceId)
    .where('environment_id', '=', scope.environmentId)
    .where('name', '=', name)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  if (!r) throw new NotFoundError('database role')
  return r
}

/** Deletes a db role; its live login roles expire now (the dropper drops them, then forgets the role). */
export async function deleteDbRole(db: Executor, scope: EnvScope, name: string, now: Date): Promise<{ role: DbRoleView; expired: number }> {
  const r = await findRow(db, scope, name)
  const at = now.toISOString()
  const u = await db
    .updateTable('db_leases')
    .set({ expires_at: at })
    .where('workspace_id', '=', scope.workspaceId)
    .where('role_id', '=', r.id)
    .where('dropped_at', 'is', null)
    .where('expires_at', '>', at)
    .executeTakeFirst()
  // Kept (deleted) until the dropper has dropped its login roles: it needs the admin URL.
  await db.updateTable('db_roles').set({ deleted_at: at }).where('id', '=', r.id).execute()
  return { role: viewOf(r), expired: Number(u.numUpdatedRows) }
}

/** Opens a db role's admin URL (for the dropper). */
export async function adminUrlOf(db: Executor, keys: DataKeys, workspaceId: string, id: string, ct: Uint8Array): Promise<string> {
  const key = await keys.integrationKey(db, workspaceId)
  return open(key, ct, binding(workspaceId, id)).toString()
}

/**
 * Makes a login role for `name` valid for `ttlSeconds` (the role's default when absent, never
 * beyond its longest), records its lease in `db`, and returns the credentials once.
 */
export async function issueDbCredentials(
  db: Executor,
  keys: DataKeys,
  outbound: OutboundClient,
  scope: EnvScope,
  input: { name: string; ttlSeconds?: number; actor: string; now: Date },
): Promise<{ credentials: DbCredentials; role: DbRoleView }> {
  const r = await findRow(db, scope, input.name)
  const ttl = input.ttlSeconds ?? Number(r.default_ttl_seconds)
  if (ttl > Number(r.max_ttl_seconds))
    throw new ValidationError(`This role's credentials live at most ${r.max_ttl_seconds} s.`, [
      { path: 'body.ttlSeconds', message: 'above the longest lifetime' },
    ])
  const adminUrl = await adminUrlOf(db, keys, scope.workspaceId, r.id, r.admin_url_ct)
  const t = parseAdminUrl(adminUrl)
  const username = `coffer_${randomBytes(8).toString('hex')}`
  const password = randomBytes(24).toString('base64url')
  const expiresAt = new Date(input.now.getTime() + ttl * 1000).toISOString()
  const leaseId = randomUUID()
  // The lease is written in the request's transaction before the role is made. @NOTE should
  // that transaction fail after the server made the role, the role is not leased: it stops
  // accepting its password at VALID UNTIL, but stays until someone drops it.
  await db
    .insertInto('db_leases')
    .values({
      id: leaseId,
      workspace_id: scope.workspaceId,
      role_id: r.id,
      username,
      expires_at: expiresAt,
      dropped_at: null,
      drop_error: null,
      dropper: null,
      dropper_until: null,
      created_at: input.now.toISOString(),
      created_by: input.actor,
    })
    .execute()
  const client = await connect(outbound, t, adminUrl)
  try {
    await client.query('BEGIN')
    await client.query(
      `CREATE ROLE ${quoteIdent(username)} WITH LOGIN PASSWORD ${quoteLiteral(password)} VALID UNTIL ${quoteLiteral(expiresAt)}`,
    )
    await client.query(r.creation_sql.replaceAll('{{name}}', quoteIdent(username)).replaceAll('{{expiration}}', quoteLiteral(expiresAt)))
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw new DatabaseCredentialError('The database refused to create the role (check the grant SQL and the admin user’s rights).', {
      cause: err,
    })
  } finally {
    await client.end().catch(() => {})
  }
  const url = new URL(`postgres://${t.hostname}`)
  url.port = String(t.port)
  url.pathname = `/${encodeURIComponent(t.database)}`
  url.username = username
  url.password = password
  if (t.ssl !== 'disable') url.searchParams.set('sslmode', t.ssl)
  return {
    credentials: { leaseId, username, password, host: t.hostname, port: t.port, database: t.database, url: url.toString(), expiresAt },
    role: viewOf(r),
  }
}

/** Drops one login role on its server: ends its sessions, drops what it owns, drops it. */
export async function dropLoginRole(outbound: OutboundClient, adminUrl: string, username: string): Promise<void> {
  const t = parseAdminUrl(adminUrl)
  const client = await connect(outbound, t, adminUrl)
  try {
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username])
    if (exists.rowCount === 0) return
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [username])
    await client.query(`DROP OWNED BY ${quoteIdent(username)}`)
    await client.query(`DROP ROLE ${quoteIdent(username)}`)
  } catch (err) {
    throw new DatabaseCredentialError('The database refused to drop the role.', { cause: err })
  } finally {
    await client.end().catch(() => {})
  }
}
