/** A JSON value that canonical serialisation accepts: no floats, no undefined. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/**
 * Canonical JSON: object keys sorted by UTF-16 code units, no whitespace, strings escaped as
 * JSON.stringify does, numbers only as safe integers. The same value always gives the same
 * bytes, on the server and in an offline verifier.
 */
export function canonicalJson(value: Json): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError('canonical JSON allows only safe integers')
      return String(value)
    case 'string':
      return JSON.stringify(value)
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
      const keys = Object.keys(value).sort()
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as Json)}`).join(',')}}`
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`)
  }
}
