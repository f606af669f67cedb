import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'
import { closeSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { ExitError } from './exit-error.js'

// `coffer run --fallback`: an encrypted snapshot of the secrets a run fetched, written after each
// successful fetch and read only when the server cannot be reached. AES-256-GCM under a key
// derived with HKDF-SHA256 from the token and a random per-file salt: without the token the file
// is noise, and a snapshot made with another token does not open. What it was made for (server,
// workspace, environments, and a hash of the token) is bound to it as associated data, so a
// snapshot of another project, environment or token is refused even when it is named by PATH.
// The time it was taken sits inside the ciphertext too: an old snapshot cannot be made to look new.

const FORMAT = 'coffer-run-fallback/v1'
const INFO = Buffer.from('coffer/run-fallback/v1')

/** A snapshot that cannot be used: missing, unreadable, made for something else, or too old. */
export function fallbackError(message: string): ExitError {
  return new ExitError(message, { code: 'ERR_FALLBACK_UNAVAILABLE' })
}

/** What a snapshot is bound to: the server, the workspace and environments asked for, and the token. */
export function bindingOf(url: string, workspace: string | undefined, layers: unknown, token: string): string {
  const tokenHash = createHash('sha256').update(token).digest('hex')
  return createHash('sha256')
    .update(JSON.stringify([FORMAT, url.replace(/\/+$/, ''), workspace ?? null, layers, tokenHash]))
    .digest('hex')
}

/** The snapshot's file: PATH, or one per binding under $XDG_CACHE_HOME/coffer (else ~/.cache/coffer). */
export function snapshotPath(given: true | string, binding: string, env: NodeJS.ProcessEnv = process.env): string {
  if (typeof given === 'string' && given !== '') return given
  const cache = env.XDG_CACHE_HOME || join(homedir(), '.cache')
  return join(cache, 'coffer', 'run-fallback', `${binding.slice(0, 32)}.snapshot`)
}

/** `30m`, `24h`, `7d`, `90s` or plain seconds, in milliseconds. */
export function parseMaxAge(text: string | undefined): number {
  if (text === undefined) return 24 * 3600_000
  const m = /^(\d{1,9})([smhd]?)$/.exec(text.trim())
  if (!m) throw new ExitError(`--fallback-max-age: "${text}" is not an age such as 30m, 24h or 7d`, { code: 'ERR_USAGE' })
  const unit = { '': 1_000, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as '' | 's' | 'm' | 'h' | 'd']
  return Number(m[1]) * unit
}

function keyOf(token: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), salt, INFO, 32))
}

/**
 * Writes the snapshot: a new 0600 file created exclusively beside PATH (never through a
 * symbolic link), then renamed over PATH, so a reader sees the old or the new whole.
 */
export function saveSnapshot(path: string, token: string, binding: string, secrets: Record<string, string>, now: number): void {
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyOf(token, salt), iv)
  cipher.setAAD(Buffer.from(`${FORMAT}\n${binding}`))
  const ct = Buffer.concat([cipher.update(JSON.stringify({ savedAt: now, secrets }), 'utf8'), cipher.final()])
  const file = JSON.stringify({
    format: FORMAT,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    ciphertext: ct.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  })
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  try {
    writeSync(fd, file)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    renameSync(tmp, path)
  } catch (err) {
    unlinkSync(tmp)
    throw err
  }
}

/**
 * Reads the snapshot at PATH made for `binding` with `token`, no older than `maxAgeMs`.
 * Throws ERR_FALLBACK_UNAVAILABLE — never with a value — when there is none, when it is not a
 * regular file, when it was made for something else or with another token, or when it is too old.
 */
export function loadSnapshot(
  path: string,
  token: string,
  binding: string,
  maxAgeMs: number,
  now: number,
): { secrets: Record<string, string>; savedAt: number } {
  let text: string
  try {
    if (!lstatSync(path).isFile()) throw fallbackError(`the fallback snapshot ${path} is not a regular file`)
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (err instanceof ExitError) throw err
    throw fallbackError(`no fallback snapshot at ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`)
  }
  let plain: { savedAt: number; secrets: Record<string, string> }
  try {
    const f = JSON.parse(text) as Record<string, string>
    if (f.format !== FORMAT) throw new Error('format')
    const decipher = createDecipheriv('aes-256-gcm', keyOf(token, Buffer.from(f.salt!, 'base64')), Buffer.from(f.iv!, 'base64'))
    decipher.setAAD(Buffer.from(`${FORMAT}\n${binding}`))
    decipher.setAuthTag(Buffer.from(f.tag!, 'base64'))
    plain = JSON.parse(Buffer.concat([decipher.update(Buffer.from(f.ciphertext!, 'base64')), decipher.final()]).toString('utf8'))
  } catch {
    // @NOTE one message for every failure: a wrong token, another environment and a flipped bit look alike.
    throw fallbackError(`the fallback snapshot ${path} was not made for this server, workspace, environment and token (or is damaged)`)
  }
  const age = now - plain.savedAt
  if (!(age <= maxAgeMs))
    throw fallbackError(`the fallback snapshot ${path} is ${Math.round(age / 60_000)} min old, older than --fallback-max-age allows`)
  const secrets: Record<string, string> = Object.create(null)
  for (const [k, v] of Object.entries(plain.secrets)) secrets[k] = v
  return { secrets, savedAt: plain.savedAt }
}
