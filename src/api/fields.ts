import { z } from 'zod'

// Field schemas shared by several request bodies (and by the server's path parameters).

/** An id or a slug naming a workspace, project or environment. */
export const ref = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/, 'must be an id or a slug')

/** A slug: lowercase letters, digits and inner dashes, at most 64. */
export const slug = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/, 'lowercase letters, digits and dashes, at most 64')

/** A display name: trimmed, 1 to 128 characters. */
export const name = z.string().trim().min(1).max(128)
