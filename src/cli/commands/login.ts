import { CofferClient } from '../../client/client.js'
import { VERSION } from '../../version.js'
import { openCredentialStore } from '../credential-store.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'

/**
 * `coffer login --url URL --token T`: checks the token against the server, then keeps it in
 * the OS credential store. With no store it writes nothing and points to COFFER_TOKEN.
 */
export async function login(opts: { url: string; token?: string; json?: boolean }): Promise<void> {
  const token = opts.token ?? process.env.COFFER_TOKEN
  if (!token) throw new ExitError('Pass --token (or set COFFER_TOKEN).')
  let url: URL
  try {
    url = new URL(opts.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error()
  } catch {
    throw new ExitError('--url must be an http(s) URL, e.g. http://127.0.0.1:8700')
  }
  const client = new CofferClient({ url: url.toString(), token, userAgent: `coffer-cli/${VERSION}` })
  const me = await client.me()
  const store = await openCredentialStore()
  if (!store) {
    throw new ExitError(
      `The token works (${me.user.email} in ${me.workspace.slug}), but this machine has no OS credential store, so nothing was saved.\n` +
        `Use it through the environment instead: export COFFER_URL=${client.url} COFFER_TOKEN=<token>`,
      { code: 'ERR_NO_CREDENTIAL_STORE' },
    )
  }
  await store.save({ url: client.url, token })
  if (opts.json) printJson({ url: client.url, user: me.user, workspace: me.workspace, role: me.role, store: store.kind })
  else info(`Logged in to ${client.url} as ${me.user.email} (${me.role} of ${me.workspace.slug}); token kept in the OS credential store (${store.kind}).`)
}

/** `coffer logout`: removes the saved login from the OS credential store. */
export async function logout(): Promise<void> {
  const store = await openCredentialStore()
  const removed = store ? await store.remove() : false
  info(removed ? 'Logged out: the saved token was removed from the OS credential store.' : 'No saved login to remove.')
  if (process.env.COFFER_TOKEN) info('COFFER_TOKEN is still set in this shell; unset it to log out fully.')
}
