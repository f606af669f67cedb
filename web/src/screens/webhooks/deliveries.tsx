import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type WebhookDeliveryView, type WebhookView, webhookKeys, webhooksApi } from '../../api.js'
import { ErrorNote, Loading } from '../../ui/common.js'
import { dateTime } from '../ops/common.js'

// While a message is still pending, the log is asked for again this often.
const POLL_MS = 1000

const STATE_CLASS: Record<WebhookDeliveryView['status'], string> = { pending: 'warn', delivered: 'ok', failed: 'danger' }

/** What the endpoint last answered: `HTTP 200`, or the error code the attempt ended with. */
function outcome(d: WebhookDeliveryView): string {
  if (d.lastError) return d.lastError
  if (d.lastStatus !== null) return `HTTP ${d.lastStatus}`
  return 'not tried yet'
}

/** The endpoint's newest message, in the list: its state and what the endpoint answered. */
export function LastDelivery({ workspace, hook }: { workspace: string; hook: WebhookView }) {
  const last = useQuery({
    queryKey: webhookKeys.lastDelivery(workspace, hook.id),
    queryFn: () => webhooksApi.deliveries(workspace, hook.id, 1),
    refetchInterval: (q) => (q.state.data?.deliveries[0]?.status === 'pending' ? POLL_MS : false),
  })
  if (last.isPending) return <span className="muted">…</span>
  if (last.isError) return <ErrorNote error={last.error} />
  const d = last.data.deliveries[0]
  if (!d) return <span className="muted">none yet</span>
  return (
    <span className="wh-last">
      <span className={`badge ${STATE_CLASS[d.status]}`}>{d.status}</span> <span className="mono">{outcome(d)}</span>
      <span className="wh-why">
        {d.event} · <span className="wh-nowrap">{dateTime(d.lastAttemptAt ?? d.createdAt)}</span>
      </span>
    </span>
  )
}

/**
 * One endpoint's messages, newest first: state, what the endpoint answered, latency, attempts
 * and the next attempt; "Redeliver" sends one again with the same webhook-id. The payloads
 * name keys and versions, never values.
 */
export function DeliveryLog({ workspace, hook, onClose }: { workspace: string; hook: WebhookView; onClose: () => void }) {
  const qc = useQueryClient()
  const log = useQuery({
    queryKey: webhookKeys.deliveries(workspace, hook.id),
    queryFn: () => webhooksApi.deliveries(workspace, hook.id),
    refetchInterval: (q) => (q.state.data?.deliveries.some((d) => d.status === 'pending') ? POLL_MS : false),
  })
  const redeliver = useMutation({
    mutationFn: (id: string) => webhooksApi.redeliver(workspace, id),
    onSuccess: () => qc.invalidateQueries({ queryKey: webhookKeys.webhooks(workspace) }),
  })
  const deliveries = log.data?.deliveries ?? []
  return (
    <section className="panel ops-section wh-log" aria-labelledby="wh-log-title">
      <header className="wh-log-head">
        <div>
          <h2 id="wh-log-title">Delivery log</h2>
          <p className="muted">
            <code>{hook.url}</code> — the newest 50 messages. A failed attempt is retried over about a day; a message keeps its webhook-id
            on every retry and redelivery, so receivers can deduplicate.
          </p>
        </div>
        <div className="actions">
          <button type="button" onClick={() => void log.refetch()} disabled={log.isFetching}>
            Refresh
          </button>
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </header>
      {log.isPending && <Loading label="Loading deliveries…" />}
      <ErrorNote error={log.error ?? redeliver.error} />
      {log.data && deliveries.length === 0 && <p className="muted">No message yet. Send a test to see one.</p>}
      {deliveries.length > 0 && (
        <table className="table compact wh-deliveries" aria-label={`Deliveries to ${hook.url}`}>
          <thead>
            <tr>
              <th scope="col">Message</th>
              <th scope="col">Event</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
              <th scope="col">Last answer</th>
              <th scope="col">Latency</th>
              <th scope="col">Attempts</th>
              <th scope="col">Next attempt</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {deliveries.map((d) => (
              <tr key={d.id}>
                <td>
                  <code title={d.id}>{d.id.slice(0, 12)}…</code>
                </td>
                <td>
                  <code>{d.event}</code>
                </td>
                <td className="muted wh-nowrap">{dateTime(d.createdAt)}</td>
                <td>
                  <span className={`badge ${STATE_CLASS[d.status]}`}>{d.status}</span>
                </td>
                <td className="mono">{outcome(d)}</td>
                <td>{d.lastLatencyMs === null ? '—' : `${d.lastLatencyMs} ms`}</td>
                <td>{d.attempts}</td>
                <td className="muted wh-nowrap">{d.nextAttemptAt && d.status === 'pending' ? dateTime(d.nextAttemptAt) : '—'}</td>
                <td>
                  <div className="actions-cell">
                    <button type="button" disabled={redeliver.isPending || d.status === 'pending'} onClick={() => redeliver.mutate(d.id)}>
                      Redeliver<span className="visually-hidden"> message {d.id}</span>
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
