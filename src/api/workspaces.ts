import { z } from 'zod'

/** A workspace: the tenant everything else belongs to. GET /v1/workspaces/:workspace answers one. */
export const workspaceView = z.object({ id: z.string(), slug: z.string(), name: z.string(), createdAt: z.string() })
export type Workspace = z.infer<typeof workspaceView>
