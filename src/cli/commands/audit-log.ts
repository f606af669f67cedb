import type { AuditEntry } from '../../client/client.js'
import { ExitError } from '../exit-error.js'
import { Names } from '../names.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & {
  actor?: string
  action?: string
  target?: string
  targetType?: string
  since?: string
  until?: string
  limit?: string
  json?: boolean
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/**
 * A time as the API takes it (ISO 8601, UTC) from `2026-05-01`, `2026-05-01T10:00:00Z` or a
 * span back from now (`30m`, `24h`, `7d`, `2w`).
 */
export function parseTime(flag: string, raw: string, now = Date.now()): string {
  const span = /^(\d+)([smhdw])$/.exec(raw.trim())
  if (span) return new Date(now - Number(span[1]) * UNITS[span[2]!]!).toISOString()
  const t = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? Date.parse(`${raw}T00:00:00Z`) : Date.parse(raw)
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(t))
    throw new ExitError(`${flag} must be a date (2026-05-01), a time (2026-05-01T10:00:00Z) or a span back from now (30m, 24h, 7d).`)
  return new Date(t).toISOString()
}

/**
 * `coffer audit log`: the workspace's audit entries, newest first, narrowed by actor (an
 * email, or an id), action (`secret.reveal` or `secret.*`), target id, and time; people,
 * projects and environments shown by name.
 */
export async function auditLog(opts: Opts): Promise<void> {
  const limit = opts.limit === undefined ? 50 : Number(opts.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 5000) throw new ExitError('--limit must be a whole number from 1 to 5000.')
  const since = opts.since === undefined ? undefined : parseTime('--since', opts.since)
  const until = opts.until === undefined ? undefined : parseTime('--until', opts.until)
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const names = new Names(client, ws)
  let actor = opts.actor
  if (actor?.includes('@')) {
    const wanted = actor.toLowerCase()
    const found = [...(await names.people()).entries()].find(([, email]) => email.toLowerCase() === wanted)
    if (!found) throw new ExitError(`No member of ${ws} has the email ${opts.actor}.`)
    actor = found[0]
  }
  const page = await client.findAuditEntries(ws, {
    order: 'desc',
    limit,
    ...(actor ? { actor } : {}),
    ...(opts.action ? { action: opts.action } : {}),
    ...(opts.target ? { target: opts.target } : {}),
    ...(opts.targetType ? { targetType: opts.targetType } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  })
  if (opts.json) return printJson(page)
  if (!page.entries.length) info('No audit entries match.')
  else
    printTable(
      ['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET'],
      await Promise.all(
        page.entries.map(async (e) => [e.seq, e.time, await names.actor(e.actor.type, e.actor.id), e.action, await targetName(names, e)]),
      ),
    )
  if (page.next !== null) info(`More entries are older than these: raise --limit, or narrow with --since/--action.`)
  if (page.pending?.count)
    info(`${page.pending.count} newer entries are queued for the chain and not listed yet (the sequencer adds them within seconds).`)
}

/** A target by its name where the CLI can tell it: a project's slug, `project/env`, a secret's key, a member's email. */
async function targetName(names: Names, e: AuditEntry): Promise<string> {
  const { type, id } = e.target
  if (type === 'project') return `project ${await names.project(id)}`
  if (type === 'environment') return `environment ${await names.environment(id)}`
  if (type === 'user' || type === 'member') return `${type} ${await names.person(id)}`
  if (type === 'secret') {
    try {
      const key = (JSON.parse(e.details) as { key?: unknown }).key
      if (typeof key === 'string') return `secret ${key}`
    } catch {
      // details are canonical JSON; an id is shown below if not
    }
  }
  return `${type} ${id}`
}
