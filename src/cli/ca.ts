import { readFileSync } from 'node:fs'
import { ExitError } from './exit-error.js'

/**
 * The private certificate authority the CLI verifies https:// servers against:
 * COFFER_CA_CERT names a PEM file (undefined: the system's authorities). An unreadable file
 * or one with no certificate stops the command with ERR_CONFIG naming the setting.
 */
export function caFromEnv(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const path = env.COFFER_CA_CERT
  if (path === undefined || path === '') return undefined
  let pem: Buffer
  try {
    pem = readFileSync(path)
  } catch (err) {
    throw new ExitError(`COFFER_CA_CERT: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, {
      code: 'ERR_CONFIG',
    })
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new ExitError(`COFFER_CA_CERT: ${path} holds no PEM certificate`, { code: 'ERR_CONFIG' })
  return pem
}
