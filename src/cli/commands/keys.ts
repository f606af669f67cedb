import { buildConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { buildSecrets } from '../../ops/secrets.js'
import { ExitError } from '../exit-error.js'
import { info } from '../output.js'

/**
 * `coffer keys init-hsm`: creates the root key inside the PKCS#11 token named by
 * COFFER_PKCS11_* (an AES-256 key that is sensitive and never leaves the token). Run once,
 * before the first `coffer server` or `coffer init` with COFFER_KEY_PROVIDER=pkcs11.
 */
export async function keysInitHsm(): Promise<void> {
  const env = readEnv()
  if (env.COFFER_KEY_PROVIDER !== 'pkcs11') throw new ExitError('Set COFFER_KEY_PROVIDER=pkcs11 and the COFFER_PKCS11_* settings first.')
  const config = buildConfig(env)
  if (config.keyProvider.provider !== 'pkcs11') throw new ExitError('COFFER_KEY_PROVIDER is not pkcs11.')
  const { Pkcs11KeyProvider } = await import('../../crypto/pkcs11-key-provider.js')
  const k = config.keyProvider
  const keyId = await Pkcs11KeyProvider.createRootKey({ module: k.module, tokenLabel: k.tokenLabel, keyLabel: k.keyLabel, pin: buildSecrets(env).pkcs11Pin ?? '' })
  info(`Root key "${k.keyLabel}" created inside token "${k.tokenLabel}" (${keyId}); it cannot be exported.`)
}
