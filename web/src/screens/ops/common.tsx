import { useQuery } from '@tanstack/react-query'
import { useParams } from '@tanstack/react-router'
import { type ReactNode, useEffect, useState } from 'react'
import { api, keys } from '../../api.js'
import './ops.css'

/** The workspace the URL names (the shell has already checked the person belongs to it). */
export function useWorkspaceParam(): string {
  return useParams({ strict: false }).workspace ?? ''
}

/** The person and their role in `workspace`, from GET /v1/account (already loaded by the shell). */
export function useMe(workspace: string) {
  const account = useQuery({ queryKey: keys.account, queryFn: api.account })
  const ws = account.data?.workspaces.find((w) => w.slug === workspace || w.id === workspace)
  return { user: account.data?.user, workspace: ws, role: ws?.role }
}

/** The header of an operations screen: its title, a line of explanation, and its actions. */
export function OpsHeader({ title, subtitle, actions }: { title: string; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-header">
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

/** The current time, updated every `ms` while mounted (countdowns). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => performance.timeOrigin + performance.now())
  useEffect(() => {
    const t = setInterval(() => setNow(performance.timeOrigin + performance.now()), ms)
    return () => clearInterval(t)
  }, [ms])
  return now
}

/** A date and time (UTC) for tables: 2025-03-04 12:30:05. */
export function dateTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`
}

/** A remaining duration as text: 1 h 04 min, 12 min 05 s, 42 s. */
export function remaining(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`
  if (m > 0) return `${m} min ${String(sec).padStart(2, '0')} s`
  return `${sec} s`
}

/** A lifetime in seconds as text: 15 min, 1 h, 1 h 30 min, 45 s. */
export function lifetime(seconds: number): string {
  if (seconds < 60) return `${seconds} s`
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  const parts = [h ? `${h} h` : '', m ? `${m} min` : '', s ? `${s} s` : ''].filter(Boolean)
  return parts.join(' ')
}

/**
 * Saves `text` as a file through a Blob and an object URL (no server round trip, no markup
 * from strings); the URL is released once the browser has taken the download.
 */
export function downloadText(name: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.rel = 'noopener'
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
