import { useQuery } from '@tanstack/react-query'
import { Link } from '@tanstack/react-router'
import { useState } from 'react'
import { api, type Environment, keys } from '../api.js'
import { ErrorNote, isNotFound, Loading, PageHeader, shortDate } from '../ui/common.js'
import { EditIcon, LockIcon, PlusIcon, TrashIcon } from '../ui/icons.js'
import { useProjectPowers } from './env/powers.js'
import { CreateEnvironment, DeleteEnvironment, DeleteProject, RenameEnvironment, RenameProject } from './env/project-dialogs.js'
import { NotFound } from './not-found.js'

type Open =
  | { kind: 'rename-project' }
  | { kind: 'delete-project' }
  | { kind: 'create-environment' }
  | { kind: 'rename-environment'; environment: Environment }
  | { kind: 'delete-environment'; environment: Environment }

/**
 * A project: the environments the person may see; rename or delete it, create, rename or delete
 * its environments — each button only for those the API lets do it.
 */
export function ProjectScreen({ workspace, project }: { workspace: string; project: string }) {
  const detail = useQuery({ queryKey: keys.project(workspace, project), queryFn: () => api.project(workspace, project) })
  const [open, setOpen] = useState<Open | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const powers = useProjectPowers(workspace, project)
  if (detail.isError && isNotFound(detail.error)) return <NotFound />
  if (detail.isPending) return <Loading label="Loading the project…" />
  if (detail.isError) return <ErrorNote error={detail.error} />
  const { project: p, environments } = detail.data
  const close = () => setOpen(null)
  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[{ label: p.name }]}
        title={p.name}
        subtitle={
          <>
            <code>{p.slug}</code> · created {shortDate(p.createdAt)}
          </>
        }
        actions={
          <>
            <Link className="button-link" to="/w/$workspace/compare/$project" params={{ workspace, project: p.slug }}>
              Compare environments
            </Link>
            {powers?.manage && (
              <button type="button" onClick={() => setOpen({ kind: 'rename-project' })}>
                <EditIcon /> Rename
              </button>
            )}
            {powers?.deleteProject && (
              <button type="button" className="danger-outline" onClick={() => setOpen({ kind: 'delete-project' })}>
                <TrashIcon /> Delete
              </button>
            )}
          </>
        }
      />
      <div className="section-head">
        <h2 className="section-title">Environments</h2>
        {powers?.manage && (
          <button type="button" onClick={() => setOpen({ kind: 'create-environment' })}>
            <PlusIcon /> New environment
          </button>
        )}
      </div>
      {notice && (
        <p className="note ok" role="status">
          {notice}
        </p>
      )}
      {environments.length === 0 ? (
        <div className="panel empty">
          <p>No environment of this project is shared with you.</p>
        </div>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Environment</th>
              <th scope="col">Slug</th>
              <th scope="col">Access</th>
              <th scope="col">Created</th>
              {powers?.manage && (
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {environments.map((e) => (
              <tr key={e.id}>
                <td>
                  <Link
                    className="row-link"
                    to="/w/$workspace/projects/$project/$environment"
                    params={{ workspace, project: p.slug, environment: e.slug }}
                  >
                    {e.name}
                  </Link>
                </td>
                <td>
                  <code>{e.slug}</code>
                </td>
                <td>
                  {e.sealed && (
                    <span className="badge danger">
                      <LockIcon /> Sealed
                    </span>
                  )}
                  {e.restricted && <span className="badge warn">Restricted</span>}
                  {e.changeApprovals > 0 && <span className="badge warn">Protected · {e.changeApprovals} approval(s)</span>}
                  {!e.sealed && !e.restricted && <span className="badge">Open to developers</span>}
                </td>
                <td className="muted">{shortDate(e.createdAt)}</td>
                {powers?.manage && (
                  <td className="row-actions">
                    <button
                      type="button"
                      className="icon"
                      aria-label={`Rename ${e.name}`}
                      title="Rename"
                      onClick={() => setOpen({ kind: 'rename-environment', environment: e })}
                    >
                      <EditIcon />
                    </button>
                    <button
                      type="button"
                      className="icon danger"
                      aria-label={`Delete ${e.name}`}
                      title="Delete"
                      onClick={() => setOpen({ kind: 'delete-environment', environment: e })}
                    >
                      <TrashIcon />
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {open?.kind === 'rename-project' && <RenameProject workspace={workspace} project={p} onClose={close} />}
      {open?.kind === 'delete-project' && <DeleteProject workspace={workspace} project={p} environments={environments} onClose={close} />}
      {open?.kind === 'create-environment' && <CreateEnvironment workspace={workspace} project={p.slug} onClose={close} />}
      {open?.kind === 'rename-environment' && (
        <RenameEnvironment workspace={workspace} project={p.slug} environment={open.environment} onClose={close} />
      )}
      {open?.kind === 'delete-environment' && (
        <DeleteEnvironment workspace={workspace} project={p.slug} environment={open.environment} onClose={close} onDeleted={setNotice} />
      )}
    </>
  )
}
