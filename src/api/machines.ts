import { z } from 'zod'
import { name } from './fields.js'
import { integrationScopeInput, integrationScopeView } from './integration-scopes.js'
import { MAX_TOKEN_TTL_SECONDS } from './limits.js'

/** A machine identity as listed: never its client secret, only its display prefix. */
export const machineView = z.object({
  id: z.string(),
  clientId: z.string(),
  name: z.string(),
  secretDisplay: z.string(),
  scopes: z.array(integrationScopeView),
  allowedCidrs: z.array(z.string()),
  tokenTtlSeconds: z.number(),
  createdBy: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
})
export type Machine = z.infer<typeof machineView>

/** POST /v1/workspaces/:workspace/machines */
export const createMachineBody = z.strictObject({
  name,
  scopes: z.array(integrationScopeInput).min(1).max(50),
  allowedCidrs: z.array(z.string().max(64)).max(100).optional(),
  tokenTtlSeconds: z.number().int().min(60).max(MAX_TOKEN_TTL_SECONDS).optional(),
})
export type CreateMachineInput = z.input<typeof createMachineBody>

/** The new machine identity and its client credentials (the secret shown this once). */
export const createdMachineResponse = z.object({ machine: machineView, clientId: z.string(), clientSecret: z.string() })
export type CreatedMachine = z.infer<typeof createdMachineResponse>

/** GET /v1/workspaces/:workspace/machines */
export const machineListResponse = z.object({ machines: z.array(machineView) })
export type MachineList = z.infer<typeof machineListResponse>

/** DELETE /v1/workspaces/:workspace/machines/:machine: how many access tokens were still live. */
export const machineRevocationResponse = z.object({ machine: machineView, liveTokens: z.number() })
export type MachineRevocation = z.infer<typeof machineRevocationResponse>

/** POST /v1/machine/token: client credentials for an access token. */
export const machineTokenBody = z.strictObject({ clientId: z.string().min(1).max(64), clientSecret: z.string().min(1).max(200) })
export type MachineTokenInput = z.input<typeof machineTokenBody>

export const machineTokenResponse = z.object({
  accessToken: z.string(),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number(),
  expiresAt: z.string(),
})
export type MachineAccessToken = z.infer<typeof machineTokenResponse>
