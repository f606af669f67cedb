import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import type { ConnectionView } from '../../../../src/api/connections.js'
import { connectionsApi, connectionsKey } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { dateTime, OpsHeader, useMe, useWorkspaceParam } from './common.js'

export function ConnectionsRoute() {
  return <ConnectionsScreen workspace={useWorkspaceParam()} />
}

type LinkState = ConnectionView['app']

function LinkCell({ link, none }: { link: LinkState; none: string }) {
  if (!link) return <span className="muted">{none}</span>
  if (link.status === 'needs_reconnect') return <span className="badge warn">needs re-connecting</span>
  return (
    <span>
      <span className="badge ok">connected</span>{' '}
      <span className="muted">{link.expiresAt ? `until ${dateTime(link.expiresAt)}` : `since ${dateTime(link.linkedAt)}`}</span>
    </span>
  )
}

/**
 * The workspace's third-party OAuth connections: each one's API base and allow-list, the state
 * of the app's token and of your own link (never a token). Linking sends the browser to the
 * provider and back to Coffer's callback; Owners and Admins connect the app and delete.
 * Connections are made with the CLI or the API (the client secret never passes through here).
 */
export function ConnectionsScreen({ workspace }: { workspace: string }) {
  const { role } = useMe(workspace)
  const admin = role === 'owner' || role === 'admin'
  const qc = useQueryClient()
  const list = useQuery({ queryKey: connectionsKey(workspace), queryFn: () => connectionsApi.list(workspace) })
  const authorize = useMutation({
    mutationFn: (v: { id: string; kind: 'app' | 'personal' }) => connectionsApi.authorize(workspace, v.id, v.kind),
    onSuccess: (r) => window.location.assign(r.url),
  })
  const unlink = useMutation({
    mutationFn: (id: string) => connectionsApi.unlink(workspace, id),
    onSuccess: () => qc.invalidateQueries({ queryKey: connectionsKey(workspace) }),
  })
  const remove = useMutation({
    mutationFn: (id: string) => connectionsApi.remove(workspace, id),
    onSuccess: () => qc.invalidateQueries({ queryKey: connectionsKey(workspace) }),
  })
  const rows = list.data?.connections ?? []
  return (
    <>
      <OpsHeader
        title="Connections"
        subtitle="Third-party apps this workspace uses through Coffer's relay. Their tokens stay sealed in Coffer; nobody sees them."
      />
      <ErrorNote error={list.error ?? authorize.error ?? unlink.error ?? remove.error} />
      <section className="panel ops-section" aria-labelledby="connections-title">
        <h2 id="connections-title">Connections</h2>
        {list.isSuccess && rows.length === 0 && (
          <p className="muted">
            No connections yet. An Owner or Admin adds one with <code>coffer connections create</code> (docs/connections.md).
          </p>
        )}
        {rows.length > 0 && (
          <table className="table ops-table" aria-label="Connections">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">API</th>
                <th scope="col">Allowed</th>
                <th scope="col">App token</th>
                <th scope="col">Your link</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={c.id} data-connection={c.name}>
                  <th scope="row">{c.name}</th>
                  <td>
                    <code>{c.apiBase}</code>
                  </td>
                  <td>
                    {c.allow.map((r) => (
                      <span key={r}>
                        <code>{r}</code>{' '}
                      </span>
                    ))}
                  </td>
                  <td>
                    <LinkCell link={c.app} none="not connected" />
                  </td>
                  <td>
                    <LinkCell link={c.personal} none="not linked" />
                  </td>
                  <td className="actions">
                    <button type="button" onClick={() => authorize.mutate({ id: c.id, kind: 'personal' })} disabled={authorize.isPending}>
                      {c.personal ? `Link ${c.name} again` : `Link my account to ${c.name}`}
                    </button>
                    {c.personal && (
                      <button type="button" onClick={() => unlink.mutate(c.id)} disabled={unlink.isPending}>
                        Unlink {c.name}
                      </button>
                    )}
                    {admin && (
                      <button type="button" onClick={() => authorize.mutate({ id: c.id, kind: 'app' })} disabled={authorize.isPending}>
                        {c.app ? `Reconnect ${c.name} app` : `Connect ${c.name} app`}
                      </button>
                    )}
                    {admin && (
                      <button
                        type="button"
                        className="danger"
                        onClick={() => {
                          if (window.confirm(`Delete ${c.name} and every token it holds?`)) remove.mutate(c.id)
                        }}
                        disabled={remove.isPending}
                      >
                        Delete {c.name}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  )
}
