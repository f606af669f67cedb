import { z } from 'zod'

// OIDC federation for machine identities: the rules that say which workload ID tokens an
// identity trusts, and the exchange of such a token for the identity's access token.

/** A claim name a rule may test (`sub`, `repository_owner`, `project_path`, `kubernetes.io`…). */
const claimName = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'a claim name: letters, digits, _ . : -, at most 100')
  .refine((n) => n !== '__proto__', 'not a claim name')

/**
 * One trust rule as given: the issuer URL (https; http only for a loopback issuer), the
 * audiences accepted (the token's `aud` must name one) and claim conditions that must all
 * match — exact values, or `*` globs (`repo:acme/*:ref:refs/heads/main`). At least one
 * condition: an issuer such as GitHub's signs tokens for every repository in the world.
 */
export const oidcRuleInput = z.strictObject({
  issuer: z.string().min(1).max(500),
  audiences: z.array(z.string().min(1).max(500)).min(1).max(10),
  claims: z
    .record(claimName, z.string().min(1).max(500))
    .refine((c) => Object.keys(c).length >= 1 && Object.keys(c).length <= 20, 'between 1 and 20 claim conditions'),
})
export type OidcRuleInput = z.input<typeof oidcRuleInput>

/** A trust rule as stored. */
export const oidcRuleView = z.object({
  id: z.string(),
  machineId: z.string(),
  issuer: z.string(),
  audiences: z.array(z.string()),
  claims: z.record(z.string(), z.string()),
  createdBy: z.string(),
  createdAt: z.string(),
})
export type OidcRule = z.infer<typeof oidcRuleView>

/** POST /v1/workspaces/:workspace/machines/:machine/oidc-rules */
export const addOidcRulesBody = z.strictObject({ rules: z.array(oidcRuleInput).min(1).max(20) })
export type AddOidcRulesInput = z.input<typeof addOidcRulesBody>

/** GET (and POST) /v1/workspaces/:workspace/machines/:machine/oidc-rules: every rule of the identity. */
export const oidcRuleListResponse = z.object({ rules: z.array(oidcRuleView) })
export type OidcRuleList = z.infer<typeof oidcRuleListResponse>

/** DELETE /v1/workspaces/:workspace/machines/:machine/oidc-rules/:rule */
export const oidcRuleResponse = z.object({ rule: oidcRuleView })

/** POST /v1/machine/oidc-token: a workload's ID token for the access token of the identity `clientId`. */
export const oidcTokenBody = z.strictObject({
  clientId: z.string().min(1).max(64),
  idToken: z.string().min(1).max(16_384),
})
export type OidcTokenInput = z.input<typeof oidcTokenBody>
