import { BlockList, isIP, isIPv4 } from 'node:net'

// Which network addresses Coffer may connect to when a user typed the destination (a webhook
// endpoint, an OAuth provider, a connection test). Everything that is not the public internet
// is refused — loopback, private and carrier-grade NAT ranges, link-local (the cloud metadata
// service at 169.254.169.254 among them), multicast, reserved and documentation ranges, and
// the IPv6 forms that smuggle an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) — unless the
// operator lists the range in COFFER_OUTBOUND_ALLOW. The check runs on the address a
// connection will actually use (after name resolution), never on the name.

/** Why an address is refused: the label names the range, for the error and the audit. */
export interface Refusal {
  readonly address: string
  readonly range: string
}

// [cidr, label]; IPv4 ranges per RFC 6890's special-purpose registry, plus the
// cloud-metadata addresses that live outside it.
const IPV4_REFUSED: ReadonlyArray<readonly [string, number, string]> = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
]

const IPV6_REFUSED: ReadonlyArray<readonly [string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::ffff:0:0', 96, 'IPv4-mapped'],
  ['::', 96, 'IPv4-compatible'],
  ['64:ff9b::', 96, 'NAT64'],
  ['64:ff9b:1::', 48, 'NAT64'],
  ['100::', 64, 'discard'],
  ['2001::', 32, 'Teredo'],
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, '6to4'],
  ['fc00::', 7, 'unique local (private)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
]

function rangesOf(entries: ReadonlyArray<readonly [string, number, string]>, family: 'ipv4' | 'ipv6') {
  return entries.map(([net, bits, label]) => {
    const list = new BlockList()
    list.addSubnet(net, bits, family)
    return { list, label, family }
  })
}

const REFUSED = [...rangesOf(IPV4_REFUSED, 'ipv4'), ...rangesOf(IPV6_REFUSED, 'ipv6')]
const MAPPED = new BlockList()
MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6')

/** One entry of COFFER_OUTBOUND_ALLOW: an address or a CIDR range, as written. */
export interface AllowEntry {
  readonly address: string
  readonly bits: number
  readonly family: 'ipv4' | 'ipv6'
}

/**
 * Parses COFFER_OUTBOUND_ALLOW (comma-separated addresses and CIDR ranges, canonical forms
 * only); returns a message for the first bad entry instead of throwing, so config.ts can name
 * the setting.
 */
export function parseAllowList(raw: string | undefined): AllowEntry[] | string {
  if (raw === undefined || raw.trim() === '') return []
  const out: AllowEntry[] = []
  for (const e of raw.split(',').map((s) => s.trim())) {
    if (e === '') continue
    const [addr = '', bits, extra] = e.split('/')
    const family = isIP(addr)
    const max = family === 4 ? 32 : 128
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max)))
      return `"${e.slice(0, 60)}" is not an IP address or a CIDR range (a comma-separated list, e.g. 127.0.0.1/32,10.1.0.0/16)`
    out.push({ address: addr, bits: bits === undefined ? max : Number(bits), family: family === 4 ? 'ipv4' : 'ipv6' })
  }
  return out
}

/** The policy: the refused ranges, less what the operator allowed. */
export class AddressPolicy {
  readonly #allow: BlockList
  readonly #allowed: readonly AllowEntry[]

  constructor(allow: readonly AllowEntry[] = []) {
    this.#allowed = allow
    this.#allow = new BlockList()
    for (const a of allow) this.#allow.addSubnet(a.address, a.bits, a.family)
  }

  /** The allow-list as configured (for the start-up log and docs). */
  get allowed(): readonly AllowEntry[] {
    return this.#allowed
  }

  /** Whether the operator's allow-list names `address` (a canonical IP literal). */
  allows(address: string): boolean {
    const family = isIP(address)
    if (family === 0) return false
    return this.#allow.check(address, family === 4 ? 'ipv4' : 'ipv6')
  }

  /**
   * Why a connection to `address` (an IP literal in canonical form, as a resolver returns it)
   * is refused, or undefined when it may go ahead.
   */
  refusal(address: string): Refusal | undefined {
    const family = isIP(address)
    if (family === 0) return { address, range: 'not an IP address' }
    const type = family === 4 ? 'ipv4' : 'ipv6'
    // @NOTE BlockList matches an IPv4 rule against the IPv4-mapped IPv6 form of the address
    // too: a mapped address is refused before the allow-list is consulted, so allowing
    // 127.0.0.1 never opens ::ffff:127.0.0.1. Nothing legitimate is reached that way.
    if (type === 'ipv6' && MAPPED.check(address, 'ipv6')) return { address, range: 'IPv4-mapped' }
    if (this.#allow.check(address, type)) return undefined
    for (const r of REFUSED) if (r.family === type && r.list.check(address, type)) return { address, range: r.label }
    return undefined
  }
}

/**
 * The host of a URL as the user wrote it (before WHATWG URL normalisation), lower-cased,
 * without brackets; undefined when the URL has no authority.
 */
export function writtenHost(url: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url.trim())
  if (!m) return undefined
  const authority = m[1]!.slice(m[1]!.lastIndexOf('@') + 1)
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']')).toLowerCase()
  const colon = authority.lastIndexOf(':')
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase()
}

/**
 * Whether a written host is an IPv4 address in a form other than dotted-decimal with four
 * parts — `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` — which URL parsers accept and turn
 * into another address than a reader sees. Such hosts are refused outright.
 */
export function isNonCanonicalIpv4(written: string, parsedHostname: string): boolean {
  if (isIPv4(parsedHostname)) return written !== parsedHostname
  // Hosts of other schemes (postgres://) are not normalised by URL parsers, but the system
  // resolver (inet_aton) still reads `0x7f.1` or `2130706433` as an address.
  return numericParts(parsedHostname) && !isIPv4(parsedHostname)
}

/** Whether every dot-separated part of a host is a number (decimal, octal or hex), as inet_aton reads them. */
function numericParts(host: string): boolean {
  const parts = host.replace(/\.$/, '').split('.')
  return parts.length >= 1 && parts.length <= 4 && parts.every((p) => /^(0x[0-9a-f]*|[0-9]+)$/i.test(p))
}
