import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useEffect, useState } from 'react'
import { api, type BreakGlassRequest, keys, opsApi, opsKeys } from '../../api.js'
import { ErrorNote, isNotFound, Loading } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { NotFound } from '../not-found.js'
import { dateTime, OpsHeader, remaining, useMe, useNow, useWorkspaceParam } from './common.js'

const STATUS_CLASS: Record<BreakGlassRequest['status'], string> = {
  pending: 'warn',
  active: 'danger',
  expired: '',
  denied: '',
  revoked: '',
}

export function BreakGlassRoute() {
  return <BreakGlassScreen workspace={useWorkspaceParam()} />
}

/** Break-glass: requests and their approvals, active grants with a countdown, asking for access. */
export function BreakGlassScreen({ workspace }: { workspace: string }) {
  const { user, role } = useMe(workspace)
  const list = useQuery({ queryKey: opsKeys.breakGlass(workspace), queryFn: () => opsApi.breakGlass(workspace) })
  const [asking, setAsking] = useState(false)
  const [deciding, setDeciding] = useState<{ request: BreakGlassRequest; decision: 'approve' | 'deny' } | null>(null)
  const [status, setStatus] = useState<'all' | BreakGlassRequest['status']>('all')
  const now = useNow()
  const qc = useQueryClient()
  const revoke = useMutation({
    mutationFn: (id: string) => opsApi.revokeBreakGlass(workspace, id),
    onSettled: () => qc.invalidateQueries({ queryKey: opsKeys.breakGlass(workspace) }),
  })

  const requests = list.data?.requests ?? []
  const active = requests.filter((r) => r.status === 'active')
  // A grant whose time is up is ended by the server: ask again once the countdown reaches zero.
  const ended = active.some((r) => r.expiresAt && Date.parse(r.expiresAt) <= now)
  useEffect(() => {
    if (ended) void qc.invalidateQueries({ queryKey: opsKeys.breakGlass(workspace) })
  }, [ended, qc, workspace])

  if (list.isError && isNotFound(list.error)) return <NotFound />
  const mayAct = role === 'owner' || role === 'admin'
  const shown = status === 'all' ? requests : requests.filter((r) => r.status === status)

  return (
    <>
      <OpsHeader
        title="Break-glass"
        subtitle="Sealed environments open to people only through a time-bound grant that other Owners or Admins approve. Every step is audited."
        actions={
          mayAct && (
            <button type="button" className="primary" onClick={() => setAsking(true)}>
              Request access
            </button>
          )
        }
      />
      {list.isPending && <Loading label="Loading requests…" />}
      <ErrorNote error={list.error} />
      <ErrorNote error={revoke.error} />
      <h2 className="section-title">Active grants</h2>
      {active.length === 0 ? (
        <p className="muted">No grant is active.</p>
      ) : (
        <table className="table ops-table" aria-label="Active grants">
          <thead>
            <tr>
              <th scope="col">Who</th>
              <th scope="col">Environment</th>
              <th scope="col">Access</th>
              <th scope="col">Reason</th>
              <th scope="col">Ends in</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {active.map((r) => (
              <tr key={r.id}>
                <td>{r.requester.email}</td>
                <td>
                  <code>
                    {r.project.slug}/{r.environment.slug}
                  </code>
                </td>
                <td>{r.access}</td>
                <td className="bg-reason">{r.reason}</td>
                <td className="countdown">
                  <span role="timer" aria-label={`Time left for ${r.requester.email}`}>
                    {r.expiresAt ? remaining(Date.parse(r.expiresAt) - now) : '—'}
                  </span>
                  {r.expiresAt && <span className="muted"> (until {dateTime(r.expiresAt)})</span>}
                </td>
                <td className="row-actions">
                  {(r.requester.id === user?.id || role === 'owner') && (
                    <button type="button" onClick={() => revoke.mutate(r.id)} disabled={revoke.isPending}>
                      End now
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="toolbar bg-toolbar">
        <h2 className="section-title">Requests</h2>
        <label className="filter">
          <span className="visually-hidden">Show requests by status</span>
          <select value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="all">All</option>
            <option value="pending">Pending</option>
            <option value="active">Active</option>
            <option value="expired">Expired</option>
            <option value="denied">Denied</option>
            <option value="revoked">Revoked</option>
          </select>
        </label>
      </div>
      {list.data && shown.length === 0 ? (
        <div className="panel empty">
          <p>No request{status === 'all' ? ' yet' : ` is ${status}`}.</p>
        </div>
      ) : (
        list.data && (
          <table className="table ops-table" aria-label="Break-glass requests">
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col">Who</th>
                <th scope="col">Environment</th>
                <th scope="col">Reason</th>
                <th scope="col">Duration</th>
                <th scope="col">Approvals</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => {
                const mine = r.requester.id === user?.id
                const decided = r.decisions.some((d) => d.user.id === user?.id)
                return (
                  <tr key={r.id}>
                    <td className="muted">{dateTime(r.createdAt)}</td>
                    <td>{r.requester.email}</td>
                    <td>
                      <code>
                        {r.project.slug}/{r.environment.slug}
                      </code>{' '}
                      <span className="muted">{r.access}</span>
                    </td>
                    <td className="bg-reason">
                      {r.reason}
                      {r.decisions.map((d) => (
                        <span key={d.user.id} className="bg-decision">
                          {d.decision === 'approve' ? 'Approved' : 'Denied'} by {d.user.email}
                          {d.comment ? `: ${d.comment}` : ''}
                        </span>
                      ))}
                    </td>
                    <td>{r.durationMinutes} min</td>
                    <td>
                      {r.approvals}/{r.approvalsRequired}
                    </td>
                    <td>
                      <span className={`badge ${STATUS_CLASS[r.status]}`}>{r.status}</span>
                    </td>
                    <td className="row-actions">
                      {r.status === 'pending' && mayAct && !mine && !decided && (
                        <>
                          <button type="button" onClick={() => setDeciding({ request: r, decision: 'approve' })}>
                            Approve<span className="visually-hidden"> the request of {r.requester.email}</span>
                          </button>
                          <button type="button" onClick={() => setDeciding({ request: r, decision: 'deny' })}>
                            Deny<span className="visually-hidden"> the request of {r.requester.email}</span>
                          </button>
                        </>
                      )}
                      {r.status === 'pending' && mine && (
                        <>
                          <span className="muted">awaiting others</span>
                          <button type="button" onClick={() => revoke.mutate(r.id)} disabled={revoke.isPending}>
                            Withdraw
                          </button>
                        </>
                      )}
                      {r.status === 'pending' && decided && !mine && <span className="muted">you decided</span>}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        )
      )}
      {asking && <RequestDialog workspace={workspace} onClose={() => setAsking(false)} />}
      {deciding && (
        <DecideDialog workspace={workspace} request={deciding.request} decision={deciding.decision} onClose={() => setDeciding(null)} />
      )}
    </>
  )
}

function RequestDialog({ workspace, onClose }: { workspace: string; onClose: () => void }) {
  const qc = useQueryClient()
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const [project, setProject] = useState('')
  const chosen = project || projects.data?.projects[0]?.slug || ''
  const detail = useQuery({
    queryKey: keys.project(workspace, chosen),
    queryFn: () => api.project(workspace, chosen),
    enabled: chosen !== '',
  })
  const envs = [...(detail.data?.environments ?? [])].sort((a, b) => Number(b.sealed) - Number(a.sealed))
  const [environment, setEnvironment] = useState('')
  const env = environment && envs.some((e) => e.slug === environment) ? environment : (envs[0]?.slug ?? '')
  const [access, setAccess] = useState<'read' | 'read-write'>('read')
  const [reason, setReason] = useState('')
  const [minutes, setMinutes] = useState(30)
  const create = useMutation({
    mutationFn: () => opsApi.requestBreakGlass(workspace, { project: chosen, environment: env, access, reason, durationMinutes: minutes }),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: opsKeys.breakGlass(workspace) })
      onClose()
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    create.mutate()
  }
  return (
    <Dialog title="Request break-glass access" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <label htmlFor="bg-project">Project</label>
        <select id="bg-project" value={chosen} onChange={(e) => setProject(e.target.value)} required>
          {(projects.data?.projects ?? []).map((p) => (
            <option key={p.id} value={p.slug}>
              {p.name}
            </option>
          ))}
        </select>
        <label htmlFor="bg-environment">Environment</label>
        <select id="bg-environment" value={env} onChange={(e) => setEnvironment(e.target.value)} required>
          {envs.map((e) => (
            <option key={e.id} value={e.slug}>
              {e.name}
              {e.sealed ? ' (sealed)' : ''}
            </option>
          ))}
        </select>
        <label htmlFor="bg-access">Access</label>
        <select id="bg-access" value={access} onChange={(e) => setAccess(e.target.value as 'read' | 'read-write')}>
          <option value="read">Read values</option>
          <option value="read-write">Read and write values</option>
        </select>
        <label htmlFor="bg-reason">
          Reason <span className="hint">shown to the approvers and kept in the audit log</span>
        </label>
        <textarea id="bg-reason" value={reason} onChange={(e) => setReason(e.target.value)} rows={3} required maxLength={1000} />
        <label htmlFor="bg-minutes">
          Minutes <span className="hint">the grant ends by itself after this</span>
        </label>
        <input
          id="bg-minutes"
          type="number"
          min={1}
          max={1440}
          value={minutes}
          onChange={(e) => setMinutes(Number(e.target.value))}
          required
        />
        <ErrorNote error={create.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending || !chosen || !env}>
            Send request
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function DecideDialog({
  workspace,
  request,
  decision,
  onClose,
}: {
  workspace: string
  request: BreakGlassRequest
  decision: 'approve' | 'deny'
  onClose: () => void
}) {
  const qc = useQueryClient()
  const [comment, setComment] = useState('')
  const decide = useMutation({
    mutationFn: () => opsApi.decideBreakGlass(workspace, request.id, decision, comment.trim() || undefined),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: opsKeys.breakGlass(workspace) })
      onClose()
    },
  })
  const verb = decision === 'approve' ? 'Approve' : 'Deny'
  return (
    <Dialog title={`${verb} ${request.requester.email}'s request?`} onClose={onClose}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault()
          decide.mutate()
        }}
      >
        <p className="bg-summary">
          {request.access} access to{' '}
          <code>
            {request.project.slug}/{request.environment.slug}
          </code>{' '}
          for {request.durationMinutes} minutes. Reason: <span className="bg-reason">{request.reason}</span>
        </p>
        <label htmlFor="bg-comment">
          Comment <span className="hint">optional, kept in the audit log</span>
        </label>
        <input id="bg-comment" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={500} />
        <ErrorNote error={decide.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className={decision === 'approve' ? 'primary' : 'danger'} disabled={decide.isPending}>
            {verb}
          </button>
        </div>
      </form>
    </Dialog>
  )
}
