import { useQuery } from '@tanstack/react-query'
import { Navigate } from '@tanstack/react-router'
import { api, keys } from '../api.js'
import { ErrorNote, Loading } from '../ui/common.js'
import { PendingInvitations } from './team/pending-invitations.js'

/** `/`: the person's first workspace, or what to do without one. */
export function Home() {
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  if (account.isPending) return <Loading label="Loading your workspaces…" />
  if (account.isError) return <ErrorNote error={account.error} />
  const first = account.data.workspaces[0]
  if (first) return <Navigate to="/w/$workspace" params={{ workspace: first.slug }} replace />
  return (
    <main className="standalone">
      <div className="panel">
        <p className="brand">Coffer</p>
        <h1>No workspace yet</h1>
        <PendingInvitations />
        <p>
          You are signed in as <strong>{account.data.user.email}</strong> but belong to no workspace. Ask an Owner or Admin of one to invite
          you, then open the link of the invitation.
        </p>
        <p>
          <a href="/account">Your account</a>
        </p>
      </div>
    </main>
  )
}
