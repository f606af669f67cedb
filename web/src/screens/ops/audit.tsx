import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/react-query'
import { useVirtualizer } from '@tanstack/react-virtual'
import { type FormEvent, useMemo, useRef, useState } from 'react'
import { type AuditEntry, type AuditFilter, opsApi, opsKeys } from '../../api.js'
import { ErrorNote, isNotFound, Loading, messageOf } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { NotFound } from '../not-found.js'
import { dateTime, downloadText, OpsHeader, useWorkspaceParam } from './common.js'

const PAGE = 200
const ROW_HEIGHT = 40
const CHART_DAYS = 30
const ACTIONS = [
  'secret.*',
  'secret.reveal',
  'secrets.*',
  'project.*',
  'environment.*',
  'key.*',
  'breakglass.*',
  'member.*',
  'invitation.*',
  'token.*',
  'auth.*',
  'audit.*',
  'workspace.*',
]

export function AuditRoute() {
  return <AuditScreen workspace={useWorkspaceParam()} />
}

/** The filters as typed in the form (dates as YYYY-MM-DD, `until` inclusive). */
interface FormFilter {
  actor: string
  action: string
  targetType: string
  target: string
  from: string
  to: string
}
const NO_FILTER: FormFilter = { actor: '', action: '', targetType: '', target: '', from: '', to: '' }

/** The API's filter for a form's: whole UTC days, the last one included. */
function apiFilter(f: FormFilter): AuditFilter {
  const out: AuditFilter = {}
  if (f.actor) out.actor = f.actor
  if (f.action.trim()) out.action = f.action.trim()
  if (f.targetType.trim()) out.targetType = f.targetType.trim()
  if (f.target.trim()) out.target = f.target.trim()
  if (f.from) out.since = `${f.from}T00:00:00Z`
  if (f.to) out.until = new Date(Date.parse(`${f.to}T00:00:00Z`) + 86_400_000).toISOString()
  return out
}

/** The workspace's audit log: integrity, activity per day, a filtered timeline, entry detail, proof and export downloads. */
export function AuditScreen({ workspace }: { workspace: string }) {
  const [form, setForm] = useState<FormFilter>(NO_FILTER)
  const [applied, setApplied] = useState<AuditFilter>({})
  const [selected, setSelected] = useState<AuditEntry | null>(null)
  // Fresh on every visit: someone who joined a moment ago is named in the timeline and the actor filter.
  const members = useQuery({ queryKey: opsKeys.members(workspace), queryFn: () => opsApi.members(workspace), staleTime: 0 })
  const who = useMemo(() => new Map((members.data?.members ?? []).map((m) => [m.userId, m.email])), [members.data])
  const timeline = useInfiniteQuery({
    queryKey: opsKeys.auditEntries(workspace, applied),
    queryFn: ({ pageParam }) =>
      opsApi.auditEntries(workspace, { ...applied, order: 'desc', limit: PAGE, ...(pageParam ? { before: pageParam } : {}) }),
    initialPageParam: 0,
    getNextPageParam: (last) => last.next ?? undefined,
  })
  if (timeline.isError && isNotFound(timeline.error)) return <NotFound />
  const entries = timeline.data?.pages.flatMap((p) => p.entries) ?? []

  function apply(e: FormEvent) {
    e.preventDefault()
    setApplied(apiFilter(form))
  }
  function clear() {
    setForm(NO_FILTER)
    setApplied({})
  }
  const filtered = Object.keys(applied).length > 0

  return (
    <>
      <OpsHeader
        title="Audit log"
        subtitle="Every change, reveal, sign-in and administrative action, hash-chained and covered by signed checkpoints. Values never appear: before and after are keyed fingerprints."
      />
      <Integrity workspace={workspace} />
      <Activity workspace={workspace} filter={applied} filtered={filtered} />
      <form className="panel audit-filters" onSubmit={apply} aria-label="Filter the audit log">
        <label>
          <span>Actor</span>
          <select value={form.actor} onChange={(e) => setForm({ ...form, actor: e.target.value })}>
            <option value="">Anyone</option>
            {(members.data?.members ?? []).map((m) => (
              <option key={m.userId} value={m.userId}>
                {m.email}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Action</span>
          <input
            list="audit-actions"
            value={form.action}
            placeholder="secret.*"
            pattern="[a-z0-9_\-]+(\.[a-z0-9_\-]+)*(\.\*)?"
            title="an action such as secret.reveal, or a prefix such as secret.*"
            onChange={(e) => setForm({ ...form, action: e.target.value })}
          />
          <datalist id="audit-actions">
            {ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
        </label>
        <label>
          <span>Target type</span>
          <input
            value={form.targetType}
            placeholder="secret, project…"
            onChange={(e) => setForm({ ...form, targetType: e.target.value })}
          />
        </label>
        <label>
          <span>Target id</span>
          <input value={form.target} onChange={(e) => setForm({ ...form, target: e.target.value })} />
        </label>
        <label>
          <span>From</span>
          <input type="date" value={form.from} onChange={(e) => setForm({ ...form, from: e.target.value })} />
        </label>
        <label>
          <span>To</span>
          <input type="date" value={form.to} onChange={(e) => setForm({ ...form, to: e.target.value })} />
        </label>
        <div className="audit-filter-actions">
          <button type="submit" className="primary">
            Apply
          </button>
          <button type="button" onClick={clear} disabled={!filtered && form === NO_FILTER}>
            Clear
          </button>
        </div>
      </form>
      <ErrorNote error={timeline.error} />
      {timeline.isPending ? <Loading label="Loading the audit log…" /> : <Timeline entries={entries} who={who} onOpen={setSelected} />}
      <div className="toolbar audit-more">
        <span className="count" aria-live="polite">
          {entries.length === 1 ? '1 entry' : `${entries.length} entries`} shown{filtered ? ' (filtered)' : ''}
        </span>
        {timeline.hasNextPage && (
          <button type="button" onClick={() => void timeline.fetchNextPage()} disabled={timeline.isFetchingNextPage}>
            Load older entries
          </button>
        )}
      </div>
      {selected && <EntryDialog workspace={workspace} entry={selected} who={who} onClose={() => setSelected(null)} />}
    </>
  )
}

/** The integrity badge: the server's verification of the chain and the newest signed checkpoint. */
function Integrity({ workspace }: { workspace: string }) {
  const qc = useQueryClient()
  const verify = useQuery({ queryKey: opsKeys.auditVerify(workspace), queryFn: () => opsApi.auditVerify(workspace), staleTime: 0 })
  const checkpoint = useQuery({ queryKey: opsKeys.auditCheckpoint(workspace), queryFn: () => opsApi.auditCheckpoint(workspace) })
  const [exporting, setExporting] = useState<{ busy: boolean; error?: unknown; done?: string }>({ busy: false })
  const cp = checkpoint.data?.checkpoint
  const v = verify.data

  async function exportLog() {
    setExporting({ busy: true })
    try {
      const file = await buildExport(workspace)
      downloadText(file.name, file.text)
      setExporting({ busy: false, done: `Exported ${file.entries} entries with a checkpoint of ${file.treeSize}.` })
      await qc.invalidateQueries({ queryKey: opsKeys.audit(workspace) })
    } catch (error) {
      setExporting({ busy: false, error })
    }
  }

  return (
    <section className="panel integrity" aria-labelledby="integrity-title">
      <div className="integrity-main">
        <h2 id="integrity-title" className="visually-hidden">
          Integrity
        </h2>
        {verify.isPending || verify.isFetching ? (
          <span className="badge">Verifying…</span>
        ) : v?.ok ? (
          <span className="badge ok" role="status">
            ✓ Chain verified
          </span>
        ) : v ? (
          <span className="badge danger" role="status">
            ✗ Tampering detected
          </span>
        ) : (
          <span className="badge warn">Not verified</span>
        )}
        <span className="integrity-facts">
          {v && (
            <>
              {v.checked.toLocaleString('en')} entries checked on the server
              {verify.dataUpdatedAt > 0 && <span className="muted"> at {dateTime(new Date(verify.dataUpdatedAt).toISOString())}</span>}
            </>
          )}
        </span>
        <span className="actions">
          <button
            type="button"
            onClick={() => {
              void verify.refetch()
              void checkpoint.refetch()
            }}
            disabled={verify.isFetching}
          >
            Verify now
          </button>
          <button type="button" onClick={() => void exportLog()} disabled={exporting.busy}>
            {exporting.busy ? 'Exporting…' : 'Download export'}
          </button>
        </span>
      </div>
      {v?.firstBad && (
        <p className="note error">
          Entry #{v.firstBad.seq}: {v.firstBad.reason} <span className="code">{v.firstBad.problem}</span>
        </p>
      )}
      <ErrorNote error={verify.error} />
      <dl className="integrity-checkpoint">
        <dt>Newest checkpoint</dt>
        <dd>
          {cp ? (
            <>
              {cp.treeSize.toLocaleString('en')} entries, signed {dateTime(cp.createdAt)}
            </>
          ) : checkpoint.isPending ? (
            '…'
          ) : (
            'none yet'
          )}
        </dd>
        {cp && (
          <>
            <dt>Root</dt>
            <dd>
              <code className="hash">{cp.rootHash}</code>
            </dd>
          </>
        )}
        {checkpoint.data && (
          <>
            <dt>Signing key</dt>
            <dd>
              <code className="hash">{checkpoint.data.publicKey}</code>
            </dd>
          </>
        )}
      </dl>
      {exporting.done && <p className="note ok">{exporting.done}</p>}
      <ErrorNote error={exporting.error} />
    </section>
  )
}

/**
 * The export `coffer audit export` writes (coffer-audit-export/v1): a fresh signed checkpoint,
 * the public key and every entry, one per line, so `coffer audit verify --file` checks it.
 */
async function buildExport(workspace: string): Promise<{ name: string; text: string; entries: number; treeSize: number }> {
  const { checkpoint, publicKey } = await opsApi.issueCheckpoint(workspace)
  const entries: AuditEntry[] = []
  for (let after = 0; ; ) {
    const page = await opsApi.auditEntries(workspace, { after, limit: 5000 })
    entries.push(...page.entries)
    if (page.next === null) break
    after = page.next
  }
  const first = entries[0]
  const head = JSON.stringify({
    format: 'coffer-audit-export/v1',
    workspace: { id: first?.workspaceId ?? '', slug: workspace },
    exportedAt: new Date(performance.timeOrigin + performance.now()).toISOString(),
    publicKey,
    checkpoint: { treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, note: checkpoint.note },
    entries: [],
  })
  const lines = entries.map((e, i) => JSON.stringify(e) + (i < entries.length - 1 ? ',' : ''))
  const text = `${head.slice(0, -2)}\n${lines.length ? `${lines.join('\n')}\n` : ''}]}\n`
  return { name: `audit-${workspace}-${checkpoint.treeSize}.json`, text, entries: entries.length, treeSize: checkpoint.treeSize }
}

/** Entries per day over the last 30 days, as SVG bars (React elements), with the same filters as the timeline. */
function Activity({ workspace, filter, filtered }: { workspace: string; filter: AuditFilter; filtered: boolean }) {
  const { since: _s, until: _u, ...rest } = filter
  const activity = useQuery({
    queryKey: opsKeys.auditActivity(workspace, rest),
    queryFn: () => opsApi.auditActivity(workspace, { ...rest, days: CHART_DAYS }),
  })
  const days = activity.data?.days ?? []
  const max = Math.max(1, ...days.map((d) => d.count))
  const total = days.reduce((n, d) => n + d.count, 0)
  const W = 720
  const H = 96
  const gap = 3
  const bar = days.length ? (W - gap * (days.length - 1)) / days.length : 0
  const label = `Audit entries per day over the last ${CHART_DAYS} days${filtered ? ' (filtered by actor, action or target)' : ''}: ${total} in all, at most ${max === 1 && total === 0 ? 0 : max} in one day.`
  return (
    <section className="panel activity" aria-labelledby="activity-title">
      <div className="activity-head">
        <h2 id="activity-title">Activity</h2>
        <span className="muted">
          {total.toLocaleString('en')} entries in the last {CHART_DAYS} days{filtered ? ' · filtered' : ''}
        </span>
      </div>
      <ErrorNote error={activity.error} />
      <svg className="activity-chart" viewBox={`0 0 ${W} ${H + 16}`} role="img" aria-label={label} preserveAspectRatio="none">
        {days.map((d, i) => {
          const h = d.count === 0 ? 1 : Math.max(3, Math.round((d.count / max) * H))
          return (
            <g key={d.day}>
              <title>{`${d.day}: ${d.count} ${d.count === 1 ? 'entry' : 'entries'}`}</title>
              <rect x={i * (bar + gap)} y={H - h} width={bar} height={h} rx={2} className={d.count === 0 ? 'bar empty' : 'bar'} />
            </g>
          )
        })}
        {days.length > 0 && (
          <>
            <text x={0} y={H + 13} className="axis">
              {days[0]!.day}
            </text>
            <text x={W} y={H + 13} className="axis" textAnchor="end">
              {days[days.length - 1]!.day}
            </text>
          </>
        )}
      </svg>
    </section>
  )
}

function actorLabel(e: AuditEntry, who: Map<string, string>): string {
  return who.get(e.actor.id) ?? (e.actor.type === 'system' ? `system (${e.actor.id})` : `${e.actor.type} ${e.actor.id.slice(0, 8)}`)
}

function parseDetails(details: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(details) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** A line of the entry's scalar details: key=STRIPE_KEY · version=2. */
function summary(details: string): string {
  const d = parseDetails(details)
  if (!d) return ''
  return Object.entries(d)
    .filter(([k, v]) => k !== 'before' && k !== 'after' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
    .slice(0, 4)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' · ')
}

/** The timeline, newest first, virtualised: only the rows in view are in the page. */
function Timeline({ entries, who, onOpen }: { entries: AuditEntry[]; who: Map<string, string>; onOpen: (e: AuditEntry) => void }) {
  const scroller = useRef<HTMLDivElement>(null)
  const virtualizer = useVirtualizer({
    count: entries.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    getItemKey: (i) => entries[i]!.id,
  })
  if (entries.length === 0)
    return (
      <div className="panel empty">
        <p>No entry matches.</p>
      </div>
    )
  return (
    <div className="audit-scroll" ref={scroller}>
      <div className="audit-row audit-head" aria-hidden="true">
        <span>Time (UTC)</span>
        <span>Actor</span>
        <span>Action</span>
        <span>Target</span>
        <span>Details</span>
      </div>
      <ul className="audit-list" aria-label="Audit entries, newest first" style={{ height: virtualizer.getTotalSize() }}>
        {virtualizer.getVirtualItems().map((v) => {
          const e = entries[v.index]!
          return (
            <li key={v.key} className="audit-item" style={{ transform: `translateY(${v.start}px)` }}>
              <button type="button" className="audit-row" onClick={() => onOpen(e)}>
                <span className="visually-hidden">Entry {e.seq} </span>
                <span className="mono muted">{dateTime(e.time)}</span>
                <span className="audit-actor">{actorLabel(e, who)}</span>
                <span>
                  <code className="audit-action">{e.action}</code>
                </span>
                <span className="muted">
                  {e.target.type} <code>{e.target.id.slice(0, 8)}</code>
                </span>
                <span className="audit-summary">{summary(e.details)}</span>
              </button>
            </li>
          )
        })}
      </ul>
    </div>
  )
}

function show(v: unknown): string {
  if (v === undefined) return '—'
  if (v === null) return 'none'
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/** One entry: who, what, when, the details (canonical JSON, as text), before/after fingerprints, hashes; its inclusion proof. */
function EntryDialog({
  workspace,
  entry,
  who,
  onClose,
}: {
  workspace: string
  entry: AuditEntry
  who: Map<string, string>
  onClose: () => void
}) {
  const details = parseDetails(entry.details)
  const hasChange = details !== null && ('before' in details || 'after' in details)
  const [proof, setProof] = useState<{ busy: boolean; error?: unknown; done?: string }>({ busy: false })

  async function downloadProof() {
    setProof({ busy: true })
    try {
      // As `coffer audit proof`: a fresh checkpoint, then the proof against it (coffer-audit-proof/v1).
      const { checkpoint, publicKey } = await opsApi.issueCheckpoint(workspace)
      const p = await opsApi.inclusionProof(workspace, entry.id, checkpoint.treeSize)
      const file = {
        format: 'coffer-audit-proof/v1',
        workspace: { id: entry.workspaceId, slug: workspace },
        publicKey,
        checkpoint: { treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, note: checkpoint.note },
        entry: p.entry,
        leafIndex: p.leafIndex,
        treeSize: p.treeSize,
        proof: p.proof,
      }
      downloadText(`audit-proof-${workspace}-${entry.seq}.json`, `${JSON.stringify(file, null, 2)}\n`)
      setProof({ busy: false, done: `Proof of entry ${entry.seq} in the signed tree of ${p.treeSize} entries downloaded.` })
    } catch (error) {
      setProof({ busy: false, error })
    }
  }

  return (
    <Dialog title={`Audit entry ${entry.seq}: ${entry.action}`} onClose={onClose}>
      <div className="entry-detail">
        <dl className="entry-fields">
          <dt>Time</dt>
          <dd>{entry.time}</dd>
          <dt>Actor</dt>
          <dd>
            {actorLabel(entry, who)} <span className="muted">({entry.actor.type})</span>
            <br />
            <code>{entry.actor.id}</code>
          </dd>
          <dt>From</dt>
          <dd>
            {entry.actor.ip || '—'} <span className="muted">{entry.actor.userAgent}</span>
          </dd>
          <dt>Target</dt>
          <dd>
            {entry.target.type} <code>{entry.target.id}</code>
          </dd>
          <dt>Request</dt>
          <dd>
            <code>{entry.requestId}</code>
          </dd>
        </dl>
        {hasChange && (
          <table className="table compact change" aria-label="Before and after">
            <thead>
              <tr>
                <th scope="col">Before</th>
                <th scope="col">After</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>
                  <code className="hash">{show(details.before)}</code>
                </td>
                <td>
                  <code className="hash">{show(details.after)}</code>
                </td>
              </tr>
            </tbody>
          </table>
        )}
        {hasChange && (
          <p className="hint">
            Keyed fingerprints (HMAC-SHA256 under the workspace's key), never values: equal fingerprints mean an equal value.
          </p>
        )}
        <h3 className="entry-sub">Details</h3>
        <pre className="entry-json">{details ? JSON.stringify(details, null, 2) : entry.details}</pre>
        <h3 className="entry-sub">Chain</h3>
        <dl className="entry-fields">
          <dt>Hash</dt>
          <dd>
            <code className="hash">{entry.hash}</code>
          </dd>
          <dt>Previous</dt>
          <dd>
            <code className="hash">{entry.prevHash}</code>
          </dd>
        </dl>
        {proof.done && <p className="note ok">{proof.done}</p>}
        {proof.error !== undefined && (
          <p className="note error" role="alert">
            {messageOf(proof.error)}
          </p>
        )}
      </div>
      <div className="dialog-actions">
        <button type="button" onClick={() => void downloadProof()} disabled={proof.busy}>
          Download inclusion proof
        </button>
        <button type="button" className="primary" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  )
}
