import { z } from 'zod'
import { name } from './fields.js'
import { integrationScopeInput, integrationScopeView } from './integration-scopes.js'
import { MAX_TOKEN_TTL_SECONDS } from './limits.js'
import { oidcRuleInput } from './machine-oidc.js'

/** A machine identity as listed: never its client secret, only its display prefix. */
export const machineView = z.object({
  id: z.string(),
  clientId: z.string(),
  name: z.string(),
  /** Empty: no client secret (the identity trusts OIDC issuers only). */
  secretDisplay: z.string(),
  scopes: z.array(integrationScopeView),
  allowedCidrs: z.array(z.string()),
  tokenTtlSeconds: z.number(),
  /** An access token from an OIDC exchange lives no longer than the ID token had left. */
  oidcLimitTtl: z.boolean(),
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
  /** OIDC issuers the identity trusts (docs/ci-federation.md). */
  oidcRules: z.array(oidcRuleInput).max(20).optional(),
  oidcLimitTtl: z.boolean().optional(),
  /** Issue a client secret (default: yes, unless `oidcRules` are given). */
  clientSecret: z.boolean().optional(),
})
export type CreateMachineInput = z.input<typeof createMachineBody>

/** The new machine identity and its client credentials (the secret shown this once; null: none, it trusts OIDC issuers only). */
export const createdMachineResponse = z.object({ machine: machineView, clientId: z.string(), clientSecret: z.string().nullable() })
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
