import { randomUUID } from 'node:crypto'
import type { AuditLog } from '../audit/audit-log.js'
import type { DataKeys } from '../vault/data-keys.js'
import { AlreadyExistsError } from '../errors.js'
import { addMember, ensureUser, issueToken } from '../identity/identity-service.js'
import type { Executor } from '../storage/database.js'
import { slugify } from '../vault/slug.js'
import type { Workspace } from '../vault/workspace-service.js'

/**
 * Creates a workspace with its fingerprint key and audit chain, its Owner (an existing or
 * new user) and the Owner's first personal access token, all in `tx`. The creation is the
 * first entry of the workspace's audit log.
 */
export async function createWorkspace(
  tx: Executor,
  deps: { dataKeys: DataKeys; audit: AuditLog },
  input: { name: string; slug?: string; ownerEmail: string; tokenName?: string },
  now: Date,
): Promise<{ workspace: Workspace; owner: { id: string; email: string }; token: string }> {
  const slug = input.slug ?? slugify(input.name)
  const taken = await tx.selectFrom('workspaces').select('id').where('slug', '=', slug).executeTakeFirst()
  if (taken) throw new AlreadyExistsError('workspace')
  const id = randomUUID()
  const createdAt = now.toISOString()
  const fp = await deps.dataKeys.newFingerprintKey(id)
  await tx
    .insertInto('workspaces')
    .values({ id, slug, name: input.name, fingerprint_key: fp.wrapped, root_key_id: deps.dataKeys.provider.keyId, created_at: createdAt })
    .execute()
  await deps.audit.initWorkspace(tx, id)
  const owner = await ensureUser(tx, input.ownerEmail, now)
  await addMember(tx, id, owner.id, 'owner', now)
  const { token, info } = await issueToken(tx, { workspaceId: id, userId: owner.id, name: input.tokenName ?? 'bootstrap' }, now)
  const actor = { type: 'system' as const, id: 'bootstrap', ip: '', userAgent: 'coffer' }
  await deps.audit.append(tx, id, actor, 'bootstrap', {
    action: 'workspace.create',
    target: { type: 'workspace', id },
    details: { slug, name: input.name, owner: owner.email },
  })
  await deps.audit.append(tx, id, actor, 'bootstrap', {
    action: 'token.create',
    target: { type: 'token', id: info.id },
    details: { name: info.name, user: owner.id },
  })
  return { workspace: { id, slug, name: input.name, createdAt }, owner: { id: owner.id, email: owner.email }, token }
}
