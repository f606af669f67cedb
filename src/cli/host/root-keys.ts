// Root-key commands that run on the server host: they open the database and the key
// providers themselves (stop the servers first). The data-key commands that talk to the API
// are in src/cli/commands/keys.ts.
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { AuditLog } from '../../audit/audit-log.js'
import { createKeyProvider } from '../../crypto/create-key-provider.js'
import type { KeyProvider } from '../../crypto/key-provider.js'
import { LocalFileKeyProvider, ROOT_KEY_FILE } from '../../crypto/local-file-key-provider.js'
import { buildConfig, type KeyProviderConfig, type ServerConfig } from '../../ops/config.js'
import { systemClock } from '../../ops/clock.js'
import { readEnv } from '../../ops/env.js'
import { migrateRootKey } from '../../vault/root-key-migration.js'
import { buildSecrets, ServerSecrets } from '../../ops/secrets.js'
import { openStore } from '../../storage/database.js'
import { GroupCommitter } from '../../storage/group-commit.js'
import { migrate } from '../../storage/migrator.js'
import { CofferError } from '../../errors.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'

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
  const keyId = await Pkcs11KeyProvider.createRootKey({
    module: k.module,
    tokenLabel: k.tokenLabel,
    keyLabel: k.keyLabel,
    pin: buildSecrets(env).pkcs11Pin ?? '',
  })
  info(`Root key "${k.keyLabel}" created inside token "${k.tokenLabel}" (${keyId}); it cannot be exported.`)
}

interface RootOpts {
  dataDir?: string
  json?: boolean
}

/** The database, committer and audit log, without the root-key check (which the migration replaces). */
async function openForRootMigration(config: ServerConfig) {
  const store = openStore(config.database)
  await migrate(store)
  const committer = new GroupCommitter(store.db, { engine: store.engine })
  const audit = new AuditLog(store.engine, () => Promise.reject(new Error('no fingerprint key during a root-key migration')), systemClock)
  return {
    store,
    committer,
    audit,
    clock: systemClock,
    async close() {
      await committer.close()
      await store.close()
    },
  }
}

async function runMigration(config: ServerConfig, from: KeyProvider, to: KeyProvider, opts: RootOpts) {
  const db = await openForRootMigration(config)
  try {
    const r = await migrateRootKey(db, from, to, {
      onProgress: (n) => {
        if (!opts.json) info(`rewrapped ${n.toLocaleString('en')} data keys…`)
      },
    }).catch((err: unknown) => {
      throw err instanceof CofferError
        ? err
        : new ExitError(`The migration stopped: ${(err as Error).message}. Run the same command again to carry on.`)
    })
    if (!opts.json)
      info(
        `${r.resumed ? 'Finished an interrupted migration' : 'Done'}: ${r.dataKeys} data keys, ${r.workspaces} workspace keys and ${r.metaValues} server keys rewrapped from ${r.from} to ${r.to}; no secret row was touched.`,
      )
    return r
  } finally {
    await db.close()
  }
}

/**
 * `coffer keys migrate --from <provider>`: rewraps every key the root key protects from the
 * old provider (named by the --from flags) to the one the settings now name (COFFER_KEY_PROVIDER
 * and its settings). Stop every server first; resumable; audited in every workspace.
 */
export async function keysMigrate(
  opts: RootOpts & {
    from: string
    fromKeyFile?: string
    fromRootKeyEnv?: string
    fromKeyLabel?: string
    fromTokenLabel?: string
    fromKmsKeyId?: string
  },
): Promise<void> {
  const env = readEnv()
  const config = buildConfig(env, { dataDir: opts.dataDir })
  const secrets = buildSecrets(env)
  const fromConfig = sourceConfig(config, opts)
  let fromRootKey: Buffer | undefined
  if (fromConfig.provider === 'local') {
    if (opts.fromRootKeyEnv) fromRootKey = decodeRootKey(opts.fromRootKeyEnv, process.env[opts.fromRootKeyEnv])
    else if (opts.fromKeyFile) fromRootKey = readKeyFile(opts.fromKeyFile)
    else if (!existsSync(join(config.dataDir, ROOT_KEY_FILE)))
      throw new ExitError(
        `--from local: no ${ROOT_KEY_FILE} in ${config.dataDir}; name the old key with --from-key-file or --from-root-key-env.`,
      )
  }
  // The old provider's own secrets: its root key (local) or the same token PIN (pkcs11).
  const fromSecrets = new ServerSecrets(fromRootKey, secrets.pkcs11Pin)
  const from = (await createKeyProvider(fromConfig, fromSecrets)).provider
  try {
    const to = (await createKeyProvider(config.keyProvider, secrets)).provider
    try {
      const r = await runMigration(config, from, to, opts)
      if (opts.json) printJson(r)
      else if (fromConfig.provider === 'local' && !opts.fromRootKeyEnv)
        info(`The old key file is no longer needed to run; keep it offline only while an older backup may need it.`)
    } finally {
      await to.close()
    }
  } finally {
    await from.close()
  }
}

function sourceConfig(
  config: ServerConfig,
  opts: { from: string; fromKeyFile?: string; fromKeyLabel?: string; fromTokenLabel?: string; fromKmsKeyId?: string },
): KeyProviderConfig {
  const current = config.keyProvider
  switch (opts.from) {
    case 'local':
      return { provider: 'local', keyFileDir: opts.fromKeyFile ? dirname(resolve(opts.fromKeyFile)) : config.dataDir }
    case 'pkcs11': {
      if (!opts.fromKeyLabel)
        throw new ExitError('--from pkcs11 needs --from-key-label (the old key’s label); the module and PIN are those of COFFER_PKCS11_*.')
      if (current.provider !== 'pkcs11' && !process.env.COFFER_PKCS11_MODULE)
        throw new ExitError('--from pkcs11 needs COFFER_PKCS11_MODULE, COFFER_PKCS11_PIN and --from-token-label.')
      const module = current.provider === 'pkcs11' ? current.module : process.env.COFFER_PKCS11_MODULE!
      const tokenLabel = opts.fromTokenLabel ?? (current.provider === 'pkcs11' ? current.tokenLabel : undefined)
      if (!tokenLabel) throw new ExitError('--from pkcs11 needs --from-token-label.')
      return { provider: 'pkcs11', module, tokenLabel, keyLabel: opts.fromKeyLabel }
    }
    case 'aws-kms': {
      if (!opts.fromKmsKeyId) throw new ExitError('--from aws-kms needs --from-kms-key-id.')
      const region = current.provider === 'aws-kms' ? current.region : (process.env.COFFER_AWS_REGION ?? process.env.AWS_REGION)
      if (!region) throw new ExitError('--from aws-kms needs COFFER_AWS_REGION (or AWS_REGION).')
      return {
        provider: 'aws-kms',
        keyId: opts.fromKmsKeyId,
        region,
        ...(current.provider === 'aws-kms' && current.endpoint ? { endpoint: current.endpoint } : {}),
      }
    }
    default:
      throw new ExitError('--from must be local, pkcs11 or aws-kms.')
  }
}

function decodeRootKey(name: string, value: string | undefined): Buffer {
  if (!value) throw new ExitError(`--from-root-key-env ${name}: that variable is not set.`)
  const key = Buffer.from(value, 'base64')
  if (key.length !== 32) throw new ExitError(`--from-root-key-env ${name}: the variable must hold 32 bytes in base64.`)
  return key
}

function readKeyFile(path: string): Buffer {
  const key = readFileSync(path)
  if (key.length !== 32) throw new ExitError(`--from-key-file: ${path} must hold exactly 32 bytes.`)
  return key
}

/**
 * `coffer keys rotate-root`: a new root key, and every key the old one protected rewrapped
 * under it. `local` with a key file: the new key is written as root.key.next, everything is
 * rewrapped, then it replaces root.key (the old file is kept as root.key.retired-<time>).
 * `pkcs11`: a new key labelled --new-key-label is made inside the token. `aws-kms`: the
 * --new-kms-key-id key is used. Stop every server first; an interrupted run is resumed by
 * running the command again.
 */
export async function keysRotateRoot(opts: RootOpts & { newKeyLabel?: string; newKmsKeyId?: string }): Promise<void> {
  const env = readEnv()
  const config = buildConfig(env, { dataDir: opts.dataDir })
  const secrets = buildSecrets(env)
  const k = config.keyProvider
  if (k.provider === 'local') {
    if (secrets.rootKey)
      throw new ExitError(
        'The root key comes from COFFER_ROOT_KEY: put a new key (openssl rand -base64 32) in COFFER_ROOT_KEY and run `coffer keys migrate --from local --from-root-key-env OLD_VARIABLE` with the old key in OLD_VARIABLE.',
      )
    const path = join(k.keyFileDir, ROOT_KEY_FILE)
    const next = `${path}.next`
    if (!existsSync(path) && existsSync(next)) {
      renameSync(next, path) // an earlier run finished everything but the swap
      if (!opts.json) info('Finished an interrupted rotation: root.key is the new key.')
      return
    }
    if (!existsSync(path)) throw new ExitError(`No root key file at ${path}.`)
    if (!existsSync(next)) writeKeyFile(next, randomBytes(32))
    const from = new LocalFileKeyProvider(readKeyFile(path))
    const to = new LocalFileKeyProvider(readKeyFile(next))
    try {
      const r = await runMigration(config, from, to, opts)
      const retired = `${path}.retired-${new Date().toISOString().replace(/[:.]/g, '-')}`
      renameSync(path, retired)
      renameSync(next, path)
      if (opts.json) printJson({ ...r, retiredKeyFile: retired })
      else
        info(
          `root.key is the new key. The old one is in ${retired} (mode 0600): keep it offline only while an older backup may need it, then delete it.`,
        )
    } finally {
      await from.close()
      await to.close()
    }
    return
  }
  if (k.provider === 'pkcs11') {
    if (!opts.newKeyLabel) throw new ExitError('--new-key-label is required: the label of the new root key to create inside the token.')
    const { Pkcs11KeyProvider } = await import('../../crypto/pkcs11-key-provider.js')
    const pin = secrets.pkcs11Pin ?? ''
    const target = { module: k.module, tokenLabel: k.tokenLabel, keyLabel: opts.newKeyLabel, pin }
    const exists = await Pkcs11KeyProvider.open(target).then(
      async (p) => {
        await p.close()
        return true
      },
      () => false,
    )
    if (!exists) await Pkcs11KeyProvider.createRootKey(target)
    const from = await Pkcs11KeyProvider.open({ module: k.module, tokenLabel: k.tokenLabel, keyLabel: k.keyLabel, pin })
    try {
      const to = await Pkcs11KeyProvider.open(target)
      try {
        const r = await runMigration(config, from, to, opts)
        if (opts.json) printJson(r)
        else
          info(
            `Now set COFFER_PKCS11_KEY_LABEL=${opts.newKeyLabel} for every server. The old key "${k.keyLabel}" stays in the token: destroy it once no backup needs it.`,
          )
      } finally {
        await to.close()
      }
    } finally {
      await from.close()
    }
    return
  }
  if (!opts.newKmsKeyId)
    throw new ExitError(
      '--new-kms-key-id is required: the KMS key to move to (AWS also rotates a key’s material itself when automatic rotation is on).',
    )
  const from = (await createKeyProvider(k, secrets)).provider
  try {
    const to = (await createKeyProvider({ ...k, keyId: opts.newKmsKeyId }, secrets)).provider
    try {
      const r = await runMigration(config, from, to, opts)
      if (opts.json) printJson(r)
      else info(`Now set COFFER_AWS_KMS_KEY_ID=${opts.newKmsKeyId} for every server.`)
    } finally {
      await to.close()
    }
  } finally {
    await from.close()
  }
}

function writeKeyFile(path: string, key: Buffer): void {
  const fd = openSync(path, 'wx', 0o600)
  try {
    writeSync(fd, key)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
