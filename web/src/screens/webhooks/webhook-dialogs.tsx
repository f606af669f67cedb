import { useMutation, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { type WebhookView, webhookKeys, webhooksApi } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { WEBHOOK_EVENTS, type WebhookEvent } from './events.js'
import type { ShownSecret } from './webhooks.js'

// The answers below carry a signing secret: the mutations are forgotten as soon as their
// dialog closes (gcTime 0), so the secret lives only in the shown-once dialog's memory.

/** A new endpoint: its URL and the events it gets; the answer's signing secret is shown once. */
export function CreateWebhook({
  workspace,
  onClose,
  onCreated,
}: {
  workspace: string
  onClose: () => void
  onCreated: (s: ShownSecret) => void
}) {
  const qc = useQueryClient()
  const [url, setUrl] = useState('https://')
  const [description, setDescription] = useState('')
  const [events, setEvents] = useState<ReadonlySet<WebhookEvent>>(new Set(['secret.created', 'secret.updated', 'secret.deleted']))
  const create = useMutation({
    gcTime: 0,
    mutationFn: () =>
      webhooksApi.create(workspace, {
        url: url.trim(),
        events: WEBHOOK_EVENTS.map((e) => e.name).filter((e) => events.has(e)),
        ...(description.trim() ? { description: description.trim() } : {}),
      }),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: webhookKeys.webhooks(workspace) })
      onCreated({
        title: `Endpoint ${r.webhook.url}`,
        secret: r.secret,
        note: 'Give it to the receiver to verify the webhook-signature header of each message (Standard Webhooks, HMAC-SHA256). Rotate it from the list if it leaks.',
      })
    },
  })
  function toggle(e: WebhookEvent, on: boolean) {
    setEvents((s) => {
      const next = new Set(s)
      if (on) next.add(e)
      else next.delete(e)
      return next
    })
  }
  function submit(ev: FormEvent) {
    ev.preventDefault()
    create.mutate()
  }
  return (
    <Dialog title="New webhook endpoint" onClose={onClose} wide>
      <form className="form" onSubmit={submit}>
        <label htmlFor="wh-url">URL</label>
        <input
          id="wh-url"
          type="url"
          required
          maxLength={2048}
          value={url}
          onChange={(e) => {
            setUrl(e.target.value)
            // A refusal was about the address typed before.
            if (create.isError) create.reset()
          }}
          aria-describedby="wh-url-hint"
        />
        <p className="hint" id="wh-url-hint">
          Checked when saved and on every delivery: private, loopback and metadata addresses are refused unless the server’s outbound
          allow-list has them. Redirects are not followed.
        </p>
        <label htmlFor="wh-description">
          Description <span className="hint">optional</span>
        </label>
        <input id="wh-description" maxLength={500} value={description} onChange={(e) => setDescription(e.target.value)} />
        <fieldset className="wh-event-picker">
          <legend>Events</legend>
          <div className="wh-event-grid">
            {WEBHOOK_EVENTS.map((e) => (
              <label key={e.name} className="check">
                <input type="checkbox" checked={events.has(e.name)} onChange={(ev) => toggle(e.name, ev.target.checked)} />
                <span>
                  <code>{e.name}</code> <span className="hint">{e.what}</span>
                </span>
              </label>
            ))}
          </div>
          <p className="hint">
            <code>webhook.test</code> is sent by “Send test” whatever you choose here.
          </p>
        </fieldset>
        <ErrorNote error={create.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending || events.size === 0}>
            Create endpoint
          </button>
        </div>
      </form>
    </Dialog>
  )
}

/** A new signing secret, shown once; the previous one keeps signing beside it for the overlap. */
export function RotateSecret({
  workspace,
  hook,
  onClose,
  onRotated,
}: {
  workspace: string
  hook: WebhookView
  onClose: () => void
  onRotated: (s: ShownSecret) => void
}) {
  const qc = useQueryClient()
  const [hours, setHours] = useState(24)
  const rotate = useMutation({
    gcTime: 0,
    mutationFn: () => webhooksApi.rotateSecret(workspace, hook.id, hours),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: webhookKeys.webhooks(workspace) })
      onRotated({
        title: `New signing secret for ${r.webhook.url}`,
        secret: r.secret,
        note:
          hours > 0
            ? `Until ${r.webhook.previousSecretUntil?.slice(0, 16).replace('T', ' ') ?? 'the overlap ends'} UTC each message carries two signatures, one with this secret and one with the previous: switch the receiver to this one before then.`
            : 'The previous secret no longer signs: messages carry only this one now.',
      })
    },
  })
  return (
    <Dialog title={`Rotate the signing secret of ${hook.url}?`} onClose={onClose}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault()
          rotate.mutate()
        }}
      >
        <p>
          A new secret (version {hook.secretVersion + 1}) is made and shown once. During the overlap every message is signed with both the
          new and the previous secret (two signatures in <code>webhook-signature</code>), so the receiver can switch without losing a
          message. An overlap of 0 ends the previous secret at once.
        </p>
        <label htmlFor="wh-overlap">Overlap (hours, 0–168)</label>
        <input
          id="wh-overlap"
          type="number"
          min={0}
          max={168}
          step={1}
          required
          value={hours}
          onChange={(e) => setHours(Number(e.target.value))}
        />
        <ErrorNote error={rotate.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={rotate.isPending}>
            Rotate secret
          </button>
        </div>
      </form>
    </Dialog>
  )
}

/** Deleting an endpoint deletes its delivery log; nothing more is sent to it. */
export function DeleteWebhook({
  workspace,
  hook,
  onClose,
  onDeleted,
}: {
  workspace: string
  hook: WebhookView
  onClose: () => void
  onDeleted: () => void
}) {
  const qc = useQueryClient()
  const remove = useMutation({
    mutationFn: () => webhooksApi.remove(workspace, hook.id),
    onSuccess: async () => {
      // Out of the list first, so nothing asks for the deleted endpoint's log (a 404) again.
      qc.setQueryData<{ webhooks: WebhookView[] }>(webhookKeys.webhooks(workspace), (d) =>
        d ? { webhooks: d.webhooks.filter((w) => w.id !== hook.id) } : d,
      )
      onDeleted()
      qc.removeQueries({ queryKey: webhookKeys.deliveries(workspace, hook.id) })
      qc.removeQueries({ queryKey: webhookKeys.lastDelivery(workspace, hook.id) })
      await qc.invalidateQueries({ queryKey: webhookKeys.webhooks(workspace), exact: true })
    },
  })
  return (
    <Dialog title="Delete this endpoint?" onClose={onClose}>
      <p>
        <code className="wh-break">{hook.url}</code> gets no more messages, and its delivery log is deleted with it. This cannot be undone;
        the deletion is in the audit log.
      </p>
      <ErrorNote error={remove.error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
          Delete endpoint
        </button>
      </div>
    </Dialog>
  )
}
