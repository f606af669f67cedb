import { createSocket, type Socket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { isIPv4 } from 'node:net'

// A real DNS server on loopback (UDP), answering A and AAAA queries from a table the test
// sets — so a test can make a name resolve to 10.0.0.1 or change its answer between two
// queries (DNS rebinding) without touching the machine's resolver.

/** What a name resolves to; a function is asked on every query (its call count is the query count). */
export type Answer = readonly string[] | (() => readonly string[])

export interface DnsServer {
  readonly port: number
  /** Sets (or replaces) the answer for a name (lower-case, without the trailing dot). */
  set(name: string, answer: Answer): void
  /** Queries received per name. */
  readonly queries: Map<string, number>
  /** A resolver asking only this server: every address of a name, A and AAAA. */
  resolve(host: string): Promise<Array<{ address: string; family: number }>>
  close(): Promise<void>
}

function readName(msg: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = []
  let i = offset
  while (msg[i]! !== 0) {
    const len = msg[i]!
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'))
    i += 1 + len
  }
  return { name: labels.join('.').toLowerCase(), next: i + 1 }
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::')
  const parts = (s: string) => (s === '' ? [] : s.split(':'))
  const h = parts(head)
  const t = tail === undefined ? [] : parts(tail)
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2)
  return out
}

export async function startDnsServer(): Promise<DnsServer> {
  const table = new Map<string, Answer>()
  const queries = new Map<string, number>()
  const socket: Socket = createSocket('udp4')
  socket.on('message', (msg, rinfo) => {
    const { name, next } = readName(msg, 12)
    const qtype = msg.readUInt16BE(next)
    queries.set(name, (queries.get(name) ?? 0) + 1)
    const entry = table.get(name)
    const all = entry === undefined ? undefined : typeof entry === 'function' ? entry() : entry
    const wanted = (all ?? []).filter((a) => (qtype === 1 ? isIPv4(a) : qtype === 28 ? !isIPv4(a) : false))
    const header = Buffer.alloc(12)
    header.writeUInt16BE(msg.readUInt16BE(0), 0)
    header.writeUInt16BE(all === undefined ? 0x8183 : 0x8180, 2) // response, recursion; NXDOMAIN for an unknown name
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(wanted.length, 6)
    const question = msg.subarray(12, next + 4)
    const answers = wanted.map((a) => {
      const rdata = qtype === 1 ? Buffer.from(a.split('.').map(Number)) : ipv6Bytes(a)
      const rr = Buffer.alloc(12)
      rr.writeUInt16BE(0xc00c, 0) // the name: a pointer to the question's
      rr.writeUInt16BE(qtype, 2)
      rr.writeUInt16BE(1, 4) // IN
      rr.writeUInt32BE(0, 6) // TTL 0: never cached
      rr.writeUInt16BE(rdata.length, 10)
      return Buffer.concat([rr, rdata])
    })
    socket.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const port = socket.address().port
  const resolver = new Resolver({ timeout: 1000, tries: 1 })
  resolver.setServers([`127.0.0.1:${port}`])
  const family = async (f: () => Promise<string[]>) => {
    try {
      return await f()
    } catch (err) {
      if ((err as { code?: string }).code === 'ENODATA') return []
      throw err
    }
  }
  return {
    port,
    queries,
    set: (name, answer) => {
      table.set(name.toLowerCase(), answer)
    },
    async resolve(host) {
      const v4 = await family(() => resolver.resolve4(host))
      const v6 = await family(() => resolver.resolve6(host))
      return [...v4.map((address) => ({ address, family: 4 })), ...v6.map((address) => ({ address, family: 6 }))]
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}
