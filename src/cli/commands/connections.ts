import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ConnectionView } from '../../api/connections.js'
import { openBrowser } from '../browser-login.js'
import type { CofferClient } from '../../client/client.js'
import { CofferApiError } from '../../client/client.js'
import { ExitError } from '../exit-error.js'
import { info, printJson, printTable } from '../output.js'
import { connect, resolveWorkspace, type ScopeOptions } from '../session.js'

type Opts = ScopeOptions & { json?: boolean }

const CONNECT_WAIT_MS = 10 * 60_000

/** A connection by name (or id), or a clear error. */
async function find(client: CofferClient, ws: string, name: string): Promise<ConnectionView> {
  const c = (await client.connectionList(ws)).find((x) => x.name === name || x.id === name)
  if (!c) throw new ExitError(`No connection named ${name}. See coffer connections list.`)
  return c
}

function state(l: ConnectionView['app']): string {
  if (!l) return '-'
  return l.status === 'connected' ? `connected${l.expiresAt ? ` (expires ${l.expiresAt})` : ''}` : 'needs re-connecting'
}

/**
 * `coffer connections create NAME --authorize-url U --token-url U --client-id ID --api-base U
 * --allow 'GET /v1/*' [--scope S…] [--token-auth post]`: the client secret comes from stdin
 * (--client-secret-stdin) or a prompt on a terminal — never from the command line.
 */
export async function connectionsCreate(
  name: string,
  opts: Opts & {
    authorizeUrl?: string
    tokenUrl?: string
    clientId?: string
    clientSecretStdin?: boolean
    scope?: string[]
    apiBase?: string
    allow?: string[]
    tokenAuth?: string
  },
): Promise<void> {
  for (const [flag, v] of [
    ['--authorize-url', opts.authorizeUrl],
    ['--token-url', opts.tokenUrl],
    ['--client-id', opts.clientId],
    ['--api-base', opts.apiBase],
  ] as const)
    if (!v) throw new ExitError(`Give ${flag}.`, { code: 'ERR_USAGE' })
  if (!opts.allow?.length)
    throw new ExitError("Give at least one --allow 'METHOD /path' rule (e.g. --allow 'GET /v1/*').", { code: 'ERR_USAGE' })
  if (opts.tokenAuth !== undefined && opts.tokenAuth !== 'basic' && opts.tokenAuth !== 'post')
    throw new ExitError('--token-auth is basic (client_secret_basic, the default) or post (client_secret_post).', { code: 'ERR_USAGE' })
  let secret: string
  if (opts.clientSecretStdin) secret = readFileSync(0, 'utf8').trim()
  else if (process.stdin.isTTY) secret = (await hiddenPrompt('Client secret: ')).trim()
  else throw new ExitError('Give the client secret on stdin with --client-secret-stdin (never on the command line).', { code: 'ERR_USAGE' })
  if (!secret) throw new ExitError('The client secret is empty.', { code: 'ERR_USAGE' })
  const client = await connect(opts)
  const c = await client.connectionCreate(await resolveWorkspace(client, opts), {
    name,
    authorizeUrl: opts.authorizeUrl!,
    tokenUrl: opts.tokenUrl!,
    clientId: opts.clientId!,
    clientSecret: secret,
    apiBase: opts.apiBase!,
    allow: opts.allow,
    scopes: (opts.scope ?? []).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean),
    tokenAuth: opts.tokenAuth === 'post' ? 'client_secret_post' : 'client_secret_basic',
  })
  if (opts.json) return printJson(c)
  info(`Connection ${c.name} → ${c.apiBase} (${c.allow.join(', ')}). The client secret is kept sealed; it is never shown again.`)
  info(`Connect the app: coffer connections connect ${c.name} · members link themselves: coffer connections link ${c.name}`)
}

/** Reads one line from the terminal without echoing it. */
function hiddenPrompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin
    process.stderr.write(question)
    stdin.setRawMode(true)
    stdin.resume()
    let typed = ''
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done()
          return resolve(typed)
        }
        if (ch === '\u0003') {
          done()
          return reject(new ExitError('Cancelled.'))
        }
        if (ch === '\u007f') typed = typed.slice(0, -1)
        else typed += ch
      }
    }
    const done = () => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
    }
    stdin.on('data', onData)
  })
}

/** `coffer connections list`. */
export async function connectionsList(opts: Opts): Promise<void> {
  const client = await connect(opts)
  const list = await client.connectionList(await resolveWorkspace(client, opts))
  if (opts.json) return printJson(list)
  if (!list.length) return info('No connections. Add one: coffer connections create NAME --authorize-url … (docs/connections.md)')
  printTable(
    ['NAME', 'API BASE', 'ALLOW', 'APP', 'YOU', 'LINKED'],
    list.map((c) => [c.name, c.apiBase, c.allow.join(', '), state(c.app), state(c.personal), c.personalLinks]),
  )
}

/** `coffer connections delete NAME`. */
export async function connectionsDelete(name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const c = await client.connectionDelete(ws, (await find(client, ws, name)).id)
  if (opts.json) return printJson(c)
  info(`Deleted connection ${c.name} and every token it held.`)
}

/** The browser flow: prints (and opens) the provider URL, then polls until the link is fresh or the flow expires. */
async function authorizeAndWait(kind: 'app' | 'personal', name: string, opts: Opts & { browser?: boolean; wait?: boolean }): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const c = await find(client, ws, name)
  const before = kind === 'app' ? c.app?.linkedAt : c.personal?.linkedAt
  const { url, expiresAt } = await client.connectionAuthorize(ws, c.id, kind)
  if (opts.json && opts.wait === false) return printJson({ url, expiresAt })
  info(`Open this URL to ${kind === 'app' ? `connect ${c.name} as the app` : `link your account to ${c.name}`} (valid until ${expiresAt}):`)
  process.stdout.write(`${url}\n`)
  if (opts.browser !== false) openBrowser(url)
  if (opts.wait === false) return
  const end = Math.min(Date.now() + CONNECT_WAIT_MS, new Date(expiresAt).getTime() + 5_000)
  for (;;) {
    const now = await client.connectionGet(ws, c.id)
    const link = kind === 'app' ? now.app : now.personal
    if (link && link.linkedAt !== before) {
      if (opts.json) return printJson(now)
      return info(kind === 'app' ? `Connected ${now.name} as the app.` : `Linked your account to ${now.name}.`)
    }
    if (Date.now() > end)
      throw new ExitError('The authorization was not completed in time; run the command again.', { code: 'ERR_LOGIN_TIMEOUT' })
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/** `coffer connections connect NAME`: the app's own token (Owners and Admins). */
export async function connectionsConnect(name: string, opts: Opts & { browser?: boolean; wait?: boolean }): Promise<void> {
  return authorizeAndWait('app', name, opts)
}

/** `coffer connections link NAME`: your own account at the provider. */
export async function connectionsLink(name: string, opts: Opts & { browser?: boolean; wait?: boolean }): Promise<void> {
  return authorizeAndWait('personal', name, opts)
}

/** `coffer connections unlink NAME`. */
export async function connectionsUnlink(name: string, opts: Opts): Promise<void> {
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const r = await client.connectionUnlink(ws, (await find(client, ws, name)).id)
  if (opts.json) return printJson(r)
  info(r.unlinked ? `Unlinked your account from ${r.connection.name}.` : `You had no link to ${r.connection.name}.`)
}

/** Request headers the local proxy passes on (the relay filters again). */
const PASSED =
  /^(accept|accept-language|content-type|content-language|if-match|if-none-match|if-modified-since|if-unmodified-since|user-agent|x-.*)$/

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/**
 * `coffer proxy CONNECTION [--port N] [--as app]`: a local HTTP server on 127.0.0.1 that
 * forwards every request to the connection's relay with your Coffer token, so tools call
 * `http://127.0.0.1:N/path`. It answers only requests addressed to 127.0.0.1 or localhost (a
 * web page cannot reach it through a rebound name). Stops on Ctrl-C.
 */
export async function proxy(name: string, opts: Opts & { port?: string; as?: string }): Promise<void> {
  if (opts.as !== undefined && opts.as !== 'app' && opts.as !== 'me')
    throw new ExitError('--as is app (the connection’s own token) or me (yours, the default).', { code: 'ERR_USAGE' })
  const port = opts.port === undefined ? 0 : Number(opts.port)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ExitError('--port must be a port number.', { code: 'ERR_USAGE' })
  const client = await connect(opts)
  const ws = await resolveWorkspace(client, opts)
  const c = await find(client, ws, name)
  const asApp = opts.as === 'app'
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const host = String(req.headers.host ?? '').replace(/:\d+$/, '')
      if (host !== '127.0.0.1' && host !== 'localhost') {
        res.writeHead(421, { 'content-type': 'text/plain' }).end('coffer proxy answers only 127.0.0.1 and localhost\n')
        return
      }
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined && PASSED.test(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v
      const body = await readBody(req)
      try {
        const r = await client.connectionRelay(ws, c.id, {
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          headers,
          ...(body.length > 0 ? { body } : {}),
          asApp,
        })
        const out: Record<string, string> = {}
        for (const [k, v] of Object.entries(r.headers))
          if (v !== undefined && !/^(connection|keep-alive|transfer-encoding|content-length|set-cookie)$/i.test(k))
            out[k] = Array.isArray(v) ? v.join(', ') : v
        res.writeHead(r.status, out).end(r.body)
      } catch (err) {
        const e = err instanceof CofferApiError ? err : null
        res
          .writeHead(e?.status ?? 502, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: e?.code ?? 'ERR_CONNECTION', message: (err as Error).message } }))
      }
    })()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ExitError(`Cannot listen on 127.0.0.1:${port}: ${(err as NodeJS.ErrnoException).code}`)))
    server.listen(port, '127.0.0.1', resolve)
  })
  const bound = (server.address() as AddressInfo).port
  if (opts.json) printJson({ url: `http://127.0.0.1:${bound}`, connection: c.name, as: asApp ? 'app' : 'me' })
  else info(`Forwarding http://127.0.0.1:${bound}/… → ${c.name} (${c.apiBase}) as ${asApp ? 'the app' : 'you'}. Ctrl-C stops.`)
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve())
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}
