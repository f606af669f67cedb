import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from '@tanstack/react-router'
import { useVirtualizer } from '@tanstack/react-virtual'
import { type FormEvent, memo, useCallback, useDeferredValue, useMemo, useRef, useState } from 'react'
import { api, type Environment, keys, type Secret } from '../api.js'
import { ErrorNote, isNotFound, Loading, messageOf, PageHeader } from '../ui/common.js'
import { Dialog } from '../ui/dialog.js'
import { CopyIcon, EditIcon, EyeIcon, EyeOffIcon, HistoryIcon, LockIcon, PlusIcon, TrashIcon } from '../ui/icons.js'
import { BulkPaste } from './env/bulk-paste.js'
import { CopyKeys } from './env/copy-keys.js'
import { DeletedSecrets } from './env/deleted.js'
import { SecretHistory } from './env/history.js'
import { AccessSettings } from './env/settings.js'
import { NotFound } from './not-found.js'
import './env/env.css'

/** A value shown after a reveal (one secret at a time, each an audited API call). */
interface Revealed {
  version: number
  value: string
  comment: string | null
}

function count(n: number): string {
  return n === 1 ? '1 secret' : `${n} secrets`
}

const ROW_HEIGHT = 44
const HEAD_HEIGHT = 34

/** One environment: its secrets in a virtualised grid (masked; reveal, copy, add, edit, delete; filter). */
export function EnvironmentScreen({ workspace, project, environment }: { workspace: string; project: string; environment: string }) {
  const detail = useQuery({ queryKey: keys.project(workspace, project), queryFn: () => api.project(workspace, project) })
  const env = detail.data?.environments.find((e) => e.slug === environment || e.id === environment)
  const secrets = useQuery({
    queryKey: keys.secrets(workspace, project, environment),
    queryFn: () => api.secrets(workspace, project, environment),
    enabled: env !== undefined,
  })
  const [filter, setFilter] = useState('')
  const deferred = useDeferredValue(filter)
  const [revealed, setRevealed] = useState<ReadonlyMap<string, Revealed>>(new Map())
  const [editing, setEditing] = useState<{ secret?: Secret; revealed?: Revealed } | null>(null)
  const [deleting, setDeleting] = useState<Secret | null>(null)
  const [notice, setNotice] = useState<{ text: string; error?: boolean } | null>(null)
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set())
  const [open, setOpen] = useState<'paste' | 'copy' | 'deleted' | 'access' | { history: Secret } | null>(null)

  const rows = useMemo(() => {
    const all = secrets.data?.secrets ?? []
    const q = deferred.trim().toLowerCase()
    if (!q) return all
    return all.filter((s) => s.key.toLowerCase().includes(q) || s.tags.some((t) => t.toLowerCase().includes(q)))
  }, [secrets.data, deferred])

  if (detail.isError && isNotFound(detail.error)) return <NotFound />
  if (secrets.isError && isNotFound(secrets.error)) return <NotFound />
  if (detail.isPending) return <Loading label="Loading the environment…" />
  if (detail.isError) return <ErrorNote error={detail.error} />
  if (!env) return <NotFound />
  const p = detail.data.project

  async function reveal(s: Secret): Promise<Revealed | undefined> {
    try {
      const r = await api.reveal(workspace, project, environment, s.key)
      const v = { version: r.secret.version, value: r.secret.value ?? '', comment: r.secret.comment ?? null }
      setRevealed((m) => new Map(m).set(s.key, v))
      return v
    } catch (err) {
      setNotice({ text: `${s.key}: ${messageOf(err)}`, error: true })
      return undefined
    }
  }
  function hide(key: string) {
    setRevealed((m) => {
      const next = new Map(m)
      next.delete(key)
      return next
    })
  }
  async function copy(s: Secret) {
    const v = revealed.get(s.key) ?? (await reveal(s))
    if (!v) return
    try {
      await navigator.clipboard.writeText(v.value)
      setNotice({ text: `Copied the value of ${s.key}.` })
    } catch {
      setNotice({ text: 'The browser did not allow copying (it needs HTTPS or localhost).', error: true })
    }
  }
  async function edit(s: Secret) {
    // @NOTE the form starts from the stored value: a revealed one has its references resolved
    // (and may be your personal override), and saving it would overwrite the shared value.
    try {
      const r = await api.revealStored(workspace, project, environment, s.key)
      setEditing({ secret: s, revealed: { version: r.secret.version, value: r.secret.value ?? '', comment: r.secret.comment ?? null } })
    } catch (err) {
      setNotice({ text: `${s.key}: ${messageOf(err)}`, error: true })
    }
  }

  const total = secrets.data?.secrets.length ?? 0
  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[{ label: p.name, project: p.slug }, { label: env.name }]}
        title={env.name}
        subtitle={<EnvironmentFacts env={env} />}
        actions={
          <>
            <Link className="button-link" to="/w/$workspace/compare/$project" params={{ workspace, project: p.slug }}>
              Compare
            </Link>
            <Link
              className="button-link"
              to="/w/$workspace/projects/$project/$environment/db-roles"
              params={{ workspace, project: p.slug, environment: env.slug }}
            >
              Database roles
            </Link>
            <button type="button" onClick={() => setOpen('deleted')}>
              Deleted
            </button>
            <button type="button" onClick={() => setOpen('access')}>
              <LockIcon /> Access
            </button>
            <button type="button" onClick={() => setOpen('paste')}>
              Paste .env
            </button>
            <button type="button" className="primary" onClick={() => setEditing({})}>
              <PlusIcon /> Add secret
            </button>
          </>
        }
      />
      <nav className="tabs" aria-label="Environments">
        {detail.data.environments.map((e) => (
          <Link
            key={e.id}
            to="/w/$workspace/projects/$project/$environment"
            params={{ workspace, project: p.slug, environment: e.slug }}
            className="tab"
            activeOptions={{ exact: true }}
          >
            {e.name}
          </Link>
        ))}
      </nav>
      <div className="toolbar">
        <label className="filter">
          <span className="visually-hidden">Filter secrets by key or tag</span>
          <input type="search" placeholder="Filter by key or tag" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
        <span className="count" aria-live="polite">
          {secrets.data ? (rows.length === total ? count(total) : `${rows.length} of ${count(total)}`) : ''}
        </span>
        {selected.size > 0 && (
          <span className="selection">
            <button type="button" className="primary" onClick={() => setOpen('copy')}>
              Copy {selected.size} to…
            </button>
            <button type="button" className="link" onClick={() => setSelected(new Set())}>
              Clear selection
            </button>
          </span>
        )}
        {notice && (
          <p className={notice.error ? 'note error inline' : 'note ok inline'} role={notice.error ? 'alert' : 'status'}>
            {notice.text}
          </p>
        )}
      </div>
      {secrets.isPending && <Loading label="Loading secrets…" />}
      <ErrorNote error={secrets.error} />
      {secrets.data &&
        (total === 0 ? (
          <div className="panel empty">
            <h2>No secrets yet</h2>
            <p>Add the first one, or set several at once from the command line.</p>
          </div>
        ) : (
          <SecretGrid
            rows={rows}
            revealed={revealed}
            onReveal={(s) => void reveal(s)}
            onHide={hide}
            onCopy={(s) => void copy(s)}
            onEdit={(s) => void edit(s)}
            onDelete={setDeleting}
            onHistory={(s) => setOpen({ history: s })}
            selected={selected}
            onSelect={setSelected}
          />
        ))}
      {open === 'paste' && (
        <BulkPaste
          target={{ workspace, project, environment }}
          environmentName={env.name}
          onClose={() => setOpen(null)}
          onApplied={(text) => {
            setRevealed(new Map())
            setNotice({ text })
          }}
        />
      )}
      {open === 'copy' && (
        <CopyKeys
          workspace={workspace}
          project={p.slug}
          from={env}
          environments={detail.data.environments}
          selected={[...selected].sort()}
          onClose={() => setOpen(null)}
          onCopied={(text) => {
            setSelected(new Set())
            setNotice({ text })
          }}
        />
      )}
      {open === 'deleted' && (
        <DeletedSecrets
          target={{ workspace, project, environment }}
          environmentName={env.name}
          onClose={() => setOpen(null)}
          onRestored={(text) => setNotice({ text })}
        />
      )}
      {open === 'access' && <AccessSettings workspace={workspace} project={p.slug} environment={env} onClose={() => setOpen(null)} />}
      {open !== null && typeof open === 'object' && (
        <SecretHistory
          target={{ workspace, project, environment }}
          secret={open.history}
          onClose={() => setOpen(null)}
          onRolledBack={(text) => {
            hide(open.history.key)
            setNotice({ text })
          }}
        />
      )}
      {editing && (
        <SecretEditor
          target={{ workspace, project, environment }}
          secret={editing.secret}
          revealed={editing.revealed}
          onClose={() => setEditing(null)}
          onSaved={(s) => {
            hide(s.key)
            setNotice({ text: `Saved ${s.key} (version ${s.version}).` })
          }}
        />
      )}
      {deleting && (
        <DeleteSecret
          target={{ workspace, project, environment }}
          secret={deleting}
          environmentName={env.name}
          onClose={() => setDeleting(null)}
          onDeleted={(s) => {
            hide(s.key)
            setNotice({ text: `Deleted ${s.key}.` })
          }}
        />
      )}
    </>
  )
}

function EnvironmentFacts({ env }: { env: Environment }) {
  return (
    <>
      <code>{env.slug}</code>
      {env.sealed && (
        <span className="badge danger">
          <LockIcon /> Sealed
        </span>
      )}
      {env.restricted && <span className="badge warn">Restricted</span>}
      {env.changeApprovals > 0 && (
        <span className="badge warn" title="Each write becomes a change request that other Owners or Admins approve">
          Protected · {env.changeApprovals} approval(s)
        </span>
      )}
    </>
  )
}

function SecretGrid({
  rows,
  revealed,
  onReveal,
  onHide,
  onCopy,
  onEdit,
  onDelete,
  onHistory,
  selected,
  onSelect,
}: {
  rows: readonly Secret[]
  revealed: ReadonlyMap<string, Revealed>
  onReveal: (s: Secret) => void
  onHide: (key: string) => void
  onCopy: (s: Secret) => void
  onEdit: (s: Secret) => void
  onDelete: (s: Secret) => void
  onHistory: (s: Secret) => void
  selected: ReadonlySet<string>
  onSelect: (next: ReadonlySet<string>) => void
}) {
  const allSelected = rows.length > 0 && rows.every((s) => selected.has(s.key))
  // @NOTE rows are memoised and get one stable dispatcher, so scrolling renders only the rows
  // that come into view (not all ~40 on screen at every frame); the dispatcher reads the
  // newest callbacks and selection through a ref.
  const latest = useRef({ onReveal, onHide, onCopy, onEdit, onDelete, onHistory, onSelect, selected })
  latest.current = { onReveal, onHide, onCopy, onEdit, onDelete, onHistory, onSelect, selected }
  const act = useCallback<RowAction>((kind, s, on) => {
    const h = latest.current
    if (kind === 'select') {
      const next = new Set(h.selected)
      if (on) next.add(s.key)
      else next.delete(s.key)
      h.onSelect(next)
    } else if (kind === 'reveal') h.onReveal(s)
    else if (kind === 'hide') h.onHide(s.key)
    else if (kind === 'copy') h.onCopy(s)
    else if (kind === 'edit') h.onEdit(s)
    else if (kind === 'delete') h.onDelete(s)
    else h.onHistory(s)
  }, [])
  const scroller = useRef<HTMLDivElement>(null)
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
    // The header row sits above the rows inside the scrolling box.
    scrollMargin: HEAD_HEIGHT,
    getItemKey: (i) => rows[i]!.id,
  })
  return (
    <div className="grid-scroll" ref={scroller}>
      <table className="grid" aria-label="Secrets" aria-rowcount={rows.length + 1}>
        <thead>
          <tr aria-rowindex={1} className="grid-row selectable">
            <th scope="col">
              <input
                type="checkbox"
                aria-label="Select every shown secret"
                checked={allSelected}
                onChange={(e) => onSelect(e.target.checked ? new Set([...selected, ...rows.map((s) => s.key)]) : new Set())}
              />
            </th>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
            <th scope="col">Tags</th>
            <th scope="col">Version</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody style={{ height: Math.max(virtualizer.getTotalSize(), ROW_HEIGHT) }}>
          {rows.length === 0 && (
            <tr className="grid-row selectable">
              <td />
              <td className="muted">No secret matches the filter.</td>
            </tr>
          )}
          {virtualizer.getVirtualItems().map((item) => {
            const s = rows[item.index]!
            return (
              <SecretRow
                key={item.key}
                s={s}
                v={revealed.get(s.key)}
                checked={selected.has(s.key)}
                index={item.index}
                top={item.start - HEAD_HEIGHT}
                act={act}
              />
            )
          })}
        </tbody>
      </table>
    </div>
  )
}

type RowAction = (kind: 'select' | 'reveal' | 'hide' | 'copy' | 'edit' | 'delete' | 'history', s: Secret, on?: boolean) => void

/** One row of the grid; re-renders only when its own secret, value, selection or place changes. */
const SecretRow = memo(function SecretRow({
  s,
  v,
  checked,
  index,
  top,
  act,
}: {
  s: Secret
  v: Revealed | undefined
  checked: boolean
  index: number
  top: number
  act: RowAction
}) {
  return (
    <tr aria-rowindex={index + 2} className="grid-row selectable" style={{ transform: `translateY(${top}px)`, height: ROW_HEIGHT }}>
      <td>
        <input type="checkbox" aria-label={`Select ${s.key}`} checked={checked} onChange={(e) => act('select', s, e.target.checked)} />
      </td>
      <td className="key">
        <code title={s.key}>{s.key}</code>
      </td>
      <td className="value">
        {v ? (
          <>
            <code className="revealed" title={v.value}>
              {v.value === '' ? '(empty)' : v.value}
            </code>
            {v.comment && (
              <span className="comment" title={v.comment}>
                {v.comment}
              </span>
            )}
          </>
        ) : (
          <span className="masked">
            <span aria-hidden="true">••••••••••••</span>
            <span className="visually-hidden">hidden value</span>
          </span>
        )}
      </td>
      <td className="tags">
        {s.tags.map((t) => (
          <span key={t} className="tag">
            {t}
          </span>
        ))}
      </td>
      <td className="muted">v{s.version}</td>
      <td className="row-actions">
        {v ? (
          <button type="button" className="icon" aria-label={`Hide ${s.key}`} title="Hide" onClick={() => act('hide', s)}>
            <EyeOffIcon />
          </button>
        ) : (
          <button
            type="button"
            className="icon"
            aria-label={`Reveal ${s.key}`}
            title="Reveal (recorded in the audit log)"
            onClick={() => act('reveal', s)}
          >
            <EyeIcon />
          </button>
        )}
        <button type="button" className="icon" aria-label={`Copy ${s.key}`} title="Copy the value" onClick={() => act('copy', s)}>
          <CopyIcon />
        </button>
        <button type="button" className="icon" aria-label={`History of ${s.key}`} title="History" onClick={() => act('history', s)}>
          <HistoryIcon />
        </button>
        <button type="button" className="icon" aria-label={`Edit ${s.key}`} title="Edit" onClick={() => act('edit', s)}>
          <EditIcon />
        </button>
        <button type="button" className="icon danger" aria-label={`Delete ${s.key}`} title="Delete" onClick={() => act('delete', s)}>
          <TrashIcon />
        </button>
      </td>
    </tr>
  )
})

interface Target {
  workspace: string
  project: string
  environment: string
}

function splitTags(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))]
}

/** Adds a secret (check-and-set: it must not exist yet) or writes a new version of one (it must be unchanged since it was opened). */
function SecretEditor({
  target,
  secret,
  revealed,
  onClose,
  onSaved,
}: {
  target: Target
  secret?: Secret
  revealed?: Revealed
  onClose: () => void
  onSaved: (s: Secret) => void
}) {
  const qc = useQueryClient()
  const [key, setKey] = useState(secret?.key ?? '')
  const [value, setValue] = useState(revealed?.value ?? '')
  const [comment, setComment] = useState(revealed?.comment ?? '')
  const [tags, setTags] = useState(secret?.tags.join(', ') ?? '')
  const save = useMutation({
    mutationFn: () =>
      api.setSecret(target.workspace, target.project, target.environment, key.trim(), {
        value,
        comment,
        tags: splitTags(tags),
        ifVersion: revealed?.version ?? 0,
      }),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: keys.secrets(target.workspace, target.project, target.environment) })
      onSaved(r.secret)
      onClose()
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    save.mutate()
  }
  return (
    <Dialog title={secret ? `Edit ${secret.key}` : 'Add a secret'} onClose={onClose}>
      <form onSubmit={submit} className="form">
        <label htmlFor="secret-key">
          Key <span className="hint">letters, digits and _, not starting with a digit</span>
        </label>
        <input
          id="secret-key"
          className="mono"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          readOnly={secret !== undefined}
          required
          maxLength={256}
          autoComplete="off"
          spellCheck={false}
        />
        <label htmlFor="secret-value">Value</label>
        <textarea
          id="secret-value"
          className="mono"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          rows={4}
          spellCheck={false}
          autoComplete="off"
        />
        <label htmlFor="secret-comment">
          Comment <span className="hint">encrypted like the value</span>
        </label>
        <input id="secret-comment" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={4096} autoComplete="off" />
        <label htmlFor="secret-tags">
          Tags <span className="hint">separated by commas or spaces</span>
        </label>
        <input id="secret-tags" value={tags} onChange={(e) => setTags(e.target.value)} autoComplete="off" spellCheck={false} />
        <ErrorNote error={save.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={save.isPending}>
            {secret ? 'Save new version' : 'Add secret'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function DeleteSecret({
  target,
  secret,
  environmentName,
  onClose,
  onDeleted,
}: {
  target: Target
  secret: Secret
  environmentName: string
  onClose: () => void
  onDeleted: (s: Secret) => void
}) {
  const qc = useQueryClient()
  const del = useMutation({
    mutationFn: () => api.deleteSecret(target.workspace, target.project, target.environment, secret.key, secret.version),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: keys.secrets(target.workspace, target.project, target.environment) })
      onDeleted(r.secret)
      onClose()
    },
  })
  return (
    <Dialog title={`Delete ${secret.key}?`} onClose={onClose}>
      <p>
        <code>{secret.key}</code> is removed from {environmentName}. Its history is kept: the deletion is a new version, and the secret can
        be restored.
      </p>
      <ErrorNote error={del.error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="danger" disabled={del.isPending} onClick={() => del.mutate()}>
          Delete
        </button>
      </div>
    </Dialog>
  )
}
