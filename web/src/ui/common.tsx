import { Link } from '@tanstack/react-router'
import type { ReactNode } from 'react'
import { ApiError } from '../api.js'

/** Whether an error is the API's "not found" (another workspace's resource looks exactly like a missing one). */
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404
}

/** The message of an error, as text. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message
  return 'Something went wrong. Reload the page and try again.'
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null
  return (
    <p className="note error" role="alert">
      {messageOf(error)}
      {error instanceof ApiError && <span className="code"> {error.code}</span>}
    </p>
  )
}

export function Loading({ label }: { label: string }) {
  return (
    <p className="loading" aria-live="polite">
      {label}
    </p>
  )
}

/** The page's header: where you are (links back up) and the page's own actions. */
export function PageHeader({
  workspace,
  trail,
  title,
  subtitle,
  actions,
}: {
  workspace: string
  trail: Array<{ label: string; project?: string }>
  title: string
  subtitle?: ReactNode
  actions?: ReactNode
}) {
  return (
    <header className="page-header">
      <nav aria-label="Breadcrumb" className="crumbs">
        <ol>
          <li>
            <Link to="/w/$workspace" params={{ workspace }} activeOptions={{ exact: true }}>
              Projects
            </Link>
          </li>
          {trail.map((c) => (
            <li key={c.label}>
              {c.project ? (
                <Link to="/w/$workspace/projects/$project" params={{ workspace, project: c.project }} activeOptions={{ exact: true }}>
                  {c.label}
                </Link>
              ) : (
                <span>{c.label}</span>
              )}
            </li>
          ))}
        </ol>
      </nav>
      <div className="page-title">
        <div>
          <h1>{title}</h1>
          {subtitle && <p className="subtitle">{subtitle}</p>}
        </div>
        {actions && <div className="actions">{actions}</div>}
      </div>
    </header>
  )
}

/** A short date (UTC) for tables. */
export function shortDate(iso: string): string {
  return iso.slice(0, 10)
}
