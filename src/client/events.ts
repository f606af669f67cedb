// A reader of server-sent events (the text/event-stream format of the HTML standard, §9.2):
// bytes in, `(event, data)` out. Only what the Coffer API sends is needed — `event`, `data`,
// comments, `retry` — but any field order, CRLF/LF/CR line ends and multi-line data are read.

/** Reads an event stream; `onEvent` is called with each complete event's name and data. */
export class EventStreamReader {
  #pending = ''
  #event = ''
  #data: string[] = []
  readonly #decoder = new TextDecoder('utf-8')
  readonly #onEvent: (event: string, data: string) => void

  constructor(onEvent: (event: string, data: string) => void) {
    this.#onEvent = onEvent
  }

  push(chunk: Uint8Array): void {
    this.#pending += this.#decoder.decode(chunk, { stream: true })
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.#pending)
      // A lone CR at the end may be the first half of a CRLF: wait for the next chunk.
      if (!m || (m[0] === '\r' && m.index === this.#pending.length - 1)) return
      const line = this.#pending.slice(0, m.index)
      this.#pending = this.#pending.slice(m.index + m[0].length)
      this.#line(line)
    }
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length) this.#onEvent(this.#event || 'message', this.#data.join('\n'))
      this.#event = ''
      this.#data = []
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.#event = value
    else if (field === 'data') this.#data.push(value)
  }
}
