/**
 * kubo's dial filters (docker/kubo/001-pickup-config.sh, `Swarm.AddrFilters`) hold every non-public range
 * pickup's own origin filter knows (core/origins.ts), loopback included, as multiaddrs kubo can parse. kubo
 * itself cannot run here, so this reads the script; the filter's effect is go-libp2p's.
 */
import { readFileSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { NON_PUBLIC_IPV4, NON_PUBLIC_IPV6 } from '../../core/origins.ts'

const script = readFileSync(new URL('../../docker/kubo/001-pickup-config.sh', import.meta.url), 'utf8')
const json = /ipfs config --json Swarm\.AddrFilters '(\[[^']*\])'/.exec(script)?.[1]

describe('kubo Swarm.AddrFilters', () => {
  it('lists every non-public range of core/origins.ts, loopback included, as multiaddrs', () => {
    expect(json, 'the script sets Swarm.AddrFilters').toBeDefined()
    const filters = JSON.parse(json!) as string[]
    for (const f of filters) expect(() => multiaddr(f), f).not.toThrow()
    for (const [net, bits] of NON_PUBLIC_IPV4) expect(filters).toContain(`/ip4/${net}/ipcidr/${bits}`)
    for (const [net, bits] of NON_PUBLIC_IPV6) expect(filters).toContain(`/ip6/${net}/ipcidr/${bits}`)
    expect(filters).toContain('/ip4/127.0.0.0/ipcidr/8')
    expect(filters).toContain('/ip6/::1/ipcidr/128')
  })
})
