import type { KeyProviderConfig } from '../ops/config.js'
import type { ServerSecrets } from '../ops/secrets.js'
import type { KeyProvider } from './key-provider.js'
import { LocalFileKeyProvider, loadOrCreateRootKeyFile } from './local-file-key-provider.js'

/**
 * Builds the configured root-key provider. It never falls back to another provider: a
 * provider that cannot start stops start-up with its own error.
 */
export async function createKeyProvider(
  config: KeyProviderConfig,
  secrets: ServerSecrets,
): Promise<{ provider: KeyProvider; createdKeyFile: boolean }> {
  switch (config.provider) {
    case 'local': {
      if (secrets.rootKey) return { provider: new LocalFileKeyProvider(secrets.rootKey), createdKeyFile: false }
      const { key, created } = await loadOrCreateRootKeyFile(config.keyFileDir)
      try {
        return { provider: new LocalFileKeyProvider(key), createdKeyFile: created }
      } finally {
        key.fill(0)
      }
    }
    case 'pkcs11': {
      // Loaded only when configured: the native PKCS#11 binding is not needed otherwise.
      const { Pkcs11KeyProvider } = await import('./pkcs11-key-provider.js')
      const provider = await Pkcs11KeyProvider.open({
        module: config.module,
        tokenLabel: config.tokenLabel,
        keyLabel: config.keyLabel,
        pin: secrets.pkcs11Pin ?? '',
      })
      return { provider, createdKeyFile: false }
    }
    case 'aws-kms': {
      // Loaded only when configured: the AWS SDK is not needed otherwise.
      const { AwsKmsKeyProvider } = await import('./aws-kms-key-provider.js')
      const provider = await AwsKmsKeyProvider.open({
        keyId: config.keyId,
        region: config.region,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      })
      return { provider, createdKeyFile: false }
    }
  }
}
