import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useMemo, useState } from 'react'
import { ApiError, api, type DiffEntry, type SecretApplyAnswer } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { parseDotenv } from './dotenv.js'
import { invalidateEnvironment, plural } from './invalidate.js'

interface Target {
  workspace: string
  project: string
  environment: string
}

/**
 * Paste a `.env` → preview (POST …/secrets/apply with dryRun: adds, changes, deletes,
 * unchanged; keys and versions, never values) → apply it as one atomic write, check-and-set on
 * the preview's state. If anything changed in between, nothing is written and the preview is
 * asked for again.
 */
export function BulkPaste({
  target,
  environmentName,
  onClose,
  onApplied,
}: {
  target: Target
  environmentName: string
  onClose: () => void
  onApplied: (text: string) => void
}) {
  const qc = useQueryClient()
  const [text, setText] = useState('')
  const [replace, setReplace] = useState(false)
  const [preview, setPreview] = useState<SecretApplyAnswer | null>(null)
  const [stale, setStale] = useState(false)
  const parsed = useMemo(() => parseDotenv(text), [text])
  const body = { upserts: parsed.entries, replace }
  const { workspace: w, project: p, environment: e } = target

  const previewing = useMutation({
    mutationFn: () => api.applySecrets(w, p, e, { ...body, dryRun: true }),
    onSuccess: (r) => {
      setPreview(r)
      setStale(false)
    },
  })
  const applying = useMutation({
    mutationFn: (state: string) => api.applySecrets(w, p, e, { ...body, ifState: state }),
    onSuccess: async (r) => {
      await invalidateEnvironment(qc, w, p, e)
      onApplied(
        `Applied the .env to ${environmentName}: ${r.adds.length} added, ${r.changes.length} changed, ${r.deletes.length} deleted, ${r.unchanged.length} unchanged.`,
      )
      onClose()
    },
    onError: (err) => {
      if (err instanceof ApiError && err.code === 'ERR_ENVIRONMENT_CHANGED') setStale(true)
    },
  })

  const nothing = preview && preview.adds.length + preview.changes.length + preview.deletes.length === 0
  return (
    <Dialog title={`Paste a .env into ${environmentName}`} onClose={onClose} wide>
      {!preview ? (
        <form
          className="form"
          onSubmit={(ev) => {
            ev.preventDefault()
            previewing.mutate()
          }}
        >
          <label htmlFor="dotenv-text">
            Contents of a <code>.env</code> file <span className="hint">KEY=value lines; comments and blank lines are skipped</span>
          </label>
          <textarea
            id="dotenv-text"
            className="mono"
            rows={12}
            value={text}
            onChange={(ev) => setText(ev.target.value)}
            spellCheck={false}
            autoComplete="off"
            placeholder={'DATABASE_URL=postgres://…\nSTRIPE_KEY="sk_live_…"'}
          />
          <p className="hint" aria-live="polite">
            {plural(parsed.entries.length, 'key')} read
            {parsed.repeated.length > 0 && ` · given twice (the last wins): ${parsed.repeated.join(', ')}`}
            {parsed.unreadable.length > 0 &&
              ` · unreadable line${parsed.unreadable.length === 1 ? '' : 's'} ${parsed.unreadable.join(', ')}`}
          </p>
          <label className="check">
            <input type="checkbox" checked={replace} onChange={(ev) => setReplace(ev.target.checked)} />
            Delete the keys of {environmentName} that are not in the paste
          </label>
          <ErrorNote error={previewing.error} />
          <div className="dialog-actions">
            <button type="button" onClick={onClose}>
              Cancel
            </button>
            <button type="submit" className="primary" disabled={previewing.isPending || (parsed.entries.length === 0 && !replace)}>
              Preview changes
            </button>
          </div>
        </form>
      ) : (
        <div className="form">
          <p className="hint">Nothing is written yet. Values were compared on the server; none is shown here.</p>
          <div className="diff-summary">
            <DiffList title="Added" kind="add" entries={preview.adds} />
            <DiffList title="Changed" kind="change" entries={preview.changes} />
            <DiffList title="Deleted" kind="delete" entries={preview.deletes} />
            <DiffList title="Unchanged" kind="same" entries={preview.unchanged} />
          </div>
          {stale && (
            <p className="note error" role="alert">
              {environmentName} changed since the preview; nothing was written. Review the changes again.
            </p>
          )}
          {!stale && <ErrorNote error={applying.error} />}
          <div className="dialog-actions">
            <button type="button" onClick={() => setPreview(null)}>
              Back
            </button>
            {stale ? (
              <button type="button" className="primary" disabled={previewing.isPending} onClick={() => previewing.mutate()}>
                Preview again
              </button>
            ) : (
              <button
                type="button"
                className="primary"
                disabled={applying.isPending || Boolean(nothing)}
                onClick={() => applying.mutate(preview.state)}
              >
                {nothing ? 'Nothing to apply' : 'Apply as one change'}
              </button>
            )}
          </div>
        </div>
      )}
    </Dialog>
  )
}

function DiffList({ title, kind, entries }: { title: string; kind: 'add' | 'change' | 'delete' | 'same'; entries: DiffEntry[] }) {
  return (
    <section className={`diff-list ${kind}`} aria-label={`${title}: ${entries.length}`}>
      <h3>
        {title} <span className="count">{entries.length}</span>
      </h3>
      {entries.length === 0 ? (
        <p className="muted">none</p>
      ) : (
        <ul>
          {entries.slice(0, 200).map((d) => (
            <li key={d.key}>
              <code>{d.key}</code>
              {kind === 'change' && <span className="muted"> v{d.version}</span>}
              {kind === 'delete' && <span className="muted"> v{d.version}</span>}
            </li>
          ))}
          {entries.length > 200 && <li className="muted">and {entries.length - 200} more</li>}
        </ul>
      )}
    </section>
  )
}
