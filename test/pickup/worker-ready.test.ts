/**
 * The worker takes jobs only once its IPFS node answers (pickup/worker.ts), in AWS as in local mode: until
 * then it asks again every IPFS_RETRY_INTERVAL_MS, leaves the queue alone and announces itself not ready,
 * with the reason, in the worker registry (which `pickup stats` reads and the delegates skip). In-memory
 * queue, pin store and registry; a block source whose node does not answer until the test says so.
 */
import { describe, expect, it } from 'vitest'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryWorkerRegistry } from '../../adapters/memory/workers.ts'
import { parseConfig, workerSchema } from '../../core/config.ts'
import type { BlockSource } from '../../core/ports.ts'
import { startWorker, type WorkerStatus } from '../../pickup/worker.ts'
import { createTestLogger } from '../helpers/log.ts'

/** A promise and its resolve function. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

const PEER = '12D3KooWCefdcKWbE2sZFKWJ5HpxPLYDWnSteLL6sYkjtjYEwcyM'
const CID = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

describe('a worker whose IPFS node does not answer', () => {
  it('takes no job and shows not ready until the node answers, then takes jobs', async () => {
    let answering = false
    let asked = 0
    const askedTwice = signal()
    const ipfs: BlockSource = {
      connect: async () => {},
      get: async () => {
        throw new Error('no blocks here')
      },
      multiaddrs: async () => {
        asked++
        if (asked >= 2) askedTwice.resolve()
        if (!answering)
          throw new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) })
        return [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`]
      },
    }
    const queue = createMemoryJobQueue()
    await queue.send({ cid: CID, origins: [] })
    const workers = createMemoryWorkerRegistry()
    const changes: WorkerStatus[] = []
    const ready = signal()
    const cfg = parseConfig(workerSchema, { IPFS_RETRY_INTERVAL_MS: '20', SHUTDOWN_GRACE_MS: '0' })
    const running = await startWorker(cfg, {
      queue,
      pins: createMemoryPinStore(),
      temp: createMemoryObjectStore({ bucket: 'temp' }),
      ipfs,
      workers,
      clock: { now: () => Date.now() },
      log: createTestLogger(),
      onReadyChange: (s) => {
        changes.push(s)
        if (s.ready) ready.resolve()
      },
    })
    try {
      const notReady = {
        ready: false,
        problem: 'the IPFS node does not answer: fetch failed (ECONNREFUSED)',
        ipfsError: 'fetch failed (ECONNREFUSED)',
      }
      expect(running.status()).toEqual(notReady)
      await askedTwice.promise
      // Asked again, still not answering: the job is still waiting, untouched.
      expect(queue.stats()).toEqual({ visible: 1, invisible: 0 })
      expect(await workers.live(Date.now())).toEqual([
        expect.objectContaining({ id: running.id, multiaddrs: [], ready: false, problem: notReady.problem }),
      ])

      answering = true
      await ready.promise
      expect(changes.map((c) => c.ready)).toEqual([false, true])
      expect(running.status()).toEqual({ ready: true })
      const [entry] = await workers.live(Date.now())
      expect(entry).toMatchObject({ ready: true, multiaddrs: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`] })
      expect(entry?.problem).toBeUndefined()
      // Now it takes the job (no pin record: claimed as missing and dropped).
      while (queue.stats().visible + queue.stats().invisible > 0) await new Promise((r) => setImmediate(r))
    } finally {
      await running.stop()
    }
    expect(await workers.live(Date.now())).toEqual([])
  })
})
