import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { ConfigError } from '../errors.js'
import type { ServerConfig } from '../ops/config.js'

/** What node:https needs to serve TLS: the PEM certificate chain and key, TLS 1.2 at least. */
export interface TlsOptions {
  readonly cert: Buffer
  readonly key: Buffer
  readonly minVersion: 'TLSv1.2'
}

function read(setting: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : ((err as NodeJS.ErrnoException).code ?? 'unreadable')
    throw new ConfigError(setting, `cannot read ${path} (${why})`)
  }
}

/**
 * Reads and checks COFFER_TLS_CERT / COFFER_TLS_KEY (undefined when TLS is not configured).
 * A missing or unreadable file, a file that is not PEM, or a key that does not belong to the
 * certificate throws ConfigError naming the setting, so start-up stops before listening.
 */
export function loadTls(tls: ServerConfig['tls']): TlsOptions | undefined {
  if (!tls) return undefined
  const cert = read('COFFER_TLS_CERT', tls.certPath)
  const key = read('COFFER_TLS_KEY', tls.keyPath)
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError('COFFER_TLS_CERT', `${tls.certPath} holds no PEM certificate`)
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1')))
    throw new ConfigError('COFFER_TLS_KEY', `${tls.keyPath} holds no PEM private key`)
  try {
    createSecureContext({ cert, key, minVersion: 'TLSv1.2' })
  } catch {
    // @NOTE OpenSSL's message is not shown: it can quote parts of the key file.
    throw new ConfigError(
      'COFFER_TLS_KEY',
      `the key in ${tls.keyPath} does not belong to the certificate in COFFER_TLS_CERT, or one of them is not valid PEM`,
    )
  }
  return { cert, key, minVersion: 'TLSv1.2' }
}
