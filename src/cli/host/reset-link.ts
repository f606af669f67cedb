import { createContext } from '../../context.js'
import { linkUrl } from '../../identity/email-links.js'
import { operatorResetLink } from '../../identity/member-links.js'
import { buildConfig } from '../../ops/config.js'
import { readEnv } from '../../ops/env.js'
import { buildSecrets } from '../../ops/secrets.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'

export interface ResetLinkOptions {
  dataDir?: string
  json?: boolean
}

/**
 * `coffer reset-link EMAIL`: on the server host, prints a one-time, one-hour link that sets
 * the account's password — for an Owner whose setup link ran out while mail is off. Audited
 * in every workspace of the person. Reads the same settings as `coffer server`.
 */
export async function resetLink(email: string, opts: ResetLinkOptions): Promise<void> {
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new ExitError('EMAIL must be an email address.')
  const env = readEnv()
  const config = buildConfig(env, { dataDir: opts.dataDir })
  if (!config.auth.password) throw new ExitError('Passwords are off on this server (COFFER_AUTH_MODE=oidc-only): sign in with SSO.')
  const ctx = await createContext(config, buildSecrets(env))
  try {
    const link = await ctx.committer.run((tx) => operatorResetLink(tx, ctx.audit, email, ctx.clock()))
    if (!link) throw new ExitError(`No account ${email} that signs in with a password.`)
    const url = linkUrl(config.auth.publicUrl, 'reset', link.token)
    if (opts.json) {
      printJson({ url, expiresAt: link.expiresAt })
      return
    }
    info(
      `Password link for ${email} (works once, until ${link.expiresAt}; recorded in the audit log of its ${link.workspaces} workspace(s)):\n`,
    )
    process.stdout.write(`${url}\n`)
  } finally {
    await ctx.close()
  }
}
