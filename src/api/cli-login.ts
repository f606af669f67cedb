import { z } from 'zod'

/** What a CLI login yields: the token (once) and whom it acts as. */
export const cliTokenGrantResponse = z.object({
  token: z.string(),
  tokenId: z.string(),
  expiresAt: z.string(),
  user: z.object({ id: z.string(), email: z.string() }),
  workspace: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
})
export type CliTokenGrant = z.infer<typeof cliTokenGrantResponse>

/** POST /v1/cli/token: the one-time code and its PKCE verifier. */
export const loginCodeExchangeBody = z.strictObject({
  code: z.string().max(200),
  codeVerifier: z.string().max(200),
  redirectUri: z.string().max(300),
})
export type LoginCodeExchange = z.input<typeof loginCodeExchangeBody>

/** POST /v1/cli/device */
export const deviceLoginBody = z.strictObject({ clientName: z.string().max(200).optional() })
export type DeviceLoginInput = z.input<typeof deviceLoginBody>

export const deviceLoginResponse = z.object({
  deviceCode: z.string(),
  userCode: z.string(),
  verificationPath: z.string(),
  expiresIn: z.number(),
  interval: z.number(),
})
export type DeviceLogin = z.infer<typeof deviceLoginResponse>

/** POST /v1/cli/device/token */
export const devicePollBody = z.strictObject({ deviceCode: z.string().max(200) })
export type DevicePollInput = z.input<typeof devicePollBody>
