import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useNavigate } from '@tanstack/react-router'
import { api, keys, setCsrfToken, teamApi, teamKeys } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { ROLE_NAMES } from './shown-once.js'
import './team.css'

/**
 * The invitations addressed to the signed-in person's own address, each accepted in one click
 * (the server lists only those of their verified address, never a token). An account whose
 * address an invitation link vouched for is told to open the link instead (the server refuses
 * one-click acceptance for it).
 */
export function PendingInvitations() {
  const qc = useQueryClient()
  const navigate = useNavigate()
  const mine = useQuery({ queryKey: teamKeys.myInvitations, queryFn: teamApi.myInvitations })
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  const accept = useMutation({
    mutationFn: (id: string) => {
      // Also outside a workspace's frame (the "no workspace yet" page), the request carries this session's CSRF token.
      if (account.data) setCsrfToken(account.data.csrfToken)
      return teamApi.acceptMyInvitation(id)
    },
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: keys.account })
      await qc.invalidateQueries({ queryKey: teamKeys.myInvitations })
      await navigate({ to: '/w/$workspace', params: { workspace: r.workspace.slug } })
    },
  })
  const list = mine.data?.invitations ?? []
  if (list.length === 0) return null
  return (
    <section className="invitations-banner" aria-labelledby="pending-invitations-title">
      <h2 id="pending-invitations-title">
        {list.length === 1 ? 'You are invited to a workspace' : `You are invited to ${list.length} workspaces`}
      </h2>
      <ul>
        {list.map((i) => (
          <li key={i.id}>
            <span>
              <strong>{i.workspace.name}</strong> as {ROLE_NAMES[i.role] ?? i.role}
              {i.project && (
                <>
                  , {i.project.role} of {i.project.name}
                </>
              )}
              {i.invitedBy && <span className="muted"> · invited by {i.invitedBy}</span>}
            </span>
            {mine.data?.oneClick ? (
              <button
                type="button"
                className="primary"
                disabled={accept.isPending}
                onClick={() => accept.mutate(i.id)}
                aria-label={`Accept the invitation to ${i.workspace.name}`}
              >
                Accept
              </button>
            ) : (
              <span className="muted">Open the invitation link you were given to accept.</span>
            )}
          </li>
        ))}
      </ul>
      <ErrorNote error={accept.error} />
    </section>
  )
}
