import { z } from 'zod'
import { name } from './fields.js'

/** A personal access token as listed: never the token itself, only its display prefix. */
export const tokenView = z.object({
  id: z.string(),
  name: z.string(),
  display: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
})
export type TokenInfo = z.infer<typeof tokenView>

/** GET /v1/workspaces/:workspace/tokens */
export const tokenListResponse = z.object({ tokens: z.array(tokenView) })
export type TokenList = z.infer<typeof tokenListResponse>

/** POST /v1/workspaces/:workspace/tokens */
export const createTokenBody = z.strictObject({ name, expiresInDays: z.number().int().min(1).max(3650).optional() })
export type CreateTokenInput = z.input<typeof createTokenBody>

/** A new token (shown this once) and its listing. */
export const createdTokenResponse = z.object({ token: z.string(), info: tokenView })
export type CreatedToken = z.infer<typeof createdTokenResponse>

/** DELETE /v1/workspaces/:workspace/tokens/:token */
export const tokenInfoResponse = z.object({ info: tokenView })
export type TokenInfoAnswer = z.infer<typeof tokenInfoResponse>
