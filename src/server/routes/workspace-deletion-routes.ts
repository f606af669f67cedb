import { deleteWorkspaceBody, workspaceDeletionResponse } from '../../api/workspace-deletion.js'
import { actorId } from '../../access/policy.js'
import { recordDeletionReceipt, scrubAfterShred, shredWorkspace } from '../../vault/workspace-deletion.js'
import { defineRoute, type AnyRoute } from '../route.js'
import { workspaceParams } from '../schemas.js'

const deleteWorkspace = defineRoute({
  method: 'DELETE',
  url: '/v1/workspaces/:workspace',
  tag: 'projects',
  summary: 'Delete the workspace (Owner; send its slug as "confirm"): its keys are destroyed at once, its rows purged later',
  action: 'workspace.delete',
  mode: 'write',
  params: workspaceParams,
  body: deleteWorkspaceBody,
  response: workspaceDeletionResponse,
  async handler({ app, db, principal, workspace, body }) {
    const now = app.clock()
    const shred = await shredWorkspace(db, { dataKeys: app.dataKeys }, { workspace, confirm: body.confirm, now })
    const purgeAfter = new Date(now.getTime() + app.config.purgeAfterDays * 86_400_000).toISOString()
    return {
      body: null as never, // the response is what `finish` returns, with the receipt
      // The last entry of the workspace's chain; the receipt below signs the tree that ends with it.
      audit: {
        action: 'workspace.delete',
        target: { type: 'workspace', id: workspace.id },
        details: { slug: workspace.slug, name: workspace.name, ...shred, purgeAfter },
      },
      finish: async (tx) => ({
        receipt: await recordDeletionReceipt(
          tx,
          { audit: app.audit, auditTree: app.auditTree },
          { workspace, deletedBy: actorId(principal), now, purgeAfterDays: app.config.purgeAfterDays },
        ),
        ...shred,
      }),
      afterCommit: () => scrubAfterShred(app.store.db, app.store.engine),
    }
  },
})

/** Workspace deletion (crypto-shredding). */
export const workspaceDeletionRoutes: AnyRoute[] = [deleteWorkspace]
