import { z } from 'zod'

/** One of the person's sessions (GET /v1/account). */
export const sessionView = z.object({
  id: z.string(),
  method: z.string(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  expiresAt: z.string(),
  ip: z.string(),
  userAgent: z.string(),
  current: z.boolean(),
})

/**
 * GET /v1/account: the signed-in person, the workspaces they belong to (with their role), their
 * sessions, and — for a session caller — the CSRF token to send in `x-csrf-token` on every
 * request that changes something (null for a Bearer token, which needs none).
 */
export const accountResponse = z.object({
  user: z.object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    emailVerified: z.boolean(),
    hasPassword: z.boolean(),
    createdVia: z.string(),
  }),
  workspaces: z.array(z.object({ id: z.string(), slug: z.string(), name: z.string(), role: z.string() })),
  sessions: z.array(sessionView),
  csrfToken: z.string().nullable(),
})
export type Account = z.infer<typeof accountResponse>
