/**
 * The parsed JSON body of a reply, typed as JSON.parse types it: a test reads the fields the
 * route returns and its assertions are the check, so there is no schema to narrow against here.
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON.parse's own result type; tests read reply fields freely and assert on them
export type JsonBody = any

/** The `error.code` of an error reply's body; undefined when the body carries none. */
export function errorCode(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined
  const { error } = body
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
}
