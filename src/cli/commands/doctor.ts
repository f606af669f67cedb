import { CofferApiError, CofferClient, CofferConnectionError, type Me } from '../../client/client.js'
import { VERSION } from '../../version.js'
import { caFromEnv } from '../ca.js'
import { credentialsFromEnv, openCredentialStore } from '../credential-store.js'
import { ExitError } from '../exit-error.js'
import { printJson } from '../output.js'
import { findProjectConfig } from '../project-config.js'
import { DEFAULT_URL, type ServerOptions } from '../session.js'

/** One check's verdict: ok, warn (works, but look at it) or fail (something the CLI needs is broken). */
export type Status = 'ok' | 'warn' | 'fail'
export interface Check {
  name: string
  status: Status
  message: string
}

/** Clock skew beyond these warns, then fails: token expiries and audit times go wrong. */
const SKEW_WARN_MS = 30_000
const SKEW_FAIL_MS = 300_000

/**
 * `coffer doctor`: checks what the CLI depends on, one line each — the project link
 * (.coffer.json), the OS credential store, the server (reachable, TLS), the clock against the
 * server's Date header, and the token (valid, whom it acts for and what it may reach). Exits
 * non-zero (ERR_DOCTOR_FAILED) when any check fails; --json prints the checks as JSON.
 */
export async function doctor(opts: ServerOptions & { json?: boolean }): Promise<void> {
  const checks: Check[] = []
  const add = (name: string, status: Status, message: string) => {
    checks.push({ name, status, message })
  }

  let linkedUrl: string | undefined
  try {
    const found = findProjectConfig()
    if (!found) add('project-config', 'warn', 'no .coffer.json here or in a parent: pass --project/--env, or run coffer setup')
    else {
      linkedUrl = found.config.url
      const c = found.config
      const missing = (['project', 'environment'] as const).filter((k) => !c[k])
      add(
        'project-config',
        missing.length ? 'warn' : 'ok',
        `${found.path}: ${[c.workspace, c.project, c.environment].filter(Boolean).join('/')}${missing.length ? ` (no ${missing.join(' or ')})` : ''}`,
      )
    }
  } catch (err) {
    add('project-config', 'fail', (err as Error).message)
  }

  const store = await openCredentialStore()
  let token: string | undefined
  let tokenSource = ''
  let url = opts.url ?? process.env.COFFER_URL ?? linkedUrl
  try {
    const fromEnv = credentialsFromEnv({ ...process.env, COFFER_URL: url ?? '' }, DEFAULT_URL)
    if (fromEnv) {
      token = fromEnv.token
      url = fromEnv.url
      tokenSource = 'COFFER_TOKEN'
    }
  } catch (err) {
    add('token', 'fail', (err as Error).message)
  }
  if (store) {
    let saved = null
    try {
      saved = await store.load()
    } catch (err) {
      add('credential-store', 'fail', (err as Error).message)
    }
    if (saved && !token) {
      token = saved.token
      url ??= saved.url
      tokenSource = `the ${store.kind} credential store`
    }
    if (!checks.some((c) => c.name === 'credential-store'))
      add('credential-store', 'ok', `${store.kind} is available${saved ? ' and holds a login' : ''}`)
  } else
    add(
      'credential-store',
      token ? 'ok' : 'warn',
      `no OS credential store on this host: keep the token in COFFER_TOKEN (eval "$(coffer login --url URL --device --export)")${token ? '; COFFER_TOKEN is set' : ''}`,
    )
  url ??= DEFAULT_URL

  const client = new CofferClient({ url, token: token ?? '', userAgent: `coffer-cli/${VERSION}`, ca: caFromEnv() })
  let reachable = false
  try {
    const started = Date.now()
    const h = await client.health()
    const ended = Date.now()
    reachable = h.status === 200
    add('server', reachable ? 'ok' : 'fail', `${client.url} answers /healthz with ${h.status} in ${ended - started} ms`)
    const secure = url.startsWith('https:')
    const host = new URL(url).hostname
    const local = host === 'localhost' || host === '[::1]' || /^127\./.test(host)
    add(
      'tls',
      secure || local ? 'ok' : 'warn',
      secure
        ? 'HTTPS, the certificate verified'
        : local
          ? 'plain HTTP on this machine (loopback)'
          : `plain HTTP to ${host}: the token and secrets cross the network unencrypted; use https://`,
    )
    if (h.date) {
      // The server's clock is read at some point during the exchange: compare with its middle.
      const skew = Date.parse(h.date) - (started + ended) / 2
      const abs = Math.abs(skew)
      const words = `${(abs / 1000).toFixed(1)} s ${skew >= 0 ? 'behind' : 'ahead of'} the server`
      // The Date header has whole seconds: up to a second of skew is rounding.
      add(
        'clock',
        abs > SKEW_FAIL_MS ? 'fail' : abs > SKEW_WARN_MS ? 'warn' : 'ok',
        abs <= 1_000 ? 'in step with the server' : `this clock is ${words}`,
      )
    } else add('clock', 'warn', 'the server sent no Date header: skew unknown')
  } catch (err) {
    const e = err as Error
    // Node names certificate failures by code: UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID…
    const tlsError = url.startsWith('https:') && /CERT|SSL|TLS|VERIFY|SIGNATURE|EPROTO|self.signed/i.test(e.message)
    if (tlsError) add('tls', 'fail', `${e.message} (set COFFER_CA_CERT to the PEM of a private authority)`)
    else add('server', 'fail', e.message)
  }

  if (!token) add('token', 'fail', 'no token: coffer login --url URL (or --export), or set COFFER_TOKEN')
  else if (!reachable) add('token', 'warn', `not checked (from ${tokenSource}): the server did not answer`)
  else {
    try {
      const me = await client.me()
      const who = me.user
        ? `${me.user.email}, ${me.role} of ${me.workspace.slug}`
        : `${me.integration?.type} ${me.integration?.name} in ${me.workspace.slug}`
      add('token', 'ok', `valid (from ${tokenSource}): ${who}${await scopesOf(client, me.workspace.slug, me.integration)}`)
    } catch (err) {
      const code = err instanceof CofferApiError || err instanceof CofferConnectionError ? ` (${err.code})` : ''
      add('token', 'fail', `the token from ${tokenSource} is refused: ${(err as Error).message}${code}`)
    }
  }

  const failed = checks.filter((c) => c.status === 'fail')
  if (opts.json) printJson({ ok: failed.length === 0, checks })
  else for (const c of checks) process.stdout.write(`${c.status.padEnd(4)}  ${c.name.padEnd(14)}  ${c.message}\n`)
  if (failed.length)
    throw new ExitError(`${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((c) => c.name).join(', ')}`, {
      code: 'ERR_DOCTOR_FAILED',
    })
}

/** What an integration token may reach, by name (`web-shop/production:read`); a person's reach follows their roles. */
async function scopesOf(client: CofferClient, ws: string, integration: Me['integration']): Promise<string> {
  if (!integration) return '; reaches what the roles allow'
  const { Names } = await import('../names.js')
  return `; scopes ${await new Names(client, ws).scopes(integration.scopes)}`
}
