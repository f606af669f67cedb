import { isIP, connect as netConnect, type Socket } from 'node:net'

// The client's HTTP/1.1 transport, straight over node:net (node:tls for https://): a request
// line and headers out, a status, headers and a body back, kept-alive connections reused.
//
// @NOTE not node:http: a process's first exchange through node:http costs ~5 ms more than the
// same exchange written here (ClientRequest, the agent, llhttp and the stream machinery, all
// compiled on first use), and `coffer run` pays it on every invocation, beside Node's ~60 ms
// start-up. Not fetch either (see send() in client.ts). The client needs little of HTTP: no
// redirects, no compression (it asks for none), no Expect, no upgrade, no HEAD, no pipelining.

/** An answer: its status and its body decoded as UTF-8. */
export interface HttpAnswer {
  readonly status: number
  readonly text: string
  /** The answer's Date header, if it sent one. */
  readonly date?: string
}

/** What a CofferClient sends through: one origin, its connections, and the CA it trusts. */
export interface Http1Options {
  /** PEM certificate(s) that https:// servers are verified against instead of the system's. */
  readonly ca?: string | Buffer
  /** Inactivity limit of one exchange, after which it fails. */
  readonly timeoutMs?: number
  /** Idle connections kept for the next requests (more are closed). */
  readonly maxIdle?: number
}

/** The limit on an answer's status line and headers, and on a chunk-size or trailer line. */
const MAX_HEAD_BYTES = 64 * 1024
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Node's own rule for header values (ERR_INVALID_CHAR): no control character but tab.
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/

/**
 * Connections to one origin (`http://host:port` or `https://…`), reused one request at a time:
 * a connection is given back once its answer has been read whole, and dropped when the server
 * asked to close it, closes it, or sent anything it should not have. Idle connections never keep
 * the process alive (they are unref'd, as node:http's agent does). A failure to connect, a reset
 * and a timeout reject with the socket's error (its `code`: ECONNREFUSED, ECONNRESET…); an answer
 * that is not HTTP/1.1 rejects with an error saying so.
 */
export class Http1Connections {
  readonly #url: URL
  readonly #ca: string | Buffer | undefined
  readonly #timeoutMs: number
  readonly #maxIdle: number
  readonly #idle: Array<{ socket: Socket; drop: () => void }> = []

  constructor(origin: string, options: Http1Options = {}) {
    this.#url = new URL(origin)
    if (this.#url.protocol !== 'http:' && this.#url.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${this.#url.protocol}`)
    this.#ca = options.ca
    this.#timeoutMs = options.timeoutMs ?? 60_000
    this.#maxIdle = options.maxIdle ?? 8
  }

  /** Sends `method target` (`target`: path and query, already encoded) and reads the answer. */
  async send(method: string, target: string, headers: Readonly<Record<string, string>>, body?: Buffer): Promise<HttpAnswer> {
    const head = requestHead(method, target, this.#url, headers)
    const socket = this.#takeIdle() ?? (await this.#connect())
    return new Promise<HttpAnswer>((resolve, reject) => {
      const answer = new AnswerReader()
      let settled = false
      const finish = (err: Error | null) => {
        if (settled) return
        settled = true
        socket.off('data', onData)
        socket.off('end', onEnd)
        socket.off('close', onClose)
        socket.off('error', onError)
        socket.off('timeout', onTimeout)
        if (err) {
          socket.destroy()
          reject(err)
          return
        }
        if (answer.reusable) this.#giveBack(socket)
        else socket.destroy()
        resolve({ status: answer.status, text: answer.text(), ...(answer.date ? { date: answer.date } : {}) })
      }
      const onData = (chunk: Buffer) => {
        try {
          answer.push(chunk)
        } catch (err) {
          finish(err as Error)
          return
        }
        if (answer.complete) finish(null)
      }
      const onEnd = () => {
        try {
          answer.end()
        } catch (err) {
          finish(err as Error)
          return
        }
        finish(null)
      }
      const onClose = () => finish(hangUp())
      const onError = (err: Error) => finish(err)
      const onTimeout = () => finish(new Error('the request timed out'))
      socket.on('data', onData)
      socket.on('end', onEnd)
      socket.on('close', onClose)
      socket.on('error', onError)
      socket.on('timeout', onTimeout)
      socket.setTimeout(this.#timeoutMs)
      socket.write(body?.length ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1'))
    })
  }

  /**
   * Sends a GET on a connection of its own and hands the answer's body to `onBody` as it
   * arrives when `onHead` accepts the status; otherwise the body is kept, and `done` resolves
   * with the status and that text once the answer is whole. `done` resolves when the server
   * ends the answer or `close()` ends it from this side; a failure to connect, a reset or
   * `idleMs` without a byte rejects it with the socket's error.
   */
  stream(
    target: string,
    headers: Readonly<Record<string, string>>,
    onHead: (status: number) => boolean,
    onBody: (chunk: Buffer) => void,
    idleMs: number,
  ): { done: Promise<HttpAnswer>; close: () => void } {
    let socket: Socket | undefined
    let closed = false
    const done = (async () => {
      const head = requestHead('GET', target, this.#url, headers)
      socket = await this.#connect()
      if (closed) {
        socket.destroy()
        return { status: 0, text: '' }
      }
      const s = socket
      return new Promise<HttpAnswer>((resolve, reject) => {
        let streaming: boolean | undefined
        const answer = new AnswerReader((chunk) => {
          streaming ??= onHead(answer.status)
          if (streaming) onBody(chunk)
          else kept.push(chunk)
        })
        const kept: Buffer[] = []
        let settled = false
        const finish = (err: Error | null) => {
          if (settled) return
          settled = true
          s.destroy()
          if (err && !closed) reject(err)
          else resolve({ status: answer.status, text: Buffer.concat(kept).toString('utf8') })
        }
        s.on('data', (chunk: Buffer) => {
          try {
            answer.push(chunk)
          } catch (err) {
            finish(err as Error)
            return
          }
          if (answer.complete) finish(null)
        })
        s.on('end', () => {
          try {
            answer.end()
          } catch (err) {
            finish(err as Error)
            return
          }
          finish(null)
        })
        s.on('close', () => finish(closed ? null : hangUp()))
        s.on('error', (err: Error) => finish(err))
        s.on('timeout', () => finish(Object.assign(new Error('the stream went silent'), { code: 'ETIMEDOUT' })))
        s.setTimeout(idleMs)
        s.write(Buffer.from(head, 'latin1'))
      })
    })()
    return {
      done,
      close: () => {
        closed = true
        socket?.destroy()
      },
    }
  }

  /** Closes the idle connections (those in use close when their answer is read). */
  close(): void {
    for (const { socket } of this.#idle.splice(0)) socket.destroy()
  }

  #takeIdle(): Socket | undefined {
    for (let idle = this.#idle.pop(); idle; idle = this.#idle.pop()) {
      const { socket, drop } = idle
      socket.off('data', drop).off('end', drop).off('close', drop).off('error', drop)
      if (!socket.destroyed && socket.readyState === 'open') return socket.ref()
      socket.destroy()
    }
    return undefined
  }

  #giveBack(socket: Socket): void {
    if (this.#idle.length >= this.#maxIdle || socket.destroyed) {
      socket.destroy()
      return
    }
    socket.setTimeout(0)
    const idle = {
      socket,
      // The server may close an idle connection at any time (its keep-alive timeout); one that
      // sends anything unasked is not trusted again.
      drop: () => {
        const i = this.#idle.indexOf(idle)
        if (i !== -1) this.#idle.splice(i, 1)
        socket.destroy()
      },
    }
    socket.on('data', idle.drop).on('end', idle.drop).on('close', idle.drop).on('error', idle.drop)
    this.#idle.push(idle)
    socket.unref()
  }

  async #connect(): Promise<Socket> {
    const u = this.#url
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
    if (u.protocol === 'http:') return netConnect({ host, port: Number(u.port || 80), noDelay: true })
    // node:tls is loaded for an https:// server only.
    const { connect: tlsConnect } = await import('node:tls')
    return tlsConnect({
      host,
      port: Number(u.port || 443),
      // SNI names a host, never an address (as node:https does).
      ...(isIP(host) ? {} : { servername: host }),
      ...(this.#ca ? { ca: this.#ca } : {}),
    }).setNoDelay(true)
  }
}

/** The request line and headers, checked as node:http checks them. */
function requestHead(method: string, target: string, url: URL, headers: Readonly<Record<string, string>>): string {
  if (!HEADER_NAME.test(method)) throw new TypeError(`invalid HTTP method: ${JSON.stringify(method)}`)
  if (!target.startsWith('/') || BAD_HEADER_VALUE.test(target) || target.includes(' '))
    throw Object.assign(new TypeError('the request path contains characters that cannot be sent'), { code: 'ERR_UNESCAPED_CHARACTERS' })
  let head = `${method} ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n`
  const names = new Set<string>()
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name))
      throw Object.assign(new TypeError(`invalid header name: ${JSON.stringify(name)}`), { code: 'ERR_INVALID_HTTP_TOKEN' })
    if (BAD_HEADER_VALUE.test(value))
      throw Object.assign(new TypeError(`invalid character in header ${name}`), { code: 'ERR_INVALID_CHAR' })
    const lower = name.toLowerCase()
    if (lower === 'host' || lower === 'connection') continue
    names.add(lower)
    head += `${name}: ${value}\r\n`
  }
  // Credentials in the URL (`https://user:pass@host`) become Basic authentication unless the
  // caller sends its own, as with node:http.
  if (!names.has('authorization') && (url.username || url.password)) {
    const userinfo = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
    head += `Authorization: Basic ${Buffer.from(userinfo).toString('base64')}\r\n`
  }
  return `${head}\r\n`
}

function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
}

function badAnswer(what: string): Error {
  return new Error(`the answer is not valid HTTP/1.1 (${what})`)
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'until-close' | 'complete'

/**
 * Reads one answer from the bytes of a connection, as they arrive (RFC 9112): skips interim
 * (1xx) answers, then takes the body by Transfer-Encoding: chunked, by Content-Length, or up to
 * the end of the connection; 204 and 304 have none. Throws on anything malformed.
 */
export class AnswerReader {
  status = 0
  /** The Date header of the final answer, if any. */
  date: string | undefined
  /** Whether the connection may carry another request once this answer is complete. */
  reusable = true
  #state: State = 'head'
  #pending: Buffer = Buffer.alloc(0)
  #remaining = 0
  readonly #body: Buffer[] = []
  readonly #sink: ((chunk: Buffer) => void) | undefined

  /** `sink`: receives the body's bytes as they arrive (a stream), instead of keeping them for text(). */
  constructor(sink?: (chunk: Buffer) => void) {
    this.#sink = sink
  }

  get complete(): boolean {
    return this.#state === 'complete'
  }

  /** The body, once complete. */
  text(): string {
    return Buffer.concat(this.#body).toString('utf8')
  }

  push(chunk: Buffer): void {
    if (this.#state === 'complete') {
      // Bytes after a complete answer (none was asked for): the connection is not trusted again.
      if (chunk.length) this.reusable = false
      return
    }
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
    this.#advance()
  }

  /** The connection ended: completes an answer read up to the end, else throws ECONNRESET. */
  end(): void {
    this.reusable = false
    if (this.#state === 'until-close') this.#state = 'complete'
    if (this.#state !== 'complete') throw hangUp()
  }

  #advance(): void {
    for (;;) {
      const buf = this.#pending
      switch (this.#state) {
        case 'head': {
          const end = buf.indexOf('\r\n\r\n')
          if (end === -1) {
            if (buf.length > MAX_HEAD_BYTES) throw badAnswer('the header section is too long')
            return
          }
          this.#pending = buf.subarray(end + 4)
          this.#readHead(buf.toString('latin1', 0, end))
          break
        }
        case 'length':
        case 'chunk-data': {
          if (buf.length === 0) return
          const take = Math.min(this.#remaining, buf.length)
          this.#keep(buf.subarray(0, take))
          this.#pending = buf.subarray(take)
          this.#remaining -= take
          if (this.#remaining > 0) return
          this.#state = this.#state === 'length' ? 'complete' : 'chunk-end'
          break
        }
        case 'chunk-size': {
          const line = this.#line()
          if (line === undefined) return
          const size = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(line)
          if (!size) throw badAnswer('a chunk size')
          this.#remaining = Number.parseInt(size[1]!, 16)
          this.#state = this.#remaining === 0 ? 'trailers' : 'chunk-data'
          break
        }
        case 'chunk-end': {
          if (buf.length < 2) return
          if (buf[0] !== 0x0d || buf[1] !== 0x0a) throw badAnswer('the end of a chunk')
          this.#pending = buf.subarray(2)
          this.#state = 'chunk-size'
          break
        }
        case 'trailers': {
          const line = this.#line()
          if (line === undefined) return
          if (line === '') this.#state = 'complete'
          break
        }
        case 'until-close':
          if (buf.length) this.#keep(buf)
          this.#pending = Buffer.alloc(0)
          return
        case 'complete':
          if (buf.length) this.reusable = false
          this.#pending = Buffer.alloc(0)
          return
      }
    }
  }

  #keep(bytes: Buffer): void {
    if (this.#sink) this.#sink(bytes)
    else this.#body.push(bytes)
  }

  /** The next CRLF-terminated line of #pending (consumed), or undefined while it is incomplete. */
  #line(): string | undefined {
    const end = this.#pending.indexOf('\r\n')
    if (end === -1) {
      if (this.#pending.length > MAX_HEAD_BYTES) throw badAnswer('a line is too long')
      return undefined
    }
    const line = this.#pending.toString('latin1', 0, end)
    this.#pending = this.#pending.subarray(end + 2)
    return line
  }

  #readHead(head: string): void {
    const lines = head.split('\r\n')
    const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '')
    if (!statusLine) throw badAnswer('the status line')
    const status = Number(statusLine[2])
    const fields = new Map<string, string[]>()
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon <= 0 || !HEADER_NAME.test(line.slice(0, colon))) throw badAnswer('a header line')
      const name = line.slice(0, colon).toLowerCase()
      fields.set(name, [...(fields.get(name) ?? []), line.slice(colon + 1).trim()])
    }
    if (status >= 100 && status < 200) {
      // An interim answer (100 Continue, 103 Early Hints): the real one follows. 101 would
      // switch protocols, which the client never asks for.
      if (status === 101) throw badAnswer('101 Switching Protocols')
      return
    }
    this.status = status
    this.date = fields.get('date')?.[0]
    const tokens = (name: string) =>
      (fields.get(name) ?? [])
        .flatMap((v) => v.split(','))
        .map((t) => t.trim().toLowerCase())
        .filter(Boolean)
    const connection = tokens('connection')
    if (connection.includes('close') || (statusLine[1] === '0' && !connection.includes('keep-alive'))) this.reusable = false
    const codings = tokens('transfer-encoding')
    const lengths = fields.get('content-length')
    if (status === 204 || status === 304) this.#state = 'complete'
    else if (codings.length) {
      if (codings[codings.length - 1] === 'chunked') this.#state = 'chunk-size'
      else {
        this.#state = 'until-close'
        this.reusable = false
      }
    } else if (lengths) {
      const distinct = new Set(lengths.flatMap((v) => v.split(',')).map((v) => v.trim()))
      const [only] = distinct
      if (distinct.size !== 1 || !only || !/^\d{1,15}$/.test(only)) throw badAnswer('Content-Length')
      this.#remaining = Number(only)
      this.#state = this.#remaining === 0 ? 'complete' : 'length'
    } else {
      this.#state = 'until-close'
      this.reusable = false
    }
  }
}
