import { randomBytes } from 'node:crypto'
import { closeSync, constants, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { dirname, join, basename } from 'node:path'
import { ExitError } from './exit-error.js'
import { formatDotenv } from './formats/dotenv.js'
import { formatJson } from './formats/json.js'

// `coffer run --mount PATH`: the secrets in a file, for programs that read files. The file is
// created exclusively (an existing file or symbolic link at PATH stops the run), 0600, never
// through a symbolic link; rewritten on a change (--watch) by renaming a new file over it; and
// removed when `coffer run` ends — after the command exits, including when a signal
// (SIGINT, SIGTERM, SIGHUP) ended it. Only SIGKILL of `coffer run` itself leaves it behind.

export type MountFormat = 'dotenv' | 'json'

/** --format: dotenv (default) or json. */
export function mountFormat(text: string | undefined): MountFormat {
  if (text === undefined || text === 'dotenv' || text === 'json') return text ?? 'dotenv'
  throw new ExitError(`--format: "${text}" is not dotenv or json`, { code: 'ERR_USAGE' })
}

function render(secrets: Record<string, string>, format: MountFormat): string {
  const entries = Object.keys(secrets)
    .sort()
    .map((key) => ({ key, value: secrets[key]! }))
  return format === 'json' ? formatJson(entries) : formatDotenv(entries)
}

function writeNew(path: string, text: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  try {
    writeSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

/** A mounted file: rewrite it with new values, remove it. */
export interface Mount {
  readonly path: string
  update(secrets: Record<string, string>): void
  remove(): void
}

/** Creates the file at `path` (ERR_MOUNT_EXISTS when anything is there already) and removes it when the process exits. */
export function mountSecrets(path: string, format: MountFormat, secrets: Record<string, string>): Mount {
  try {
    writeNew(path, render(secrets, format))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ELOOP')
      throw new ExitError(`--mount: ${path} already exists; coffer writes only a new file (remove it, or choose another path)`, {
        code: 'ERR_MOUNT_EXISTS',
      })
    throw new ExitError(`--mount: cannot create ${path} (${code ?? 'error'})`, { code: 'ERR_MOUNT_EXISTS' })
  }
  let removed = false
  const remove = () => {
    if (removed) return
    removed = true
    process.removeListener('exit', remove)
    try {
      unlinkSync(path)
    } catch {
      // Already gone.
    }
  }
  // The last resort: whatever ends the process normally (an error included) removes the file.
  process.on('exit', remove)
  return {
    path,
    update(next) {
      if (removed) return
      const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
      writeNew(tmp, render(next, format))
      renameSync(tmp, path)
    },
    remove,
  }
}
