import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { api, type CreatedInvitation, keys, type ProjectRole, type Role, teamApi, teamKeys } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { ROLE_NAMES, ShownOnce } from './shown-once.js'

/** What the server answered to an invitation: mailed, or — mail off — the link to hand over, shown this once. */
export function InvitationIssued({ issued, onClose }: { issued: CreatedInvitation; onClose: () => void }) {
  return (
    <Dialog title={`Invitation for ${issued.invitation.email}`} onClose={onClose}>
      {issued.mailed ? (
        <p>
          The invitation was mailed to <strong>{issued.invitation.email}</strong>. It works once and expires{' '}
          {issued.invitation.expiresAt.slice(0, 10)}.
        </p>
      ) : (
        <>
          <p className="once-note" role="status">
            Mail is off on this server: copy the link and give it to {issued.invitation.email} yourself. It is shown only now.
          </p>
          <ShownOnce id="accept-url" label="Accept link" value={issued.acceptUrl} />
          <ShownOnce id="accept-command" label="Or with the CLI" value={issued.acceptCommand} />
          <p className="muted">
            The link works once, for {issued.invitation.email} only, until {issued.invitation.expiresAt.slice(0, 10)}. Opening it, they
            create their account (or sign in) and join.
          </p>
        </>
      )}
      <div className="dialog-actions">
        <button type="button" className="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Dialog>
  )
}

/** Invite an email address with a workspace role and, optionally, a role on one project. */
export function InviteDialog({
  workspace,
  onClose,
  onIssued,
}: {
  workspace: string
  onClose: () => void
  onIssued: (c: CreatedInvitation) => void
}) {
  const qc = useQueryClient()
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const [email, setEmail] = useState('')
  const [role, setRole] = useState<Role>('member')
  const [project, setProject] = useState('')
  const [projectRole, setProjectRole] = useState<ProjectRole>('developer')
  const invite = useMutation({
    mutationFn: () =>
      teamApi.invite(workspace, {
        email: email.trim(),
        role,
        ...(project && role !== 'auditor' ? { project, projectRole } : {}),
      }),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: teamKeys.invitations(workspace) })
      onIssued(r)
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    invite.mutate()
  }
  return (
    <Dialog title="Invite a teammate" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <label htmlFor="invite-email">Email</label>
        <input
          id="invite-email"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          required
          maxLength={254}
          autoComplete="off"
        />
        <label htmlFor="invite-role">Workspace role</label>
        <select id="invite-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {(['member', 'admin', 'owner', 'auditor'] as const).map((r) => (
            <option key={r} value={r}>
              {ROLE_NAMES[r]}
            </option>
          ))}
        </select>
        <div className="row">
          <div>
            <label htmlFor="invite-project">
              Project <span className="hint">optional</span>
            </label>
            <select id="invite-project" value={project} onChange={(e) => setProject(e.target.value)} disabled={role === 'auditor'}>
              <option value="">No project</option>
              {projects.data?.projects.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="invite-project-role">Project role</label>
            <select
              id="invite-project-role"
              value={projectRole}
              onChange={(e) => setProjectRole(e.target.value as ProjectRole)}
              disabled={!project || role === 'auditor'}
            >
              <option value="admin">admin</option>
              <option value="developer">developer</option>
              <option value="viewer">viewer</option>
            </select>
          </div>
        </div>
        <ErrorNote error={invite.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={invite.isPending}>
            Invite
          </button>
        </div>
      </form>
    </Dialog>
  )
}
