import { z } from 'zod'

/** The permanent receipt of a workspace deletion: the audit tree head it ended with. */
export const deletionReceiptView = z.object({
  workspaceId: z.string(),
  slug: z.string(),
  name: z.string(),
  deletedBy: z.string(),
  deletedAt: z.string(),
  purgeAfter: z.string(),
  auditTreeSize: z.number(),
  auditRootHash: z.string(),
  checkpointNote: z.string(),
  purgedAt: z.string().nullable(),
})
export type DeletionReceipt = z.infer<typeof deletionReceiptView>

/** DELETE /v1/workspaces/:workspace: `confirm` is the workspace's slug. */
export const deleteWorkspaceBody = z.strictObject({ confirm: z.string().max(128) })
export type DeleteWorkspaceInput = z.input<typeof deleteWorkspaceBody>

export const workspaceDeletionResponse = z.object({ receipt: deletionReceiptView, dataKeysShredded: z.number(), tokensRevoked: z.number() })
export type WorkspaceDeletion = z.infer<typeof workspaceDeletionResponse>
