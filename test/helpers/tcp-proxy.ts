import net from 'node:net'

/**
 * A TCP proxy in front of a real server (PostgreSQL, Redis) that a test can cut: `cut()`
 * destroys every open connection and, until `restore()`, drops each new one at once — what
 * a network partition, a failover or a proxy restart looks like to the client.
 */
export interface TcpProxy {
  readonly port: number
  /** Connections that were open when cut, and connections refused while cut. */
  readonly stats: { cutConnections: number; refused: number; accepted: number }
  cut(): void
  restore(): void
  close(): Promise<void>
}

/** Starts a proxy on 127.0.0.1 (a free port) to `host:port`. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  const open = new Set<net.Socket>()
  const stats = { cutConnections: 0, refused: 0, accepted: 0 }
  let down = false
  const server = net.createServer((client) => {
    if (down) {
      stats.refused++
      client.destroy()
      return
    }
    stats.accepted++
    const upstream = net.connect(port, host)
    open.add(client)
    open.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('close', drop)
    upstream.on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as net.AddressInfo
  return {
    port: address.port,
    stats,
    cut() {
      down = true
      stats.cutConnections += open.size / 2
      for (const s of open) s.destroy()
      open.clear()
    },
    restore() {
      down = false
    },
    async close() {
      down = true
      for (const s of open) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
