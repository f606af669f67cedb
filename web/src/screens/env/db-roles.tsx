import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link, useParams } from '@tanstack/react-router'
import { type FormEvent, useState } from 'react'
import { api, dbRoleKeys, dbRolesApi, type DbRoleView, type Environment, keys } from '../../api.js'
import { ErrorNote, isNotFound, Loading, PageHeader, shortDate } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { PlusIcon } from '../../ui/icons.js'
import { lifetime } from '../ops/common.js'
import { NotFound } from '../not-found.js'
import { IssueCredentials } from './issue-credentials.js'
import { useProjectPowers } from './powers.js'
import './env.css'
import '../team/team.css'
import './db-roles.css'

export function DbRolesRoute() {
  const { workspace = '', project = '', environment = '' } = useParams({ strict: false })
  return <DbRolesScreen workspace={workspace} project={project} environment={environment} />
}

/**
 * An environment's dynamic PostgreSQL roles: how short-lived login roles are made (project
 * admins define and delete them; the admin URL is sealed by the server and never shown back),
 * and, for whoever may reveal the environment, "Issue credentials": a fresh login shown once.
 */
export function DbRolesScreen({ workspace, project, environment }: { workspace: string; project: string; environment: string }) {
  const detail = useQuery({ queryKey: keys.project(workspace, project), queryFn: () => api.project(workspace, project) })
  const env = detail.data?.environments.find((e) => e.slug === environment || e.id === environment)
  const roles = useQuery({
    queryKey: dbRoleKeys.list(workspace, project, environment),
    queryFn: () => dbRolesApi.list(workspace, project, environment),
    enabled: env !== undefined,
  })
  // What the person may do with the environment's values (the matrix carries it, and no value).
  const matrix = useQuery({
    queryKey: keys.matrix(workspace, project),
    queryFn: () => api.matrix(workspace, project),
    enabled: env !== undefined,
  })
  const powers = useProjectPowers(workspace, project)
  const [creating, setCreating] = useState(false)
  const [deleting, setDeleting] = useState<DbRoleView | null>(null)
  const [issuing, setIssuing] = useState<DbRoleView | null>(null)

  if (detail.isError && isNotFound(detail.error)) return <NotFound />
  if (roles.isError && isNotFound(roles.error)) return <NotFound />
  if (detail.isPending) return <Loading label="Loading the environment…" />
  if (detail.isError) return <ErrorNote error={detail.error} />
  if (!env) return <NotFound />
  const p = detail.data.project
  const access = matrix.data?.environments.find((e) => e.id === env.id)?.access
  // Unknown (the matrix could not be read): the button stays and the server's refusal is shown.
  const mayIssue = access === undefined ? !matrix.isPending : access === 'read' || access === 'write'
  const manage = powers?.manage ?? false

  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[{ label: p.name, project: p.slug }, { label: env.name }]}
        title={`Database roles · ${env.name}`}
        subtitle="Each role makes a fresh PostgreSQL login on demand — its own name and password, the rights its SQL grants, and an expiry — and drops it afterwards."
        actions={
          <>
            <Link
              className="button-link"
              to="/w/$workspace/projects/$project/$environment"
              params={{ workspace, project: p.slug, environment: env.slug }}
            >
              Secrets
            </Link>
            {manage && (
              <button type="button" className="primary" onClick={() => setCreating(true)}>
                <PlusIcon /> New role
              </button>
            )}
          </>
        }
      />
      {roles.isPending && <Loading label="Loading database roles…" />}
      <ErrorNote error={roles.error} />
      {roles.data && roles.data.roles.length === 0 && (
        <div className="panel empty">
          <h2>No database roles yet</h2>
          <p>
            {manage
              ? 'Add one with an admin connection URL (a user with CREATEROLE) and the SQL that grants the new login its rights.'
              : 'The project’s admins define them.'}
          </p>
        </div>
      )}
      {roles.data && roles.data.roles.length > 0 && (
        <table className="table ops-table db-roles" aria-label={`Database roles of ${env.name}`}>
          <thead>
            <tr>
              <th scope="col">Role</th>
              <th scope="col">Database</th>
              <th scope="col">Grants (SQL)</th>
              <th scope="col">Lifetime</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {roles.data.roles.map((r) => (
              <tr key={r.id}>
                <td>
                  <strong>{r.name}</strong>
                </td>
                <td>
                  <code>{r.target}</code>
                </td>
                <td>
                  <pre className="db-sql">{r.creationSql}</pre>
                </td>
                <td className="db-nowrap">
                  {lifetime(r.defaultTtlSeconds)}
                  <span className="hint db-max">at most {lifetime(r.maxTtlSeconds)}</span>
                </td>
                <td className="muted db-nowrap">{shortDate(r.createdAt)}</td>
                <td>
                  <div className="actions-cell">
                    {mayIssue && (
                      <button type="button" className="primary" onClick={() => setIssuing(r)}>
                        Issue credentials<span className="visually-hidden"> for {r.name}</span>
                      </button>
                    )}
                    {manage && (
                      <button type="button" className="danger" onClick={() => setDeleting(r)}>
                        Delete<span className="visually-hidden"> {r.name}</span>
                      </button>
                    )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {roles.data && !mayIssue && roles.data.roles.length > 0 && (
        <p className="muted db-note">Issuing credentials needs read access to this environment’s values.</p>
      )}
      {creating && <CreateDbRole workspace={workspace} project={p.slug} environment={env} onClose={() => setCreating(false)} />}
      {deleting && (
        <DeleteDbRole workspace={workspace} project={p.slug} environment={env} role={deleting} onClose={() => setDeleting(null)} />
      )}
      {issuing && (
        <IssueCredentials workspace={workspace} project={p.slug} environment={env} role={issuing} onClose={() => setIssuing(null)} />
      )}
    </>
  )
}

const DEFAULT_SQL = 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO {{name}}'

/** A new role: its name, the admin URL (a password field, sent once and sealed), the SQL and lifetimes. */
function CreateDbRole({
  workspace,
  project,
  environment,
  onClose,
}: {
  workspace: string
  project: string
  environment: Environment
  onClose: () => void
}) {
  const qc = useQueryClient()
  const [name, setName] = useState('')
  const [adminUrl, setAdminUrl] = useState('')
  const [sql, setSql] = useState(DEFAULT_SQL)
  const [ttl, setTtl] = useState(60)
  const [maxTtl, setMaxTtl] = useState(60)
  const create = useMutation({
    // The admin URL is among this mutation's variables: forget it as soon as the dialog closes.
    gcTime: 0,
    mutationFn: () =>
      dbRolesApi.create(workspace, project, environment.slug, {
        name: name.trim(),
        adminUrl: adminUrl.trim(),
        creationSql: sql,
        defaultTtlSeconds: ttl * 60,
        maxTtlSeconds: maxTtl * 60,
      }),
    onSuccess: async () => {
      setAdminUrl('')
      await qc.invalidateQueries({ queryKey: dbRoleKeys.list(workspace, project, environment.slug) })
      onClose()
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    create.mutate()
  }
  return (
    <Dialog title={`New database role in ${environment.name}`} onClose={onClose} wide>
      <form className="form" onSubmit={submit} autoComplete="off">
        <label htmlFor="db-name">Name</label>
        <input
          id="db-name"
          required
          maxLength={63}
          value={name}
          onChange={(e) => setName(e.target.value)}
          aria-describedby="db-name-hint"
        />
        <p className="hint" id="db-name-hint">
          Lower-case letters, digits, - and _ (what people ask for: <code>coffer db creds NAME</code>).
        </p>
        <label htmlFor="db-admin-url">Admin connection URL</label>
        <input
          id="db-admin-url"
          type="password"
          required
          autoComplete="off"
          spellCheck={false}
          placeholder="postgres://admin:…@db.internal:5432/shop?sslmode=verify-full"
          maxLength={2048}
          value={adminUrl}
          onChange={(e) => {
            setAdminUrl(e.target.value)
            // A refusal was about the address typed before.
            if (create.isError) create.reset()
          }}
          aria-describedby="db-admin-url-hint"
        />
        <p className="hint" id="db-admin-url-hint">
          A user with CREATEROLE. Coffer checks that it connects, keeps it only encrypted, and never shows it again. Private addresses need
          the server’s outbound allow-list.
        </p>
        <label htmlFor="db-sql">SQL run after the login is made</label>
        <textarea
          id="db-sql"
          className="mono"
          required
          rows={4}
          maxLength={10_000}
          spellCheck={false}
          value={sql}
          onChange={(e) => setSql(e.target.value)}
          aria-describedby="db-sql-hint"
        />
        <p className="hint" id="db-sql-hint">
          <code>{'{{name}}'}</code> is the new login (quoted), <code>{'{{expiration}}'}</code> its expiry. It runs in the same transaction
          as the CREATE ROLE.
        </p>
        <div className="db-ttls">
          <div>
            <label htmlFor="db-ttl">Default lifetime (minutes)</label>
            <input id="db-ttl" type="number" min={1} max={1440} required value={ttl} onChange={(e) => setTtl(Number(e.target.value))} />
          </div>
          <div>
            <label htmlFor="db-max-ttl">Longest lifetime (minutes)</label>
            <input
              id="db-max-ttl"
              type="number"
              min={1}
              max={1440}
              required
              value={maxTtl}
              onChange={(e) => setMaxTtl(Number(e.target.value))}
            />
          </div>
        </div>
        <ErrorNote error={create.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create role
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function DeleteDbRole({
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
  const qc = useQueryClient()
  const remove = useMutation({
    mutationFn: () => dbRolesApi.remove(workspace, project, environment.slug, role.name),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: dbRoleKeys.list(workspace, project, environment.slug) })
      onClose()
    },
  })
  return (
    <Dialog title={`Delete the database role ${role.name}?`} onClose={onClose}>
      <p>
        Every login made from it that is still live expires now and is dropped from <code>{role.target}</code> within seconds (its sessions
        ended). No one can issue new ones. The deletion is in the audit log.
      </p>
      <ErrorNote error={remove.error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
          Delete role
        </button>
      </div>
    </Dialog>
  )
}
