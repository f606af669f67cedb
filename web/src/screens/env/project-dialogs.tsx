import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useNavigate } from '@tanstack/react-router'
import { type FormEvent, useState } from 'react'
import { api, type Environment, type Project, keys } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { invalidateProject, plural } from './invalidate.js'

/** How many live secrets each environment holds, as far as the caller may list them (from the matrix: keys only). */
function useSecretCounts(workspace: string, project: string): { counts: Map<string, number | null>; pending: boolean } {
  const matrix = useQuery({ queryKey: keys.matrix(workspace, project), queryFn: () => api.matrix(workspace, project) })
  const counts = new Map<string, number | null>()
  if (matrix.data) {
    matrix.data.environments.forEach((e, i) => {
      counts.set(e.id, e.access === 'none' ? null : matrix.data.keys.filter((k) => k.cells[i]?.present).length)
    })
  }
  return { counts, pending: matrix.isPending }
}

function secretsLine(n: number | null | undefined): string {
  if (n === undefined) return 'counting…'
  if (n === null) return 'its secrets are not listed to you'
  return plural(n, 'secret')
}

export function RenameDialog({
  what,
  current,
  onClose,
  rename,
}: {
  what: 'project' | 'environment'
  current: string
  onClose: () => void
  rename: (name: string) => Promise<unknown>
}) {
  const [name, setName] = useState(current)
  const save = useMutation({ mutationFn: () => rename(name.trim()), onSuccess: onClose })
  function submit(e: FormEvent) {
    e.preventDefault()
    save.mutate()
  }
  return (
    <Dialog title={`Rename the ${what}`} onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <label htmlFor="rename-name">
          Name <span className="hint">the slug stays as it is: URLs, CLI configs and scripts keep working</span>
        </label>
        <input id="rename-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} autoComplete="off" />
        <ErrorNote error={save.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={save.isPending || !name.trim() || name.trim() === current}>
            Rename
          </button>
        </div>
      </form>
    </Dialog>
  )
}

export function RenameProject({ workspace, project, onClose }: { workspace: string; project: Project; onClose: () => void }) {
  const qc = useQueryClient()
  return (
    <RenameDialog
      what="project"
      current={project.name}
      onClose={onClose}
      rename={async (name) => {
        await api.renameProject(workspace, project.slug, name)
        await invalidateProject(qc, workspace, project.slug)
      }}
    />
  )
}

export function RenameEnvironment({
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
  return (
    <RenameDialog
      what="environment"
      current={environment.name}
      onClose={onClose}
      rename={async (name) => {
        await api.renameEnvironment(workspace, project, environment.slug, name)
        await invalidateProject(qc, workspace, project)
      }}
    />
  )
}

/** The confirmation field: the slug typed again, compared exactly (the server checks it too). */
function TypeToConfirm({ slug, value, onChange }: { slug: string; value: string; onChange: (v: string) => void }) {
  return (
    <>
      <label htmlFor="confirm-slug">
        Type <code>{slug}</code> to confirm
      </label>
      <input
        id="confirm-slug"
        className="mono"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        autoComplete="off"
        spellCheck={false}
        required
      />
    </>
  )
}

export function DeleteProject({
  workspace,
  project,
  environments,
  onClose,
}: {
  workspace: string
  project: Project
  environments: Environment[]
  onClose: () => void
}) {
  const qc = useQueryClient()
  const navigate = useNavigate()
  const [typed, setTyped] = useState('')
  const { counts } = useSecretCounts(workspace, project.slug)
  const del = useMutation({
    mutationFn: () => api.deleteProject(workspace, project.slug, typed, true),
    onSuccess: async () => {
      // Leave the project's screen before forgetting it, so nothing asks for it again.
      onClose()
      await navigate({ to: '/w/$workspace', params: { workspace } })
      qc.removeQueries({ queryKey: keys.project(workspace, project.slug) })
      qc.removeQueries({ queryKey: keys.matrix(workspace, project.slug) })
      await qc.invalidateQueries({ queryKey: keys.projects(workspace) })
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    del.mutate()
  }
  return (
    <Dialog title={`Delete ${project.name}?`} onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <p className="destroys-intro">This cannot be undone. Deleting the project destroys, at once:</p>
        <ul className="destroys">
          {environments.map((e) => (
            <li key={e.id}>
              <strong>{e.name}</strong> — its data key and {secretsLine(counts.get(e.id))}, with every version
            </li>
          ))}
          <li>pending invitations to the project, and its members' roles and grants</li>
        </ul>
        <p className="hint">
          The data keys are destroyed first, so no backup can decrypt these secrets afterwards. The audit log keeps the record of the
          deletion.
        </p>
        <TypeToConfirm slug={project.slug} value={typed} onChange={setTyped} />
        <ErrorNote error={del.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={del.isPending || typed !== project.slug}>
            Delete project
          </button>
        </div>
      </form>
    </Dialog>
  )
}

export function DeleteEnvironment({
  workspace,
  project,
  environment,
  onClose,
  onDeleted,
}: {
  workspace: string
  project: string
  environment: Environment
  onClose: () => void
  onDeleted: (text: string) => void
}) {
  const qc = useQueryClient()
  const [typed, setTyped] = useState('')
  const { counts } = useSecretCounts(workspace, project)
  const del = useMutation({
    mutationFn: () => api.deleteEnvironment(workspace, project, environment.slug, typed, true),
    onSuccess: async (r) => {
      qc.removeQueries({ queryKey: keys.secrets(workspace, project, environment.slug) })
      await invalidateProject(qc, workspace, project)
      const d = r.environment
      onDeleted(
        `Deleted ${environment.name}: data key ${d.dataKey.id ?? '(none)'} destroyed, ${plural(d.secrets, 'secret')} and ${plural(d.versions, 'version')} removed.`,
      )
      onClose()
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    del.mutate()
  }
  return (
    <Dialog title={`Delete ${environment.name}?`} onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <p className="destroys-intro">
          This cannot be undone. The environment's <strong>data key is destroyed</strong> at once, and with it{' '}
          {secretsLine(counts.get(environment.id))} and every version: nothing, not even a backup, can decrypt them afterwards.
        </p>
        <TypeToConfirm slug={environment.slug} value={typed} onChange={setTyped} />
        <ErrorNote error={del.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={del.isPending || typed !== environment.slug}>
            Delete environment
          </button>
        </div>
      </form>
    </Dialog>
  )
}

export function CreateEnvironment({ workspace, project, onClose }: { workspace: string; project: string; onClose: () => void }) {
  const qc = useQueryClient()
  const navigate = useNavigate()
  const [name, setName] = useState('')
  const [slug, setSlug] = useState('')
  const [restricted, setRestricted] = useState(false)
  const create = useMutation({
    mutationFn: () =>
      api.createEnvironment(workspace, project, { name: name.trim(), restricted, ...(slug.trim() ? { slug: slug.trim() } : {}) }),
    onSuccess: async (r) => {
      await invalidateProject(qc, workspace, project)
      onClose()
      await navigate({
        to: '/w/$workspace/projects/$project/$environment',
        params: { workspace, project, environment: r.environment.slug },
      })
    },
  })
  function submit(e: FormEvent) {
    e.preventDefault()
    create.mutate()
  }
  return (
    <Dialog title="New environment" onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <label htmlFor="env-name">Name</label>
        <input id="env-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={128} autoComplete="off" />
        <label htmlFor="env-slug">
          Slug <span className="hint">optional; from the name if empty. It never changes later</span>
        </label>
        <input
          id="env-slug"
          className="mono"
          value={slug}
          onChange={(e) => setSlug(e.target.value)}
          maxLength={64}
          autoComplete="off"
          spellCheck={false}
        />
        <label className="check">
          <input type="checkbox" checked={restricted} onChange={(e) => setRestricted(e.target.checked)} />
          Restricted <span className="hint">developers see keys only, unless granted</span>
        </label>
        <p className="hint">The environment gets a data key of its own.</p>
        <ErrorNote error={create.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending || !name.trim()}>
            Create environment
          </button>
        </div>
      </form>
    </Dialog>
  )
}
