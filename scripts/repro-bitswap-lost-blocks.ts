/**
 * Minimal reproduction of an upstream fault (Helia 7 / @helia/bitswap 4 / libp2p 3 / @chainsafe/libp2p-yamux 8)
 * that stalled 1 MiB-block fetches for good (issue 16). No pickup code involved: two stock Helia nodes on
 * loopback, the origin in a child process holding N random 1 MiB raw blocks, the fetcher asking for them 32 at a
 * time (as a parallel DAG walk does) with blocks and datastore on disk (as a persistent node keeps them).
 *
 *   npx node scripts/repro-bitswap-lost-blocks.ts            # stock settings: some gets never resolve
 *   npx node scripts/repro-bitswap-lost-blocks.ts --fixed    # pickup's settings: every get resolves
 *   DEBUG='libp2p:*:error' npx node scripts/repro-bitswap-lost-blocks.ts   # shows the StreamBufferError
 *
 * What happens:
 * 1. The origin's bitswap answers the wants it has collected with all their blocks on one new stream (up to
 *    32 MiB here).
 * 2. On the fetcher, libp2p negotiates the protocol, then awaits `peerStore.merge()` (a datastore write: a file
 *    write with an on-disk datastore, queued behind the block writes in libuv's thread pool: 100-300 ms here)
 *    before it calls bitswap's handler; bitswap then awaits `stream.close()` before it attaches its 'message'
 *    listener. Meanwhile yamux grants the sender window as data arrives, not as it is read, so the data piles
 *    up in the stream's read buffer, and past `maxReadBufferLength` (4 MiB) the stream is reset
 *    (StreamBufferError).
 * 3. The origin's bitswap logs the failed send but marks those wants as sent, and forgets them 5 s later; the
 *    fetcher's bitswap sends each want to a peer once and never again (nor cancels). Those gets wait for ever.
 *
 * `--fixed` applies pickup's workaround (adapters/helia/node.ts): libp2p's datastore in memory (no disk write
 * before a stream reaches its handler) and a 64 MiB stream read buffer. pickup also re-asks a want that goes
 * unanswered (core/reask.ts), which recovers blocks lost any other way.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { FsBlockstore } from 'blockstore-fs'
import { MemoryDatastore } from 'datastore-core'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

const BLOCKS = Number(process.env.BLOCKS ?? 256)
const CONCURRENCY = 32
const WAIT_MS = 20_000
const fixed = process.argv.includes('--fixed')

async function node(dir?: string) {
  const blockstore = dir ? new FsBlockstore(join(dir, 'blocks')) : new MemoryBlockstore()
  const datastore = dir ? new FsDatastore(join(dir, 'datastore')) : new MemoryDatastore()
  if (blockstore instanceof FsBlockstore) await blockstore.open()
  if (datastore instanceof FsDatastore) await datastore.open()
  const helia = withBitswap(
    withLibp2pLight(createHeliaLight({ blockstore, datastore }), {
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux(fixed ? { streamOptions: { maxReadBufferLength: 64 * 1024 * 1024 } } : {})],
      services: { identify: identify() },
      ...(fixed ? { datastore: new MemoryDatastore() } : {}),
    }),
  )
  await helia.start()
  return helia
}

if (process.argv[2] === 'origin') {
  const origin = await node()
  const cids: string[] = []
  for (let i = 0; i < BLOCKS; i++) {
    const bytes = randomBytes(1024 * 1024)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await origin.blockstore.put(cid, bytes)
    cids.push(cid.toString())
  }
  console.log(JSON.stringify({ cids, addr: origin.libp2p.getMultiaddrs()[0]?.toString() }))
} else {
  const child = spawn(process.execPath, [import.meta.filename, 'origin', ...process.argv.slice(2)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve) => {
    createInterface({ input: child.stdout }).once('line', resolve)
  })
  const { cids, addr } = JSON.parse(line) as { cids: string[]; addr: string }
  const dir = await mkdtemp(join(tmpdir(), 'repro-bitswap-'))
  const fetcher = await node(dir)
  try {
    let slowestMergeMs = 0
    const peerStore = fetcher.libp2p.peerStore
    const merge = peerStore.merge.bind(peerStore)
    peerStore.merge = async (...args: Parameters<typeof merge>) => {
      const started = performance.now()
      try {
        return await merge(...args)
      } finally {
        slowestMergeMs = Math.max(slowestMergeMs, performance.now() - started)
      }
    }
    await fetcher.libp2p.dial(multiaddr(addr))
    const signal = AbortSignal.timeout(WAIT_MS)
    const queue = [...cids]
    let received = 0
    const started = performance.now()
    await Promise.allSettled(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let cid = queue.shift(); cid; cid = queue.shift()) {
          for await (const _ of fetcher.blockstore.get(CID.parse(cid), { signal })) {
            // the block's bytes
          }
          received++
        }
      }),
    )
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    console.log(
      `${fixed ? 'pickup settings' : 'stock settings'}: ${received} of ${cids.length} blocks in ${seconds} s` +
        ` (gave up after ${WAIT_MS / 1000} s); slowest peerStore.merge ${slowestMergeMs.toFixed(0)} ms`,
    )
    process.exitCode = received === cids.length ? 0 : 1
  } finally {
    child.kill()
    await fetcher.stop()
    await rm(dir, { recursive: true, force: true })
  }
}
