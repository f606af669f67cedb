import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { ApiError, type WebhookView, webhookKeys, webhooksApi } from '../../api.js'
import { ErrorNote, isNotFound, Loading } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { PlusIcon } from '../../ui/icons.js'
import { dateTime, OpsHeader, useMe, useWorkspaceParam } from '../ops/common.js'
import { NotFound } from '../not-found.js'
import { managesWorkspace, ShownOnce } from '../team/shown-once.js'
import { DeliveryLog, LastDelivery } from './deliveries.js'
import { CreateWebhook, DeleteWebhook, RotateSecret } from './webhook-dialogs.js'
import './webhooks.css'
import '../team/team.css'

export function WebhooksRoute() {
  return <WebhooksScreen workspace={useWorkspaceParam()} />
}

/** A signing secret the server answered: shown in this dialog only, then forgotten. */
export interface ShownSecret {
  title: string
  secret: string
  note: string
}

/**
 * The workspace's webhook endpoints (Owners and Admins): their events, whether they are
 * enabled (and why not), the last delivery; create (the signing secret shown once), rotate
 * the secret, enable, send a test, delete, and each endpoint's delivery log with redelivery.
 */
export function WebhooksScreen({ workspace }: { workspace: string }) {
  const { role, workspace: ws } = useMe(workspace)
  const allowed = managesWorkspace(role)
  const list = useQuery({ queryKey: webhookKeys.webhooks(workspace), queryFn: () => webhooksApi.list(workspace), enabled: allowed })
  const [creating, setCreating] = useState(false)
  const [rotating, setRotating] = useState<WebhookView | null>(null)
  const [deleting, setDeleting] = useState<WebhookView | null>(null)
  const [shown, setShown] = useState<ShownSecret | null>(null)
  const [open, setOpen] = useState<string | null>(null)

  if (list.isError && isNotFound(list.error)) return <NotFound />
  const header = (
    <OpsHeader
      title="Webhooks"
      subtitle="Coffer POSTs a signed JSON message to each endpoint when one of its events happens. Messages name projects, keys, versions and people — never a secret value."
      actions={
        allowed && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            <PlusIcon /> New endpoint
          </button>
        )
      }
    />
  )
  // Only Owners and Admins: the API refuses the others (403), and the screen says so plainly.
  const refused = list.error instanceof ApiError && list.error.status === 403
  if ((ws && !allowed) || refused) {
    return (
      <>
        {header}
        <div className="panel empty" role="alert">
          <h2>Not allowed</h2>
          <p>Webhooks are managed by the workspace’s Owners and Admins. Ask one of them to add or change an endpoint.</p>
          {refused && <p className="code">{(list.error as ApiError).code}</p>}
        </div>
      </>
    )
  }
  const hooks = list.data?.webhooks ?? []
  const current = hooks.find((h) => h.id === open)
  return (
    <>
      {header}
      {list.isPending && <Loading label="Loading webhooks…" />}
      <ErrorNote error={list.error} />
      {list.data && hooks.length === 0 && (
        <div className="panel empty">
          <h2>No endpoints yet</h2>
          <p>Add one to tell CI, chat or an incident tool when secrets, keys or members change.</p>
        </div>
      )}
      {hooks.length > 0 && (
        <table className="table ops-table wh-table" aria-label="Webhook endpoints">
          <thead>
            <tr>
              <th scope="col">Endpoint</th>
              <th scope="col">Events</th>
              <th scope="col">State</th>
              <th scope="col">Last delivery</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {hooks.map((h) => (
              <EndpointRow
                key={h.id}
                workspace={workspace}
                hook={h}
                open={open === h.id}
                onOpen={() => setOpen(open === h.id ? null : h.id)}
                onTested={() => setOpen(h.id)}
                onRotate={() => setRotating(h)}
                onDelete={() => setDeleting(h)}
              />
            ))}
          </tbody>
        </table>
      )}
      {current && <DeliveryLog workspace={workspace} hook={current} onClose={() => setOpen(null)} />}
      {creating && (
        <CreateWebhook
          workspace={workspace}
          onClose={() => setCreating(false)}
          onCreated={(s) => {
            setCreating(false)
            setShown(s)
          }}
        />
      )}
      {rotating && (
        <RotateSecret
          workspace={workspace}
          hook={rotating}
          onClose={() => setRotating(null)}
          onRotated={(s) => {
            setRotating(null)
            setShown(s)
          }}
        />
      )}
      {deleting && (
        <DeleteWebhook
          workspace={workspace}
          hook={deleting}
          onClose={() => setDeleting(null)}
          onDeleted={() => {
            if (open === deleting.id) setOpen(null)
            setDeleting(null)
          }}
        />
      )}
      {shown && (
        <Dialog title={shown.title} onClose={() => setShown(null)}>
          <p className="once-note" role="status">
            Copy the signing secret now: it is shown only this once. Coffer keeps it only encrypted.
          </p>
          <ShownOnce id="webhook-secret" label="Signing secret" value={shown.secret} />
          <p className="muted">{shown.note}</p>
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={() => setShown(null)}>
              Done
            </button>
          </div>
        </Dialog>
      )}
    </>
  )
}

function EndpointRow({
  workspace,
  hook,
  open,
  onOpen,
  onTested,
  onRotate,
  onDelete,
}: {
  workspace: string
  hook: WebhookView
  open: boolean
  onOpen: () => void
  onTested: () => void
  onRotate: () => void
  onDelete: () => void
}) {
  const qc = useQueryClient()
  const refresh = () => qc.invalidateQueries({ queryKey: webhookKeys.webhooks(workspace) })
  const enable = useMutation({ mutationFn: () => webhooksApi.enable(workspace, hook.id), onSuccess: refresh })
  const test = useMutation({
    mutationFn: () => webhooksApi.test(workspace, hook.id),
    onSuccess: async () => {
      onTested()
      await refresh()
    },
  })
  const error = enable.error ?? test.error
  return (
    <>
      <tr>
        <td className="wh-url">
          <code>{hook.url}</code>
          {hook.description && <span className="muted wh-description">{hook.description}</span>}
          <span className="wh-why">
            signing secret v{hook.secretVersion}
            {hook.previousSecretUntil && hook.previousSecretUntil > new Date().toISOString()
              ? ` · the previous one signs too until ${dateTime(hook.previousSecretUntil)}`
              : ''}
          </span>
        </td>
        <td>
          <ul className="wh-events" aria-label={`Events of ${hook.url}`}>
            {hook.events.map((e) => (
              <li key={e}>
                <code>{e}</code>
              </li>
            ))}
          </ul>
        </td>
        <td className="wh-state">
          {hook.enabled ? (
            <span className="badge ok">enabled</span>
          ) : (
            <>
              <span className="badge danger">disabled</span>
              <span className="wh-why">{hook.disabledReason ?? (hook.disabledAt ? `since ${dateTime(hook.disabledAt)}` : '')}</span>
            </>
          )}
          {hook.enabled && hook.failingSince && <span className="wh-why warn-text">failing since {dateTime(hook.failingSince)}</span>}
        </td>
        <td>
          <LastDelivery workspace={workspace} hook={hook} />
        </td>
        <td>
          <div className="actions-cell wh-actions">
            <button type="button" aria-expanded={open} onClick={onOpen}>
              {open ? 'Hide log' : 'Deliveries'}
              <span className="visually-hidden"> of {hook.url}</span>
            </button>
            {hook.enabled ? (
              <button type="button" disabled={test.isPending} onClick={() => test.mutate()}>
                Send test<span className="visually-hidden"> to {hook.url}</span>
              </button>
            ) : (
              <button type="button" className="primary" disabled={enable.isPending} onClick={() => enable.mutate()}>
                Enable<span className="visually-hidden"> {hook.url}</span>
              </button>
            )}
            <button type="button" onClick={onRotate}>
              Rotate secret<span className="visually-hidden"> of {hook.url}</span>
            </button>
            <button type="button" className="danger" onClick={onDelete}>
              Delete<span className="visually-hidden"> {hook.url}</span>
            </button>
          </div>
        </td>
      </tr>
      {error !== null && (
        <tr className="ops-subrow">
          <td colSpan={5}>
            <ErrorNote error={error} />
          </td>
        </tr>
      )}
    </>
  )
}
