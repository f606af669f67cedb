/**
 * Secret-file formats used by `coffer export` and `coffer import`.
 *
 * Every error raised here is a {@link FormatError}. Error messages may name a
 * line number and a key, but never contain a secret value or any raw text
 * from the input (a malformed line could itself be a pasted secret).
 */
import { formatDotenv, parseDotenv } from './dotenv.js'
import { formatJson, parseJson } from './json.js'
import { FormatError, type SecretEntry, validateForOutput } from './secret-entry.js'
import { formatShell } from './shell.js'
import { formatYaml, parseYaml } from './yaml.js'

export { FormatError, KEY_PATTERN, type SecretEntry } from './secret-entry.js'

/** Formats that {@link formatSecrets} can write. */
export type ExportFormat = 'dotenv' | 'json' | 'yaml' | 'shell'

/** Formats that {@link parseSecrets} can read. */
export type ImportFormat = 'dotenv' | 'json' | 'yaml'

/**
 * Serialise secrets in the given format, preserving input order.
 *
 * Guarantees: for `dotenv`, `json` and `yaml`, `parseSecrets(formatSecrets(x, f), f)`
 * deep-equals `x`; for `shell`, evaluating the output in a POSIX `sh` sets each
 * variable to exactly its value. Non-empty dotenv/shell output and all json/yaml
 * output end with a newline. Throws {@link FormatError} for an invalid or
 * duplicate key, or (shell only) a value containing a NUL character.
 */
export function formatSecrets(secrets: ReadonlyArray<SecretEntry>, format: ExportFormat): string {
  validateForOutput(secrets)
  switch (format) {
    case 'dotenv':
      return formatDotenv(secrets)
    case 'json':
      return formatJson(secrets)
    case 'yaml':
      return formatYaml(secrets)
    case 'shell':
      return formatShell(secrets)
    default:
      throw new FormatError(`unknown export format`)
  }
}

/**
 * Parse a secret file.
 *
 * Guarantees: returns entries in file order, every key matches
 * {@link KEY_PATTERN}, keys are unique, and every value is a string (JSON/YAML
 * numbers and booleans become the text they were written as). Throws
 * {@link FormatError} on malformed input, duplicate keys, nested values or null
 * values; the error never contains a value.
 */
export function parseSecrets(text: string, format: ImportFormat): SecretEntry[] {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text
  switch (format) {
    case 'dotenv':
      return parseDotenv(source)
    case 'json':
      return parseJson(source)
    case 'yaml':
      return parseYaml(source)
    default:
      throw new FormatError('unknown import format')
  }
}

/**
 * Choose a format for an import file: by extension (`.env`, `*.env`,
 * `.env.*` → dotenv; `.json` → json; `.yaml`/`.yml` → yaml), otherwise by
 * sniffing the content. Guarantees a result; defaults to `dotenv`.
 */
export function detectFormat(filename: string, text: string): ImportFormat {
  const base = (filename.split(/[\\/]/).pop() ?? '').toLowerCase()
  if (base.endsWith('.json')) return 'json'
  if (base.endsWith('.yaml') || base.endsWith('.yml')) return 'yaml'
  if (base === '.env' || base.endsWith('.env') || base.startsWith('.env.')) return 'dotenv'

  const source = text.startsWith('\uFEFF') ? text.slice(1) : text
  const trimmed = source.trimStart()
  if (trimmed.startsWith('{')) {
    try {
      JSON.parse(source)
      return 'json'
    } catch {
      return 'yaml'
    }
  }
  for (const rawLine of source.split(/\r?\n/)) {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line === '---' || line.startsWith('%YAML')) return 'yaml'
    if (/^(export[ \t]+)?[A-Za-z_][A-Za-z0-9_]*[ \t]*=/.test(line)) return 'dotenv'
    if (/^(["']?)[A-Za-z_][A-Za-z0-9_]*\1[ \t]*:([ \t]|$)/.test(line)) return 'yaml'
    break
  }
  return 'dotenv'
}
