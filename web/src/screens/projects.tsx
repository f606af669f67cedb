import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link, useNavigate } from '@tanstack/react-router'
import { type FormEvent, useState } from 'react'
import { api, keys } from '../api.js'
import { ErrorNote, isNotFound, Loading, PageHeader, shortDate } from '../ui/common.js'
import { Dialog } from '../ui/dialog.js'
import { PlusIcon } from '../ui/icons.js'
import { NotFound } from './not-found.js'

/** The workspace's projects (those the person may see), and creating one. */
export function ProjectsScreen({ workspace }: { workspace: string }) {
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const [creating, setCreating] = useState(false)
  if (projects.isError && isNotFound(projects.error)) return <NotFound />
  return (
    <>
      <PageHeader
        workspace={workspace}
        trail={[]}
        title="Projects"
        subtitle="Each project has its own environments, each environment its own data key."
        actions={
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            <PlusIcon /> New project
          </button>
        }
      />
      {projects.isPending && <Loading label="Loading projects…" />}
      <ErrorNote error={projects.error} />
      {projects.data &&
        (projects.data.projects.length === 0 ? (
          <div className="panel empty">
            <h2>No projects yet</h2>
            <p>Create one: it starts with development, staging and production.</p>
          </div>
        ) : (
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Slug</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {projects.data.projects.map((p) => (
                <tr key={p.id}>
                  <td>
                    <Link className="row-link" to="/w/$workspace/projects/$project" params={{ workspace, project: p.slug }}>
                      {p.name}
                    </Link>
                  </td>
                  <td>
                    <code>{p.slug}</code>
                  </td>
                  <td className="muted">{shortDate(p.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
      {creating && <CreateProject workspace={workspace} onClose={() => setCreating(false)} />}
    </>
  )
}

function CreateProject({ workspace, onClose }: { workspace: string; onClose: () => void }) {
  const qc = useQueryClient()
  const navigate = useNavigate()
  const [name, setName] = useState('')
  const [slug, setSlug] = useState('')
  const create = useMutation({
    mutationFn: () => api.createProject(workspace, { name, ...(slug.trim() ? { slug: slug.trim() } : {}) }),
    onSuccess: async (r) => {
      await qc.invalidateQueries({ queryKey: keys.projects(workspace) })
      qc.setQueryData(keys.project(workspace, r.project.slug), r)
      onClose()
      await navigate({ to: '/w/$workspace/projects/$project', params: { workspace, project: r.project.slug } })
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    create.mutate()
  }
  return (
    <Dialog title="New project" onClose={onClose}>
      <form onSubmit={submit} className="form">
        <label htmlFor="project-name">Name</label>
        <input id="project-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} autoComplete="off" />
        <label htmlFor="project-slug">
          Slug <span className="hint">optional: lowercase letters, digits and dashes; made from the name if empty</span>
        </label>
        <input id="project-slug" value={slug} onChange={(e) => setSlug(e.target.value)} maxLength={64} autoComplete="off" />
        <ErrorNote error={create.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create project
          </button>
        </div>
      </form>
    </Dialog>
  )
}
