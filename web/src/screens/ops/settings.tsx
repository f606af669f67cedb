import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useNavigate } from '@tanstack/react-router'
import { type FormEvent, useState } from 'react'
import { keys, opsApi, type DeletionReceipt } from '../../api.js'
import { ErrorNote } from '../../ui/common.js'
import { Dialog } from '../../ui/dialog.js'
import { dateTime, downloadText, OpsHeader, useMe, useWorkspaceParam } from './common.js'

const ROLE: Record<string, string> = { owner: 'Owner', admin: 'Admin', member: 'Member', auditor: 'Auditor' }

export function SettingsRoute() {
  return <SettingsScreen workspace={useWorkspaceParam()} />
}

interface Deleted {
  receipt: DeletionReceipt
  dataKeysShredded: number
  tokensRevoked: number
}

/** The workspace's settings: what it is, the account page, and (Owner) deleting it with crypto-shredding. */
export function SettingsScreen({ workspace }: { workspace: string }) {
  const { workspace: ws, role } = useMe(workspace)
  const [deleting, setDeleting] = useState(false)
  const [deleted, setDeleted] = useState<Deleted | null>(null)
  const qc = useQueryClient()
  const navigate = useNavigate()
  if (deleted)
    return (
      <Receipt
        deleted={deleted}
        onDone={async () => {
          await qc.invalidateQueries({ queryKey: keys.account })
          await navigate({ to: '/' })
        }}
      />
    )
  if (!ws) return null
  return (
    <>
      <OpsHeader title="Settings" subtitle={`Workspace ${ws.name}`} />
      <section className="panel ops-section" aria-labelledby="ws-title">
        <h2 id="ws-title">Workspace</h2>
        <dl className="entry-fields">
          <dt>Name</dt>
          <dd>{ws.name}</dd>
          <dt>Slug</dt>
          <dd>
            <code>{ws.slug}</code>
          </dd>
          <dt>Id</dt>
          <dd>
            <code>{ws.id}</code>
          </dd>
          <dt>Your role</dt>
          <dd>{ROLE[ws.role] ?? ws.role}</dd>
        </dl>
      </section>
      <section className="panel ops-section" aria-labelledby="account-title">
        <h2 id="account-title">Your account</h2>
        <p>
          Your name, password, sessions, export of your data and account deletion are on the <a href="/account">account page</a>.
        </p>
      </section>
      <section className="panel ops-section danger-zone" aria-labelledby="danger-title">
        <h2 id="danger-title">Delete this workspace</h2>
        <p>
          Its data keys are destroyed at once, so no value of it can be decrypted again, even from a backup; its tokens stop working; its
          rows are purged later. You get a signed receipt of the audit log as it ended.
        </p>
        {role === 'owner' ? (
          <button type="button" className="danger" onClick={() => setDeleting(true)}>
            Delete workspace…
          </button>
        ) : (
          <p className="muted">Only an Owner can delete the workspace.</p>
        )}
      </section>
      {deleting && (
        <DeleteDialog
          workspace={ws.slug}
          name={ws.name}
          onClose={() => setDeleting(false)}
          onDeleted={(d) => {
            setDeleting(false)
            setDeleted(d)
          }}
        />
      )}
    </>
  )
}

function DeleteDialog({
  workspace,
  name,
  onClose,
  onDeleted,
}: {
  workspace: string
  name: string
  onClose: () => void
  onDeleted: (d: Deleted) => void
}) {
  const [typed, setTyped] = useState('')
  const del = useMutation({ mutationFn: () => opsApi.deleteWorkspace(workspace, typed), onSuccess: onDeleted })
  function submit(e: FormEvent) {
    e.preventDefault()
    if (typed === workspace) del.mutate()
  }
  return (
    <Dialog title={`Delete ${name}?`} onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <p>
          This cannot be undone. Every project, environment and secret of the workspace becomes unreadable now: its data keys are destroyed.
        </p>
        <label htmlFor="delete-confirm">
          Type <code>{workspace}</code> to confirm
        </label>
        <input id="delete-confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} />
        <ErrorNote error={del.error} />
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={typed !== workspace || del.isPending}>
            Delete workspace
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function Receipt({ deleted, onDone }: { deleted: Deleted; onDone: () => Promise<void> }) {
  const r = deleted.receipt
  return (
    <>
      <OpsHeader title="Workspace deleted" subtitle={`${r.name} (${r.slug}) was deleted and its data keys destroyed.`} />
      <section className="panel ops-section" aria-labelledby="receipt-title">
        <h2 id="receipt-title">Shredding receipt</h2>
        <dl className="entry-fields">
          <dt>Workspace</dt>
          <dd>
            {r.name} <code>{r.workspaceId}</code>
          </dd>
          <dt>Deleted</dt>
          <dd>{dateTime(r.deletedAt)}</dd>
          <dt>Data keys destroyed</dt>
          <dd>{deleted.dataKeysShredded}</dd>
          <dt>Tokens revoked</dt>
          <dd>{deleted.tokensRevoked}</dd>
          <dt>Rows purged after</dt>
          <dd>{dateTime(r.purgeAfter)}</dd>
          <dt>Audit log ended at</dt>
          <dd>
            {r.auditTreeSize} entries, root <code className="hash">{r.auditRootHash}</code>
          </dd>
        </dl>
        <h3 className="entry-sub">Signed checkpoint</h3>
        <pre className="entry-json">{r.checkpointNote}</pre>
        <p className="hint">
          The checkpoint is signed with the server's audit key (<code>/v1/audit/public-key</code>): keep the receipt to prove what the log
          held when the workspace ended.
        </p>
        <div className="dialog-actions">
          <button type="button" onClick={() => downloadText(`deletion-receipt-${r.slug}.json`, `${JSON.stringify(deleted, null, 2)}\n`)}>
            Download receipt
          </button>
          <button type="button" className="primary" onClick={() => void onDone()}>
            Done
          </button>
        </div>
      </section>
    </>
  )
}
