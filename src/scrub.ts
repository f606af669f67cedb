import { homedir } from 'node:os'

// Shared by the server's logs and the CLI's error messages: a leaf any part may import.

/**
 * Token kinds and their prefixes. A person's: `pat` (personal access token) and `cli` (the
 * token `coffer login` gets in the browser; a personal token too). A workspace
 * integration's: `svc` (static service token), `sat` (a machine identity's short-lived
 * access token) and `mcs` (a machine identity's client secret, exchanged for `sat`s). `inv`
 * is an invitation. They live here, beside the scrubber, so that every prefix a token can
 * have is one the scrubbers know (src/identity/token-format.ts makes and checks tokens).
 */
export const TOKEN_PREFIXES = {
  pat: 'coffer_pat_',
  svc: 'coffer_svc_',
  sat: 'coffer_sat_',
  mcs: 'coffer_mcs_',
  inv: 'coffer_inv_',
  cli: 'coffer_cli_',
} as const

// @NOTE a known prefix followed by any token characters: a cut-off or mistyped token is
// scrubbed as surely as a well-formed one.
const TOKEN_RE = new RegExp(`(?:${Object.values(TOKEN_PREFIXES).join('|')})[0-9A-Za-z_]+`, 'g')
// @NOTE the userinfo runs to the last '@' of the authority (as URL parsers read it), so a
// password holding '@' and an empty user name (redis://:pass@host) are scrubbed whole.
const URL_CREDENTIALS_RE = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi

/**
 * Scrubs an error text before it is logged or shown: Coffer tokens, credentials embedded in
 * URLs (postgres://user:pass@host) and the home directory path.
 */
export function scrub(text: string): string {
  let out = text.replace(TOKEN_RE, 'coffer_[redacted]').replace(URL_CREDENTIALS_RE, '$1[redacted]@')
  const home = homedir()
  // @NOTE only the whole directory: with HOME=/root, `.coffer/root.key` stays as it is.
  if (home && home !== '/') out = out.replace(new RegExp(`(?<![\\w.-])${escapeRegExp(home)}(?![\\w.-])`, 'g'), '~')
  return out
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
