import { CofferClient } from '../../client/client.js'
import { VERSION } from '../../version.js'
import { browserLogin, deviceLogin } from '../browser-login.js'
import { caFromEnv } from '../ca.js'
import { openCredentialStore } from '../credential-store.js'
import { ExitError } from '../exit-error.js'
import { info, printJson } from '../output.js'
import { cliCommand } from '../cli-command.js'

/** What to do on a host with no OS credential store: keep the token in this shell's environment. */
function noStoreHint(url: string): string {
  return `Keep the token in this shell instead (read, never written): eval "$(${cliCommand()} login --url ${url} --device --export)" — or export COFFER_URL and COFFER_TOKEN yourself.`
}

/** A value as one POSIX-shell word. */
function shellWord(value: string): string {
  return /^[\w./:@%+=,-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`
}

/**
 * --export: the login as shell commands on stdout, for `eval "$(coffer login … --export)"`,
 * and what they do on stderr. Nothing is written anywhere.
 */
function printExport(url: string, token: string, who: string): void {
  process.stdout.write(`export COFFER_URL=${shellWord(url)}\nexport COFFER_TOKEN=${shellWord(token)}\n`)
  info(
    `Logged in to ${url} as ${who}. The token is in the commands printed on stdout only: run them in your shell (eval "$(coffer login … --export)"); nothing was saved.`,
  )
}

function serverUrl(raw: string): string {
  try {
    const url = new URL(raw)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error()
    return url.toString()
  } catch {
    throw new ExitError('--url must be an http(s) URL, e.g. http://127.0.0.1:8700')
  }
}

/**
 * `coffer login --url URL`: signs the CLI in and keeps its token in the OS credential store.
 * Without --token: in the browser (PKCE with a loopback redirect; the URL is always printed,
 * and opened unless --no-browser), or with --device by a code approved in any browser. With
 * --token: checks that token and keeps it. With no credential store it says so and points to
 * --export; in the browser flows it stops before a token is made. With --export the token is
 * printed as `export COFFER_URL=… COFFER_TOKEN=…` lines for the shell to eval, and nothing is
 * saved anywhere (the no-disk rule holds on hosts without a credential store).
 */
export async function login(opts: {
  url: string
  token?: string
  device?: boolean
  browser?: boolean
  json?: boolean
  export?: boolean
}): Promise<void> {
  const url = serverUrl(opts.url)
  const ca = caFromEnv()
  const userAgent = `coffer-cli/${VERSION}`
  if (opts.token !== undefined) {
    const client = new CofferClient({ url, token: opts.token, userAgent, ca })
    const me = await client.me()
    const who = `${me.user?.email ?? me.integration?.name} in ${me.workspace.slug}`
    if (opts.export) return printExport(client.url, opts.token, who)
    const store = await openCredentialStore()
    if (!store) {
      throw new ExitError(
        `The token works (${who}), but this machine has no OS credential store, so nothing was saved. ${noStoreHint(client.url)}`,
        { code: 'ERR_NO_CREDENTIAL_STORE' },
      )
    }
    await store.save({ url: client.url, token: opts.token })
    if (opts.json) printJson({ url: client.url, user: me.user, workspace: me.workspace, role: me.role, store: store.kind })
    else
      info(
        `Logged in to ${client.url} as ${me.user?.email ?? `${me.integration?.type} ${me.integration?.name}`} (${me.role ?? 'integration'} of ${me.workspace.slug}); token kept in the OS credential store (${store.kind}).`,
      )
    return
  }

  // With --export the token goes to this shell only: the credential store is not even looked at.
  const store = opts.export ? null : await openCredentialStore()
  if (!store && !opts.export) {
    throw new ExitError(
      `This machine has no OS credential store (Secret Service, Keychain or Credential Manager), so coffer login cannot keep a token here. ${noStoreHint(url.replace(/\/$/, ''))}`,
      { code: 'ERR_NO_CREDENTIAL_STORE' },
    )
  }
  const anonymous = new CofferClient({ url, token: '', userAgent, ca })
  const grant = opts.device ? await deviceLogin(anonymous) : await browserLogin(anonymous, { open: opts.browser !== false })
  if (!store) return printExport(anonymous.url, grant.token, `${grant.user.email} (workspace ${grant.workspace.slug})`)
  await store.save({ url: anonymous.url, token: grant.token })
  if (opts.json)
    printJson({ url: anonymous.url, user: grant.user, workspace: grant.workspace, expiresAt: grant.expiresAt, store: store.kind })
  else
    info(
      `Logged in to ${anonymous.url} as ${grant.user.email} (workspace ${grant.workspace.slug}) until ${grant.expiresAt.slice(0, 10)}; token kept in the OS credential store (${store.kind}).`,
    )
}

/**
 * `coffer logout`: revokes the saved token on the server (so a copy of it is useless too),
 * then removes it from the OS credential store. When the server cannot be reached the token
 * is still removed locally, and the command says that it may still be valid.
 */
export async function logout(): Promise<void> {
  const store = await openCredentialStore()
  const saved = store ? await store.load() : null
  if (!store || !saved) {
    info('No saved login to remove.')
  } else {
    let revoked = false
    try {
      const client = new CofferClient({ url: saved.url, token: saved.token, userAgent: `coffer-cli/${VERSION}`, ca: caFromEnv() })
      const me = await client.me()
      await client.revokeToken(me.workspace.slug, me.tokenId)
      revoked = true
    } catch (err) {
      // An already revoked or expired token is as good as revoked.
      revoked = (err as { code?: string }).code === 'ERR_UNAUTHENTICATED'
      if (!revoked)
        info(
          `Could not revoke the token on the server (${(err as { code?: string }).code ?? 'error'}); it stays valid until it expires or is revoked with coffer token revoke.`,
        )
    }
    await store.remove()
    info(
      revoked
        ? 'Logged out: the token was revoked on the server and removed from the OS credential store.'
        : 'Logged out locally: the token was removed from the OS credential store.',
    )
  }
  if (process.env.COFFER_TOKEN) info('COFFER_TOKEN is still set in this shell; unset it to log out fully.')
}
