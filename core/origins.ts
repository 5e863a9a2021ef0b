/**
 * Origins are multiaddrs a requester names as places to fetch its content from. pickup dials them, so a
 * client must not be able to steer it into its own network: outside local mode, loopback, private,
 * link-local and other non-public addresses are dropped, as are names that only mean this host.
 *
 * Every component is checked, not only the first (`/ip6zone/x/ip6/fe80::1`, an address spelt as a DNS name,
 * IPv4 addresses embedded in IPv6 ones: mapped, NAT64, 6to4). This is a first, cheap filter: a name can
 * resolve to anything, and a `/p2p/` origin is dialled at whatever its peer advertises. The diallers enforce
 * the rule where the resolved address is known: the embedded Helia node's connection gater and DNS lookup
 * (adapters/helia/node.ts, with `dialReason` below), kubo's `Swarm.AddrFilters`
 * (docker/kubo/001-pickup-config.sh).
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_ORIGINS } from './pin.ts'

/** IPv4 ranges that are not public unicast (RFC 6890 and friends). */
export const NON_PUBLIC_IPV4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
]

/** IPv6 ranges that are not public unicast, or tunnel to somewhere pickup cannot check (Teredo). */
export const NON_PUBLIC_IPV6: ReadonlyArray<readonly [string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
]

const nonPublic = new BlockList()
for (const [net, bits] of NON_PUBLIC_IPV4) {
  nonPublic.addSubnet(net, bits, 'ipv4')
  // The same range embedded in IPv6: mapped, compatible, translated, NAT64 (64:ff9b::/96), 6to4 (2002::/16).
  const [a, b, c, d] = net.split('.').map(Number) as [number, number, number, number]
  const hi = ((a << 8) | b).toString(16)
  const lo = ((c << 8) | d).toString(16)
  nonPublic.addSubnet(`::ffff:${hi}:${lo}`, 96 + bits, 'ipv6')
  nonPublic.addSubnet(`::${hi}:${lo}`, 96 + bits, 'ipv6')
  nonPublic.addSubnet(`::ffff:0:${hi}:${lo}`, 96 + bits, 'ipv6')
  nonPublic.addSubnet(`64:ff9b::${hi}:${lo}`, 96 + bits, 'ipv6')
  nonPublic.addSubnet(`2002:${hi}:${lo}::`, 16 + bits, 'ipv6')
}
for (const [net, bits] of NON_PUBLIC_IPV6) nonPublic.addSubnet(net, bits, 'ipv6')

/** Whether an IP address is anything but a public unicast address (what is not an address at all is not). */
export function isNonPublicIp(ip: string): boolean {
  const address = ip.replace(/%.*$/, '')
  if (isIPv4(address)) return nonPublic.check(address, 'ipv4')
  if (!isIPv6(address)) return true
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return nonPublic.check(mapped[1]!, 'ipv4')
  return nonPublic.check(address, 'ipv6')
}

const LOCAL_NAMES = /(^|\.)(localhost|local|internal|localdomain)$/i

export interface ParsedOrigins {
  /** Kept, in the order given, at most MAX_ORIGINS. */
  origins: string[]
  /** Dropped, each with why. */
  dropped: Array<{ origin: string; reason: string }>
}

/** Parses origins as multiaddrs, keeping the usable ones. Never throws: bad origins are dropped, not fatal. */
export function parseOrigins(inputs: readonly string[], opts: { allowPrivate: boolean }): ParsedOrigins {
  const origins: string[] = []
  const dropped: ParsedOrigins['dropped'] = []
  for (const input of inputs) {
    const reason = rejectReason(input, opts)
    if (reason) dropped.push({ origin: input, reason })
    else if (origins.length >= MAX_ORIGINS)
      dropped.push({ origin: input, reason: `more than ${MAX_ORIGINS}` })
    else if (!origins.includes(input)) origins.push(input)
  }
  return { origins, dropped }
}

function rejectReason(input: string, opts: { allowPrivate: boolean }): string | undefined {
  let components: Array<{ name: string; value?: string }>
  try {
    components = multiaddr(input).getComponents()
  } catch (err) {
    return `not a multiaddr: ${err instanceof Error ? err.message : String(err)}`
  }
  if (components.length === 0) return 'empty multiaddr'
  if (opts.allowPrivate) return undefined
  return nonPublicReason(components, { names: true })
}

/**
 * Why dialling a multiaddr (parsed into its components) may reach a host that is not public, or undefined.
 * Addresses are checked wherever they appear, DNS names that are addresses as those addresses. With
 * `names`, names that can only mean this host or its own network (`localhost`, `*.internal`, single labels
 * completed by search domains) count too; a dialler that checks what names resolve to needs not guess.
 */
export function nonPublicReason(
  components: ReadonlyArray<{ name: string; value?: string }>,
  opts: { names: boolean },
): string | undefined {
  for (const { name, value = '' } of components) {
    if (name === 'ip4' || name === 'ip6') {
      if (isNonPublicIp(value)) return `${value} is not a public address`
    } else if (name === 'ip6zone') {
      return 'an IPv6 zone (a link-local scope)'
    } else if (name === 'unix') {
      return 'a local socket'
    } else if (name === 'dns' || name === 'dns4' || name === 'dns6' || name === 'dnsaddr') {
      const host = value.replace(/\.$/, '')
      if (isIP(host) !== 0) {
        if (isNonPublicIp(host)) return `${host} is not a public address`
      } else if (opts.names && LOCAL_NAMES.test(host)) {
        return 'a local name'
      } else if (opts.names && !host.includes('.')) {
        return 'a single-label name (completed by local search domains)'
      }
    }
  }
  return undefined
}

/** What a dialler refuses when private dials are not allowed: see nonPublicReason. */
export function dialReason(ma: {
  getComponents(): Array<{ name: string; value?: string }>
}): string | undefined {
  return nonPublicReason(ma.getComponents(), { names: false })
}
