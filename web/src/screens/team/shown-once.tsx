import { useState } from 'react'

/** Copies `text` to the clipboard; says so (or that the browser refused) next to the button. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle')
  async function copy() {
    try {
      await navigator.clipboard.writeText(text)
      setState('copied')
    } catch {
      setState('failed')
    }
  }
  return (
    <span className="copy">
      <button type="button" onClick={() => void copy()} aria-label={label}>
        Copy
      </button>
      <span className="copy-state" aria-live="polite">
        {state === 'copied' ? 'Copied' : state === 'failed' ? 'Select it and copy by hand' : ''}
      </span>
    </span>
  )
}

/**
 * A credential the server shows this once (a token, a client secret, an accept link): in a
 * read-only field to select, with a copy button. It lives only in this dialog's memory.
 */
export function ShownOnce({ id, label, value, rows = 3 }: { id: string; label: string; value: string; rows?: number }) {
  return (
    <div className="shown-once">
      <label htmlFor={id}>{label}</label>
      <div className="shown-once-row">
        <textarea id={id} className="mono" readOnly value={value} rows={rows} spellCheck={false} />
        <CopyButton text={value} label={`Copy ${label.toLowerCase()}`} />
      </div>
    </div>
  )
}

export const ROLE_NAMES: Record<string, string> = { owner: 'Owner', admin: 'Admin', member: 'Member', auditor: 'Auditor' }

/** Whether the signed-in person manages the workspace (Owner or Admin): what the API lets them do decides in the end. */
export function managesWorkspace(role: string | undefined): boolean {
  return role === 'owner' || role === 'admin'
}
