import type { FastifyInstance } from 'fastify'
import type { JsonBody } from './json-body.js'

/** What a request through the fake browser got back. */
export interface BrowserReply {
  status: number
  headers: Record<string, unknown>
  body: string
  json: JsonBody
  /** The raw Set-Cookie header lines of this reply. */
  setCookies: string[]
}

/**
 * A small browser over app.inject: it keeps cookies (Path and expiry honoured loosely) and,
 * like a browser on Coffer's own pages, sends Origin and Sec-Fetch-Site: same-origin on
 * requests that are not GET. `site` and `origin` send others instead (null: none at all).
 */
export function browser(app: FastifyInstance, origin: string) {
  const jar = new Map<string, { value: string; path: string }>()
  const remember = (lines: string[]) => {
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim())
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      const path = attrs.find((a) => /^path=/i.test(a))?.slice(5) ?? '/'
      const expired = attrs.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()))
      if (expired || value === '') jar.delete(name)
      else jar.set(name, { value, path })
    }
  }
  const cookieFor = (url: string) => {
    const path = url.split('?')[0]!
    return [...jar.entries()]
      .filter(([, c]) => path.startsWith(c.path))
      .map(([n, c]) => `${n}=${c.value}`)
      .join('; ')
  }
  async function request(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    opts: {
      json?: unknown
      form?: Record<string, string>
      headers?: Record<string, string>
      site?: 'same-origin' | 'cross-site' | 'none' | null
      origin?: string | null
    } = {},
  ): Promise<BrowserReply> {
    const headers: Record<string, string> = {}
    const cookie = cookieFor(url)
    if (cookie) headers.cookie = cookie
    if (method !== 'GET') {
      if (opts.site !== null) headers['sec-fetch-site'] = opts.site ?? 'same-origin'
      if (opts.origin !== null) headers.origin = opts.origin ?? origin
    }
    let payload: string | undefined
    if (opts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      payload = new URLSearchParams(opts.form).toString()
    } else if (opts.json !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(opts.json)
    }
    const res = await app.inject({ method, url, headers: { ...headers, ...opts.headers }, ...(payload === undefined ? {} : { payload }) })
    const raw = res.headers['set-cookie']
    const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw.map(String) : [String(raw)]
    remember(setCookies)
    let json: unknown
    try {
      json = res.body ? JSON.parse(res.body) : undefined
    } catch {
      json = undefined
    }
    return { status: res.statusCode, headers: res.headers, body: res.body, json, setCookies }
  }
  return {
    jar,
    request,
    get: (url: string, headers?: Record<string, string>) => request('GET', url, headers ? { headers } : {}),
    post: (
      url: string,
      json?: unknown,
      more: { headers?: Record<string, string>; site?: 'same-origin' | 'cross-site' | 'none' | null; origin?: string | null } = {},
    ) => request('POST', url, { json: json ?? {}, ...more }),
    form: (
      url: string,
      form: Record<string, string>,
      more: { site?: 'same-origin' | 'cross-site' | 'none' | null; origin?: string | null } = {},
    ) => request('POST', url, { form, ...more }),
    cookie: (name: string) => jar.get(name)?.value,
  }
}

export type Browser = ReturnType<typeof browser>
