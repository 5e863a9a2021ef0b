import { describe, expect, it } from 'vitest'
import { isNonPublicIp, parseOrigins } from '../../core/origins.ts'

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
  })
})
