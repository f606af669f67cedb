// Reads a pasted `.env`: KEY=value lines, `export KEY=value`, # comments, single quotes
// (literal), double quotes (\n \r \t \" \\ escapes, may span lines), unquoted values (a
// trailing ` # comment` is dropped). Lines it cannot read are reported by number, never
// echoed: they may hold a value.

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface DotenvEntry {
  key: string
  value: string
}

export interface DotenvResult {
  entries: DotenvEntry[]
  /** 1-based numbers of lines that are neither blank, a comment nor KEY=value. */
  unreadable: number[]
  /** Keys given more than once (the last one wins, as in a shell). */
  repeated: string[]
}

export function parseDotenv(text: string): DotenvResult {
  const lines = text.replace(/\r\n?/g, '\n').split('\n')
  const byKey = new Map<string, string>()
  const repeated = new Set<string>()
  const unreadable: number[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$/.exec(line)
    if (!m || !KEY_RE.test(m[1]!)) {
      unreadable.push(i + 1)
      continue
    }
    const key = m[1]!
    let rest = m[2]!
    let value: string
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1)
      if (end < 0) {
        unreadable.push(i + 1)
        continue
      }
      value = rest.slice(1, end)
    } else if (rest.startsWith('"')) {
      // A double-quoted value may continue on the next lines until its closing quote.
      let body = rest.slice(1)
      let j = i
      let closed = closingQuote(body)
      while (closed < 0 && j + 1 < lines.length) {
        j++
        body += `\n${lines[j]!}`
        closed = closingQuote(body)
      }
      if (closed < 0) {
        unreadable.push(i + 1)
        continue
      }
      value = unescapeDoubleQuoted(body.slice(0, closed))
      i = j
    } else {
      const hash = rest.search(/\s#/)
      if (hash >= 0) rest = rest.slice(0, hash)
      value = rest.trim()
    }
    if (byKey.has(key)) repeated.add(key)
    byKey.delete(key)
    byKey.set(key, value)
  }
  return { entries: [...byKey].map(([key, value]) => ({ key, value })), unreadable, repeated: [...repeated] }
}

function closingQuote(s: string): number {
  for (let k = 0; k < s.length; k++) {
    if (s[k] === '\\') k++
    else if (s[k] === '"') return k
  }
  return -1
}

function unescapeDoubleQuoted(s: string): string {
  return s.replace(/\\([nrt"\\])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c] ?? c)
}
