/**
 * The Helia block source with Helia's default 1 MiB blocks between two real Helia nodes on 127.0.0.1 (issue
 * 16): blocks reach a fetcher that keeps its store on disk without a stream reset losing any, and a fetch whose
 * origin drops the connection mid-DAG completes because unanswered blocks are asked again and the origin is
 * dialled again.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHeliaBlockSource } from '../../adapters/helia/block-source.ts'
import { createHeliaNode, type HeliaNode } from '../../adapters/helia/node.ts'
import { exportCar } from '../../core/export-car.ts'
import { unixfsFile } from '../fixtures/dags.ts'
import { createTestLogger } from '../helpers/log.ts'

const MiB = 1024 * 1024
const lines: Array<{ level: string; msg?: string; obj: object }> = []
const log = createTestLogger(lines)
const FILE_BYTES = 96 * MiB
const file = await unixfsFile(FILE_BYTES, { chunkSize: MiB, maxChildren: 1024, seed: 'helia-1mib' })
let origin: HeliaNode
let originAddrs: string[]
let blocks = 0
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pickup-helia-'))
  origin = await createHeliaNode()
  for await (const b of file.blocks) {
    await origin.blockstore.put(b.cid, b.bytes)
    blocks++
  }
  originAddrs = await createHeliaBlockSource(origin, { log }).multiaddrs()
})

afterAll(async () => {
  await origin?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** Exports the file through `source`; `onBlock` sees the count of blocks so far. */
async function exportFile(
  source: ReturnType<typeof createHeliaBlockSource>,
  signal: AbortSignal,
  onBlock: (blocks: number) => void = () => {},
): Promise<number> {
  let count = 0
  for await (const _ of exportCar(file.root, source, {
    maxBytes: Number.MAX_SAFE_INTEGER,
    signal,
    onProgress: (p) => {
      count = p.blocks
      onBlock(p.blocks)
    },
  })) {
    // the CAR's bytes
  }
  return count
}

describe('Helia block source, 1 MiB blocks', () => {
  it('fetches into a node with an on-disk store without losing a block (no block needs asking again)', async () => {
    const fetcher = await createHeliaNode({ dataDir: join(dir, 'on-disk') })
    try {
      // Re-asking is off: before the fix a reset stream lost blocks for good, and re-asking would hide that.
      // A lost block now leaves the walk waiting until the signal aborts it, whatever the machine's load.
      const source = createHeliaBlockSource(fetcher, { log, reask: false })
      await source.connect(originAddrs)
      expect(await exportFile(source, AbortSignal.timeout(120_000))).toBe(blocks)
    } finally {
      await fetcher.stop()
    }
  })

  it('completes a fetch whose origin drops the connection mid-DAG', async () => {
    const fetcher = await createHeliaNode()
    try {
      const source = createHeliaBlockSource(fetcher, { log, reask: { afterMs: 2000 } })
      await source.connect(originAddrs)
      let dropped = false
      const count = await exportFile(source, AbortSignal.timeout(60_000), (n) => {
        if (!dropped && n === 30) {
          dropped = true
          void origin.libp2p.hangUp(fetcher.libp2p.peerId)
        }
      })
      expect(dropped).toBe(true)
      expect(count).toBe(blocks)
      expect(source.reasks()).toBeGreaterThan(0)
      if (process.env.DEBUG_REASK)
        console.log(lines.map((l) => `${l.msg} ${JSON.stringify(l.obj)}`).join('\n'))
    } finally {
      await fetcher.stop()
    }
  })

  it('a retry after a failure at ~90% (256 KiB blocks) fetches only the rest; release drops what was kept', async () => {
    // An origin of its own: it will lose the blocks the fetcher kept, so the retry can only get those locally.
    const small = await unixfsFile(40 * MiB, {
      chunkSize: 256 * 1024,
      maxChildren: 1024,
      seed: 'helia-resume',
    })
    const own = await createHeliaNode()
    const fetcher = await createHeliaNode({ dataDir: join(dir, 'resume') })
    try {
      const all: Array<{ cid: import('multiformats/cid').CID }> = []
      for await (const b of small.blocks) {
        await own.blockstore.put(b.cid, b.bytes)
        all.push({ cid: b.cid })
      }
      const source = createHeliaBlockSource(fetcher, { log, keepUntilReleased: true })
      await source.connect(await createHeliaBlockSource(own, { log }).multiaddrs())
      const failAt = Math.floor(all.length * 0.9)
      const attempt = new AbortController()
      const run = async (signal: AbortSignal, onBlock?: (n: number) => void) => {
        let n = 0
        for await (const _ of exportCar(small.root, source, {
          maxBytes: Number.MAX_SAFE_INTEGER,
          // Few in flight, so that the failure at 90% leaves some of the DAG unfetched.
          concurrency: 8,
          signal,
          onProgress: (p) => {
            n = p.blocks
            onBlock?.(n)
          },
        })) {
          // the CAR's bytes
        }
        return n
      }
      await expect(
        run(attempt.signal, (n) => {
          if (n >= failAt) attempt.abort(new Error('the attempt failed'))
        }),
      ).rejects.toThrow('the attempt failed')
      const kept: typeof all = []
      for (const b of all) if (await fetcher.blockstore.has(b.cid)) kept.push(b)
      expect(kept.length).toBeGreaterThanOrEqual(failAt)
      expect(kept.length).toBeLessThan(all.length)
      // The origin now holds only what the first attempt did not get.
      // Helia's own delete also cancels reproviding, which needs a router these nodes lack: below it.
      const ownStore = (
        own.blockstore as unknown as { unwrap(): { delete(cid: unknown): Promise<void> } }
      ).unwrap()
      for (const b of kept) await ownStore.delete(b.cid)
      expect(await run(AbortSignal.timeout(60_000))).toBe(all.length)
      await source.release?.(small.root)
      let held = 0
      for await (const _ of fetcher.blockstore.getAll()) held++
      expect(held).toBe(0)
    } finally {
      await Promise.all([own.stop(), fetcher.stop()])
    }
  })
})
