import { useQuery } from '@tanstack/react-query'
import { Link, Outlet, useLocation, useNavigate } from '@tanstack/react-router'
import { useState } from 'react'
import { api, keys, setCsrfToken } from '../api.js'
import { ErrorNote, Loading } from '../ui/common.js'
import { NotFound } from './not-found.js'
import { PendingInvitations } from './team/pending-invitations.js'

const ROLE: Record<string, string> = { owner: 'Owner', admin: 'Admin', member: 'Member', auditor: 'Auditor' }

/** The frame of every workspace screen: the workspace switcher, navigation, the person, and the screen. */
export function Shell({ workspace }: { workspace: string }) {
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  const navigate = useNavigate()
  // On an operations or team screen, "Projects" (which covers every project path) is not the current one.
  const notProjects = /^\/w\/[^/]+\/(keys|audit|break-glass|changes|settings|members|tokens|webhooks|connections)(\/|$)/.test(
    useLocation({ select: (l) => l.pathname }),
  )
  const [signOutError, setSignOutError] = useState<unknown>(null)

  if (account.isPending) return <Loading label="Loading…" />
  if (account.isError) return <ErrorNote error={account.error} />
  const { user, workspaces } = account.data
  // Every request that changes something carries this session's token.
  setCsrfToken(account.data.csrfToken)
  const current = workspaces.find((w) => w.slug === workspace || w.id === workspace)

  async function signOut() {
    try {
      await api.signOut()
      window.location.assign('/sign-in?notice=signed-out')
    } catch (err) {
      setSignOutError(err)
    }
  }

  return (
    <div className="app">
      <aside className="sidebar">
        <p className="brand">Coffer</p>
        <label className="switcher">
          <span className="label">Workspace</span>
          <select
            value={current?.slug ?? ''}
            onChange={(e) => void navigate({ to: '/w/$workspace', params: { workspace: e.target.value } })}
          >
            {!current && <option value="">—</option>}
            {workspaces.map((w) => (
              <option key={w.id} value={w.slug}>
                {w.name}
              </option>
            ))}
          </select>
        </label>
        {current && (
          <nav aria-label="Workspace" className="nav">
            <Link to="/w/$workspace" params={{ workspace: current.slug }} activeOptions={{ exact: notProjects }}>
              Projects
            </Link>
            {/* Operations: keys, audit and break-glass are for Owners, Admins and Auditors (the API's rules). */}
            {current.role !== 'member' && (
              <>
                <Link to="/w/$workspace/keys" params={{ workspace: current.slug }}>
                  Keys
                </Link>
                <Link to="/w/$workspace/audit" params={{ workspace: current.slug }}>
                  Audit log
                </Link>
                <Link to="/w/$workspace/break-glass" params={{ workspace: current.slug }}>
                  Break-glass
                </Link>
              </>
            )}
            {/* Every member: a Member sees the requests they made, Owners, Admins and Auditors all of them. */}
            <Link to="/w/$workspace/changes" params={{ workspace: current.slug }}>
              Change requests
            </Link>
            <Link to="/w/$workspace/members" params={{ workspace: current.slug }}>
              Members
            </Link>
            <Link to="/w/$workspace/tokens" params={{ workspace: current.slug }}>
              Tokens
            </Link>
            {/* Webhooks: Owners and Admins (webhook.read, webhook.manage). */}
            {(current.role === 'owner' || current.role === 'admin') && (
              <Link to="/w/$workspace/webhooks" params={{ workspace: current.slug }}>
                Webhooks
              </Link>
            )}
            <Link to="/w/$workspace/connections" params={{ workspace: current.slug }}>
              Connections
            </Link>
            <Link to="/w/$workspace/settings" params={{ workspace: current.slug }}>
              Settings
            </Link>
          </nav>
        )}
        <div className="me">
          <p className="email" title={user.email}>
            {user.email}
          </p>
          {current && <p className="role">{ROLE[current.role] ?? current.role}</p>}
          <p className="me-links">
            <a href="/account">Account</a>
            <button type="button" className="link" onClick={() => void signOut()}>
              Sign out
            </button>
          </p>
          <ErrorNote error={signOutError} />
        </div>
      </aside>
      <main className="content">
        <PendingInvitations />
        {current ? <Outlet /> : <NotFound />}
      </main>
    </div>
  )
}
