import type { ImportEdge } from './import-graph.js'

// The layer rules of docs/architecture.md, as data. A room is a folder (or a file) of src/;
// each room names the rooms it may import. Edges inside a room are always allowed.

/** The rooms, most specific path first. */
export const ROOMS: ReadonlyArray<{ readonly room: string; readonly path: string }> = [
  { room: 'shared', path: 'src/errors.ts' },
  { room: 'shared', path: 'src/version.ts' },
  { room: 'shared', path: 'src/scrub.ts' },
  { room: 'shared', path: 'src/worker-thread.ts' },
  { room: 'api', path: 'src/api/' },
  { room: 'ops', path: 'src/ops/' },
  { room: 'crypto', path: 'src/crypto/' },
  { room: 'migrations', path: 'src/storage/migrations/' },
  { room: 'storage', path: 'src/storage/' },
  { room: 'audit', path: 'src/audit/' },
  { room: 'vault', path: 'src/vault/' },
  { room: 'backup', path: 'src/backup/' },
  { room: 'identity', path: 'src/identity/' },
  { room: 'access', path: 'src/access/' },
  { room: 'webhooks', path: 'src/webhooks/' },
  { room: 'dynamic', path: 'src/dynamic/' },
  { room: 'connections', path: 'src/connections/' },
  { room: 'context', path: 'src/context.ts' },
  { room: 'jobs', path: 'src/jobs/' },
  { room: 'server', path: 'src/server/' },
  { room: 'client', path: 'src/client/' },
  { room: 'cli-host', path: 'src/cli/host/' },
  { room: 'cli', path: 'src/cli/' },
]

/** The room of a source file, or undefined for a path outside every room (a package). */
export function roomOf(file: string): string | undefined {
  return ROOMS.find((r) => (r.path.endsWith('/') ? file.startsWith(r.path) : file === r.path))?.room
}

const CORE = ['ops', 'crypto', 'storage', 'audit', 'vault', 'identity', 'access', 'backup', 'webhooks', 'dynamic', 'connections'] as const

/** Which rooms each room may import (besides itself; `shared` and `api` are open to all). */
export const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  shared: [],
  api: [],
  ops: [],
  crypto: ['ops'],
  // Migrations are frozen history: nothing that changes later, not even the live schema's types.
  migrations: [],
  storage: ['ops', 'crypto', 'migrations'],
  audit: ['ops', 'crypto', 'storage'],
  vault: ['ops', 'crypto', 'storage', 'audit'],
  // Backups read and restore whole databases: the data, the audit log, the data keys.
  backup: ['ops', 'crypto', 'storage', 'audit', 'vault'],
  identity: ['ops', 'crypto', 'storage', 'audit', 'vault'],
  access: ['ops', 'crypto', 'storage', 'audit', 'vault', 'identity'],
  // Outbound webhooks: made from the integrated audit log, secrets under the workspace's integration key.
  webhooks: ['ops', 'crypto', 'storage', 'audit', 'vault'],
  // Dynamic credentials: roles made on a user's database server, admin URLs under the integration key.
  dynamic: ['ops', 'crypto', 'storage', 'audit', 'vault'],
  // OAuth connections: tokens and client secrets under the integration key, used only by the relay.
  connections: ['ops', 'crypto', 'storage', 'audit', 'vault'],
  context: [...CORE],
  // Background jobs run on a built context (the server starts them).
  jobs: [...CORE, 'context'],
  server: [...CORE, 'jobs', 'context'],
  client: [],
  // Client commands talk to the server over HTTP only; offline audit verification is pure code.
  cli: ['client', 'audit', 'crypto'],
  'cli-host': [...CORE, 'jobs', 'context', 'server', 'client', 'cli'],
}

/** Rooms a room reaches only through `import()` (loaded when that code runs). */
export const MAY_IMPORT_LAZILY: Readonly<Record<string, readonly string[]>> = {
  cli: ['cli-host'],
}

/**
 * Rooms that a room must not reach even transitively through static imports: a client
 * command loads no database, key provider or HTTP server code, whatever audit file it uses.
 */
export const MUST_NOT_REACH: Readonly<Record<string, readonly string[]>> = {
  cli: ['ops', 'storage', 'migrations', 'vault', 'backup', 'identity', 'access', 'jobs', 'context', 'server', 'cli-host'],
  client: ['ops', 'storage', 'migrations', 'vault', 'backup', 'identity', 'access', 'jobs', 'context', 'server', 'cli', 'cli-host'],
}

const DRIVERS = ['kysely', 'pg', 'better-sqlite3', 'ioredis']
const HTTP_SERVER = ['fastify', '@fastify/cookie', '@fastify/rate-limit']

/**
 * Packages a room must not load at run time, even transitively through static imports: the
 * CLI starts fast because `coffer run` loads no driver, no HTTP server and no zod.
 */
export const MUST_NOT_LOAD: Readonly<Record<string, readonly string[]>> = {
  cli: [...DRIVERS, ...HTTP_SERVER, 'zod'],
  client: [...DRIVERS, ...HTTP_SERVER, 'zod'],
}

/** The only packages a room may import at all. */
export const ONLY_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  api: ['zod'],
}

/** Packages a room must not import (checked on every import, type-only included). */
export const FORBIDDEN_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  shared: [...DRIVERS, ...HTTP_SERVER, 'commander'],
  api: [...DRIVERS, ...HTTP_SERVER, 'commander'],
  ops: [...DRIVERS, ...HTTP_SERVER, 'commander'],
  crypto: [...DRIVERS, ...HTTP_SERVER, 'commander'],
  migrations: ['pg', 'better-sqlite3', 'ioredis', ...HTTP_SERVER, 'commander'],
  storage: [...HTTP_SERVER, 'commander'],
  audit: [...HTTP_SERVER, 'commander'],
  vault: [...HTTP_SERVER, 'commander'],
  backup: [...HTTP_SERVER, 'commander'],
  identity: [...HTTP_SERVER, 'commander'],
  access: [...HTTP_SERVER, 'commander'],
  jobs: [...HTTP_SERVER, 'commander'],
  context: [...HTTP_SERVER, 'commander'],
  server: ['commander'],
  client: [...DRIVERS, ...HTTP_SERVER, 'commander', 'zod'],
  cli: [...DRIVERS, ...HTTP_SERVER],
  'cli-host': [],
}

/** Rooms whose code builds no SQL: they reach the database through services, or not at all. */
export const NO_SQL: readonly string[] = ['crypto', 'server', 'client', 'cli', 'api']

/** Why an edge breaks a rule, or null when it keeps them. */
export function violation(e: ImportEdge): string | null {
  const a = roomOf(e.from)
  if (!a) return null
  const b = roomOf(e.to)
  if (!b) {
    if (e.to.startsWith('src/') || e.to.startsWith('.')) return `${e.from}:${e.line} imports ${e.to}, which is in no room`
    if (e.typeOnly && e.to === 'zod') return null
    const only = ONLY_PACKAGES[a]
    if (only && !only.includes(e.to)) return `${e.from}:${e.line} (${a}) imports the package ${e.to}, outside ${only.join(', ')}`
    return FORBIDDEN_PACKAGES[a]?.includes(e.to) ? `${e.from}:${e.line} (${a}) imports the package ${e.to}` : null
  }
  if (a === b || b === 'shared' || b === 'api') return null
  if (MAY_IMPORT[a]?.includes(b)) return null
  if (e.dynamic && MAY_IMPORT_LAZILY[a]?.includes(b)) return null
  return `${e.from}:${e.line} (${a}) imports ${e.to} (${b})${e.typeOnly ? ' (type only)' : ''}${e.dynamic ? ' (dynamic)' : ''}`
}
