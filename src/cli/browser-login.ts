import { spawn } from 'node:child_process'
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { hostname } from 'node:os'
import { CofferApiError, type CliTokenGrant, type CofferClient } from '../client/client.js'
import { ExitError } from './exit-error.js'
import { info } from './output.js'

// The CLI's half of `coffer login` without a token (the server's half: src/identity/cli-login.ts).

/** How long the CLI waits for the person to approve in the browser. */
const WAIT_MS = 5 * 60_000

/** A name for this machine as the approval page shows it. */
export function clientName(): string {
  return `${process.env.USER ?? process.env.USERNAME ?? 'someone'}@${hostname()}`.slice(0, 64)
}

/**
 * Tries to open `url` in the default browser. Never fails: on a machine without one nothing
 * happens, which is why the caller always prints the URL too.
 */
export function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]]
  try {
    const child = spawn(cmd as string, args as string[], { stdio: 'ignore', detached: true })
    child.on('error', () => {})
    child.unref()
  } catch {
    /* no browser: the printed URL is the way */
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * The browser flow: PKCE (S256) with a loopback redirect. Listens on 127.0.0.1:<random>,
 * prints (and tries to open) the approval URL, waits for the redirect carrying the code and
 * the same `state`, and exchanges code + verifier for a CLI token. Callbacks with another
 * state are answered 400 and ignored.
 */
export async function browserLogin(client: CofferClient, opts: { open: boolean; waitMs?: number }): Promise<CliTokenGrant> {
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  const state = randomBytes(16).toString('base64url')
  const done = `${client.url}/cli/done`

  let settle!: (r: { code: string } | { error: string }) => void
  const outcome = new Promise<{ code: string } | { error: string }>((resolve) => {
    settle = resolve
  })
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (req.method !== 'GET' || u.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    if (!equal(u.searchParams.get('state') ?? '', state)) {
      process.stderr.write('coffer: ignored a login callback with the wrong state\n')
      res
        .writeHead(400, { 'content-type': 'text/plain; charset=utf-8' })
        .end('This login callback does not belong to the waiting coffer login.')
      return
    }
    const code = u.searchParams.get('code')
    const error = u.searchParams.get('error')
    res.writeHead(303, { location: code ? `${done}?result=approved` : `${done}?result=denied` }).end()
    settle(code ? { code } : { error: error ?? 'access_denied' })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as { port: number }).port
  const redirectUri = `http://127.0.0.1:${port}/callback`
  const url = new URL(`${client.url}/cli/login`)
  for (const [k, v] of Object.entries({
    code_challenge: challenge,
    code_challenge_method: 'S256',
    redirect_uri: redirectUri,
    state,
    client: clientName(),
  }))
    url.searchParams.set(k, v)

  info(`Open this address in a browser where you are signed in to Coffer, and approve:\n\n    ${url}\n`)
  if (opts.open) openBrowser(url.toString())
  const timer = setTimeout(() => settle({ error: 'timeout' }), opts.waitMs ?? WAIT_MS)
  try {
    const r = await outcome
    if ('error' in r) {
      if (r.error === 'timeout')
        throw new ExitError('No approval arrived within 5 minutes; run coffer login again.', { code: 'ERR_LOGIN_TIMEOUT' })
      throw new ExitError('The login was denied in the browser.', { code: 'ERR_ACCESS_DENIED' })
    }
    return await client.exchangeLoginCode({ code: r.code, codeVerifier: verifier, redirectUri })
  } finally {
    clearTimeout(timer)
    server.close()
    server.closeAllConnections()
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * The device flow for hosts without a browser: prints a URL and a user code, then polls at
 * the server's interval (longer after each ERR_SLOW_DOWN) until approved, denied or expired.
 */
export async function deviceLogin(client: CofferClient): Promise<CliTokenGrant> {
  const d = await client.startDeviceLogin(clientName())
  const page = `${client.url}${d.verificationPath}`
  info(
    `To sign in this CLI, open ${page} in any browser where you are signed in to Coffer and enter the code\n\n    ${d.userCode}\n\n(or open ${page}?code=${d.userCode}). The code expires in ${Math.round(d.expiresIn / 60)} minutes.`,
  )
  let interval = d.interval
  for (;;) {
    await sleep(interval * 1000)
    try {
      return await client.pollDeviceLogin(d.deviceCode)
    } catch (err) {
      if (!(err instanceof CofferApiError)) throw err
      if (err.code === 'ERR_AUTHORIZATION_PENDING') continue
      if (err.code === 'ERR_SLOW_DOWN') {
        interval += 5
        continue
      }
      throw err
    }
  }
}
