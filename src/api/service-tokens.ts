import { z } from 'zod'
import { name } from './fields.js'
import { integrationScopeInput, integrationScopeView } from './integration-scopes.js'

/** A service token as listed: never the token itself, only its display prefix. */
export const serviceTokenView = z.object({
  id: z.string(),
  name: z.string(),
  display: z.string(),
  scopes: z.array(integrationScopeView),
  createdBy: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
})
export type ServiceToken = z.infer<typeof serviceTokenView>

/** POST /v1/workspaces/:workspace/service-tokens */
export const createServiceTokenBody = z.strictObject({
  name,
  scopes: z.array(integrationScopeInput).min(1).max(50),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
})
export type CreateServiceTokenInput = z.input<typeof createServiceTokenBody>

/** The new token, shown this once, and its listing. */
export const createdServiceTokenResponse = z.object({ token: z.string(), info: serviceTokenView })
export type CreatedServiceToken = z.infer<typeof createdServiceTokenResponse>

/** GET /v1/workspaces/:workspace/service-tokens */
export const serviceTokenListResponse = z.object({ tokens: z.array(serviceTokenView) })
export type ServiceTokenList = z.infer<typeof serviceTokenListResponse>

/** DELETE /v1/workspaces/:workspace/service-tokens/:serviceToken */
export const serviceTokenInfoResponse = z.object({ info: serviceTokenView })
export type ServiceTokenInfo = z.infer<typeof serviceTokenInfoResponse>
