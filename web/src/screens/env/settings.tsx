import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, changesApi, type Environment, keys } from '../../api.js'
import { ErrorNote, Loading } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { invalidateProject } from './invalidate.js'

/**
 * Who may see an environment's values: its restriction (project admins), its seal and its
 * protection (workspace Owners and Admins) and the grants on it (project admins). The server decides; a refusal is
 * shown as it comes.
 */
export function AccessSettings({
  workspace,
  project,
  environment,
  onClose,
}: {
  workspace: string
  project: string
  environment: Environment
  onClose: () => void
}) {
  const qc = useQueryClient()
  const e = environment.slug
  const refresh = () => invalidateProject(qc, workspace, project)
  const restrict = useMutation({ mutationFn: (v: boolean) => api.restrict(workspace, project, e, v), onSuccess: refresh })
  const seal = useMutation({ mutationFn: (v: boolean) => api.seal(workspace, project, e, v), onSuccess: refresh })
  const [approvals, setApprovals] = useState(Math.max(environment.changeApprovals, 1))
  const protect = useMutation({ mutationFn: (n: number) => changesApi.protect(workspace, project, e, n), onSuccess: refresh })
  return (
    <Dialog title={`Access to ${environment.name}`} onClose={onClose} wide>
      <section className="setting">
        <div>
          <h3>Restricted {environment.restricted ? <span className="badge warn">on</span> : <span className="badge">off</span>}</h3>
          <p className="hint">
            Developers list the keys of a restricted environment but reveal or write values only with a grant below. Project admins change
            this.
          </p>
        </div>
        <button type="button" disabled={restrict.isPending} onClick={() => restrict.mutate(!environment.restricted)}>
          {environment.restricted ? 'Lift the restriction' : 'Restrict'}
        </button>
      </section>
      <ErrorNote error={restrict.error} />
      <section className="setting">
        <div>
          <h3>Sealed {environment.sealed ? <span className="badge danger">on</span> : <span className="badge">off</span>}</h3>
          <p className="hint">
            In a sealed environment, people reveal or write values only through a break-glass grant approved by other Owners or Admins.
            Workspace Owners and Admins seal and unseal.
          </p>
        </div>
        <button
          type="button"
          className={environment.sealed ? undefined : 'danger'}
          disabled={seal.isPending}
          onClick={() => seal.mutate(!environment.sealed)}
        >
          {environment.sealed ? 'Unseal' : 'Seal'}
        </button>
      </section>
      <ErrorNote error={seal.error} />
      <section className="setting">
        <div>
          <h3>
            Protected{' '}
            {environment.changeApprovals > 0 ? (
              <span className="badge warn">{environment.changeApprovals} approval(s)</span>
            ) : (
              <span className="badge">off</span>
            )}
          </h3>
          <p className="hint">
            In a protected environment every write becomes a change request that other Owners or Admins approve before it is applied.
            Workspace Owners and Admins protect.
          </p>
          {environment.changeApprovals === 0 && (
            <label className="check inline protect-approvals">
              Approvals needed{' '}
              <input
                type="number"
                min={1}
                max={10}
                value={approvals}
                onChange={(ev) => setApprovals(Number(ev.target.value))}
                aria-label="Approvals each change request needs"
              />
            </label>
          )}
        </div>
        <button type="button" disabled={protect.isPending} onClick={() => protect.mutate(environment.changeApprovals > 0 ? 0 : approvals)}>
          {environment.changeApprovals > 0 ? 'Lift the protection' : 'Protect'}
        </button>
      </section>
      <ErrorNote error={protect.error} />
      <Grants workspace={workspace} project={project} environment={environment} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  )
}

function Grants({ workspace, project, environment }: { workspace: string; project: string; environment: Environment }) {
  const qc = useQueryClient()
  const e = environment.slug
  const grants = useQuery({ queryKey: keys.grants(workspace, project, e), queryFn: () => api.grants(workspace, project, e) })
  const members = useQuery({ queryKey: keys.projectMembers(workspace, project), queryFn: () => api.projectMembers(workspace, project) })
  const [user, setUser] = useState('')
  const [access, setAccess] = useState<'read' | 'write'>('read')
  const refresh = () => qc.invalidateQueries({ queryKey: keys.grants(workspace, project, e) })
  const grant = useMutation({ mutationFn: () => api.setGrant(workspace, project, e, user, access), onSuccess: refresh })
  const remove = useMutation({ mutationFn: (u: string) => api.removeGrant(workspace, project, e, u), onSuccess: refresh })
  const granted = new Set((grants.data?.grants ?? []).map((g) => g.userId))
  const candidates = (members.data?.members ?? []).filter((m) => m.role !== 'admin' && !granted.has(m.userId))
  function submit(ev: FormEvent) {
    ev.preventDefault()
    if (user) grant.mutate()
  }
  return (
    <section className="grants" aria-labelledby="grants-title">
      <h3 id="grants-title">Grants</h3>
      <p className="hint">
        A grant lets a project member reveal (read) or also write the values of this environment. Project admins manage them.
      </p>
      {grants.isPending && <Loading label="Loading grants…" />}
      <ErrorNote error={grants.error} />
      {grants.data &&
        (grants.data.grants.length === 0 ? (
          <p className="muted">No grant.</p>
        ) : (
          <ul className="grant-list">
            {grants.data.grants.map((g) => (
              <li key={g.userId}>
                <span className="email">{g.email}</span>
                <span className="badge">{g.access}</span>
                <button
                  type="button"
                  className="link"
                  aria-label={`Remove the grant of ${g.email}`}
                  onClick={() => remove.mutate(g.userId)}
                >
                  Remove
                </button>
              </li>
            ))}
          </ul>
        ))}
      <ErrorNote error={remove.error} />
      {grants.data && (
        <form className="grant-form" onSubmit={submit}>
          <select aria-label="Project member" value={user} onChange={(ev) => setUser(ev.target.value)}>
            <option value="">Choose a project member…</option>
            {candidates.map((m) => (
              <option key={m.userId} value={m.userId}>
                {m.email} ({m.role})
              </option>
            ))}
          </select>
          <select aria-label="Access" value={access} onChange={(ev) => setAccess(ev.target.value as 'read' | 'write')}>
            <option value="read">read</option>
            <option value="write">write</option>
          </select>
          <button type="submit" disabled={!user || grant.isPending}>
            Grant
          </button>
        </form>
      )}
      <ErrorNote error={grant.error} />
    </section>
  )
}
