import { SECRET_KEY_RE } from '../api/limits.js'
import { ReferenceInvalidError } from '../errors.js'

// References inside secret values (issue 16 §1). A value may name another secret's value:
//
//   ${KEY}              the same environment
//   ${env.KEY}          another environment of the same project (its slug)
//   ${project.env.KEY}  an environment of another project of the same workspace (slugs)
//
// `$${` is a literal `${`. Any other `${` is an error (ERR_REFERENCE_INVALID), never silently
// kept: a value that meant a reference and got a typo must not reach a process as text.
// Resolution (who may read what) lives in src/access/reference-resolver.ts; this file only
// reads the syntax, and knows nothing of storage.

/** How deep references (and imports) may nest: a chain longer than this is ERR_REFERENCE_DEPTH. */
export const MAX_REFERENCE_DEPTH = 5

const SLUG_RE = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/

/** One `${…}` of a value. `project` and `environment` are slugs; absent means the value's own. */
export interface Reference {
  readonly project?: string
  readonly environment?: string
  readonly key: string
  /** As written, e.g. `${production.DB_URL}` — what errors and audit entries name. */
  readonly text: string
}

/** A value read as literal text and references, in order. */
export type ValuePart = string | Reference

/**
 * Whether `value` may hold references or escapes. The hot fetch path calls only this when no
 * value does: one indexOf per value.
 */
export function mayHoldReferences(value: string): boolean {
  return value.indexOf('${') !== -1
}

/**
 * Reads `value` (the value of `key`, named in errors) as text and references. `$${` becomes
 * a literal `${`; a `${` that does not open `${KEY}`, `${env.KEY}` or `${project.env.KEY}`
 * closed by `}` throws ReferenceInvalidError.
 */
export function parseValue(value: string, key: string): ValuePart[] {
  const parts: ValuePart[] = []
  let text = ''
  let i = 0
  while (i < value.length) {
    const at = value.indexOf('$', i)
    if (at === -1) {
      text += value.slice(i)
      break
    }
    text += value.slice(i, at)
    if (value.startsWith('$${', at)) {
      text += '${'
      i = at + 3
      continue
    }
    if (value[at + 1] !== '{') {
      text += '$'
      i = at + 1
      continue
    }
    const end = value.indexOf('}', at + 2)
    if (end === -1) throw new ReferenceInvalidError(key, `an unclosed \${ at character ${at + 1}`)
    const inner = value.slice(at + 2, end)
    parts.push(...(text ? [text] : []), readReference(inner, key, at))
    text = ''
    i = end + 1
  }
  if (text) parts.push(text)
  return parts
}

// @NOTE the error names the position, never the text: a malformed `${…}` may be part of a secret.
function readReference(inner: string, key: string, at: number): Reference {
  const names = inner.split('.')
  const k = names[names.length - 1] ?? ''
  const slugs = names.slice(0, -1)
  if (names.length > 3 || k.length > 256 || !SECRET_KEY_RE.test(k) || !slugs.every((s) => SLUG_RE.test(s)))
    throw new ReferenceInvalidError(key, `the \${…} at character ${at + 1} is not \${KEY}, \${env.KEY} or \${project.env.KEY}`)
  const text = `\${${inner}}`
  if (slugs.length === 0) return { key: k, text }
  if (slugs.length === 1) return { environment: slugs[0] as string, key: k, text }
  return { project: slugs[0] as string, environment: slugs[1] as string, key: k, text }
}
