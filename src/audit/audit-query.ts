import { sql, type SelectQueryBuilder } from 'kysely'
import type { Executor } from '../storage/database.js'
import type { AuditEntryTable, Database } from '../storage/schema.js'
import { rowToRecord } from './audit-log.js'
import type { ChainedRecord } from './verify.js'

/**
 * Filters that narrow one workspace's audit log (the dashboard's timeline). Every query below
 * is scoped to `workspaceId` first; a filter can only remove entries from that set, never add
 * any. Times compare as stored (ISO 8601, UTC, milliseconds).
 */
export interface AuditFilter {
  /** The actor's id, exactly. */
  actor?: string
  /** One action exactly, or every action under a prefix when it ends in `.*` (`secret.*`). */
  action?: string
  targetType?: string
  /** The target's id, exactly. */
  target?: string
  /** Inclusive. */
  since?: string
  /** Exclusive. */
  until?: string
}

/** A page of the filtered log: after `after` (and before `before`), in chain order or newest first. */
export interface AuditPage {
  after: number
  before?: number | undefined
  limit: number
  order: 'asc' | 'desc'
}

/** Any ISO 8601 time as stored (`toISOString`), so that string order is time order. */
function stored(t: string): string {
  return new Date(t).toISOString()
}

type EntryQuery = SelectQueryBuilder<Database, 'audit_entries', object>

function narrow<Q extends EntryQuery>(q: Q, f: AuditFilter): Q {
  let r = q as EntryQuery
  if (f.actor !== undefined) r = r.where('actor_id', '=', f.actor)
  if (f.action !== undefined) {
    if (f.action.endsWith('.*')) {
      // @NOTE a prefix compare, not LIKE: no wildcard in the value can widen the match.
      const prefix = f.action.slice(0, -1)
      r = r.where(sql<string>`substr(action, 1, ${prefix.length})`, '=', prefix)
    } else r = r.where('action', '=', f.action)
  }
  if (f.targetType !== undefined) r = r.where('target_type', '=', f.targetType)
  if (f.target !== undefined) r = r.where('target_id', '=', f.target)
  if (f.since !== undefined) r = r.where('time', '>=', stored(f.since))
  if (f.until !== undefined) r = r.where('time', '<', stored(f.until))
  return r as Q
}

/**
 * One page of a workspace's entries that match `filter`. In chain order (`asc`) the page
 * holds the first `limit` matches after `after`; newest first (`desc`), the last `limit`
 * matches before `before` (and after `after`).
 */
export async function listAuditEntries(db: Executor, workspaceId: string, filter: AuditFilter, page: AuditPage): Promise<ChainedRecord[]> {
  let q = db.selectFrom('audit_entries').selectAll().where('workspace_id', '=', workspaceId).where('seq', '>', page.after)
  if (page.before !== undefined) q = q.where('seq', '<', page.before)
  const rows = await narrow(q, filter).orderBy('seq', page.order).limit(page.limit).execute()
  return (rows as AuditEntryTable[]).map(rowToRecord)
}

/** The number of a workspace's entries that match `filter`, per UTC day from `since` (inclusive) to `until` (exclusive). */
export async function auditActivityByDay(
  db: Executor,
  workspaceId: string,
  filter: AuditFilter & { since: string; until: string },
): Promise<Map<string, number>> {
  const day = sql<string>`substr(time, 1, 10)`
  const rows = await narrow(db.selectFrom('audit_entries').where('workspace_id', '=', workspaceId), filter)
    .select([day.as('day'), (eb) => eb.fn.countAll<number | string>().as('count')])
    .groupBy(day)
    .execute()
  return new Map(rows.map((r) => [r.day, Number(r.count)]))
}
