import { useQuery } from '@tanstack/react-query'
import { Link } from '@tanstack/react-router'
import { api, keys } from '../api.js'
import { ErrorNote, isNotFound, Loading, PageHeader, shortDate } from '../ui/common.js'
import { LockIcon } from '../ui/icons.js'
import { NotFound } from './not-found.js'

/** A project: the environments the person may see. */
export function ProjectScreen({ workspace, project }: { workspace: string; project: string }) {
  const detail = useQuery({ queryKey: keys.project(workspace, project), queryFn: () => api.project(workspace, project) })
  if (detail.isError && isNotFound(detail.error)) return <NotFound />
  if (detail.isPending) return <Loading label="Loading the project…" />
  if (detail.isError) return <ErrorNote error={detail.error} />
  const { project: p, environments } = detail.data
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
      />
      <h2 className="section-title">Environments</h2>
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
                  {!e.sealed && !e.restricted && <span className="badge">Open to developers</span>}
                </td>
                <td className="muted">{shortDate(e.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  )
}
