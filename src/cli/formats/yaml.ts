import { Document, LineCounter, Scalar, isAlias, isMap, isScalar, parseDocument } from 'yaml'
import type { Node as YamlNode } from 'yaml'
import { FormatError, KEY_PATTERN, type SecretEntry } from './secret-entry.js'

// YAML files: one flat mapping of scalar values.

/** Entries as one YAML mapping; multi-line values as block or double-quoted scalars that read back exactly. */
export function formatYaml(secrets: ReadonlyArray<SecretEntry>): string {
  const doc = new Document({})
  for (const { key, value } of secrets) {
    const node = new Scalar(value)
    // Block scalars cannot represent every string faithfully (e.g. a carriage
    // return, or other control characters); those go double-quoted instead.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: detects the control characters a block scalar cannot carry
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

/** Parses a YAML file (see parseSecrets in index.ts for the guarantees). */
export function parseYaml(text: string): SecretEntry[] {
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
