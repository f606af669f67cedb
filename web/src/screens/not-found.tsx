import { Link } from '@tanstack/react-router'

/**
 * What every missing thing looks like — a made-up path, or a workspace, project or environment
 * that does not exist or is not yours: the same words, so a page tells nothing of another tenant.
 */
export function NotFound({ standalone = false }: { standalone?: boolean }) {
  const body = (
    <div className="panel empty" role="status">
      <h1>Not found</h1>
      <p>There is nothing here, or it is not shared with you.</p>
      <p>
        <Link to="/">Back to your workspace</Link>
      </p>
    </div>
  )
  return standalone ? <main className="standalone">{body}</main> : body
}
