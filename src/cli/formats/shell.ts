import { FormatError, type SecretEntry } from './secret-entry.js'

// Shell output only (no import): `export KEY='value'` lines a POSIX sh evaluates exactly.

/** Entries as `export KEY='value'` lines; throws {@link FormatError} for a value holding NUL. */
export function formatShell(secrets: ReadonlyArray<SecretEntry>): string {
  return secrets
    .map(({ key, value }) => {
      if (value.includes('\0')) {
        throw new FormatError(`value for key ${key} contains a NUL character, which a shell cannot hold`, { key })
      }
      return `export ${key}=${shellQuote(value)}\n`
    })
    .join('')
}

/** POSIX single-quoting: everything is literal except `'`, which becomes `'\''`. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}
