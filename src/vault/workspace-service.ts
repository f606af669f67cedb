import type { Executor } from '../storage/database.js'
import { NotFoundError } from '../errors.js'

export interface Workspace {
  id: string
  slug: string
  name: string
  createdAt: string
}

/**
 * Matches the workspace `ref` (id or slug) against the one workspace the caller may see.
 * Another workspace — existing or not — is NotFound, so its existence does not leak.
 */
export function matchWorkspace(allowed: Workspace, ref: string): Workspace {
  if (ref !== allowed.id && ref !== allowed.slug) throw new NotFoundError('workspace')
  return allowed
}

/** The live (not deleted) workspace with id `id`, or undefined. */
export async function findLiveWorkspace(db: Executor, id: string): Promise<Workspace | undefined> {
  const r = await db
    .selectFrom('workspaces')
    .select(['id', 'slug', 'name', 'created_at'])
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst()
  return r && { id: r.id, slug: r.slug, name: r.name, createdAt: r.created_at }
}
