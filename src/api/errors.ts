import { z } from 'zod'

/** The one body every error answer has: a stable `code` (docs/errors.md), a message, the request id. */
export const errorEnvelope = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string().optional(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
})
export type ErrorEnvelope = z.infer<typeof errorEnvelope>
