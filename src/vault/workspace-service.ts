import type { Executor } from '../storage/database.js'
import { NotFoundError } from '../errors.js'

export interface Workspace {
  id: string
  slug: string
  name: string
  createdAt: string
}

/**
 * The `:workspace` of a URL that names the credential's own workspace, whatever its slug: what
 * a token's holder (`coffer run`) uses instead of asking `GET /v1/me` first. Never a slug or an
 * id (both start with a letter or digit).
 */
export const OWN_WORKSPACE = '-'

/**
 * Matches the workspace `ref` (id, slug, or OWN_WORKSPACE) against the one workspace the caller
 * may see. Another workspace — existing or not — is NotFound, so its existence does not leak.
 */
export function matchWorkspace(allowed: Workspace, ref: string): Workspace {
  if (ref !== allowed.id && ref !== allowed.slug && ref !== OWN_WORKSPACE) throw new NotFoundError('workspace')
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
