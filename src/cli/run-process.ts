/**
 * `coffer run`: start a command with secrets injected into its environment.
 *
 * Secret values never appear in any error raised here; errors name the
 * command or the key only.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { constants as osConstants } from 'node:os'

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
 * A secret cannot be placed in an environment (a NUL character in its value,
 * or a key that is empty or contains `=` or NUL). Node's own error for this
 * would quote the value, so it is checked first.
 * Guarantees: `code` is `'ERR_SECRET_ENV'`; the message names the key only
 * when the key itself is well formed.
 */
export class SecretEnvironmentError extends Error {
  readonly code = 'ERR_SECRET_ENV'

  constructor(message: string) {
    super(message)
    this.name = 'SecretEnvironmentError'
  }
}

/** Options for {@link runWithSecrets}. */
export interface RunOptions {
  /** When true, variables already in the inherited environment win over secrets. */
  preserveEnv: boolean
  /** The environment to inherit; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv
  /**
   * Runs once the signal listeners are in place, just before the child starts (`--mount` writes
   * its file here: a signal from then on is relayed to the child, and coffer lives to clean up).
   */
  beforeSpawn?: () => void
  /** Inherited variables the child must not see (COFFER_TOKEN unless --pass-token); a secret of that name is still set. */
  drop?: readonly string[]
}

/**
 * Build the child's environment: inherited variables merged with secrets.
 * Guarantees: secrets override inherited variables unless `preserveEnv`, in
 * which case inherited variables win; undefined inherited entries are dropped;
 * the inputs are not modified.
 */
export function buildChildEnv(secrets: Readonly<Record<string, string>>, opts: RunOptions): Record<string, string> {
  const inherited = opts.env ?? process.env
  const [first, second] = opts.preserveEnv ? [secrets, inherited] : [inherited, secrets]
  // @NOTE a prototype-less object is a hash table from the start: spreading a hundred-odd keys
  // into an object literal instead makes V8 build a hidden class per key, ~300 KB of garbage
  // that costs `coffer run` a garbage collection (~1 ms) before it starts the command.
  const env: Record<string, string> = Object.create(null)
  for (const from of [first, second]) {
    const dropped = from === inherited ? opts.drop : undefined
    for (const k of Object.keys(from)) {
      const v = from[k]
      if (v !== undefined && !dropped?.includes(k)) env[k] = v
    }
  }
  return env
}

export function validateSecrets(secrets: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(secrets)) {
    if (key === '' || key.includes('=') || key.includes('\0')) {
      throw new SecretEnvironmentError('a secret has a name that cannot be used as an environment variable')
    }
    if (typeof value !== 'string') {
      throw new SecretEnvironmentError(`secret ${key} is not a string`)
    }
    if (value.includes('\0')) {
      throw new SecretEnvironmentError(`secret ${key} contains a NUL character and cannot be passed in the environment`)
    }
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
