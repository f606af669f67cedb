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
