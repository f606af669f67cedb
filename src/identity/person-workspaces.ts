import type { Executor } from '../storage/database.js'
import type { Workspace } from '../vault/workspace-service.js'
import type { Role } from './principal.js'

// A person's workspaces, across tenants. Memberships span workspaces, so callers read them in
// the system scope (row-level security on PostgreSQL). Deleted workspaces are never listed.

/** One workspace a person belongs to, and their role there. */
export interface PersonWorkspace extends Workspace {
  readonly role: Role
}

function memberships(db: Executor, userId: string) {
  return db
    .selectFrom('memberships')
    .innerJoin('workspaces', 'workspaces.id', 'memberships.workspace_id')
    .select(['workspaces.id', 'workspaces.slug', 'workspaces.name', 'workspaces.created_at', 'memberships.role'])
    .where('memberships.user_id', '=', userId)
    .where('workspaces.deleted_at', 'is', null)
}

function toPersonWorkspace(r: { id: string; slug: string; name: string; created_at: string; role: string }): PersonWorkspace {
  return { id: r.id, slug: r.slug, name: r.name, createdAt: r.created_at, role: r.role as Role }
}

/** The person's live workspaces, in the order they joined them (`joined`) or by slug. */
export async function listPersonWorkspaces(db: Executor, userId: string, order: 'joined' | 'slug'): Promise<PersonWorkspace[]> {
  const q = memberships(db, userId)
  const rows = await (order === 'joined'
    ? q.orderBy('memberships.created_at').orderBy('workspaces.id')
    : q.orderBy('workspaces.slug')
  ).execute()
  return rows.map(toPersonWorkspace)
}

/**
 * The person's live workspace `ref` (id or slug) — or, with no `ref`, the first they joined.
 * Undefined when they are not a member of it, exactly as when it does not exist. `epoch` is
 * the workspace's authentication epoch, read by the same statement (see principal-cache.ts).
 */
export async function findPersonWorkspace(
  db: Executor,
  userId: string,
  ref: string | undefined,
): Promise<(PersonWorkspace & { epoch: number }) | undefined> {
  const q = memberships(db, userId).leftJoin('auth_epochs as we', 'we.scope', 'workspaces.id').select('we.epoch')
  const r = await (ref === undefined
    ? q.orderBy('memberships.created_at').orderBy('workspaces.id')
    : q.where((eb) => eb.or([eb('workspaces.id', '=', ref), eb('workspaces.slug', '=', ref)]))
  )
    .limit(1)
    .executeTakeFirst()
  return r && { ...toPersonWorkspace(r), epoch: Number(r.epoch ?? 0) }
}

/** How many workspaces other than `workspaceId` the person belongs to (deleted ones included). */
export async function countOtherMemberships(db: Executor, userId: string, workspaceId: string): Promise<number> {
  const rows = await db
    .selectFrom('memberships')
    .select('workspace_id')
    .where('user_id', '=', userId)
    .where('workspace_id', '!=', workspaceId)
    .execute()
  return rows.length
}
