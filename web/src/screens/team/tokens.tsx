import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, type ReactNode, useState } from 'react'
import { api, keys, type Project, type ScopeInput, teamApi, teamKeys } from '../../api.js'

import { ErrorNote, isNotFound, Loading, PageHeader, shortDate } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { PlusIcon } from '../../ui/icons.js'
import { NotFound } from '../not-found.js'
import { managesWorkspace, ShownOnce } from './shown-once.js'
import './team.css'

type Shown = { title: string; body: ReactNode }

/** Personal tokens for the CLI and API; for Owners and Admins also service tokens and machine identities. */
export function TokensScreen({ workspace }: { workspace: string }) {
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  const admin = managesWorkspace(account.data?.workspaces.find((w) => w.slug === workspace)?.role)
  const [shown, setShown] = useState<Shown | null>(null)
  const tokens = useQuery({ queryKey: teamKeys.tokens(workspace), queryFn: () => teamApi.tokens(workspace) })
  if (tokens.isError && isNotFound(tokens.error)) return <NotFound />
  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[]}
        title="Tokens"
        subtitle="Personal tokens act as you in this workspace only. Service tokens and machine identities act for automation, within their scopes."
      />
      <PersonalTokens workspace={workspace} onShown={setShown} />
      {admin && <ServiceTokens workspace={workspace} onShown={setShown} />}
      {admin && <Machines workspace={workspace} onShown={setShown} />}
      {shown && (
        <Dialog title={shown.title} onClose={() => setShown(null)}>
          {shown.body}
          <div className="dialog-actions">
            <button type="button" className="primary" onClick={() => setShown(null)}>
              Done
            </button>
          </div>
        </Dialog>
      )}
    </>
  )
}

function status(x: { revokedAt: string | null; expiresAt?: string | null }): ReactNode {
  if (x.revokedAt) return <span className="badge danger">revoked</span>
  if (x.expiresAt && x.expiresAt <= new Date().toISOString()) return <span className="badge warn">expired</span>
  return <span className="badge ok">active</span>
}

function Section({
  id,
  title,
  note,
  action,
  children,
}: {
  id: string
  title: string
  note: string
  action: ReactNode
  children: ReactNode
}) {
  return (
    <section className="team-section" aria-labelledby={id}>
      <header>
        <div>
          <h2 id={id}>{title}</h2>
          <p className="muted">{note}</p>
        </div>
        {action}
      </header>
      {children}
    </section>
  )
}

function PersonalTokens({ workspace, onShown }: { workspace: string; onShown: (s: Shown) => void }) {
  const qc = useQueryClient()
  const tokens = useQuery({ queryKey: teamKeys.tokens(workspace), queryFn: () => teamApi.tokens(workspace) })
  const [creating, setCreating] = useState(false)
  const revoke = useMutation({
    mutationFn: (id: string) => teamApi.revokeToken(workspace, id),
    onSettled: () => qc.invalidateQueries({ queryKey: teamKeys.tokens(workspace) }),
  })
  const origin = window.location.origin
  return (
    <Section
      id="personal-title"
      title="Your personal tokens"
      note="For the CLI and scripts: coffer login --token, or COFFER_TOKEN. Shown once when created."
      action={
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          <PlusIcon /> New token
        </button>
      }
    >
      {tokens.isPending && <Loading label="Loading tokens…" />}
      <ErrorNote error={tokens.error ?? revoke.error} />
      {tokens.data &&
        (tokens.data.tokens.length === 0 ? (
          <p className="muted">No personal tokens yet.</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Token</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>
                    <code>{t.display}</code>
                  </td>
                  <td className="muted">{shortDate(t.createdAt)}</td>
                  <td className="muted">{t.lastUsedAt ? shortDate(t.lastUsedAt) : 'never'}</td>
                  <td className="muted">{t.expiresAt ? shortDate(t.expiresAt) : 'never'}</td>
                  <td>{status(t)}</td>
                  <td>
                    <div className="actions-cell">
                      {!t.revokedAt && (
                        <button type="button" className="danger" onClick={() => revoke.mutate(t.id)} aria-label={`Revoke token ${t.name}`}>
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
      {creating && (
        <NameDialog
          title="New personal token"
          submit="Create token"
          expiry
          onClose={() => setCreating(false)}
          create={async (name, expiresInDays) => {
            const r = await teamApi.createToken(workspace, { name, ...(expiresInDays ? { expiresInDays } : {}) })
            await qc.invalidateQueries({ queryKey: teamKeys.tokens(workspace) })
            setCreating(false)
            onShown({
              title: `Token ${r.info.name}`,
              body: (
                <>
                  <p className="once-note" role="status">
                    Copy the token now: it is shown only this once. Coffer keeps only its hash.
                  </p>
                  <ShownOnce id="new-token" label="Token" value={r.token} />
                  <ShownOnce
                    id="login-command"
                    label="Keep it in the OS credential store"
                    value={`coffer login --url ${origin} --token ${r.token}`}
                  />
                  <ShownOnce
                    id="env-command"
                    label="Or use it through the environment"
                    value={`export COFFER_URL=${origin} COFFER_TOKEN=${r.token}`}
                  />
                  <p className="muted">
                    It acts as you, in this workspace only, until you revoke it
                    {r.info.expiresAt ? ` or ${shortDate(r.info.expiresAt)}` : ''}.
                  </p>
                </>
              ),
            })
          }}
        />
      )}
    </Section>
  )
}

/** A dialog asking for a name (and optionally an expiry in days) that runs `create`. */
function NameDialog({
  title,
  submit,
  expiry,
  onClose,
  create,
}: {
  title: string
  submit: string
  expiry?: boolean
  onClose: () => void
  create: (name: string, expiresInDays?: number) => Promise<void>
}) {
  const [name, setName] = useState('')
  const [days, setDays] = useState('')
  const run = useMutation({ mutationFn: () => create(name.trim(), days ? Number(days) : undefined) })
  function onSubmit(e: FormEvent) {
    e.preventDefault()
    run.mutate()
  }
  return (
    <Dialog title={title} onClose={onClose}>
      <form className="form" onSubmit={onSubmit}>
        <label htmlFor="token-name">Name</label>
        <input id="token-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} autoComplete="off" />
        {expiry && (
          <>
            <label htmlFor="token-days">
              Expires after (days) <span className="hint">optional; empty: until revoked</span>
            </label>
            <input id="token-days" type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
          </>
        )}
        <ErrorNote error={run.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={run.isPending}>
            {submit}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

/** The scope form of a service token or machine identity: one project, all or some environments, read or write. */
function ScopeDialog({
  workspace,
  title,
  submit,
  kind,
  onClose,
  create,
}: {
  workspace: string
  title: string
  submit: string
  kind: 'service' | 'machine'
  onClose: () => void
  create: (v: { name: string; scope: ScopeInput; days?: number; ttlMinutes?: number }) => Promise<void>
}) {
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const [name, setName] = useState('')
  const [chosen, setChosen] = useState('')
  const project = chosen || projects.data?.projects[0]?.slug || ''
  const detail = useQuery({
    queryKey: keys.project(workspace, project),
    queryFn: () => api.project(workspace, project),
    enabled: project !== '',
  })
  const [all, setAll] = useState(true)
  const [envs, setEnvs] = useState<string[]>([])
  const [access, setAccess] = useState<'read' | 'write'>('read')
  const [days, setDays] = useState('')
  const [ttl, setTtl] = useState('')
  const run = useMutation({
    mutationFn: () =>
      create({
        name: name.trim(),
        scope: { project, environments: all ? '*' : envs, access },
        ...(days ? { days: Number(days) } : {}),
        ...(ttl ? { ttlMinutes: Number(ttl) } : {}),
      }),
  })
  function onSubmit(e: FormEvent) {
    e.preventDefault()
    run.mutate()
  }
  return (
    <Dialog title={title} onClose={onClose}>
      <form className="form" onSubmit={onSubmit}>
        <label htmlFor="scope-name">Name</label>
        <input id="scope-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} autoComplete="off" />
        <label htmlFor="scope-project">Project</label>
        <select
          id="scope-project"
          value={project}
          onChange={(e) => {
            setChosen(e.target.value)
            setEnvs([])
          }}
          required
        >
          {projects.data?.projects.map((p: Project) => (
            <option key={p.id} value={p.slug}>
              {p.name}
            </option>
          ))}
        </select>
        <fieldset>
          <legend>Environments</legend>
          <label className="check">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> All environments, present and future
          </label>
          {!all &&
            detail.data?.environments.map((env) => (
              <label className="check" key={env.id}>
                <input
                  type="checkbox"
                  checked={envs.includes(env.slug)}
                  onChange={(e) => setEnvs(e.target.checked ? [...envs, env.slug] : envs.filter((x) => x !== env.slug))}
                />{' '}
                {env.name}
              </label>
            ))}
        </fieldset>
        <label htmlFor="scope-access">Access</label>
        <select id="scope-access" value={access} onChange={(e) => setAccess(e.target.value as 'read' | 'write')}>
          <option value="read">read: list and reveal</option>
          <option value="write">write: also change</option>
        </select>
        {kind === 'service' ? (
          <>
            <label htmlFor="scope-days">
              Expires after (days) <span className="hint">optional</span>
            </label>
            <input id="scope-days" type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
          </>
        ) : (
          <>
            <label htmlFor="scope-ttl">
              Access token lifetime (minutes) <span className="hint">optional; at most 60</span>
            </label>
            <input id="scope-ttl" type="number" min={1} max={60} value={ttl} onChange={(e) => setTtl(e.target.value)} />
          </>
        )}
        <ErrorNote error={run.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={run.isPending || !project}>
            {submit}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function useProjectNames(workspace: string): (id: string) => string {
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  return (id) => projects.data?.projects.find((p) => p.id === id)?.name ?? 'a project you do not see'
}

function ScopeList({
  scopes,
  name,
}: {
  scopes: Array<{ projectId: string; environments: '*' | string[]; access: string }>
  name: (id: string) => string
}) {
  return (
    <ul className="scope-list">
      {scopes.map((s) => (
        <li key={s.projectId}>
          {name(s.projectId)} ·{' '}
          {s.environments === '*' ? 'all environments' : `${s.environments.length} environment${s.environments.length === 1 ? '' : 's'}`} ·{' '}
          {s.access}
        </li>
      ))}
    </ul>
  )
}

function ServiceTokens({ workspace, onShown }: { workspace: string; onShown: (s: Shown) => void }) {
  const qc = useQueryClient()
  const list = useQuery({ queryKey: teamKeys.serviceTokens(workspace), queryFn: () => teamApi.serviceTokens(workspace) })
  const name = useProjectNames(workspace)
  const [creating, setCreating] = useState(false)
  const revoke = useMutation({
    mutationFn: (id: string) => teamApi.revokeServiceToken(workspace, id),
    onSettled: () => qc.invalidateQueries({ queryKey: teamKeys.serviceTokens(workspace) }),
  })
  return (
    <Section
      id="service-title"
      title="Service tokens"
      note="Static tokens for CI and servers, limited to their scopes; optionally expiring."
      action={
        <button type="button" onClick={() => setCreating(true)}>
          <PlusIcon /> New service token
        </button>
      }
    >
      {list.isPending && <Loading label="Loading service tokens…" />}
      <ErrorNote error={list.error ?? revoke.error} />
      {list.data &&
        (list.data.tokens.length === 0 ? (
          <p className="muted">No service tokens.</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Token</th>
                <th scope="col">Scope</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.tokens.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>
                    <code>{t.display}</code>
                  </td>
                  <td>
                    <ScopeList scopes={t.scopes} name={name} />
                  </td>
                  <td className="muted">{t.expiresAt ? shortDate(t.expiresAt) : 'never'}</td>
                  <td>{status(t)}</td>
                  <td>
                    <div className="actions-cell">
                      {!t.revokedAt && (
                        <button
                          type="button"
                          className="danger"
                          onClick={() => revoke.mutate(t.id)}
                          aria-label={`Revoke service token ${t.name}`}
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
      {creating && (
        <ScopeDialog
          workspace={workspace}
          title="New service token"
          submit="Create service token"
          kind="service"
          onClose={() => setCreating(false)}
          create={async (v) => {
            const r = await teamApi.createServiceToken(workspace, {
              name: v.name,
              scopes: [v.scope],
              ...(v.days ? { expiresInDays: v.days } : {}),
            })
            await qc.invalidateQueries({ queryKey: teamKeys.serviceTokens(workspace) })
            setCreating(false)
            onShown({
              title: `Service token ${r.info.name}`,
              body: (
                <>
                  <p className="once-note" role="status">
                    Copy the token now: it is shown only this once.
                  </p>
                  <ShownOnce id="new-service-token" label="Token" value={r.token} />
                  <p className="muted">Give it to the job as COFFER_TOKEN; it reaches only its scope.</p>
                </>
              ),
            })
          }}
        />
      )}
    </Section>
  )
}

function Machines({ workspace, onShown }: { workspace: string; onShown: (s: Shown) => void }) {
  const qc = useQueryClient()
  const list = useQuery({ queryKey: teamKeys.machines(workspace), queryFn: () => teamApi.machines(workspace) })
  const name = useProjectNames(workspace)
  const [creating, setCreating] = useState(false)
  const revoke = useMutation({
    mutationFn: (id: string) => teamApi.revokeMachine(workspace, id),
    onSettled: () => qc.invalidateQueries({ queryKey: teamKeys.machines(workspace) }),
  })
  return (
    <Section
      id="machines-title"
      title="Machine identities"
      note="A client id and secret that a machine exchanges for an access token living at most an hour."
      action={
        <button type="button" onClick={() => setCreating(true)}>
          <PlusIcon /> New machine identity
        </button>
      }
    >
      {list.isPending && <Loading label="Loading machine identities…" />}
      <ErrorNote error={list.error ?? revoke.error} />
      {list.data &&
        (list.data.machines.length === 0 ? (
          <p className="muted">No machine identities.</p>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Client id</th>
                <th scope="col">Scope</th>
                <th scope="col">Token lifetime</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.machines.map((m) => (
                <tr key={m.id}>
                  <td>{m.name}</td>
                  <td>
                    <code>{m.clientId}</code>
                  </td>
                  <td>
                    <ScopeList scopes={m.scopes} name={name} />
                  </td>
                  <td className="muted">{Math.round(m.tokenTtlSeconds / 60)} min</td>
                  <td>{status(m)}</td>
                  <td>
                    <div className="actions-cell">
                      {!m.revokedAt && (
                        <button
                          type="button"
                          className="danger"
                          onClick={() => revoke.mutate(m.id)}
                          aria-label={`Revoke machine identity ${m.name}`}
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
      {creating && (
        <ScopeDialog
          workspace={workspace}
          title="New machine identity"
          submit="Create machine identity"
          kind="machine"
          onClose={() => setCreating(false)}
          create={async (v) => {
            const r = await teamApi.createMachine(workspace, {
              name: v.name,
              scopes: [v.scope],
              ...(v.ttlMinutes ? { tokenTtlSeconds: v.ttlMinutes * 60 } : {}),
            })
            await qc.invalidateQueries({ queryKey: teamKeys.machines(workspace) })
            setCreating(false)
            onShown({
              title: `Machine identity ${r.machine.name}`,
              body: (
                <>
                  <p className="once-note" role="status">
                    Copy the client secret now: it is shown only this once.
                  </p>
                  <ShownOnce id="client-id" label="Client id" value={r.clientId} />
                  {r.clientSecret !== null && <ShownOnce id="client-secret" label="Client secret" value={r.clientSecret} />}
                  <p className="muted">The machine exchanges them for an access token at POST /v1/machine/token (coffer machine token).</p>
                </>
              ),
            })
          }}
        />
      )}
    </Section>
  )
}
