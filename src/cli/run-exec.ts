/**
 * `coffer run` without a process of its own: the command replaces coffer (execve(2), through
 * the optional `coffer-exec` addon, native/exec/), the way `exec` does in a shell. The command
 * keeps coffer's pid, gets every signal directly, and no Node.js process stays behind it: it
 * starts ~6 ms sooner than a child would (no fork, no Node.js teardown after it) and holds
 * ~40 MB less while it runs.
 *
 * Anything that needs coffer to stay (--watch, --mount, --fallback) starts a child instead
 * (run-process.ts); so does every platform or install without the addon, and every command
 * execve cannot run as it is (not found, not executable, a script without #!): the child's
 * start then reports the error, as it always has.
 *
 * Secret values never appear in any error raised here.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { buildChildEnv, type RunOptions, validateSecrets } from './child-env.js'

interface ExecAddon {
  /** Replaces the process; returns the errno only if the exec failed (the process is then as it was). */
  execve(file: string, argv: readonly string[], envp: readonly string[]): number
}

let loaded: ExecAddon | null | undefined

/** The addon, or null where it is not installed (Windows; an install that could not build it). */
function addon(): ExecAddon | null {
  if (loaded === undefined) {
    try {
      loaded = process.platform === 'win32' ? null : (createRequire(import.meta.filename)('coffer-exec') as ExecAddon)
    } catch {
      loaded = null
    }
  }
  return loaded
}

/** Whether `coffer run` can put the command in its place here (loads the addon). */
export function canExec(): boolean {
  return addon() !== null
}

/**
 * The file execvp(3) would run for `command` under `path` (the command's PATH): `command`
 * itself when it names a path, else the first executable regular file of that name in PATH's
 * folders (an empty entry is the current folder), or undefined when there is none.
 */
export function commandPath(command: string, path: string | undefined): string | undefined {
  if (command.includes('/')) return command
  for (const dir of (path ?? '/usr/bin:/bin').split(':')) {
    const file = join(dir || '.', command)
    try {
      if (!statSync(file).isFile()) continue
      accessSync(file, constants.X_OK)
      return file.includes('/') ? file : `./${file}`
    } catch {
      // Not there, or not executable: the next folder.
    }
  }
  return undefined
}

/**
 * Replaces this process with `command args...` (no shell), stdio inherited, secrets in its
 * environment (as {@link buildChildEnv} merges them). Returns only if it could not: false when
 * the addon is missing or no executable file of that name is found, or when execve failed —
 * nothing has changed then, and the caller starts the command as a child instead.
 * Throws {@link SecretEnvironmentError} (before anything) when a secret cannot be a variable.
 */
export function execInPlace(command: string, args: readonly string[], secrets: Readonly<Record<string, string>>, opts: RunOptions): false {
  const exec = addon()
  if (!exec) return false
  validateSecrets(secrets)
  const env = buildChildEnv(secrets, opts)
  const file = commandPath(command, env.PATH)
  if (!file) return false
  const envp: string[] = []
  for (const k in env) envp.push(`${k}=${env[k]}`)
  exec.execve(file, [command, ...args], envp)
  return false
}
