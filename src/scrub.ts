import { homedir } from 'node:os'

// Shared by the server's logs and the CLI's error messages: a leaf any part may import.

const TOKEN_RE = /coffer_[a-z]+_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}/g
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
  if (home && home !== '/') out = out.split(home).join('~')
  return out
}
