/**
 * `coffer run`: start a command with secrets injected into its environment.
 *
 * Secret values never appear in any error raised here; errors name the
 * command or the key only.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { constants as osConstants } from 'node:os'
import { buildChildEnv, type RunOptions, validateSecrets } from './child-env.js'

export { buildChildEnv, type RunOptions, SecretEnvironmentError, validateSecrets } from './child-env.js'

/** Signals relayed from the coffer process to the child while it runs. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']

/**
 * The command could not be found (spawn failed with ENOENT).
 * Guarantees: `code` is `'ERR_COMMAND_NOT_FOUND'`, `exitCode` is 127 (the
 * shell convention) and the message names the command.
 */
export class CommandNotFoundError extends Error {
  readonly code = 'ERR_COMMAND_NOT_FOUND'
  readonly exitCode = 127
  readonly command: string

  constructor(command: string) {
    super(`command not found: ${command}`)
    this.name = 'CommandNotFoundError'
    this.command = command
  }
}

/**
 * The command exists but could not be executed (EACCES, ENOEXEC, ...).
 * Guarantees: `code` is `'ERR_COMMAND_NOT_EXECUTABLE'`, `exitCode` is 126 and
 * the message names the command and the system error code only.
 */
export class CommandNotExecutableError extends Error {
  readonly code = 'ERR_COMMAND_NOT_EXECUTABLE'
  readonly exitCode = 126
  readonly command: string

  constructor(command: string, systemCode: string) {
    super(`cannot execute ${command} (${systemCode})`)
    this.name = 'CommandNotExecutableError'
    this.command = command
  }
}

/**
 * Run `command args...` (no shell) with stdio inherited and secrets in its environment.
 *
 * Guarantees:
 * - resolves with the child's exit code, or 128 + the signal number when the
 *   child was terminated by a signal;
 * - while the child runs, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2
 *   received by this process are relayed to the child (and do not terminate
 *   this process); every listener added is removed before the promise settles;
 * - rejects with {@link CommandNotFoundError} when the command does not exist,
 *   {@link CommandNotExecutableError} when it cannot be executed, and
 *   {@link SecretEnvironmentError} (before spawning) when a secret cannot be
 *   represented in an environment. No rejection contains a secret value.
 */
export function runWithSecrets(command: string, args: string[], secrets: Record<string, string>, opts: RunOptions): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    validateSecrets(secrets)
    const env = buildChildEnv(secrets, opts)

    // Listeners go in before spawning. Otherwise a signal sent as soon as the
    // child is up (e.g. by a supervisor reacting to the child's first output)
    // can land before they exist and take its default action on this process
    // (for SIGUSR1: Node opens its inspector on 127.0.0.1:9229). Signal events
    // are dispatched from the event loop, so none runs before `child` is set.
    let child: ChildProcess | undefined
    const listeners = new Map<NodeJS.Signals, () => void>()
    const cleanup = () => {
      for (const [signal, listener] of listeners) process.removeListener(signal, listener)
      listeners.clear()
    }
    for (const signal of FORWARDED_SIGNALS) {
      const listener = () => {
        if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
        try {
          child.kill(signal)
        } catch {
          // The child may have exited between the check and the kill.
        }
      }
      try {
        process.on(signal, listener)
        listeners.set(signal, listener)
      } catch {
        // Signal not supported on this platform (e.g. SIGUSR1 on Windows).
      }
    }

    try {
      opts.beforeSpawn?.()
      child = spawn(command, args, { stdio: 'inherit', env, shell: false })
    } catch (err) {
      cleanup()
      throw err
    }

    let settled = false
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (settled) return
      settled = true
      cleanup()
      reject(spawnError(command, err))
    })
    child.once('exit', (code, signal) => {
      if (settled) return
      settled = true
      cleanup()
      resolve(exitCodeOf(code, signal))
    })
  })
}

/** The error for a child that could not be started (ENOENT: not found; EACCES…: not executable). */
export function spawnError(command: string, err: NodeJS.ErrnoException): Error {
  if (err.code === 'ENOENT') return new CommandNotFoundError(command)
  if (err.code === 'EACCES' || err.code === 'ENOEXEC' || err.code === 'EISDIR' || err.code === 'EPERM')
    return new CommandNotExecutableError(command, err.code)
  return new Error(`failed to start ${command} (${err.code ?? 'unknown error'})`)
}

/** A child's exit status as a shell reports it: its code, or 128 + the number of the signal that ended it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0)
  return 1
}
