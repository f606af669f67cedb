import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import {
  api,
  type CreatedInvitation,
  type Invitation,
  keys,
  type Member,
  type ProjectRole,
  type Role,
  teamApi,
  teamKeys,
} from '../../api.js'
import { ErrorNote, isNotFound, Loading, PageHeader, shortDate } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { PlusIcon } from '../../ui/icons.js'
import { NotFound } from '../not-found.js'
import { InvitationIssued, InviteDialog } from './invite-dialog.js'
import { managesWorkspace, ROLE_NAMES } from './shown-once.js'
import './team.css'

const ROLES: Role[] = ['owner', 'admin', 'member', 'auditor']
const PROJECT_ROLES: ProjectRole[] = ['admin', 'developer', 'viewer']

/** Members and their roles, invitations, and project roles. The API decides every rule (last Owner, Admin vs Owner); its refusals show here as text. */
export function MembersScreen({ workspace }: { workspace: string }) {
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  const members = useQuery({ queryKey: teamKeys.members(workspace), queryFn: () => teamApi.members(workspace) })
  const me = account.data?.workspaces.find((w) => w.slug === workspace)
  const admin = managesWorkspace(me?.role)
  const [inviting, setInviting] = useState(false)
  const [issued, setIssued] = useState<CreatedInvitation | null>(null)
  const [removing, setRemoving] = useState<Member | null>(null)
  if (members.isError && isNotFound(members.error)) return <NotFound />
  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[]}
        title="Members"
        subtitle="The people of this workspace, their roles, and who is invited."
        actions={
          admin && (
            <button type="button" className="primary" onClick={() => setInviting(true)}>
              <PlusIcon /> Invite
            </button>
          )
        }
      />
      {members.isPending && <Loading label="Loading members…" />}
      <ErrorNote error={members.error} />
      {members.data && (
        <MemberTable workspace={workspace} members={members.data.members} admin={admin} me={account.data?.user.id} onRemove={setRemoving} />
      )}
      {admin && <Invitations workspace={workspace} onIssued={setIssued} />}
      {admin && members.data && <ProjectRoles workspace={workspace} members={members.data.members} />}
      {inviting && (
        <InviteDialog
          workspace={workspace}
          onClose={() => setInviting(false)}
          onIssued={(c) => {
            setInviting(false)
            setIssued(c)
          }}
        />
      )}
      {issued && <InvitationIssued issued={issued} onClose={() => setIssued(null)} />}
      {removing && <RemoveMember workspace={workspace} member={removing} onClose={() => setRemoving(null)} />}
    </>
  )
}

function MemberTable({
  workspace,
  members,
  admin,
  me,
  onRemove,
}: {
  workspace: string
  members: Member[]
  admin: boolean
  me: string | undefined
  onRemove: (m: Member) => void
}) {
  const qc = useQueryClient()
  const setRole = useMutation({
    mutationFn: (v: { user: string; role: Role }) => teamApi.setRole(workspace, v.user, v.role),
    onSettled: () => qc.invalidateQueries({ queryKey: teamKeys.members(workspace) }),
    onSuccess: (_r, v) => (v.user === me ? qc.invalidateQueries({ queryKey: keys.account }) : undefined),
  })
  return (
    <section className="team-section" aria-labelledby="members-title">
      <header>
        <h2 id="members-title">
          {members.length} {members.length === 1 ? 'member' : 'members'}
        </h2>
      </header>
      <ErrorNote error={setRole.error} />
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">Joined</th>
            {admin && (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr key={m.userId}>
              <td>
                {m.name}
                {m.userId === me && <span className="muted"> (you)</span>}
              </td>
              <td>{m.email}</td>
              <td>
                {admin ? (
                  <select
                    className="inline-select"
                    aria-label={`Role of ${m.email}`}
                    value={m.role}
                    disabled={setRole.isPending}
                    onChange={(e) => setRole.mutate({ user: m.userId, role: e.target.value as Role })}
                  >
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {ROLE_NAMES[r]}
                      </option>
                    ))}
                  </select>
                ) : (
                  ROLE_NAMES[m.role]
                )}
              </td>
              <td className="muted">{shortDate(m.createdAt)}</td>
              {admin && (
                <td>
                  <div className="actions-cell">
                    {m.userId !== me && (
                      <button type="button" className="danger" onClick={() => onRemove(m)} aria-label={`Remove ${m.email}`}>
                        Remove
                      </button>
                    )}
                  </div>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}

function RemoveMember({ workspace, member, onClose }: { workspace: string; member: Member; onClose: () => void }) {
  const qc = useQueryClient()
  const remove = useMutation({
    mutationFn: () => teamApi.removeMember(workspace, member.userId),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: teamKeys.members(workspace) })
      await qc.invalidateQueries({ queryKey: ['project-members', workspace] })
      onClose()
    },
  })
  return (
    <Dialog title={`Remove ${member.email}?`} onClose={onClose}>
      <p>Their workspace role, project roles, grants and personal tokens of this workspace go with them. Their account stays.</p>
      <ErrorNote error={remove.error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
          Remove member
        </button>
      </div>
    </Dialog>
  )
}

const STATE_BADGE: Record<Invitation['state'], string> = {
  pending: 'badge',
  accepted: 'badge ok',
  revoked: 'badge danger',
  expired: 'badge warn',
}

function Invitations({ workspace, onIssued }: { workspace: string; onIssued: (c: CreatedInvitation) => void }) {
  const qc = useQueryClient()
  const invitations = useQuery({ queryKey: teamKeys.invitations(workspace), queryFn: () => teamApi.invitations(workspace) })
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const projectName = (id: string | null) => (id ? (projects.data?.projects.find((p) => p.id === id)?.name ?? 'a deleted project') : '')
  const revoke = useMutation({
    mutationFn: (id: string) => teamApi.revokeInvitation(workspace, id),
    onSettled: () => qc.invalidateQueries({ queryKey: teamKeys.invitations(workspace) }),
  })
  // Re-issuing makes a new invitation for the same address, role and project; the old one stops working.
  const reissue = useMutation({
    mutationFn: (i: Invitation) =>
      teamApi.invite(workspace, {
        email: i.email,
        role: i.role,
        ...(i.projectId && i.projectRole && projects.data?.projects.some((p) => p.id === i.projectId)
          ? { project: i.projectId, projectRole: i.projectRole }
          : {}),
      }),
    onSuccess: (r) => onIssued(r),
    onSettled: () => qc.invalidateQueries({ queryKey: teamKeys.invitations(workspace) }),
  })
  const list = invitations.data?.invitations.filter((i) => i.state !== 'accepted') ?? []
  return (
    <section className="team-section" aria-labelledby="invitations-title">
      <header>
        <div>
          <h2 id="invitations-title">Invitations</h2>
          <p className="muted">Pending, expired and revoked invitations. Accepted ones show up as members.</p>
        </div>
      </header>
      {invitations.isPending && <Loading label="Loading invitations…" />}
      <ErrorNote error={invitations.error ?? revoke.error ?? reissue.error} />
      {invitations.data &&
        (list.length === 0 ? (
          <p className="muted">No open invitations.</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Project</th>
                <th scope="col">State</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((i) => (
                <tr key={i.id}>
                  <td>{i.email}</td>
                  <td>{ROLE_NAMES[i.role]}</td>
                  <td>{i.projectId ? `${projectName(i.projectId)} (${i.projectRole})` : <span className="muted">—</span>}</td>
                  <td>
                    <span className={STATE_BADGE[i.state]}>{i.state}</span>
                  </td>
                  <td className="muted">{shortDate(i.expiresAt)}</td>
                  <td>
                    <div className="actions-cell">
                      <button
                        type="button"
                        onClick={() => reissue.mutate(i)}
                        disabled={reissue.isPending}
                        aria-label={`Re-issue the invitation for ${i.email}`}
                      >
                        Re-issue
                      </button>
                      {i.state === 'pending' && (
                        <button
                          type="button"
                          className="danger"
                          onClick={() => revoke.mutate(i.id)}
                          disabled={revoke.isPending}
                          aria-label={`Revoke the invitation for ${i.email}`}
                        >
                          Revoke
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
    </section>
  )
}

/** Project roles: who holds which role on one project (Owners and Admins are project admins everywhere, without a row). */
function ProjectRoles({ workspace, members }: { workspace: string; members: Member[] }) {
  const qc = useQueryClient()
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const [chosen, setChosen] = useState('')
  const project = chosen || projects.data?.projects[0]?.id || ''
  const roles = useQuery({
    queryKey: teamKeys.projectMembers(workspace, project),
    queryFn: () => teamApi.projectMembers(workspace, project),
    enabled: project !== '',
  })
  const [who, setWho] = useState('')
  const [role, setRole] = useState<ProjectRole>('developer')
  const invalidate = () => qc.invalidateQueries({ queryKey: teamKeys.projectMembers(workspace, project) })
  const set = useMutation({
    mutationFn: (v: { user: string; role: ProjectRole }) => teamApi.setProjectRole(workspace, project, v.user, v.role),
    onSettled: invalidate,
  })
  const remove = useMutation({ mutationFn: (user: string) => teamApi.removeProjectRole(workspace, project, user), onSettled: invalidate })
  if (!projects.data || projects.data.projects.length === 0) return null
  const holders = new Set(roles.data?.members.map((m) => m.userId))
  const candidates = members.filter((m) => !holders.has(m.userId) && m.role === 'member')
  return (
    <section className="team-section" aria-labelledby="project-roles-title">
      <header>
        <div>
          <h2 id="project-roles-title">Project roles</h2>
          <p className="muted">Members see only the projects they hold a role in. Owners and Admins are admins of every project.</p>
        </div>
        <label className="switcher">
          <span className="visually-hidden">Project</span>
          <select value={project} onChange={(e) => setChosen(e.target.value)} aria-label="Project">
            {projects.data.projects.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
      </header>
      <ErrorNote error={roles.error ?? set.error ?? remove.error} />
      {roles.data && (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Project role</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {roles.data.members.length === 0 && (
              <tr>
                <td colSpan={3} className="muted">
                  Nobody holds a role on this project yet.
                </td>
              </tr>
            )}
            {roles.data.members.map((m) => (
              <tr key={m.userId}>
                <td>{m.email}</td>
                <td>
                  <select
                    className="inline-select"
                    aria-label={`Project role of ${m.email}`}
                    value={m.role}
                    onChange={(e) => set.mutate({ user: m.userId, role: e.target.value as ProjectRole })}
                  >
                    {PROJECT_ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <div className="actions-cell">
                    <button type="button" onClick={() => remove.mutate(m.userId)} aria-label={`Take away the project role of ${m.email}`}>
                      Take away
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {candidates.length > 0 && (
        <form
          className="toolbar"
          onSubmit={(e) => {
            e.preventDefault()
            if (who) set.mutate({ user: who, role })
          }}
        >
          <select value={who} onChange={(e) => setWho(e.target.value)} aria-label="Member to give a project role">
            <option value="">Choose a member…</option>
            {candidates.map((m) => (
              <option key={m.userId} value={m.userId}>
                {m.email}
              </option>
            ))}
          </select>
          <select value={role} onChange={(e) => setRole(e.target.value as ProjectRole)} aria-label="Project role to give">
            {PROJECT_ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <button type="submit" disabled={!who || set.isPending}>
            Give role
          </button>
        </form>
      )}
    </section>
  )
}
