import { FormatError, KEY_PATTERN, type SecretEntry } from './secret-entry.js'

// JSON files: one flat object of string values.

/** Entries as one pretty-printed JSON object, in order, ending with a newline. */
export function formatJson(secrets: ReadonlyArray<SecretEntry>): string {
  const obj: Record<string, string> = {}
  for (const { key, value } of secrets) obj[key] = value
  return `${JSON.stringify(obj, null, 2)}\n`
}

function lineAt(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/** Parses a JSON file (see parseSecrets in index.ts for the guarantees). */
export function parseJson(text: string): SecretEntry[] {
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
