import { FormatError, KEY_PATTERN, type SecretEntry } from './secret-entry.js'

// .env files: KEY="value" lines out; KEY=value, quoted values, `export` and comments in.

/** Entries as `KEY="value"` lines, escaping backslash, quote, newline and carriage return. */
export function formatDotenv(secrets: ReadonlyArray<SecretEntry>): string {
  return secrets.map(({ key, value }) => `${key}="${escapeDotenv(value)}"\n`).join('')
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

const DOTENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*/

/** Parses a .env file (see parseSecrets in index.ts for the guarantees). */
export function parseDotenv(text: string): SecretEntry[] {
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
