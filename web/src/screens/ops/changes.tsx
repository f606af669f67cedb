import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { type ChangeRequest, changesApi, changesKeys, keys } from '../../api.js'
import { ErrorNote, isNotFound, Loading } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { NotFound } from '../not-found.js'
import { dateTime, OpsHeader, useMe, useWorkspaceParam } from './common.js'

const STATUS_CLASS: Record<ChangeRequest['status'], string> = {
  pending: 'warn',
  applied: '',
  rejected: '',
  stale: 'danger',
  expired: '',
}

const KIND: Record<ChangeRequest['kind'], string> = {
  set: 'Set',
  bulk: 'Bulk write',
  delete: 'Delete',
  rollback: 'Rollback',
  apply: '.env apply',
  promote: 'Promotion',
}

export function ChangesRoute() {
  return <ChangesScreen workspace={useWorkspaceParam()} />
}

/** One change as text: the key and what happens to it (never a value). */
function changeText(c: ChangeRequest['changes'][number]): string {
  if (c.op === 'delete') return `${c.key} deleted`
  if (c.op === 'rollback') return `${c.key} rolled back to v${c.toVersion}`
  return c.baseVersion === 0 ? `${c.key} added` : `${c.key} changed`
}

/**
 * Change requests of protected environments: pending ones first, with approve and reject for
 * Owners and Admins other than the requester. Keys and versions only; a value is shown only
 * after "Show values", an audited reveal the server allows to those who may reveal there.
 */
export function ChangesScreen({ workspace }: { workspace: string }) {
  const { user, role } = useMe(workspace)
  const list = useQuery({ queryKey: changesKeys.list(workspace), queryFn: () => changesApi.list(workspace) })
  const [status, setStatus] = useState<'all' | ChangeRequest['status']>('pending')
  const [deciding, setDeciding] = useState<{ request: ChangeRequest; decision: 'approve' | 'reject' } | null>(null)
  const [showing, setShowing] = useState<ChangeRequest | null>(null)

  if (list.isError && isNotFound(list.error)) return <NotFound />
  const mayDecide = role === 'owner' || role === 'admin'
  const requests = list.data?.changeRequests ?? []
  const shown = status === 'all' ? requests : requests.filter((r) => r.status === status)

  return (
    <>
      <OpsHeader
        title="Change requests"
        subtitle="Writes to a protected environment wait here until other Owners or Admins approve them; the last approval applies the change in one write, or finds it stale if a key moved since. Values stay sealed."
      />
      {list.isPending && <Loading label="Loading change requests…" />}
      <ErrorNote error={list.error} />
      <div className="toolbar bg-toolbar">
        <h2 className="section-title">{status === 'pending' ? 'Pending' : 'Requests'}</h2>
        <label className="filter">
          <span className="visually-hidden">Show change requests by status</span>
          <select value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="pending">Pending</option>
            <option value="all">All</option>
            <option value="applied">Applied</option>
            <option value="rejected">Rejected</option>
            <option value="stale">Stale</option>
            <option value="expired">Expired</option>
          </select>
        </label>
      </div>
      {list.data && shown.length === 0 ? (
        <div className="panel empty">
          <p>No change request{status === 'all' ? ' yet' : ` is ${status}`}.</p>
        </div>
      ) : (
        list.data && (
          <table className="table ops-table" aria-label="Change requests">
            <thead>
              <tr>
                <th scope="col">Requested</th>
                <th scope="col">Who</th>
                <th scope="col">Environment</th>
                <th scope="col">Change</th>
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
                const who = r.requester.email ?? 'a token'
                return (
                  <tr key={r.id}>
                    <td className="muted">{dateTime(r.createdAt)}</td>
                    <td>{who}</td>
                    <td>
                      <code>
                        {r.project.slug}/{r.environment.slug}
                      </code>
                    </td>
                    <td className="cr-change">
                      <strong>{KIND[r.kind]}</strong>: {r.changes.map(changeText).join(', ')}
                      {r.status === 'pending' && (
                        <button type="button" className="link cr-show" onClick={() => setShowing(r)}>
                          Show values<span className="visually-hidden"> of the request of {who}</span>
                        </button>
                      )}
                      {r.outcome && <span className="bg-decision">{r.outcome}</span>}
                      {r.decisions.map((d) => (
                        <span key={d.user.id} className="bg-decision">
                          {d.decision === 'approve' ? 'Approved' : 'Rejected'} by {d.user.email}
                          {d.comment ? `: ${d.comment}` : ''}
                        </span>
                      ))}
                    </td>
                    <td>
                      {r.approvals}/{r.approvalsRequired}
                    </td>
                    <td>
                      <span className={`badge ${STATUS_CLASS[r.status]}`}>{r.status}</span>
                    </td>
                    <td className="row-actions">
                      {r.status === 'pending' && mayDecide && !mine && !decided && (
                        <>
                          <button type="button" className="primary" onClick={() => setDeciding({ request: r, decision: 'approve' })}>
                            Approve<span className="visually-hidden"> the request of {who}</span>
                          </button>
                          <button type="button" onClick={() => setDeciding({ request: r, decision: 'reject' })}>
                            Reject<span className="visually-hidden"> the request of {who}</span>
                          </button>
                        </>
                      )}
                      {r.status === 'pending' && mine && <span className="muted">awaiting others</span>}
                      {r.status === 'pending' && decided && !mine && <span className="muted">you decided</span>}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        )
      )}
      {deciding && (
        <DecideDialog workspace={workspace} request={deciding.request} decision={deciding.decision} onClose={() => setDeciding(null)} />
      )}
      {showing && <ValuesDialog workspace={workspace} request={showing} onClose={() => setShowing(null)} />}
    </>
  )
}

/** The proposed values: fetched only when opened (an audited reveal), never kept in the list's cache. */
function ValuesDialog({ workspace, request, onClose }: { workspace: string; request: ChangeRequest; onClose: () => void }) {
  const shown = useQuery({
    queryKey: ['change-request-values', workspace, request.id],
    queryFn: () => changesApi.reveal(workspace, request.id),
    gcTime: 0,
    staleTime: 0,
    retry: false,
  })
  return (
    <Dialog title={`Proposed values for ${request.project.slug}/${request.environment.slug}`} onClose={onClose}>
      {shown.isPending && <Loading label="Revealing…" />}
      <ErrorNote error={shown.error} />
      {shown.data && (
        <table className="table" aria-label="Proposed values">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Change</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {shown.data.changeRequest.changes.map((c) => (
              <tr key={c.key}>
                <td>
                  <code>{c.key}</code>
                </td>
                <td>{changeText(c)}</td>
                <td className="mono">{c.value ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
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
  request: ChangeRequest
  decision: 'approve' | 'reject'
  onClose: () => void
}) {
  const qc = useQueryClient()
  const [comment, setComment] = useState('')
  const decide = useMutation({
    mutationFn: () => changesApi.decide(workspace, request.id, decision, comment.trim() || undefined),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: changesKeys.list(workspace) })
      // An applied request changed the environment's secrets.
      if (r.changeRequest.status === 'applied') await qc.invalidateQueries({ queryKey: keys.secrets(workspace, '', '').slice(0, 2) })
      onClose()
    },
  })
  const verb = decision === 'approve' ? 'Approve' : 'Reject'
  const last = decision === 'approve' && request.approvals + 1 >= request.approvalsRequired
  return (
    <Dialog title={`${verb} ${request.requester.email ?? 'this'} change request?`} onClose={onClose}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault()
          decide.mutate()
        }}
      >
        <p className="bg-summary">
          {KIND[request.kind]} in{' '}
          <code>
            {request.project.slug}/{request.environment.slug}
          </code>
          : {request.changes.map(changeText).join(', ')}. {last ? 'Yours is the last approval needed: the change is applied now.' : ''}
        </p>
        <label htmlFor="cr-comment">
          Comment <span className="hint">optional, kept in the audit log</span>
        </label>
        <input id="cr-comment" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={500} />
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
