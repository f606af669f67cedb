import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AppContext } from '../context.js'
import { RouteNotFoundError, UriTooLongError } from '../errors.js'
import { MAX_PARAM_LENGTH } from './bare-answers.js'
import { PageTable, type PageRouteDef } from './page-route.js'
import { html } from './pages/layout.js'
import { sendPage } from './pages/auth-pages.js'
import { currentSession } from './session-auth.js'

// The web dashboard (web/, built by `npm run build` into dist/web) as pages of the pipeline:
// its hashed files under /assets/app/, cached for a year, and its index.html for `/` and every
// other path the server has no route for — except API paths (/v1/…, /v2/…: JSON 404 as
// before) and file paths (a missing file is a 404, not a page). The app itself is a client of
// the public /v1 API with the session cookie and CSRF token; it gets no route of its own.

/** The dashboard's CSP: its own scripts, styles, images and API only — no inline script, no eval, no framing. */
export const APP_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/** How long a browser keeps a hashed file: a year, never revalidated (a new build has new names). */
export const IMMUTABLE = 'public, max-age=31536000, immutable'

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
}

interface Asset {
  readonly type: string
  readonly body: Buffer
  /** Compressed once at start-up, for clients that accept gzip. */
  readonly gzip: Buffer | undefined
}

/** The built dashboard: its index.html and its files by name (relative to assets/app/). */
export interface WebBuild {
  readonly index: Buffer
  readonly assets: ReadonlyMap<string, Asset>
}

/**
 * The directory of the built dashboard: `dist/web` of the package this module belongs to
 * (found upwards from this file, which is src/server/ in a checkout and dist/ or dist/chunks/
 * once bundled), or undefined when it was not built.
 */
export function findWebDir(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let d = from, i = 0; i < 5; i++, d = dirname(d)) {
    const dir = join(d, 'dist', 'web')
    if (existsSync(join(dir, 'index.html'))) return dir
  }
  return undefined
}

/** Reads the built dashboard into memory (a few hundred kilobytes). */
export function loadWebBuild(dir: string): WebBuild {
  const assets = new Map<string, Asset>()
  const base = join(dir, 'assets', 'app')
  const walk = (sub: string) => {
    for (const e of readdirSync(join(base, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${e.name}` : e.name
      if (e.isDirectory()) walk(rel)
      else {
        const body = readFileSync(join(base, rel))
        const type = TYPES[extname(e.name)] ?? 'application/octet-stream'
        const gzip = /^(text|image\/svg)/.test(type) && body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined
        assets.set(rel, { type, body, gzip })
      }
    }
  }
  if (existsSync(base)) walk('')
  return { index: readFileSync(join(dir, 'index.html')), assets }
}

function acceptsGzip(req: FastifyRequest): boolean {
  return /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
}

/** An API path, or one that names a file: these never fall back to the app. */
function notAnAppPath(path: string): boolean {
  return /^\/v\d+(\/|$)/.test(path) || /\.[A-Za-z0-9]{1,8}$/.test(path)
}

/**
 * The dashboard's pages: `/assets/app/*` (hashed files) and `/*` (the app, for a person with a
 * session; anyone else is sent to sign-in and back). `build` is undefined when the dashboard
 * was not built: its paths then say so.
 */
export function webAppPages(ctx: AppContext, build: WebBuild | undefined = loadBuild()): PageRouteDef[] {
  const pages = new PageTable()

  pages.get('/assets/app/*', {}, async (req, reply) => {
    const name = (req.params as { '*'?: string })['*'] ?? ''
    const a = build?.assets.get(name)
    if (!a) throw new RouteNotFoundError()
    const gz = a.gzip && acceptsGzip(req)
    void reply.type(a.type).header('cache-control', IMMUTABLE).header('vary', 'accept-encoding').header('content-security-policy', APP_CSP)
    if (gz) void reply.header('content-encoding', 'gzip')
    return reply.send(gz ? a.gzip : a.body)
  })

  pages.get('/*', {}, async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!
    // The catch-all matches what a parametric route would refuse as too long: refuse it the same way.
    if (path.split('/').some((segment) => segment.length > MAX_PARAM_LENGTH)) throw new UriTooLongError()
    if (notAnAppPath(path)) throw new RouteNotFoundError()
    // @NOTE the app's HTML goes only to a session: a signed-out visitor meets the sign-in page
    // (and comes back here after it) instead of an empty app that would then redirect.
    const s = await currentSession(ctx, req)
    if (!s)
      return reply
        .code(303)
        .header('location', `/sign-in?returnTo=${encodeURIComponent(req.url)}`)
        .send()
    if (!build)
      return sendPage(
        reply,
        'Dashboard not built',
        html`<p>This server was started without the web dashboard. Build it with <code>npm run build</code> and restart.</p><p><a href="/account">Your account</a></p>`,
        503,
      )
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', APP_CSP)
      .header('referrer-policy', 'strict-origin')
      .header('cache-control', 'no-store')
      .send(build.index)
  })
  return pages.routes
}

function loadBuild(): WebBuild | undefined {
  const dir = findWebDir()
  return dir ? loadWebBuild(dir) : undefined
}
