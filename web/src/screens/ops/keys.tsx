import { useMutation, useQueries, useQuery, useQueryClient } from '@tanstack/react-query'
import { Fragment, useState } from 'react'
import { api, type Environment, type KeyJob, type KeyVersion, keys, opsApi, opsKeys, type Project } from '../../api.js'
import { ErrorNote, isNotFound, Loading } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { NotFound } from '../not-found.js'
import { dateTime, OpsHeader, useMe, useWorkspaceParam } from './common.js'

// How often a running reseal job's progress is asked for.
const POLL_MS = 500

export function KeysRoute() {
  return <KeysScreen workspace={useWorkspaceParam()} />
}

/** Data keys of every environment the person may see: versions, states, rotation and reseal progress. */
export function KeysScreen({ workspace }: { workspace: string }) {
  const { role } = useMe(workspace)
  const projects = useQuery({ queryKey: keys.projects(workspace), queryFn: () => api.projects(workspace) })
  const details = useQueries({
    queries: (projects.data?.projects ?? []).map((p) => ({
      queryKey: keys.project(workspace, p.slug),
      queryFn: () => api.project(workspace, p.slug),
    })),
  })
  if (projects.isError && isNotFound(projects.error)) return <NotFound />
  const canRotate = role === 'owner' || role === 'admin'
  return (
    <>
      <OpsHeader
        title="Keys"
        subtitle="Each environment's values are sealed under its own data key. Rotating makes a new primary version at once; a background job reseals older values under it, then destroys the old versions."
      />
      {projects.isPending && <Loading label="Loading projects…" />}
      <ErrorNote error={projects.error} />
      {projects.data?.projects.length === 0 && (
        <div className="panel empty">
          <h2>No projects yet</h2>
          <p>Data keys are made with each environment.</p>
        </div>
      )}
      {projects.data?.projects.map((p, i) => {
        const d = details[i]
        return (
          <section key={p.id} className="ops-section" aria-labelledby={`keys-${p.id}`}>
            <h2 id={`keys-${p.id}`}>{p.name}</h2>
            {d?.isPending && <Loading label="Loading environments…" />}
            <ErrorNote error={d?.error} />
            {d?.data && <EnvironmentKeys workspace={workspace} project={p} environments={d.data.environments} canRotate={canRotate} />}
          </section>
        )
      })}
    </>
  )
}

function EnvironmentKeys({
  workspace,
  project,
  environments,
  canRotate,
}: {
  workspace: string
  project: Project
  environments: Environment[]
  canRotate: boolean
}) {
  const [open, setOpen] = useState<string | null>(null)
  const [rotating, setRotating] = useState<Environment | null>(null)
  if (environments.length === 0) return <p className="muted">No environment of this project is shared with you.</p>
  return (
    <>
      <table className="table ops-table" aria-label={`Data keys of ${project.name}`}>
        <thead>
          <tr>
            <th scope="col">Environment</th>
            <th scope="col">Primary</th>
            <th scope="col">Versions</th>
            <th scope="col">Encryptions</th>
            <th scope="col">Reseal</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {environments.map((e) => (
            <EnvironmentKeyRow
              key={e.id}
              workspace={workspace}
              project={project}
              environment={e}
              canRotate={canRotate}
              open={open === e.id}
              onToggle={() => setOpen((o) => (o === e.id ? null : e.id))}
              onRotate={() => setRotating(e)}
            />
          ))}
        </tbody>
      </table>
      {rotating && <RotateDialog workspace={workspace} project={project} environment={rotating} onClose={() => setRotating(null)} />}
    </>
  )
}

function EnvironmentKeyRow({
  workspace,
  project,
  environment,
  canRotate,
  open,
  onToggle,
  onRotate,
}: {
  workspace: string
  project: Project
  environment: Environment
  canRotate: boolean
  open: boolean
  onToggle: () => void
  onRotate: () => void
}) {
  const qc = useQueryClient()
  const statusKey = opsKeys.keyStatus(workspace, project.slug, environment.slug)
  const status = useQuery({ queryKey: statusKey, queryFn: () => opsApi.keyStatus(workspace, project.slug, environment.slug) })
  const latest = status.data?.jobs[0]
  const primary = status.data?.versions.find((v) => v.state === 'primary')
  const live = status.data?.versions.filter((v) => v.state !== 'shredded') ?? []
  const shredded = (status.data?.versions.length ?? 0) - live.length
  const label = `${project.name} / ${environment.name}`
  return (
    <Fragment>
      <tr>
        <th scope="row" className="ops-row-head">
          {environment.name}
          <code className="muted"> {environment.slug}</code>
        </th>
        <td>{primary ? <span className="badge ok">v{primary.version}</span> : status.isPending ? '…' : '—'}</td>
        <td>
          {status.data && (
            <span>
              {live.length} live{shredded > 0 && <span className="muted"> · {shredded} destroyed</span>}
            </span>
          )}
          <ErrorNote error={status.error} />
        </td>
        <td className="mono">{primary ? primary.encryptions.toLocaleString('en') : ''}</td>
        <td className="ops-reseal">
          {latest ? (
            <ResealProgress
              workspace={workspace}
              job={latest}
              label={label}
              onFinished={() => void qc.invalidateQueries({ queryKey: statusKey })}
            />
          ) : (
            <span className="muted">never rotated</span>
          )}
        </td>
        <td className="row-actions">
          <button type="button" className="link" aria-expanded={open} onClick={onToggle}>
            {open ? 'Hide versions' : 'Versions'}
            <span className="visually-hidden"> of {label}</span>
          </button>
          {canRotate && (
            <button type="button" onClick={onRotate} aria-label={`Rotate the data key of ${label}`}>
              Rotate
            </button>
          )}
        </td>
      </tr>
      {open && status.data && (
        <tr className="ops-subrow">
          <td colSpan={6}>
            <VersionList versions={status.data.versions} jobs={status.data.jobs} />
          </td>
        </tr>
      )}
    </Fragment>
  )
}

/** A reseal job's state; while it runs, its progress is polled until it is done or failed. */
function ResealProgress({ workspace, job, label, onFinished }: { workspace: string; job: KeyJob; label: string; onFinished: () => void }) {
  const polled = useQuery({
    queryKey: opsKeys.keyJob(workspace, job.id),
    queryFn: async () => {
      const r = (await opsApi.keyJob(workspace, job.id)).job
      if (r.state !== 'running') onFinished()
      return r
    },
    initialData: job,
    enabled: job.state === 'running',
    refetchInterval: (q) => (q.state.data?.state === 'running' ? POLL_MS : false),
    staleTime: 0,
  })
  const j = polled.data ?? job
  const pct = j.total === 0 ? 100 : Math.floor((j.done / j.total) * 100)
  if (j.state === 'failed')
    return (
      <span className="badge danger" title={j.error ?? undefined}>
        Failed at {j.done}/{j.total}
      </span>
    )
  return (
    <div className="reseal">
      <progress max={Math.max(j.total, 1)} value={j.total === 0 ? 1 : j.done} aria-label={`Reseal of ${label}`} />
      <span className="reseal-text" aria-live="polite">
        {j.state === 'running' ? `${j.done} of ${j.total} resealed (${pct}%)` : `v${j.targetVersion}: ${j.total} resealed`}
      </span>
      {j.state === 'done' && j.finishedAt && <span className="muted reseal-when">{dateTime(j.finishedAt)}</span>}
    </div>
  )
}

function VersionList({ versions, jobs }: { versions: KeyVersion[]; jobs: KeyJob[] }) {
  return (
    <div className="ops-versions">
      <table className="table compact" aria-label="Key versions">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">State</th>
            <th scope="col">Encryptions</th>
            <th scope="col">Wrapped by root key</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {[...versions]
            .sort((a, b) => b.version - a.version)
            .map((v) => (
              <tr key={v.version}>
                <td>v{v.version}</td>
                <td>
                  <span className={`badge ${v.state === 'primary' ? 'ok' : v.state === 'shredded' ? '' : 'warn'}`}>
                    {v.state === 'shredded' ? 'destroyed' : v.state}
                  </span>
                </td>
                <td className="mono">{v.encryptions.toLocaleString('en')}</td>
                <td>
                  <code>{v.rootKeyId}</code>
                </td>
                <td className="muted">{dateTime(v.createdAt)}</td>
              </tr>
            ))}
        </tbody>
      </table>
      {jobs.length > 0 && (
        <p className="muted ops-jobs">
          Recent reseals:{' '}
          {jobs.map((j, i) => (
            <span key={j.id}>
              {i > 0 && ' · '}v{j.targetVersion} {j.state} ({j.reason}, {j.done}/{j.total}, {dateTime(j.createdAt)})
            </span>
          ))}
        </p>
      )}
    </div>
  )
}

function RotateDialog({
  workspace,
  project,
  environment,
  onClose,
}: {
  workspace: string
  project: Project
  environment: Environment
  onClose: () => void
}) {
  const qc = useQueryClient()
  const rotate = useMutation({
    mutationFn: () => opsApi.rotateKey(workspace, project.slug, environment.slug),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: opsKeys.keyStatus(workspace, project.slug, environment.slug) })
      onClose()
    },
  })
  return (
    <Dialog title={`Rotate the data key of ${project.name} / ${environment.name}?`} onClose={onClose}>
      <p>
        A new key version becomes primary now and seals every new value. A background job then reseals the existing values under it and
        destroys the older versions. Reads and writes go on meanwhile.
      </p>
      <ErrorNote error={rotate.error} />
      <div className="dialog-actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="primary" disabled={rotate.isPending} onClick={() => rotate.mutate()}>
          Rotate key
        </button>
      </div>
    </Dialog>
  )
}
