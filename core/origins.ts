/**
 * Origins are multiaddrs a requester names as places to fetch its content from. pickup dials them, so a
 * client must not be able to steer it into its own network: outside local mode, loopback, private,
 * link-local and other non-public addresses are dropped, as are names that only mean this host.
 */
import { BlockList, isIPv4 } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_ORIGINS } from './pin.ts'

const nonPublic = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  nonPublic.addSubnet(net, bits, 'ipv4')
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  nonPublic.addSubnet(net, bits, 'ipv6')
}

/** Whether an IP address is anything but a public unicast address. */
export function isNonPublicIp(ip: string): boolean {
  if (isIPv4(ip)) return nonPublic.check(ip, 'ipv4')
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped) return nonPublic.check(mapped[1]!, 'ipv4')
  return nonPublic.check(ip, 'ipv6')
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
  const first = components[0]!
  if ((first.name === 'ip4' || first.name === 'ip6') && first.value && isNonPublicIp(first.value)) {
    return 'not a public address'
  }
  if (first.name.startsWith('dns') && first.value && LOCAL_NAMES.test(first.value)) return 'a local name'
  if (first.name === 'unix') return 'a local socket'
  return undefined
}
