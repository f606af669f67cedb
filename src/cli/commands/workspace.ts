import { createInterface } from 'node:readline/promises'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'
import { connect, type ServerOptions } from '../session.js'

/**
 * `coffer workspace delete SLUG --confirm SLUG` (or the id, then the slug): deletes the workspace (Owner). Its keys are
 * destroyed at once — nothing in it can be read again, from any copy of the database — and
 * its rows are purged later. Without --confirm, asks for the slug only on a terminal.
 */
export async function workspaceDelete(ref: string, opts: ServerOptions & { confirm?: string; json?: boolean }): Promise<void> {
  let confirm = opts.confirm
  if (confirm === undefined) {
    if (!process.stdin.isTTY)
      throw new ExitError(`Deleting a workspace cannot be undone: pass --confirm with its slug (e.g. --confirm ${ref}).`)
    const rl = createInterface({ input: process.stdin, output: process.stderr })
    try {
      confirm = (
        await rl.question(
          `Deleting workspace ${ref} destroys its keys now; nothing in it can ever be read again.\nType the workspace slug to confirm: `,
        )
      ).trim()
    } finally {
      rl.close()
    }
  }
  // @NOTE the server compares the confirmation with the workspace's slug (the argument may be its id).
  const client = await connect(opts)
  const r = await client.deleteWorkspace(ref, confirm)
  if (opts.json) return printJson(r)
  info(
    `Workspace ${r.receipt.slug} deleted: ${r.dataKeysShredded} data keys destroyed, ${r.tokensRevoked} tokens revoked; rows purged after ${r.receipt.purgeAfter}.`,
  )
  info(`Final audit tree: ${r.receipt.auditTreeSize} entries, root ${r.receipt.auditRootHash}. Signed checkpoint:`)
  process.stdout.write(r.receipt.checkpointNote.endsWith('\n') ? r.receipt.checkpointNote : `${r.receipt.checkpointNote}\n`)
}
