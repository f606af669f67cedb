// What every secret-file format shares: the entry, the key rule, the one error type and the
// checks before writing. Error messages may name a line number and a key, but never contain a
// secret value or any raw text from the input (a malformed line could itself be a pasted secret).

/** A single secret as it is written to or read from a file. */
export interface SecretEntry {
  key: string
  value: string
}

/** Keys accepted by every format: a portable environment-variable name. */
export const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Raised for any malformed input or unrepresentable output.
 *
 * Guarantees: `code` is always `'ERR_IMPORT_FORMAT'`; `message` names at most
 * the line number and a key that matched {@link KEY_PATTERN}, and never
 * contains a secret value or raw input text.
 */
export class FormatError extends Error {
  readonly code = 'ERR_IMPORT_FORMAT'
  /** 1-based line of the offending entry, when known. */
  readonly line: number | undefined
  /** The offending key, only when it is a valid key name. */
  readonly key: string | undefined

  constructor(message: string, details: { line?: number; key?: string } = {}) {
    const where = details.line !== undefined ? `line ${details.line}: ` : ''
    super(`${where}${message}`)
    this.name = 'FormatError'
    this.line = details.line
    this.key = details.key
  }
}

/**
 * Checks entries before any format writes them: every key matches {@link KEY_PATTERN}, every
 * value is a string, no key twice. Throws {@link FormatError} naming the first that is not.
 */
export function validateForOutput(secrets: ReadonlyArray<SecretEntry>): void {
  const seen = new Set<string>()
  secrets.forEach(({ key, value }, index) => {
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
      throw new FormatError(`secret #${index + 1} has an invalid key name (keys must match ${KEY_PATTERN.source})`)
    }
    if (typeof value !== 'string') {
      throw new FormatError(`value for key ${key} is not a string`, { key })
    }
    if (seen.has(key)) throw new FormatError(`duplicate key ${key}`, { key })
    seen.add(key)
  })
}
