import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AuthRateLimitOptions } from './rate-limit.js'

// Server-rendered pages (sign-in, account, invitation, CLI login) and their stylesheet, as
// routes of the one pipeline. A page only reads and renders: its forms post to account
// routes, which authenticate, check CSRF, validate and audit.

/** One page, declared as data like the API's routes. */
export interface PageRouteDef {
  readonly kind: 'page'
  readonly method: 'GET'
  readonly url: string
  /** Pages take no credential: 'public' (what a page shows is limited to the session's own person). */
  readonly action: 'public'
  /** A page that takes a one-time token in its query is limited like an authentication endpoint. */
  readonly authRateLimit?: true | AuthRateLimitOptions
  handler(req: FastifyRequest, reply: FastifyReply): Promise<unknown>
}

/** Collects a group's pages: `pages.get(url, options, handler)` reads like Fastify's and declares a PageRouteDef. */
export class PageTable {
  readonly routes: PageRouteDef[] = []

  get(url: string, options: { authRateLimit?: true | AuthRateLimitOptions }, handler: PageRouteDef['handler']): void {
    this.routes.push({ kind: 'page', method: 'GET', url, action: 'public', ...options, handler })
  }
}
