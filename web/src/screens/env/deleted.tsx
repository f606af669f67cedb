import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, keys } from '../../api.js'
import { ErrorNote, Loading, shortDate } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { invalidateEnvironment } from './invalidate.js'

interface Target {
  workspace: string
  project: string
  environment: string
}

/** Deleted secrets of the environment (their history is kept): restore one to its last value, as a new version. */
export function DeletedSecrets({
  target,
  environmentName,
  onClose,
  onRestored,
}: {
  target: Target
  environmentName: string
  onClose: () => void
  onRestored: (text: string) => void
}) {
  const qc = useQueryClient()
  const { workspace: w, project: p, environment: e } = target
  const list = useQuery({ queryKey: keys.deletedSecrets(w, p, e), queryFn: () => api.deletedSecrets(w, p, e) })
  const deleted = (list.data?.secrets ?? []).filter((s) => s.deleted)
  const restore = useMutation({
    mutationFn: (key: string) => api.restoreSecret(w, p, e, key),
    onSuccess: async (r) => {
      await invalidateEnvironment(qc, w, p, e)
      onRestored(`Restored ${r.secret.key} (version ${r.secret.version}).`)
    },
  })
  return (
    <Dialog title={`Deleted secrets in ${environmentName}`} onClose={onClose} wide>
      {list.isPending && <Loading label="Loading…" />}
      <ErrorNote error={list.error} />
      {list.data &&
        (deleted.length === 0 ? (
          <p className="muted">No deleted secret.</p>
        ) : (
          <div className="history-scroll">
            <table className="table compact">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Deleted (UTC)</th>
                  <th scope="col">Version</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {deleted.map((s) => (
                  <tr key={s.id}>
                    <td>
                      <code>{s.key}</code>
                    </td>
                    <td className="muted">{shortDate(s.updatedAt)}</td>
                    <td className="muted">v{s.version}</td>
                    <td className="row-actions">
                      <button
                        type="button"
                        aria-label={`Restore ${s.key}`}
                        disabled={restore.isPending}
                        onClick={() => restore.mutate(s.key)}
                      >
                        Restore
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
      <ErrorNote error={restore.error} />
      <p className="hint">Restoring writes a new version with the value the secret had before it was deleted.</p>
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  )
}
