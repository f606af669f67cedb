import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { ApiError, api, type Environment, keys } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { invalidateEnvironment, plural } from './invalidate.js'

/** The keys a 409 names: "The secret A, B in the target environment (…) already exists." */
export function conflictKeys(err: unknown): string[] | null {
  if (!(err instanceof ApiError) || err.code !== 'ERR_ALREADY_EXISTS') return null
  const m = /^The secret (.+?) in the target environment/.exec(err.message)
  return m ? m[1]!.split(', ') : []
}

/**
 * Copies the selected keys (value, comment, tags) into another environment of this project or of
 * another project of the workspace, in one transaction.
 */
export function CopyKeys({
  workspace,
  project,
  from,
  environments,
  selected,
  onClose,
  onCopied,
}: {
  workspace: string
  project: string
  from: Environment
  environments: Environment[]
  selected: string[]
  onClose: () => void
  onCopied: (text: string) => void
}) {
  const qc = useQueryClient()
  const [toProject, setToProject] = useState(project)
  const sameProject = toProject === project
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const target = useQuery({
    queryKey: keys.project(workspace, toProject),
    queryFn: () => api.project(workspace, toProject),
    enabled: !sameProject,
  })
  const others = sameProject ? environments.filter((e) => e.id !== from.id) : (target.data?.environments ?? [])
  const [chosen, setTo] = useState(others[0]?.slug ?? '')
  // Another project's environments arrive later: until one is chosen, its first is the target.
  const to = others.some((e) => e.slug === chosen) ? chosen : (others[0]?.slug ?? '')
  const [overwrite, setOverwrite] = useState(false)
  const projectName = (slug: string) => projects.data?.projects.find((x) => x.slug === slug)?.name ?? slug
  const copy = useMutation({
    mutationFn: (force: boolean) =>
      api.copySecrets(workspace, project, from.slug, {
        keys: selected,
        to: sameProject ? { environment: to } : { project: toProject, environment: to },
        overwrite: force,
      }),
    onSuccess: async (r) => {
      await invalidateEnvironment(qc, workspace, toProject, to)
      onCopied(`Copied to ${targetName}: ${r.adds.length} added, ${r.changes.length} replaced, ${r.unchanged.length} already the same.`)
      onClose()
    },
  })
  const conflicts = conflictKeys(copy.error)
  const envName = others.find((e) => e.slug === to)?.name ?? to
  const targetName = sameProject ? envName : `${projectName(toProject)} / ${envName}`
  return (
    <Dialog title={`Copy ${plural(selected.length, 'key')} from ${from.name}`} onClose={onClose}>
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault()
          copy.mutate(overwrite)
        }}
      >
        <p className="key-chips">
          {selected.map((k) => (
            <code key={k}>{k}</code>
          ))}
        </p>
        <label htmlFor="copy-project">To the project</label>
        <select
          id="copy-project"
          value={toProject}
          onChange={(e) => {
            setToProject(e.target.value)
            setTo('')
            copy.reset()
          }}
        >
          {(projects.data?.projects ?? []).every((x) => x.slug !== project) && <option value={project}>{project}</option>}
          {(projects.data?.projects ?? []).map((x) => (
            <option key={x.id} value={x.slug}>
              {x.slug === project ? `${x.name} (this project)` : x.name}
            </option>
          ))}
        </select>
        <ErrorNote error={projects.error ?? target.error} />
        <label htmlFor="copy-target">To the environment</label>
        <select
          id="copy-target"
          value={to}
          onChange={(e) => {
            setTo(e.target.value)
            copy.reset()
          }}
        >
          {others.map((e) => (
            <option key={e.id} value={e.slug}>
              {e.name}
            </option>
          ))}
        </select>
        {!sameProject && target.isPending && <p className="hint">Loading the environments of {projectName(toProject)}…</p>}
        <label className="check">
          <input type="checkbox" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} />
          Replace keys that hold another value there
        </label>
        <p className="hint">
          Values, comments and tags are copied on the server; each written secret gets a new version and an audit entry.
        </p>
        {conflicts ? (
          <div className="note error" role="alert">
            {conflicts.length > 0 ? (
              <>
                <p>
                  {plural(conflicts.length, 'key')} already {conflicts.length === 1 ? 'holds' : 'hold'} another value in {targetName}.
                  Nothing was copied:
                </p>
                <ul className="conflicts">
                  {conflicts.map((k) => (
                    <li key={k}>
                      <code>{k}</code>
                    </li>
                  ))}
                </ul>
              </>
            ) : (
              <p>{copy.error instanceof ApiError ? copy.error.message : ''}</p>
            )}
          </div>
        ) : (
          <ErrorNote error={copy.error} />
        )}
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          {conflicts ? (
            <button type="button" className="danger" disabled={copy.isPending} onClick={() => copy.mutate(true)}>
              Overwrite and copy
            </button>
          ) : (
            <button type="submit" className="primary" disabled={copy.isPending || !to}>
              Copy
            </button>
          )}
        </div>
      </form>
    </Dialog>
  )
}
