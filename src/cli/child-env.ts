/**
 * The environment `coffer run` gives its command: the inherited variables merged with the
 * secrets, checked first. Shared by both ways the command starts: in place of coffer
 * (run-exec.ts) or as its child (run-process.ts). Loads nothing: `coffer run` reads it before
 * it knows which of the two it needs.
 *
 * Secret values never appear in any error raised here; errors name the key only.
 */

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

/** How the command's environment is made (and, for runWithSecrets, started). */
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

/**
 * Checks that every secret can be an environment variable, before anything starts.
 * Throws {@link SecretEnvironmentError} naming the key (never the value).
 */
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
