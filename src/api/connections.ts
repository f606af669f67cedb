import { z } from 'zod'

// Third-party OAuth connections (docs/connections.md). No answer carries a token or the
// client secret: only the state of the links.

export const connectionName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, - and _, at most 63')

export const linkState = z.object({
  status: z.enum(['connected', 'needs_reconnect']),
  expiresAt: z.string().nullable(),
  scopes: z.array(z.string()),
  linkedAt: z.string(),
  refreshedAt: z.string().nullable(),
})

/** A connection as the API shows it. */
export const connectionView = z.object({
  id: z.string(),
  name: z.string(),
  authorizeUrl: z.string(),
  tokenUrl: z.string(),
  clientId: z.string(),
  tokenAuth: z.enum(['client_secret_basic', 'client_secret_post']),
  scopes: z.array(z.string()),
  apiBase: z.string(),
  allow: z.array(z.string()),
  createdAt: z.string(),
  app: linkState.nullable(),
  personal: linkState.nullable(),
  personalLinks: z.number().int(),
})
export type ConnectionView = z.infer<typeof connectionView>

const httpUrl = z.string().min(1).max(2048)

/** POST /v1/workspaces/:workspace/connections */
export const createConnectionBody = z.strictObject({
  name: connectionName,
  authorizeUrl: httpUrl,
  tokenUrl: httpUrl,
  clientId: z.string().min(1).max(512),
  clientSecret: z.string().min(1).max(4096),
  tokenAuth: z.enum(['client_secret_basic', 'client_secret_post']).optional(),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,200}$/, 'an OAuth scope token'))
    .max(50)
    .optional(),
  apiBase: httpUrl,
  allow: z.array(z.string().min(1).max(500)).min(1).max(100),
})
export type CreateConnectionBody = z.infer<typeof createConnectionBody>

export const connectionResponse = z.object({ connection: connectionView })
export const connectionListResponse = z.object({ connections: z.array(connectionView) })

/** POST …/connections/:connection/authorize: `kind` app (Owner/Admin) or personal (default). */
export const authorizeBody = z.strictObject({ kind: z.enum(['app', 'personal']).optional() })
/** The provider URL to open in a browser; its `state` is single-use and expires. */
export const authorizeResponse = z.object({ url: z.string(), expiresAt: z.string() })
export type AuthorizeAnswer = z.infer<typeof authorizeResponse>

/** DELETE …/connections/:connection/link */
export const unlinkResponse = z.object({ connection: connectionView, unlinked: z.boolean() })

/** GET /oauth/callback (the provider's redirect). */
export const oauthCallbackQuery = z.looseObject({
  state: z.string().min(1).max(200),
  code: z.string().min(1).max(4096).optional(),
  error: z.string().max(200).optional(),
})
export const oauthCallbackResponse = z.object({ connected: z.boolean(), connection: z.string(), kind: z.enum(['app', 'personal']) })
