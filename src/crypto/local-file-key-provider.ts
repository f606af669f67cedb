import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { chmod, link, mkdir, open as openFile, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, DecryptionError } from '../errors.js'
import type { KeyProvider } from './key-provider.js'

const WRAP_VERSION = 0x01
const NONCE = 12
const TAG = 16
export const ROOT_KEY_FILE = 'root.key'

/**
 * The `local` provider: a 256-bit root key from `COFFER_ROOT_KEY` or from a 0600 file in the
 * data directory. Wrapped DEKs are 0x01 ‖ nonce ‖ AES-256-GCM(dek) ‖ tag with the scope as AAD.
 */
export class LocalFileKeyProvider implements KeyProvider {
  readonly kind = 'local'
  readonly keyId: string
  readonly #key: Buffer
  #closed = false

  constructor(rootKey: Buffer) {
    if (rootKey.length !== 32) throw new TypeError('root key must be 32 bytes')
    this.#key = Buffer.from(rootKey)
    this.keyId = `local:${createHash('sha256').update('coffer/root-key-id/v1').update(rootKey).digest('hex').slice(0, 16)}`
  }

  async wrap(dek: Buffer, aad: Buffer): Promise<Buffer> {
    // @NOTE close() zero-fills the key: wrapping after it would silently use an all-zero key.
    if (this.#closed) throw new Error('the key provider is closed')
    const nonce = randomBytes(NONCE)
    const c = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG })
    c.setAAD(aad)
    const body = Buffer.concat([c.update(dek), c.final()])
    return Buffer.concat([Buffer.of(WRAP_VERSION), nonce, body, c.getAuthTag()])
  }

  async unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    if (wrapped.length < 1 + NONCE + TAG || wrapped[0] !== WRAP_VERSION) throw new DecryptionError()
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, wrapped.subarray(1, 1 + NONCE), { authTagLength: TAG })
      d.setAAD(aad)
      d.setAuthTag(wrapped.subarray(wrapped.length - TAG))
      return Buffer.concat([d.update(wrapped.subarray(1 + NONCE, wrapped.length - TAG)), d.final()])
    } catch {
      throw new DecryptionError()
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#key.fill(0)
  }
}

/**
 * Loads the root key file from `dataDir`, creating it (mode 0600) when it does not exist.
 * Refuses a key file that group or others can read, and one that is not exactly 32 bytes.
 */
export async function loadOrCreateRootKeyFile(dataDir: string): Promise<{ key: Buffer; created: boolean }> {
  const path = join(dataDir, ROOT_KEY_FILE)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  // The key is written and synced under a temporary name, then linked into place: a crash
  // never leaves a short key file, and of two concurrent starts exactly one key wins.
  if (!(await exists(path))) {
    const created = await createKeyFile(path)
    if (created) return { key: created, created: true }
  }
  const st = await stat(path)
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(
      'root key file',
      `${ROOT_KEY_FILE} in the data directory is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`,
    )
  }
  const key = await readFile(path)
  if (key.length !== 32) throw new ConfigError('root key file', `${ROOT_KEY_FILE} in the data directory must hold exactly 32 bytes`)
  return { key, created: false }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** Writes a new key under a temporary name and links it into place; null if another won. */
async function createKeyFile(path: string): Promise<Buffer | null> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const key = randomBytes(32)
  const fh = await openFile(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(key)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await chmod(tmp, 0o600)
    await link(tmp, path)
    return key
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return null
  } finally {
    await unlink(tmp).catch(() => {})
  }
}
