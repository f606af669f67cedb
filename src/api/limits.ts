// The limits the API's schemas check, as plain values: the core enforces the same ones and
// imports them from here, which loads no zod.

/** Secret keys: what a process can take as an environment variable name. */
export const SECRET_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/
export const MAX_KEY_LENGTH = 256
export const MAX_TAGS = 32
// biome-ignore lint/complexity/noUselessEscapeInRegex: the pattern's source is published in the OpenAPI document; kept as it was
export const TAG_RE = /^[A-Za-z0-9_.:\/-]{1,64}$/

/** The longest life of a machine identity's access token, in seconds. */
export const MAX_TOKEN_TTL_SECONDS = 3600

/** Default and longest lifetime of an invitation, in days. */
export const INVITATION_DAYS = { default: 7, max: 30 } as const

/** The longest break-glass reason accepted. */
export const MAX_REASON_LENGTH = 1000
