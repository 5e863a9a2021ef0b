/**
 * The embedded Helia node refuses to dial private addresses when it may not (outside local mode), whatever
 * form the address takes: an origin's multiaddr, a name that resolves to loopback, an address spelt as a
 * DNS name, or what a peer advertises for a bare `/p2p/<id>` origin. Real Helia nodes on loopback: an
 * origin listening on every interface, a guarded node that must refuse, and a node allowed private dials
 * that dials the very same address, so each refusal is the guard's and not an unreachable address.
 */
import { lookup } from 'node:dns/promises'
import { hostname } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createHeliaNode, type HeliaNode } from '../../adapters/helia/node.ts'
import { isNonPublicIp } from '../../core/origins.ts'

let origin: HeliaNode
let guarded: HeliaNode
let allowed: HeliaNode
let port: number
let id: string

beforeAll(async () => {
  ;[origin, guarded, allowed] = await Promise.all([
    createHeliaNode({ listen: ['/ip4/0.0.0.0/tcp/0'], allowPrivateDials: true }),
    createHeliaNode({ allowPrivateDials: false }),
    createHeliaNode({ allowPrivateDials: true }),
  ])
  const tcp = origin.libp2p
    .getMultiaddrs()
    .map((ma) => ma.getComponents())
    .find((c) => c[0]?.name === 'ip4' && c[1]?.name === 'tcp')
  port = Number(tcp?.[1]?.value)
  id = origin.libp2p.peerId.toString()
})
afterAll(async () => {
  await Promise.all([origin?.stop(), guarded?.stop(), allowed?.stop()])
})
afterEach(async () => {
  // A dial to a peer already connected returns that connection without dialling the address.
  await Promise.all([
    guarded.libp2p.hangUp(origin.libp2p.peerId),
    allowed.libp2p.hangUp(origin.libp2p.peerId),
  ])
})

/** Whether the dial failed (the value itself, a connection, does not print). */
async function refused(dial: Promise<unknown>): Promise<boolean> {
  return dial.then(
    () => false,
    () => true,
  )
}

async function expectRefusedThenDialled(addr: string): Promise<void> {
  expect(await refused(guarded.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) }))).toBe(
    true,
  )
  expect(guarded.libp2p.getConnections(origin.libp2p.peerId)).toEqual([])
  const conn = await allowed.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
  expect(conn.remotePeer.equals(origin.libp2p.peerId)).toBe(true)
}

describe('a node that may not dial private addresses', () => {
  it('refuses a loopback address', async () => {
    await expectRefusedThenDialled(`/ip4/127.0.0.1/tcp/${port}/p2p/${id}`)
  })

  it('refuses an address spelt as a DNS name', async () => {
    await expectRefusedThenDialled(`/dns4/127.0.0.1/tcp/${port}/p2p/${id}`)
  })

  it('refuses a name that resolves to this host, checking what it resolved to', async () => {
    // The machine's own name resolves to one of its addresses (/etc/hosts): loopback or a private one.
    const name = hostname()
    const resolved = await lookup(name, { all: true })
    expect(resolved.length, `${name} resolves`).toBeGreaterThan(0)
    expect(
      resolved.every((a) => isNonPublicIp(a.address)),
      `${name} resolves to non-public addresses`,
    ).toBe(true)
    await expectRefusedThenDialled(`/dns4/${name}/tcp/${port}/p2p/${id}`)
  })

  it('refuses what a peer advertises for a bare /p2p/ origin, as the peer store hands it over', async () => {
    const peer = origin.libp2p.peerId
    const advertised = [multiaddr(`/dns4/127.0.0.1/tcp/${port}`)]
    await guarded.libp2p.peerStore.merge(peer, { multiaddrs: advertised })
    await allowed.libp2p.peerStore.merge(peer, { multiaddrs: advertised })
    expect(await refused(guarded.libp2p.dial(peer, { signal: AbortSignal.timeout(10_000) }))).toBe(true)
    expect(guarded.libp2p.getConnections(peer)).toEqual([])
    const conn = await allowed.libp2p.dial(peer, { signal: AbortSignal.timeout(10_000) })
    expect(conn.remotePeer.equals(peer)).toBe(true)
  })
})
