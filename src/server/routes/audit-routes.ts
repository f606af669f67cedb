import { z } from 'zod'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

const entry = z.object({
  workspaceId: z.string(), seq: z.number(), id: z.string(), time: z.string(),
  actor: z.object({ type: z.string(), id: z.string(), ip: z.string(), userAgent: z.string() }),
  requestId: z.string(), action: z.string(), target: z.object({ type: z.string(), id: z.string() }),
  details: z.string().describe('canonical JSON'), prevHash: z.string().describe('hex'), hash: z.string().describe('hex'),
})

const entries = defineRoute({
  method: 'GET', url: '/v1/workspaces/:workspace/audit/entries', tag: 'audit', action: 'audit.read', mode: 'read',
  summary: 'Audit entries in chain order, with their hashes, for independent verification',
  params: workspaceParams,
  query: z.strictObject({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(5000).default(1000) }),
  response: z.object({ entries: z.array(entry), next: z.number().nullable() }),
  async handler({ app, db, workspace, query }) {
    const rows = await app.audit.list(db, workspace.id, query.after, query.limit)
    const next = rows.length === query.limit ? rows[rows.length - 1]!.seq : null
    return { body: { entries: rows.map((r) => ({ ...r, prevHash: Buffer.from(r.prevHash).toString('hex'), hash: Buffer.from(r.hash).toString('hex') })), next } }
  },
})

const verify = defineRoute({
  method: 'GET', url: '/v1/workspaces/:workspace/audit/verify', tag: 'audit', action: 'audit.read', mode: 'read',
  summary: 'Recompute the workspace chain on the server and name the first bad entry',
  params: workspaceParams,
  response: z.object({ ok: z.boolean(), checked: z.number(), head: z.string(), firstBad: z.object({ seq: z.number(), id: z.string(), reason: z.string() }).optional() }),
  async handler({ app, db, workspace }) {
    return { body: await app.audit.verify(db, workspace.id) }
  },
})

export const auditRoutes: AnyRoute[] = [entries, verify]
