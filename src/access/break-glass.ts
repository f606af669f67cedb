import type { BreakGlassAccess } from '../api/roles.js'
import type { AuditEvent } from '../audit/audit-log.js'
import { isUuid } from '../crypto/encoding.js'
import { BreakGlassRequiredError } from '../errors.js'
import type { Executor } from '../storage/database.js'
import type { Action, Principal } from './policy.js'

// Break-glass, as Coffer models it (issue 4 §4). An environment can be *sealed* by an Owner
// or Admin. In a sealed environment no person — not even an Owner — reveals or writes a
// value through their role: they need an active grant, which another N Owners/Admins approved
// and which ends by itself. Listing keys and metadata stays as the roles say. Machine
// identities and service tokens are not people and keep the access their scope gives them.
//
// The decision below runs in the one request pipeline, right after the role decision, for
// every route: it is the only place that lets a person see or write a sealed environment's
// plaintext, so no other path can.

/** What a request does with plaintext values: reveal them, write them, or neither. */
export type PlaintextUse = 'read' | 'write'

/**
 * Whether a request of `action` with `query` touches plaintext values. Writes always do;
 * the read actions do when they ask to reveal (`reveal=true`, or the dedicated reveal action),
 * and so does asking for dynamic credentials.
 */
export function plaintextUse(action: Action, query: unknown): PlaintextUse | null {
  if (action === 'secret.write') return 'write'
  if (action === 'secret.reveal') return 'read'
  // Dynamic credentials (a database login role, an AWS STS session) are as good as a revealed value.
  if (action === 'db.credentials') return 'read'
  if (action === 'secret.read') return (query as { reveal?: unknown } | undefined)?.reveal === true ? 'read' : null
  return null
}

/** An active grant through which a request is served. */
export interface ActiveGrant {
  readonly id: string
  readonly access: BreakGlassAccess
  readonly environmentId: string
  readonly expiresAt: string
}

/**
 * The person's active grant on `environmentId` that allows `use` at `now`, if any. A grant is
 * active from its last approval until `expires_at` — compared here, on every request, so it
 * ends by itself with no job — unless revoked.
 */
export async function findActiveGrant(
  db: Executor,
  workspaceId: string,
  environmentId: string,
  userId: string,
  use: PlaintextUse,
  now: Date,
): Promise<ActiveGrant | null> {
  const row = await db
    .selectFrom('breakglass_requests')
    .select(['id', 'access', 'environment_id', 'expires_at'])
    .where('workspace_id', '=', workspaceId)
    .where('environment_id', '=', environmentId)
    .where('requester_id', '=', userId)
    .where('state', '=', 'active')
    .where('expires_at', '>', now.toISOString())
    .where('access', 'in', use === 'write' ? ['read-write'] : ['read', 'read-write'])
    .orderBy('expires_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (!row?.expires_at) return null
  return { id: row.id, access: row.access, environmentId: row.environment_id, expiresAt: row.expires_at }
}

/** The environment the route's `project` and `environment` params name, with its seal. */
async function sealOf(
  db: Executor,
  workspaceId: string,
  projectRef: string,
  environmentRef: string,
): Promise<{ id: string; sealed: boolean } | null> {
  let q = db
    .selectFrom('environments')
    .innerJoin('projects', 'projects.id', 'environments.project_id')
    .select(['environments.id as id', 'environments.sealed as sealed'])
    .where('environments.workspace_id', '=', workspaceId)
    .where('projects.workspace_id', '=', workspaceId)
  q = isUuid(projectRef) ? q.where('projects.id', '=', projectRef) : q.where('projects.slug', '=', projectRef)
  q = isUuid(environmentRef) ? q.where('environments.id', '=', environmentRef) : q.where('environments.slug', '=', environmentRef)
  const row = await q.executeTakeFirst()
  return row ? { id: row.id, sealed: Number(row.sealed) === 1 } : null
}

/**
 * The break-glass decision, applied after the role decision allowed the request. Returns
 * null when the request needs no grant (no plaintext, not a person, not sealed), the grant
 * when it is served through one; throws BreakGlassRequiredError when a person would reveal
 * or write a sealed environment's values without an active grant allowing it.
 */
export async function breakGlassDecision(
  db: Executor,
  principal: Principal,
  action: Action,
  workspaceId: string,
  params: unknown,
  query: unknown,
  now: Date,
  known?: { id: string; sealed: boolean },
): Promise<ActiveGrant | null> {
  const use = plaintextUse(action, query)
  if (!use) return null
  // Machine identities and service tokens are unaffected: the seal is about people.
  if (principal.type !== 'user') return null
  const p = (params ?? {}) as { project?: unknown; environment?: unknown }
  if (typeof p.project !== 'string' || typeof p.environment !== 'string') return null
  // The pipeline has usually resolved the environment already (`known`); else look it up.
  const env = known ?? (await sealOf(db, workspaceId, p.project, p.environment))
  // An unknown environment: the handler answers 404 as it would anyway.
  if (!env?.sealed) return null
  const grant = await findActiveGrant(db, workspaceId, env.id, principal.userId, use, now)
  if (!grant) throw new BreakGlassRequiredError()
  return grant
}

/** The audit entry that records one request served through `grant`. */
export function grantUseEvent(grant: ActiveGrant, action: Action, method: string, url: string): AuditEvent {
  return {
    action: 'breakglass.use',
    target: { type: 'breakglass_grant', id: grant.id },
    details: {
      grant: grant.id,
      access: grant.access,
      environment: grant.environmentId,
      expiresAt: grant.expiresAt,
      routeAction: action,
      method,
      route: url,
    },
  }
}
