import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { dialReason, isNonPublicIp, parseOrigins } from '../../core/origins.ts'

const peer = '/p2p/12D3KooWD2sxGYDXC87bVNEA7n1yQTZZmsnKVUFoaVvkr85smwKB'

describe('origins', () => {
  it('keeps public multiaddrs and drops unparseable ones with the reason', () => {
    const { origins, dropped } = parseOrigins(
      [
        `/ip4/8.8.8.8/tcp/4001${peer}`,
        `/dns4/example.com/tcp/443/wss${peer}`,
        'not-a-multiaddr',
        '/ip4/300.1.1.1/tcp/1',
      ],
      { allowPrivate: false },
    )
    expect(origins).toEqual([`/ip4/8.8.8.8/tcp/4001${peer}`, `/dns4/example.com/tcp/443/wss${peer}`])
    expect(dropped.map((d) => d.origin)).toEqual(['not-a-multiaddr', '/ip4/300.1.1.1/tcp/1'])
    expect(dropped[0]?.reason).toMatch(/^not a multiaddr/)
  })

  it.each([
    '/ip4/127.0.0.1/tcp/4001',
    '/ip4/10.1.2.3/tcp/4001',
    '/ip4/172.20.0.1/udp/4001/quic-v1',
    '/ip4/192.168.1.1/tcp/4001',
    '/ip4/169.254.169.254/tcp/80',
    '/ip4/100.64.0.1/tcp/4001',
    '/ip4/0.0.0.0/tcp/4001',
    '/ip6/::1/tcp/4001',
    '/ip6/fe80::1/tcp/4001',
    '/ip6/fd00::1/tcp/4001',
    '/ip6/::ffff:10.0.0.1/tcp/4001',
    '/dns4/localhost/tcp/4001',
    '/dns/metadata.google.internal/tcp/80',
  ])('drops %s outside local mode, keeps it in local mode', (addr) => {
    expect(parseOrigins([addr], { allowPrivate: false }).origins).toEqual([])
    expect(parseOrigins([addr], { allowPrivate: true }).origins).toEqual([addr])
  })

  it.each([
    // Past the first component.
    `/ip6zone/eth0/ip6/fe80::1/tcp/4001${peer}`,
    `/ip4/8.8.8.8/tcp/4001${peer}/p2p-circuit/ip4/127.0.0.1/tcp/4001`,
    // Addresses spelt as names are dialled as those addresses.
    '/dns4/127.0.0.1/tcp/4001',
    '/dns6/::1/tcp/4001',
    '/dns/10.0.0.1/tcp/4001',
    '/dnsaddr/169.254.169.254',
    // Names that only mean this host or its network.
    '/dns4/localhost./tcp/4001',
    '/dnsaddr/localhost',
    '/dns4/metadata/tcp/80',
    // Site-local, and IPv4 embedded in IPv6: mapped (hex), NAT64, 6to4, translated; Teredo.
    '/ip6/fec0::1/tcp/4001',
    '/ip6/::ffff:7f00:1/tcp/4001',
    '/ip6/64:ff9b::7f00:1/tcp/4001',
    '/ip6/64:ff9b::a9fe:a9fe/tcp/80',
    '/ip6/64:ff9b::c0a8:101/tcp/4001',
    '/ip6/2002:a00:1::1/tcp/4001',
    '/ip6/::ffff:0:a00:1/tcp/4001',
    '/ip6/2001:0:4136:e378:8000:63bf:3fff:fdd2/tcp/4001',
    '/ip4/255.255.255.255/tcp/4001',
  ])('drops %s, which reaches a non-public host past the first check, outside local mode', (addr) => {
    const { origins, dropped } = parseOrigins([addr], { allowPrivate: false })
    expect(origins).toEqual([])
    expect(dropped[0]?.reason).toBeTruthy()
    expect(parseOrigins([addr], { allowPrivate: true }).origins).toEqual([addr])
  })

  it.each([
    `/ip6/64:ff9b::808:808/tcp/4001${peer}`,
    `/ip6/2606:4700:4700::1111/udp/4001/quic-v1${peer}`,
    `/dnsaddr/bootstrap.libp2p.io${peer}`,
    `/dns4/example.com/tcp/443/tls/sni/example.com/ws${peer}`,
    `/dns4/8.8.4.4/tcp/4001${peer}`,
    peer,
  ])('keeps %s (a name or peer is checked where it is dialled)', (addr) => {
    expect(parseOrigins([addr], { allowPrivate: false }).origins).toEqual([addr])
  })

  it('keeps at most 20, without duplicates', () => {
    const many = Array.from({ length: 25 }, (_, i) => `/ip4/8.8.8.${i + 1}/tcp/4001`)
    const { origins, dropped } = parseOrigins([many[0]!, ...many], { allowPrivate: false })
    expect(origins).toEqual(many.slice(0, 20))
    expect(dropped).toHaveLength(5)
  })

  it('classifies addresses', () => {
    expect(isNonPublicIp('1.1.1.1')).toBe(false)
    expect(isNonPublicIp('2606:4700::1111')).toBe(false)
    expect(isNonPublicIp('192.168.0.1')).toBe(true)
    expect(isNonPublicIp('0:0:0:0:0:ffff:7f00:0001')).toBe(true)
    expect(isNonPublicIp('64:ff9b::8.8.8.8')).toBe(false)
    expect(isNonPublicIp('64:ff9b::127.0.0.1')).toBe(true)
    expect(isNonPublicIp('fe80::1%eth0')).toBe(true)
    expect(isNonPublicIp('not an address')).toBe(true)
  })

  it('dialReason checks addresses everywhere in a dialled multiaddr, and leaves names to the resolver', () => {
    const reason = (a: string) => dialReason(multiaddr(a))
    expect(reason(`/ip4/8.8.8.8/tcp/4001${peer}`)).toBeUndefined()
    expect(reason(`/dns4/example.com/tcp/4001${peer}`)).toBeUndefined()
    expect(reason('/dns4/metadata/tcp/80')).toBeUndefined()
    expect(reason(`/dns4/127.0.0.1/tcp/4001${peer}`)).toMatch(/not a public address/)
    expect(reason(`/ip6zone/eth0/ip6/fe80::1/tcp/4001${peer}`)).toMatch(/zone/)
    expect(reason('/ip6/64:ff9b::a00:1/tcp/4001')).toMatch(/not a public address/)
  })
})
