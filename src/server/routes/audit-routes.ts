import { z } from 'zod'
import {
  auditActivityQuery,
  auditActivityResponse,
  auditEntriesQuery,
  auditEntriesResponse,
  auditRestoresResponse,
  consistencyProofResponse,
  inclusionProofResponse,
  issuedCheckpointResponse,
  latestCheckpointResponse,
  pendingAuditView,
} from '../../api/audit.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { VERIFY_PROBLEMS, type ChainedRecord } from '../../audit/verify.js'
import { NotFoundError } from '../../errors.js'
import { seqOfEntry } from '../../audit/entry-seq.js'
import { auditActivityByDay, listAuditEntries } from '../../audit/audit-query.js'
import { restoreRecordsOf } from '../../backup/restore-records.js'
import { workspaceParams } from '../schemas.js'
import { issueCheckedCheckpoint } from '../../audit/issue-checkpoint.js'

/** An entry as the API shows it: hashes in hex. */
function hexHashes(r: ChainedRecord) {
  return { ...r, prevHash: Buffer.from(r.prevHash).toString('hex'), hash: Buffer.from(r.hash).toString('hex') }
}

const entries = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/entries',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  readsAuditLog: true,
  summary:
    'Audit entries in chain order (or newest first with order=desc), with their hashes, for independent verification; filters by actor, action (or action prefix), target and time narrow the page',
  params: workspaceParams,
  query: auditEntriesQuery,
  response: auditEntriesResponse,
  async handler({ app, db, workspace, query }) {
    const { after, before, limit, order, ...filter } = query
    const plain = order === 'asc' && before === undefined && Object.values(filter).every((v) => v === undefined)
    const rows = plain
      ? await app.audit.list(db, workspace.id, after, limit)
      : await listAuditEntries(db, workspace.id, filter, { after, before, limit, order })
    const next = rows.length === limit ? rows[rows.length - 1]!.seq : null
    // The last page also says what waits in the queue (listed only when no filter narrows the page).
    const queued = next === null ? await app.audit.pending(db, workspace.id) : null
    const pending = queued
      ? { ...queued, ...(plain && queued.count ? { entries: await app.audit.pendingEntries(db, workspace.id, 100) } : {}) }
      : undefined
    return { body: { entries: rows.map(hexHashes), next, ...(pending ? { pending } : {}) } }
  },
})

const DAY = 86_400_000

const activity = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/activity',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  readsAuditLog: true,
  summary: 'How many audit entries (matching the same filters as the entries) were written on each UTC day of a range',
  params: workspaceParams,
  query: auditActivityQuery,
  response: auditActivityResponse,
  async handler({ app, db, workspace, query }) {
    const { days, since: _since, ...filter } = query
    // The range ends at `until` (default: the end of today, UTC) and spans `days` whole days.
    const end = query.until ? Date.parse(query.until) : Math.floor(app.clock().getTime() / DAY) * DAY + DAY
    const lastDay = Math.ceil(end / DAY) * DAY
    const firstDay = lastDay - days * DAY
    const since = new Date(Math.max(firstDay, query.since ? Date.parse(query.since) : firstDay)).toISOString()
    const until = new Date(end).toISOString()
    const counts = await auditActivityByDay(db, workspace.id, { ...filter, since, until })
    const out: Array<{ day: string; count: number }> = []
    for (let t = firstDay; t < lastDay; t += DAY) {
      const day = new Date(t).toISOString().slice(0, 10)
      out.push({ day, count: counts.get(day) ?? 0 })
    }
    return { body: { since, until, days: out } }
  },
})

const verify = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/verify',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  readsAuditLog: true,
  summary:
    'Recompute the workspace chain and the newest checkpoint root on the server, and check the recorded head against the entries and the stored tree; name the first bad entry and the problem (a stable code)',
  params: workspaceParams,
  response: z.object({
    ok: z.boolean(),
    checked: z.number(),
    head: z.string(),
    firstBad: z.object({ seq: z.number(), id: z.string(), reason: z.string(), problem: z.enum(VERIFY_PROBLEMS) }).optional(),
    pending: pendingAuditView.describe('entries queued and not yet integrated: durable, not yet covered by the chain'),
  }),
  async handler({ app, db, workspace }) {
    const cp = await app.auditTree.latest(db, workspace.id)
    const r = await app.audit.verify(
      db,
      workspace.id,
      cp ? { treeSize: cp.treeSize, rootHash: Buffer.from(cp.rootHash, 'base64') } : undefined,
    )
    return { body: { ...r, pending: await app.audit.pending(db, workspace.id) } }
  },
})

const latestCheckpoint = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/checkpoint',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  readsAuditLog: true,
  summary: 'The newest signed checkpoint (tree size, root, Ed25519 signature) of the workspace log',
  params: workspaceParams,
  response: latestCheckpointResponse,
  async handler({ app, db, workspace }) {
    return { body: { checkpoint: await app.auditTree.latest(db, workspace.id), publicKey: app.auditTree.verifierKey } }
  },
})

const issueCheckpoint = defineRoute({
  method: 'POST',
  url: '/v1/workspaces/:workspace/audit/checkpoints',
  tag: 'audit',
  action: 'audit.read',
  mode: 'write',
  status: 201,
  summary: 'Sign a checkpoint of the log as it is now (unless the newest already covers it)',
  params: workspaceParams,
  response: issuedCheckpointResponse,
  async handler({ app, db, workspace }) {
    // @NOTE never sign over a tampered log: the head, the entries and the tree must agree first.
    const c = await issueCheckedCheckpoint(app, db, workspace.id)
    return {
      body: { checkpoint: c, publicKey: app.auditTree.verifierKey },
      audit: {
        action: 'audit.checkpoint',
        target: { type: 'workspace', id: workspace.id },
        details: { treeSize: c.treeSize, rootHash: c.rootHash },
      },
    }
  },
})

const inclusion = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/proofs/inclusion',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  readsAuditLog: true,
  summary: 'RFC 9162 inclusion proof of one entry (by seq or id) in the tree of treeSize entries (default: the newest checkpoint)',
  params: workspaceParams,
  query: z
    .strictObject({
      seq: z.coerce.number().int().min(1).optional(),
      id: z.uuid().optional(),
      treeSize: z.coerce.number().int().min(1).optional(),
    })
    .refine((q) => (q.seq === undefined) !== (q.id === undefined), 'give exactly one of seq and id'),
  response: inclusionProofResponse,
  async handler({ app, db, workspace, query }) {
    let seq = query.seq
    if (seq === undefined) {
      seq = await seqOfEntry(db, workspace.id, query.id!)
      if (seq === undefined) throw new NotFoundError('audit entry')
    }
    const r = await app.auditTree.inclusion(db, workspace.id, seq, query.treeSize)
    return { body: { ...r, entry: hexHashes(r.entry) } }
  },
})

const consistency = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/proofs/consistency',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  readsAuditLog: true,
  summary: 'RFC 9162 consistency proof that the tree of `to` entries extends the tree of `from` entries',
  params: workspaceParams,
  query: z.strictObject({ from: z.coerce.number().int().min(1), to: z.coerce.number().int().min(1).optional() }),
  response: consistencyProofResponse,
  async handler({ app, db, workspace, query }) {
    return { body: await app.auditTree.consistency(db, workspace.id, query.from, query.to) }
  },
})

const restores = defineRoute({
  method: 'GET',
  url: '/v1/workspaces/:workspace/audit/restores',
  tag: 'audit',
  action: 'audit.read',
  mode: 'read',
  summary:
    'Signed restore records: each time the log was put back to an earlier point from a backup (a verifier that saw the newer log accepts the shorter one only with one)',
  params: workspaceParams,
  response: auditRestoresResponse,
  async handler({ db, workspace }) {
    return { body: { restores: await restoreRecordsOf(db, workspace.id) } }
  },
})

export const auditRoutes: AnyRoute[] = [entries, activity, verify, latestCheckpoint, issueCheckpoint, inclusion, consistency, restores]
