/**
 * Secret-file formats used by `coffer export` and `coffer import`.
 *
 * Every error raised here is a {@link FormatError}. Error messages may name a
 * line number and a key, but never contain a secret value or any raw text
 * from the input (a malformed line could itself be a pasted secret).
 */
import { Document, LineCounter, Scalar, isAlias, isMap, isScalar, parseDocument } from 'yaml'
import type { Node as YamlNode } from 'yaml'

/** A single secret as it is written to or read from a file. */
export interface SecretEntry {
  key: string
  value: string
}

/** Formats that {@link formatSecrets} can write. */
export type ExportFormat = 'dotenv' | 'json' | 'yaml' | 'shell'

/** Formats that {@link parseSecrets} can read. */
export type ImportFormat = 'dotenv' | 'json' | 'yaml'

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

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

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
      return secrets.map(({ key, value }) => `${key}="${escapeDotenv(value)}"\n`).join('')
    case 'json': {
      const obj: Record<string, string> = {}
      for (const { key, value } of secrets) obj[key] = value
      return `${JSON.stringify(obj, null, 2)}\n`
    }
    case 'yaml':
      return formatYaml(secrets)
    case 'shell':
      return secrets
        .map(({ key, value }) => {
          if (value.includes('\0')) {
            throw new FormatError(`value for key ${key} contains a NUL character, which a shell cannot hold`, { key })
          }
          return `export ${key}=${shellQuote(value)}\n`
        })
        .join('')
    default:
      throw new FormatError(`unknown export format`)
  }
}

function validateForOutput(secrets: ReadonlyArray<SecretEntry>): void {
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

function escapeDotenv(value: string): string {
  return value.replace(/[\\"\n\r]/g, (c) => {
    switch (c) {
      case '\\':
        return '\\\\'
      case '"':
        return '\\"'
      case '\n':
        return '\\n'
      default:
        return '\\r'
    }
  })
}

/** POSIX single-quoting: everything is literal except `'`, which becomes `'\''`. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}

function formatYaml(secrets: ReadonlyArray<SecretEntry>): string {
  const doc = new Document({})
  for (const { key, value } of secrets) {
    const node = new Scalar(value)
    // Block scalars cannot represent every string faithfully (e.g. a carriage
    // return, or other control characters); those go double-quoted instead.
    if (value.includes('\n') && !/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\ufeff\u2028\u2029]/.test(value) && !/[ \t]$/m.test(value)) {
      node.type = Scalar.BLOCK_LITERAL
    } else if (/[\n\r]/.test(value)) {
      // Otherwise the library may still pick a block scalar itself, which loses a line of
      // only spaces (" \n" came back as "\n": found by the round-trip property, seed 522639478).
      node.type = Scalar.QUOTE_DOUBLE
    }
    doc.set(key, node)
  }
  return doc.toString({ lineWidth: 0, minContentWidth: 0 })
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

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

// --- dotenv ----------------------------------------------------------------

const DOTENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*/

function parseDotenv(text: string): SecretEntry[] {
  const src = text.replace(/\r\n/g, '\n')
  const out: SecretEntry[] = []
  const firstLine = new Map<string, number>()
  let pos = 0
  let line = 1

  const atEnd = () => pos >= src.length
  const skipInlineSpace = () => {
    while (pos < src.length && (src[pos] === ' ' || src[pos] === '\t')) pos++
  }
  const restOfLine = (): string => {
    const nl = src.indexOf('\n', pos)
    const end = nl === -1 ? src.length : nl
    const rest = src.slice(pos, end)
    pos = end
    return rest
  }
  const consumeNewline = () => {
    if (src[pos] === '\n') {
      pos++
      line++
    }
  }

  while (!atEnd()) {
    skipInlineSpace()
    if (atEnd()) break
    const ch = src[pos]
    if (ch === '\n') {
      consumeNewline()
      continue
    }
    if (ch === '#') {
      restOfLine()
      consumeNewline()
      continue
    }

    const entryLine = line
    const exportMatch = /^export[ \t]+(?=[A-Za-z_])/.exec(src.slice(pos, pos + 64))
    if (exportMatch) pos += exportMatch[0].length

    const keyMatch = DOTENV_KEY.exec(src.slice(pos, pos + 4096))
    if (!keyMatch) {
      throw new FormatError(`invalid key name (keys must match ${KEY_PATTERN.source})`, { line: entryLine })
    }
    const key = keyMatch[0]
    pos += key.length
    skipInlineSpace()
    if (src[pos] !== '=') {
      // The "key" may be part of a pasted secret, so do not echo it.
      throw new FormatError('expected KEY=VALUE', { line: entryLine })
    }
    pos++
    skipInlineSpace()

    let value: string
    const quote = src[pos]
    if (quote === '"' || quote === "'") {
      pos++
      const parsed = quote === '"' ? readDoubleQuoted() : readSingleQuoted()
      if (parsed === null) {
        const kind = quote === '"' ? 'double' : 'single'
        throw new FormatError(`unterminated ${kind}-quoted value for key ${key}`, { line: entryLine, key })
      }
      value = parsed
      const trailing = restOfLine()
      if (!/^[ \t]*(#.*)?$/.test(trailing)) {
        throw new FormatError(`unexpected characters after the closing quote of key ${key}`, { line: entryLine, key })
      }
    } else {
      const rest = restOfLine()
      // An inline comment starts at a '#' preceded by whitespace (leading
      // whitespace after '=' has already been skipped, so check the raw text).
      const precededBySpace = pos - rest.length > 0 && /[ \t]/.test(src[pos - rest.length - 1] ?? '')
      let cut = rest.length
      if (rest.startsWith('#') && precededBySpace) cut = 0
      else {
        const m = /[ \t]#/.exec(rest)
        if (m) cut = m.index
      }
      value = rest.slice(0, cut).trim()
    }
    consumeNewline()

    const previous = firstLine.get(key)
    if (previous !== undefined) {
      throw new FormatError(`duplicate key ${key} (first defined on line ${previous})`, { line: entryLine, key })
    }
    firstLine.set(key, entryLine)
    out.push({ key, value })
  }
  return out

  function readDoubleQuoted(): string | null {
    let result = ''
    while (pos < src.length) {
      const c = src[pos]!
      if (c === '"') {
        pos++
        return result
      }
      if (c === '\\' && pos + 1 < src.length) {
        const next = src[pos + 1]!
        switch (next) {
          case 'n':
            result += '\n'
            break
          case 'r':
            result += '\r'
            break
          case 't':
            result += '\t'
            break
          case '\\':
            result += '\\'
            break
          case '"':
            result += '"'
            break
          default:
            // Unknown escapes are kept literally (backslash included).
            result += c
            pos++
            continue
        }
        pos += 2
        continue
      }
      if (c === '\n') line++
      result += c
      pos++
    }
    return null
  }

  function readSingleQuoted(): string | null {
    const end = src.indexOf("'", pos)
    if (end === -1) return null
    const value = src.slice(pos, end)
    for (const c of value) if (c === '\n') line++
    pos = end + 1
    return value
  }
}

// --- JSON ------------------------------------------------------------------

function lineAt(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

function parseJson(text: string): SecretEntry[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    // V8's message can quote the input, so only the position is kept.
    const m = /position (\d+)/.exec(err instanceof Error ? err.message : '')
    const line = m ? lineAt(text, Number(m[1])) : undefined
    throw new FormatError('invalid JSON', line !== undefined ? { line } : {})
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FormatError('expected a JSON object at the top level', { line: lineAt(text, text.search(/\S/)) })
  }

  // JSON.parse accepted the text, so a light scan of the top-level object is
  // reliable. It recovers key order, line numbers, duplicates and the raw
  // text of number values (so "12345678901234567890" keeps all its digits).
  const out: SecretEntry[] = []
  const firstLine = new Map<string, number>()
  let i = text.indexOf('{') + 1
  let line = lineAt(text, i)

  const skipWs = () => {
    while (i < text.length && /\s/.test(text[i]!)) {
      if (text[i] === '\n') line++
      i++
    }
  }
  const readString = (): string => {
    const start = i
    i++ // opening quote
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  for (;;) {
    skipWs()
    if (text[i] === '}') break
    if (text[i] === ',') {
      i++
      continue
    }
    const entryLine = line
    const key = readString()
    skipWs()
    i++ // ':'
    skipWs()
    const keyOk = KEY_PATTERN.test(key)
    const named = keyOk ? { line: entryLine, key } : { line: entryLine }
    if (!keyOk) throw new FormatError(`invalid key name (keys must match ${KEY_PATTERN.source})`, named)
    const previous = firstLine.get(key)
    if (previous !== undefined) {
      throw new FormatError(`duplicate key ${key} (first defined on line ${previous})`, named)
    }
    firstLine.set(key, entryLine)

    const c = text[i]!
    let value: string
    if (c === '"') {
      value = readString()
    } else if (c === '{' || c === '[') {
      throw new FormatError(`value for key ${key} must be a scalar, not ${c === '{' ? 'an object' : 'an array'}`, named)
    } else {
      const m = /^[^\s,}]+/.exec(text.slice(i, i + 1024))
      const raw = m ? m[0] : ''
      if (raw === 'null') {
        throw new FormatError(`value for key ${key} is null (use "" for an empty value)`, named)
      }
      value = raw // a number or true/false, exactly as written
      i += raw.length
    }
    out.push({ key, value })
  }
  return out
}

// --- YAML ------------------------------------------------------------------

function parseYaml(text: string): SecretEntry[] {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, schema: 'core', uniqueKeys: false, prettyErrors: false })
  const lineOf = (node: { range?: [number, number, number] | null } | null | undefined): number | undefined =>
    node?.range ? lineCounter.linePos(node.range[0]).line : undefined

  const firstError = doc.errors[0]
  if (firstError) {
    // yaml's messages can quote the source; keep only the position and code.
    const line = firstError.linePos?.[0]?.line
    throw new FormatError(`invalid YAML (${firstError.code})`, line !== undefined ? { line } : {})
  }
  const root = doc.contents
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return []
  if (!isMap(root)) {
    const line = lineOf(root as YamlNode)
    throw new FormatError('expected a mapping of keys to values at the top level', line !== undefined ? { line } : {})
  }

  const out: SecretEntry[] = []
  const firstLine = new Map<string, number>()
  for (const pair of root.items) {
    const keyNode = pair.key as YamlNode | null
    const line = lineOf(keyNode) ?? lineOf(pair.value as YamlNode | null)
    const at = line !== undefined ? { line } : {}
    const key = isScalar(keyNode) ? scalarText(keyNode) : undefined
    if (key === undefined || !KEY_PATTERN.test(key)) {
      throw new FormatError(`invalid key name (keys must match ${KEY_PATTERN.source})`, at)
    }
    const named = { ...at, key }
    const previous = firstLine.get(key)
    if (previous !== undefined || out.some((e) => e.key === key)) {
      throw new FormatError(`duplicate key ${key}${previous !== undefined ? ` (first defined on line ${previous})` : ''}`, named)
    }
    if (line !== undefined) firstLine.set(key, line)

    let valueNode = pair.value as YamlNode | null
    if (isAlias(valueNode)) valueNode = (valueNode.resolve(doc) as YamlNode | undefined) ?? null
    if (valueNode === null || (isScalar(valueNode) && (valueNode.value === null || valueNode.value === undefined))) {
      throw new FormatError(`value for key ${key} is null (use "" for an empty value)`, named)
    }
    if (!isScalar(valueNode)) {
      throw new FormatError(`value for key ${key} must be a scalar, not a nested mapping or sequence`, named)
    }
    const value = scalarText(valueNode)
    if (value === undefined) {
      throw new FormatError(`value for key ${key} must be a string, number or boolean`, named)
    }
    out.push({ key, value })
  }
  return out
}

/** The string form of a scalar: strings as-is, other plain scalars as written. */
function scalarText(node: Scalar): string | undefined {
  const v = node.value
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') {
    return typeof node.source === 'string' ? node.source : String(v)
  }
  return undefined
}
