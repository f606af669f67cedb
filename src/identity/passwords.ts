import type { Options } from '@node-rs/argon2'
import { randomBytes } from 'node:crypto'

// Argon2id with OWASP's baseline parameters (m = 19 MiB, t = 2, p = 1). The PHC string keeps
// the parameters and the salt, so raising them later still verifies older hashes.
// @NOTE Algorithm is an ambient const enum, which isolatedModules cannot read: 2 is Argon2id.
const ARGON2ID = 2 as NonNullable<Options['algorithm']>
const PARAMS: Options = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 }

/** Shortest and longest password accepted (characters). */
export const PASSWORD_MIN = 12
export const PASSWORD_MAX = 1024

/** The Argon2 binding, loaded on the first password hashed or checked, not when the server starts. */
let binding: Promise<typeof import('@node-rs/argon2')> | undefined
function argon2(): Promise<typeof import('@node-rs/argon2')> {
  binding ??= import('@node-rs/argon2')
  return binding
}

/** Hashes a password with Argon2id and a random salt; returns the PHC string to store. */
export async function hashPassword(password: string): Promise<string> {
  return (await argon2()).hash(password, PARAMS)
}

/** True when `password` matches `phc`. A malformed stored hash counts as a mismatch. */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  const { verify } = await argon2()
  try {
    return await verify(phc, password)
  } catch {
    return false
  }
}

let dummy: Promise<string> | undefined

/**
 * Spends the time of one password check on nothing, so that an unknown email (or an account
 * without a password) answers as slowly as a wrong password.
 */
export async function burnPasswordCheck(password: string): Promise<void> {
  dummy ??= hashPassword(randomBytes(24).toString('base64'))
  await verifyPassword(await dummy, password)
}
