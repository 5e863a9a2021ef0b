/**
 * An in-memory BlockSource for core tests: blocks from a map; a block it does not hold is never found, like
 * bitswap waiting for a provider, until the signal aborts.
 */
import type { CID } from 'multiformats/cid'
import { blockKey } from '../../core/links.ts'
import type { BlockSource } from '../../core/ports.ts'
import type { Block } from '../fixtures/dags.ts'

export interface MemoryBlockSource extends BlockSource {
  add(blocks: Iterable<Block>): void
  connected: string[][]
  gets: number
}

export function createMemoryBlockSource(blocks: Iterable<Block> = []): MemoryBlockSource {
  const map = new Map<string, Uint8Array>()
  const source: MemoryBlockSource = {
    connected: [],
    gets: 0,
    add(more) {
      for (const b of more) map.set(blockKey(b.cid), b.bytes)
    },
    async connect(addrs) {
      source.connected.push([...addrs])
    },
    async get(cid: CID, opts) {
      source.gets++
      const bytes = map.get(blockKey(cid))
      if (bytes) return bytes
      return new Promise((_, reject) => {
        const signal = opts?.signal
        if (!signal) return
        if (signal.aborted) return reject(signal.reason)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
    },
    async multiaddrs() {
      return ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample']
    },
  }
  source.add(blocks)
  return source
}
