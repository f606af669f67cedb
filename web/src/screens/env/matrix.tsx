import { useQuery } from '@tanstack/react-query'
import { Link } from '@tanstack/react-router'
import { useVirtualizer } from '@tanstack/react-virtual'
import { useDeferredValue, useMemo, useRef, useState } from 'react'
import { api, type EnvironmentMatrix, keys, type MatrixCell, type MatrixEnvironment } from '../../api.js'
import { ErrorNote, isNotFound, Loading, messageOf, PageHeader } from '../../ui/common.js'
import { CopyIcon, EyeOffIcon } from '../../ui/icons.js'
import { NotFound } from '../not-found.js'
import { plural } from './invalidate.js'
import './env.css'

const ROW_HEIGHT = 38
const HEAD_HEIGHT = 48

/** What one cell says, beside its neighbour on the left (the nearest environment whose keys are listed). */
type Relation = 'same' | 'differs' | 'unknown' | 'first'
interface CellView {
  state: 'none' | 'missing' | 'present'
  version?: number
  relation?: Relation
  neighbour?: string
}

interface Row {
  key: string
  cells: CellView[]
  missing: number
  differs: boolean
}

function describe(m: EnvironmentMatrix): Row[] {
  return m.keys.map(({ key, cells }) => {
    let missing = 0
    let differs = false
    let left: { cell: MatrixCell; env: MatrixEnvironment } | null = null
    const views = m.environments.map((env, i): CellView => {
      const cell = cells[i] ?? null
      if (env.access === 'none' || cell === null) return { state: 'none' }
      const prev = left
      left = { cell, env }
      if (!cell.present) {
        missing++
        return { state: 'missing' }
      }
      if (!prev) return { state: 'present', version: cell.version, relation: 'first' }
      if (!prev.cell.present) return { state: 'present', version: cell.version, relation: 'first' }
      if (cell.fingerprint === null || prev.cell.fingerprint === null)
        return { state: 'present', version: cell.version, relation: 'unknown', neighbour: prev.env.name }
      const same = cell.fingerprint === prev.cell.fingerprint
      if (!same) differs = true
      return { state: 'present', version: cell.version, relation: same ? 'same' : 'differs', neighbour: prev.env.name }
    })
    return { key, cells: views, missing, differs }
  })
}

function accessNote(e: MatrixEnvironment): string | null {
  if (e.access === 'none') return 'no access'
  if (!e.fingerprints) return 'keys only'
  return null
}

function cellLabel(row: Row, c: CellView, env: MatrixEnvironment): string {
  if (c.state === 'none') return `${row.key} in ${env.name}: no access`
  if (c.state === 'missing') return `${row.key} is missing in ${env.name}`
  const base = `${row.key} in ${env.name}, version ${c.version}`
  if (c.relation === 'same') return `${base}, same value as in ${c.neighbour}`
  if (c.relation === 'differs') return `${base}, differs from ${c.neighbour}`
  return base
}

/** A value revealed from one cell (an audited API call), held in the page's memory until hidden. */
interface Revealed {
  key: string
  environment: MatrixEnvironment
  version: number
  value: string
}

/** Compare: keys down, environments across; present, missing, same as or different from the neighbour, by keyed fingerprints. */
export function MatrixScreen({ workspace, project }: { workspace: string; project: string }) {
  const matrix = useQuery({ queryKey: keys.matrix(workspace, project), queryFn: () => api.matrix(workspace, project) })
  const [filter, setFilter] = useState('')
  const [onlyGaps, setOnlyGaps] = useState(false)
  const deferred = useDeferredValue(filter)
  const [revealed, setRevealed] = useState<Revealed | null>(null)
  const [notice, setNotice] = useState<{ text: string; error?: boolean } | null>(null)

  const all = useMemo(() => (matrix.data ? describe(matrix.data) : []), [matrix.data])
  const rows = useMemo(() => {
    const q = deferred.trim().toLowerCase()
    return all.filter((r) => (!q || r.key.toLowerCase().includes(q)) && (!onlyGaps || r.missing > 0 || r.differs))
  }, [all, deferred, onlyGaps])

  if (matrix.isError && isNotFound(matrix.error)) return <NotFound />
  if (matrix.isPending) return <Loading label="Loading the comparison…" />
  if (matrix.isError) return <ErrorNote error={matrix.error} />
  const m = matrix.data
  const gaps = all.filter((r) => r.missing > 0).length
  const differing = all.filter((r) => r.differs).length

  async function reveal(key: string, env: MatrixEnvironment) {
    try {
      const r = await api.reveal(workspace, project, env.slug, key)
      setRevealed({ key, environment: env, version: r.secret.version, value: r.secret.value ?? '' })
      setNotice(null)
    } catch (err) {
      setNotice({ text: `${key}: ${messageOf(err)}`, error: true })
    }
  }
  async function copy(v: Revealed) {
    try {
      await navigator.clipboard.writeText(v.value)
      setNotice({ text: `Copied the value of ${v.key} in ${v.environment.name}.` })
    } catch {
      setNotice({ text: 'The browser did not allow copying (it needs HTTPS or localhost).', error: true })
    }
  }

  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[{ label: m.project.name, project: m.project.slug }, { label: 'Compare' }]}
        title={`Compare ${m.project.name}`}
        subtitle={
          <>
            {plural(all.length, 'key')} · {plural(gaps, 'key')} missing somewhere · {plural(differing, 'key')} differing between neighbours
          </>
        }
      />
      <p className="hint matrix-hint">
        Values are compared on the server by keyed fingerprints; no value is sent to show this page. Click a cell to reveal that one value
        (recorded in the audit log).
      </p>
      <div className="toolbar">
        <label className="filter">
          <span className="visually-hidden">Filter keys</span>
          <input type="search" placeholder="Filter keys" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
        <label className="check inline">
          <input type="checkbox" checked={onlyGaps} onChange={(e) => setOnlyGaps(e.target.checked)} />
          Only missing or differing
        </label>
        <span className="count" aria-live="polite">
          {rows.length === all.length ? plural(all.length, 'key') : `${rows.length} of ${plural(all.length, 'key')}`}
        </span>
        {notice && (
          <p className={notice.error ? 'note error inline' : 'note ok inline'} role={notice.error ? 'alert' : 'status'}>
            {notice.text}
          </p>
        )}
      </div>
      {revealed && (
        <section className="reveal-panel" aria-label="Revealed value">
          <span>
            <code className="key-name">{revealed.key}</code> in {revealed.environment.name}, v{revealed.version}
          </span>
          <code className="revealed" title={revealed.value}>
            {revealed.value === '' ? '(empty)' : revealed.value}
          </code>
          <button
            type="button"
            className="icon"
            aria-label={`Copy ${revealed.key} of ${revealed.environment.name}`}
            onClick={() => void copy(revealed)}
          >
            <CopyIcon />
          </button>
          <button type="button" className="icon" aria-label="Hide the value" onClick={() => setRevealed(null)}>
            <EyeOffIcon />
          </button>
        </section>
      )}
      {m.environments.length === 0 ? (
        <div className="panel empty">
          <h2>Nothing to compare</h2>
          <p>No environment of this project is shared with you.</p>
        </div>
      ) : (
        <MatrixGrid
          matrix={m}
          rows={rows}
          empty={all.length === 0 ? 'No key in the environments whose keys you may list.' : 'No key matches.'}
          workspace={workspace}
          project={project}
          onReveal={(k, e) => void reveal(k, e)}
        />
      )}
    </>
  )
}

function MatrixGrid({
  matrix,
  rows,
  empty,
  workspace,
  project,
  onReveal,
}: {
  matrix: EnvironmentMatrix
  rows: Row[]
  empty: string
  workspace: string
  project: string
  onReveal: (key: string, env: MatrixEnvironment) => void
}) {
  const scroller = useRef<HTMLDivElement>(null)
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    scrollMargin: HEAD_HEIGHT,
    getItemKey: (i) => rows[i]!.key,
  })
  const columns = { gridTemplateColumns: `minmax(200px, 1.4fr) repeat(${matrix.environments.length}, minmax(120px, 1fr))` }
  return (
    <div className="grid-scroll matrix-scroll" ref={scroller}>
      <table className="grid matrix" aria-label="Keys by environment" aria-rowcount={rows.length + 1}>
        <thead>
          <tr aria-rowindex={1} className="matrix-row" style={columns}>
            <th scope="col">Key</th>
            {matrix.environments.map((e) => (
              <th scope="col" key={e.id} className={e.access === 'none' ? 'no-access' : undefined}>
                <Link to="/w/$workspace/projects/$project/$environment" params={{ workspace, project, environment: e.slug }}>
                  {e.name}
                </Link>
                {accessNote(e) && <span className="access-note">{accessNote(e)}</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody style={{ height: Math.max(virtualizer.getTotalSize(), ROW_HEIGHT) }}>
          {rows.length === 0 && (
            <tr className="matrix-row" style={columns}>
              <td className="muted">{empty}</td>
            </tr>
          )}
          {virtualizer.getVirtualItems().map((item) => {
            const r = rows[item.index]!
            return (
              <tr
                key={item.key}
                aria-rowindex={item.index + 2}
                className={r.missing > 0 ? 'matrix-row gap' : 'matrix-row'}
                style={{ ...columns, transform: `translateY(${item.start - HEAD_HEIGHT}px)`, height: ROW_HEIGHT }}
              >
                <th scope="row" className="key">
                  <code title={r.key}>{r.key}</code>
                  {r.missing > 0 && <span className="badge warn">missing in {r.missing}</span>}
                </th>
                {r.cells.map((c, i) => {
                  const env = matrix.environments[i]!
                  const label = cellLabel(r, c, env)
                  if (c.state === 'none')
                    return (
                      <td key={env.id} className="cell none" title={label}>
                        no access
                      </td>
                    )
                  if (c.state === 'missing')
                    return (
                      <td key={env.id} className="cell missing" title={label}>
                        missing
                      </td>
                    )
                  const text = (
                    <>
                      <span className="ver">v{c.version}</span>
                      {c.relation === 'same' && <span className="rel same">same as ←</span>}
                      {c.relation === 'differs' && <span className="rel differs">differs from ←</span>}
                      {(c.relation === 'first' || c.relation === 'unknown') && <span className="rel">present</span>}
                    </>
                  )
                  const canReveal = env.access === 'read' || env.access === 'write'
                  return (
                    <td key={env.id} className={`cell present ${c.relation ?? ''}`}>
                      {canReveal ? (
                        <button
                          type="button"
                          className="cell-button"
                          title={`${label} — click to reveal`}
                          onClick={() => onReveal(r.key, env)}
                        >
                          <span aria-hidden="true">{text}</span>
                          <span className="visually-hidden">Reveal {label}</span>
                        </button>
                      ) : (
                        <span title={label}>{text}</span>
                      )}
                    </td>
                  )
                })}
              </tr>
            )
          })}
        </tbody>
      </table>
    </div>
  )
}
