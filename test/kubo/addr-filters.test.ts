/**
 * kubo's dial filters (docker/kubo/001-pickup-config.sh, `Swarm.AddrFilters`): they hold every non-public
 * range pickup's own origin filter knows (core/origins.ts), loopback included, as multiaddrs kubo parses; and
 * on a real kubo they work: a worker kubo configured by the script refuses to dial an origin on loopback, and
 * one configured with KUBO_ALLOW_PRIVATE_DIALS=true (local mode, the tests) dials it.
 */
import { readFileSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, describe, expect, it } from 'vitest'
import { NON_PUBLIC_IPV4, NON_PUBLIC_IPV6 } from '../../core/origins.ts'
import { KUBO_VERSION, type KuboNode, kuboBinary, startKubo } from '../helpers/kubo.ts'

const script = readFileSync(new URL('../../docker/kubo/001-pickup-config.sh', import.meta.url), 'utf8')
const json = /ipfs config --json Swarm\.AddrFilters '(\[[^']*\S[^']*\])'/.exec(script)?.[1]

describe('kubo Swarm.AddrFilters in the image script', () => {
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

describe.skipIf(!kuboBinary)(`kubo ${KUBO_VERSION} with the image's dial filters`, () => {
  const nodes: KuboNode[] = []
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it('refuses to dial an origin on loopback, unless told private dials are allowed', async () => {
    const [origin, guarded, open] = await Promise.all([
      startKubo(),
      startKubo({ pickupConfig: true, env: { KUBO_ALLOW_PRIVATE_DIALS: 'false' } }),
      startKubo({ pickupConfig: true }),
    ])
    nodes.push(origin, guarded, open)
    const [addr] = await origin.multiaddrs()
    expect(JSON.parse(await guarded.cli(['config', 'Swarm.AddrFilters']))).toContain(
      '/ip4/127.0.0.0/ipcidr/8',
    )
    await expect(guarded.cli(['swarm', 'connect', addr!])).rejects.toThrow()
    expect(await guarded.cli(['swarm', 'peers'])).not.toContain(origin.peerId)
    await open.cli(['swarm', 'connect', addr!])
    expect(await open.cli(['swarm', 'peers'])).toContain(origin.peerId)
  })
})
