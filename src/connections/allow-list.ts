import { RelayRefusedError, ValidationError } from '../errors.js'

// The relay's allow-list: `METHOD /path-pattern` rules. A pattern's segments match literally,
// `*` as a whole segment matches any one segment, and a final `*` any rest of the path (one
// segment or more): `GET /v1/*` admits `GET /v1/me` and `GET /v1/repos/a/b`, not `GET /v1`.
// Method `*` stands for every method the relay forwards.

export const RELAY_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type RelayMethod = (typeof RELAY_METHODS)[number]

/** One parsed rule. */
export interface AllowRule {
  readonly method: RelayMethod | '*'
  readonly segments: readonly string[]
}

const RULE_RE = /^(GET|POST|PUT|PATCH|DELETE|\*) (\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$/

/** Parses `METHOD /path-pattern`; throws ValidationError naming the rule. */
export function parseRule(raw: string, index = 0): AllowRule {
  const m = RULE_RE.exec(raw.trim())
  const bad = (why: string) =>
    new ValidationError(`Allow rule "${raw.slice(0, 80)}" ${why}.`, [{ path: `body.allow.${index}`, message: why }])
  if (!m) throw bad('is not METHOD /path (METHOD one of GET, POST, PUT, PATCH, DELETE or *)')
  const segments = m[2]!.split('/').slice(1)
  for (const s of segments) {
    if (s === '.' || s === '..') throw bad('may not hold . or .. segments')
    if (s.includes('*') && s !== '*') throw bad('may use * only as a whole segment')
  }
  return { method: m[1] as AllowRule['method'], segments }
}

/** The rules as written, checked. */
export function parseRules(raw: readonly string[]): AllowRule[] {
  return raw.map((r, i) => parseRule(r, i))
}

function segmentsMatch(pattern: readonly string[], path: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!
    if (p === '*' && i === pattern.length - 1) return path.length > i && path.slice(i).every((s) => s !== '')
    if (i >= path.length) return false
    if (p === '*') {
      if (path[i] === '') return false
      continue
    }
    if (p !== path[i]) return false
  }
  return pattern.length === path.length
}

/** Whether a rule admits `method` on the decoded path segments `path`. */
export function admits(rules: readonly AllowRule[], method: string, path: readonly string[]): boolean {
  return rules.some((r) => (r.method === '*' || r.method === method) && segmentsMatch(r.segments, path))
}

/**
 * The path a relay request names, checked: `raw` is the request's path after `…/relay` as the
 * client sent it (still percent-encoded). Refused: an encoded slash, backslash, dot or NUL
 * (`%2F`, `%5C`, `%2E`, `%00`), a literal backslash, an empty, `.` or `..` segment, and bad
 * percent-encoding — nothing that a server behind could read as a way out of the API base.
 * Returns the path to append to the base (as sent) and its decoded segments for the allow-list.
 */
export function relayPath(raw: string): { path: string; segments: string[] } {
  const refuse = () =>
    new RelayRefusedError('The relay path may not hold encoded slashes or dots, backslashes, or empty, . or .. segments.')
  if (!raw.startsWith('/') || raw.length < 2) throw refuse()
  if (/%(2f|5c|2e|00)/i.test(raw) || raw.includes('\\')) throw refuse()
  const segments: string[] = []
  for (const s of raw.slice(1).split('/')) {
    let d: string
    try {
      d = decodeURIComponent(s)
    } catch {
      throw refuse()
    }
    if (d === '' || d === '.' || d === '..') throw refuse()
    segments.push(d)
  }
  return { path: raw, segments }
}
