import { useMutation } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { type DbCredentialsAnswer, dbRolesApi, type DbRoleView, type Environment } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { dateTime, lifetime, remaining, useNow } from '../ops/common.js'
import { ShownOnce } from '../team/shown-once.js'

/**
 * "Issue credentials": a fresh PostgreSQL login for `role`, shown once with its expiry. The
 * answer lives only in this dialog's mutation, which is forgotten when the dialog closes
 * (gcTime 0): it is never in the query cache, and reopening the dialog issues a new login.
 */
export function IssueCredentials({
  workspace,
  project,
  environment,
  role,
  onClose,
}: {
  workspace: string
  project: string
  environment: Environment
  role: DbRoleView
  onClose: () => void
}) {
  const [minutes, setMinutes] = useState(Math.max(1, Math.round(role.defaultTtlSeconds / 60)))
  const issue = useMutation({
    gcTime: 0,
    mutationFn: () => dbRolesApi.issue(workspace, project, environment.slug, role.name, minutes * 60),
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    issue.mutate()
  }
  const creds = issue.data?.credentials
  return (
    <Dialog title={`Credentials for ${role.name} in ${environment.name}`} onClose={onClose} wide>
      {creds ? (
        <Issued creds={creds} onClose={onClose} />
      ) : (
        <form className="form" onSubmit={submit}>
          <p>
            A new login role is made on <code>{role.target}</code> with the rights of <strong>{role.name}</strong>. It stops working when it
            expires and is then dropped. The issuance is audited (without the password).
          </p>
          <label htmlFor="db-issue-ttl">Lifetime (minutes, at most {lifetime(role.maxTtlSeconds)})</label>
          <input
            id="db-issue-ttl"
            type="number"
            min={1}
            max={Math.max(1, Math.floor(role.maxTtlSeconds / 60))}
            required
            value={minutes}
            onChange={(e) => setMinutes(Number(e.target.value))}
          />
          <ErrorNote error={issue.error} />
          <div className="dialog-actions">
            <button type="button" onClick={onClose}>
              Cancel
            </button>
            <button type="submit" className="primary" disabled={issue.isPending}>
              Issue credentials
            </button>
          </div>
        </form>
      )}
    </Dialog>
  )
}

function Issued({ creds, onClose }: { creds: DbCredentialsAnswer['credentials']; onClose: () => void }) {
  const now = useNow()
  const left = Date.parse(creds.expiresAt) - now
  const env = [
    `export DATABASE_URL='${creds.url}'`,
    `export PGHOST='${creds.host}' PGPORT='${creds.port}' PGDATABASE='${creds.database}'`,
    `export PGUSER='${creds.username}' PGPASSWORD='${creds.password}'`,
  ].join('\n')
  return (
    <>
      <p className="once-note" role="status">
        Copy the login now: it is shown only this once. Coffer does not keep the password.
      </p>
      <dl className="db-facts">
        <dt>User</dt>
        <dd>
          <code>{creds.username}</code>
        </dd>
        <dt>Expires</dt>
        <dd>
          {dateTime(creds.expiresAt)} UTC{' '}
          <span className={left > 0 ? 'badge warn' : 'badge danger'}>{left > 0 ? `in ${remaining(left)}` : 'expired'}</span>
        </dd>
      </dl>
      <ShownOnce id="db-url" label="Connection URL" value={creds.url} rows={2} />
      <ShownOnce id="db-env" label="As environment variables" value={env} rows={6} />
      <div className="dialog-actions">
        <button type="button" className="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </>
  )
}
