import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { api, keys, type Secret, type SecretVersion } from '../../api.js'
import { ErrorNote, Loading } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { invalidateEnvironment } from './invalidate.js'

interface Target {
  workspace: string
  project: string
  environment: string
}

const ORIGIN: Record<SecretVersion['origin'], string> = { set: 'set', rollback: 'rollback', delete: 'deleted', restore: 'restored' }

function when(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`
}

/** A line diff (longest common subsequence), small inputs only: a secret value is at most 64 KiB. */
export function lineDiff(a: string, b: string): Array<{ op: ' ' | '-' | '+'; text: string }> {
  const x = a.split('\n').slice(0, 400)
  const y = b.split('\n').slice(0, 400)
  const n = x.length
  const m = y.length
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0))
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) L[i]![j] = x[i] === y[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!)
  const out: Array<{ op: ' ' | '-' | '+'; text: string }> = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ op: ' ', text: x[i]! })
      i++
      j++
    } else if (L[i + 1]![j]! >= L[i]![j + 1]!) out.push({ op: '-', text: x[i++]! })
    else out.push({ op: '+', text: y[j++]! })
  }
  while (i < n) out.push({ op: '-', text: x[i++]! })
  while (j < m) out.push({ op: '+', text: y[j++]! })
  return out
}

/** One line's changed middle, between the common prefix and suffix. */
function InlineDiff({ value, other }: { value: string; other: string }) {
  let p = 0
  while (p < value.length && p < other.length && value[p] === other[p]) p++
  let s = 0
  while (s < value.length - p && s < other.length - p && value[value.length - 1 - s] === other[other.length - 1 - s]) s++
  return (
    <code className="diff-value">
      {value.slice(0, p)}
      {value.length - p - s > 0 && <mark>{value.slice(p, value.length - s)}</mark>}
      {value.slice(value.length - s)}
      {value === '' && <span className="muted">(empty)</span>}
    </code>
  )
}

function ValueDiff({ older, newer }: { older: { version: number; value: string }; newer: { version: number; value: string } }) {
  if (older.value === newer.value)
    return (
      <p className="note ok" role="status">
        v{older.version} and v{newer.version} hold the same value.
      </p>
    )
  if (!older.value.includes('\n') && !newer.value.includes('\n'))
    return (
      <dl className="value-diff">
        <dt>v{older.version}</dt>
        <dd>
          <InlineDiff value={older.value} other={newer.value} />
        </dd>
        <dt>v{newer.version}</dt>
        <dd>
          <InlineDiff value={newer.value} other={older.value} />
        </dd>
      </dl>
    )
  return (
    <pre className="line-diff" title={`Changes from v${older.version} to v${newer.version}`}>
      {lineDiff(older.value, newer.value).map((l, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: lines of a diff have no identity but their place
        <span key={i} className={l.op === '+' ? 'add' : l.op === '-' ? 'del' : undefined}>
          {l.op} {l.text}
          {'\n'}
        </span>
      ))}
    </pre>
  )
}

/** A secret's versions: who wrote each and when; compare two (revealed on demand, audited) and roll back to one. */
export function SecretHistory({
  target,
  secret,
  onClose,
  onRolledBack,
}: {
  target: Target
  secret: Secret
  onClose: () => void
  onRolledBack: (text: string) => void
}) {
  const qc = useQueryClient()
  const { workspace: w, project: p, environment: e } = target
  const history = useQuery({ queryKey: keys.history(w, p, e, secret.key), queryFn: () => api.history(w, p, e, secret.key) })
  const versions = history.data?.versions ?? []
  const live = versions.filter((v) => !v.deleted)
  const [a, setA] = useState<number | null>(null)
  const [b, setB] = useState<number | null>(null)
  const older = a ?? live[1]?.version ?? live[0]?.version ?? null
  const newer = b ?? live[0]?.version ?? null
  const [values, setValues] = useState<ReadonlyMap<number, string> | null>(null)
  const [confirm, setConfirm] = useState<number | null>(null)

  // Revealing decrypts the versions on the server: one `secret.reveal_history` audit entry per click.
  const reveal = useMutation({
    mutationFn: () => api.history(w, p, e, secret.key, true),
    onSuccess: (r) => setValues(new Map(r.versions.filter((v) => !v.deleted).map((v) => [v.version, v.value ?? '']))),
  })
  const rollback = useMutation({
    mutationFn: (version: number) => api.rollback(w, p, e, secret.key, version, history.data?.secret.version ?? secret.version),
    onSuccess: async (r, version) => {
      setConfirm(null)
      setValues(null)
      await invalidateEnvironment(qc, w, p, e)
      onRolledBack(`Rolled ${secret.key} back to the value of v${version} (now version ${r.secret.version}).`)
    },
  })

  const current = history.data?.secret.version
  const olderValue = older === null ? undefined : values?.get(older)
  const newerValue = newer === null ? undefined : values?.get(newer)
  return (
    <Dialog title={`History of ${secret.key}`} onClose={onClose} wide>
      {history.isPending && <Loading label="Loading versions…" />}
      <ErrorNote error={history.error} />
      {history.data && (
        <>
          <div className="history-scroll">
            <table className="table compact">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">What</th>
                  <th scope="col">When (UTC)</th>
                  <th scope="col">By</th>
                  <th scope="col">Tags</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => (
                  <tr key={v.version}>
                    <td>
                      v{v.version}
                      {v.version === current && <span className="badge">current</span>}
                    </td>
                    <td>
                      {ORIGIN[v.origin]}
                      {v.originVersion !== null && <span className="muted"> from v{v.originVersion}</span>}
                    </td>
                    <td className="muted">{when(v.createdAt)}</td>
                    <td className="muted by" title={v.createdBy}>
                      {v.createdBy}
                    </td>
                    <td>
                      {v.tags.map((t) => (
                        <span key={t} className="tag">
                          {t}
                        </span>
                      ))}
                    </td>
                    <td className="row-actions">
                      {!v.deleted &&
                        v.version !== current &&
                        (confirm === v.version ? (
                          <button type="button" className="danger" disabled={rollback.isPending} onClick={() => rollback.mutate(v.version)}>
                            Confirm rollback to v{v.version}
                          </button>
                        ) : (
                          <button type="button" onClick={() => setConfirm(v.version)}>
                            Roll back to v{v.version}
                          </button>
                        ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <ErrorNote error={rollback.error} />
          {live.length >= 2 ? (
            <div className="compare">
              <h3>Compare two versions</h3>
              <div className="compare-pick">
                <label>
                  From{' '}
                  <select value={older ?? ''} onChange={(ev) => setA(Number(ev.target.value))}>
                    {live.map((v) => (
                      <option key={v.version} value={v.version}>
                        v{v.version}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  to{' '}
                  <select value={newer ?? ''} onChange={(ev) => setB(Number(ev.target.value))}>
                    {live.map((v) => (
                      <option key={v.version} value={v.version}>
                        v{v.version}
                      </option>
                    ))}
                  </select>
                </label>
                {!values && (
                  <button type="button" className="primary" disabled={reveal.isPending} onClick={() => reveal.mutate()}>
                    Reveal both to compare
                  </button>
                )}
                {values && (
                  <button type="button" onClick={() => setValues(null)}>
                    Hide values
                  </button>
                )}
              </div>
              <p className="hint">
                Revealing decrypts this secret's versions on the server and is recorded in the audit log (<code>secret.reveal_history</code>
                ), once for each time you reveal. The values stay in this page's memory until you hide them or close this dialog.
              </p>
              <ErrorNote error={reveal.error} />
              {older !== null && newer !== null && olderValue !== undefined && newerValue !== undefined && (
                <ValueDiff older={{ version: older, value: olderValue }} newer={{ version: newer, value: newerValue }} />
              )}
            </div>
          ) : (
            <p className="hint">There is one version with a value: nothing to compare yet.</p>
          )}
          <div className="dialog-actions">
            <button type="button" onClick={onClose}>
              Close
            </button>
          </div>
        </>
      )}
    </Dialog>
  )
}
