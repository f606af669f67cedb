import type { Executor } from '../storage/database.js'

/** The sequence number of audit entry `id` in the workspace's log, or undefined when it has none there. */
export async function seqOfEntry(db: Executor, workspaceId: string, id: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('audit_entries')
    .select('seq')
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row ? Number(row.seq) : undefined
}
