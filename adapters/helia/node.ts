/**
 * A Helia node with a minimal libp2p stack: TCP, noise, yamux, identify and bitswap. On the public IPFS
 * network (`publicNetwork`) it also bootstraps and joins the DHT (client until AutoNAT finds it dialable);
 * otherwise it makes no connection it was not told to make: no bootstrap, no DHT, no mDNS, no delegated
 * HTTP routing, no trustless gateways.
 */
import { type LookupAddress, type LookupAllOptions, lookup } from 'node:dns'
import type { LookupFunction } from 'node:net'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { type HeliaWithLibp2p, withLibp2pLight } from '@helia/libp2p'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { autoNAT } from '@libp2p/autonat'
import { bootstrap } from '@libp2p/bootstrap'
import { identify, identifyPush } from '@libp2p/identify'
import type { ServiceMap } from '@libp2p/interface'
import { kadDHT } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { type TCPSocketOptions, tcp } from '@libp2p/tcp'
import type { Multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { FsBlockstore } from 'blockstore-fs'
import { MemoryDatastore } from 'datastore-core'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight } from 'helia'
import type { Blockstore } from 'interface-blockstore'
import type { Datastore } from 'interface-datastore'
import * as json from 'multiformats/codecs/json'
import { sha512 } from 'multiformats/hashes/sha2'
import { dialReason, isNonPublicIp } from '../../core/origins.ts'
import type { Logger } from '../../core/ports.ts'

export type HeliaNode = HeliaWithLibp2p<ServiceMap>

/**
 * The most one yamux stream may buffer before the protocol reading it has attached (libp2p's default, 4 MiB,
 * resets the stream beyond it). A bitswap peer sends every block it holds for our wants on one stream, and
 * libp2p hands an inbound stream to bitswap only after protocol negotiation and a peer-store write, while
 * yamux keeps granting the sender window: with 1 MiB blocks and 32 wants, 32 MiB can arrive first. A reset
 * stream's blocks are lost (the sender counts them as sent), so the bound is sized for that, not for one
 * message. See scripts/repro-bitswap-lost-blocks.ts.
 */
export const STREAM_READ_BUFFER_BYTES = 64 * 1024 * 1024

export interface HeliaNodeOptions {
  /** Blocks and the node's key persist under this directory; in memory when absent. */
  dataDir?: string
  /** Default `['/ip4/127.0.0.1/tcp/0']`. */
  listen?: string[]
  /** Bootstrap and DHT routing on the public IPFS network. Default false: no outside connection is tried. */
  publicNetwork?: boolean
  /**
   * Whether loopback, private and link-local addresses may be dialled. Default: true off the public network
   * (local runs, tests), false on it, so that origins handed in by clients cannot make the worker dial
   * into its own network. When false, the connection gater refuses every multiaddr with a non-public
   * address anywhere in it (core/origins.ts `dialReason`), after libp2p resolved `/dnsaddr/` and looked up
   * what a bare `/p2p/` peer advertises; and TCP dials resolve `/dns*` names through a lookup that keeps only
   * public addresses, so the address checked is the address connected to.
   */
  allowPrivateDials?: boolean
  log?: Logger
}

/** The public network's bootstrap peers (as kubo's and Helia's defaults). */
export const PUBLIC_BOOTSTRAP_PEERS = [
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb',
  '/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt',
  '/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8',
  '/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ',
]

/** Creates and starts the node. Stop it with `helia.stop()`. */
export async function createHeliaNode(opts: HeliaNodeOptions = {}): Promise<HeliaNode> {
  const publicNetwork = opts.publicNetwork ?? false
  const allowPrivateDials = opts.allowPrivateDials ?? !publicNetwork
  const started = Date.now()

  let blockstore: Blockstore
  let datastore: Datastore
  if (opts.dataDir) {
    const fsBlockstore = new FsBlockstore(join(opts.dataDir, 'blocks'))
    const fsDatastore = new FsDatastore(join(opts.dataDir, 'datastore'))
    await fsBlockstore.open()
    await fsDatastore.open()
    blockstore = fsBlockstore
    datastore = fsDatastore
  } else {
    blockstore = new MemoryBlockstore()
    datastore = new MemoryDatastore()
  }

  const light = createHeliaLight({
    blockstore,
    datastore,
    // createHeliaLight knows dag-pb, raw, sha2-256 and identity only; these are what createHelia adds.
    codecs: [dagCbor, dagJson, json],
    hashers: [sha512],
  })
  const guardedDial: TCPSocketOptions & { lookup: LookupFunction } = { lookup: publicOnlyLookup }
  const base = {
    addresses: { listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(allowPrivateDials ? {} : { dialOpts: guardedDial })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: STREAM_READ_BUFFER_BYTES } })],
    // The peer store (and the DHT's records) in memory, even when blocks and the key persist: libp2p writes
    // the peer store before it hands each inbound stream to its protocol, and a write to disk queued behind
    // block writes held bitswap's streams unread for hundreds of ms while blocks kept arriving.
    datastore: new MemoryDatastore(),
    connectionGater: {
      denyDialMultiaddr: (ma: Multiaddr) => {
        if (allowPrivateDials) return false
        const reason = dialReason(ma)
        if (reason) opts.log?.debug({ multiaddr: ma.toString(), reason }, 'dial denied')
        return reason !== undefined
      },
    },
  }
  const helia: HeliaNode = publicNetwork
    ? withBitswap(
        withLibp2pLight(light, {
          ...base,
          peerDiscovery: [bootstrap({ list: PUBLIC_BOOTSTRAP_PEERS })],
          services: {
            identify: identify(),
            identifyPush: identifyPush(),
            ping: ping(),
            autoNAT: autoNAT(),
            dht: kadDHT(),
          },
        }),
      )
    : withBitswap(withLibp2pLight(light, { ...base, services: { identify: identify() } }))

  await helia.start()
  opts.log?.info(
    {
      peerId: helia.libp2p.peerId.toString(),
      multiaddrs: helia.libp2p.getMultiaddrs().map((ma) => ma.toString()),
      publicNetwork,
      allowPrivateDials,
      persistent: opts.dataDir !== undefined,
      ms: Date.now() - started,
    },
    'helia node started',
  )
  return helia
}

/** Refused by publicOnlyLookup: a name that resolves to no public address. */
export class NonPublicNameError extends Error {
  override readonly name = 'NonPublicNameError'
  readonly code = 'ENOTFOUND'
  constructor(hostname: string) {
    super(`${hostname} resolves to no public address: not dialled`)
  }
}

/**
 * `net.connect`'s lookup for a node that may not dial private addresses: the system resolver's answer
 * without its non-public addresses (core/origins.ts), so a name that resolves to loopback, a private network
 * or a link-local address is not dialled, and the address connected to is the address checked.
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  const all: LookupAllOptions = { ...options, all: true }
  lookup(hostname, all, (err, addresses: LookupAddress[]) => {
    if (err) {
      callback(err, '', 0)
      return
    }
    const usable = addresses.filter((a) => !isNonPublicIp(a.address))
    if (usable.length === 0) {
      callback(new NonPublicNameError(hostname), '', 0)
      return
    }
    if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable)
    else callback(null, usable[0]!.address, usable[0]!.family)
  })
}
