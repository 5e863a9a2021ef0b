import { describe, expect, it } from 'vitest'
import { createMemoryWorkerRegistry } from '../../adapters/memory/workers.ts'
import { createDelegates } from '../../core/delegates.ts'
import type { WorkerInfo, WorkerRegistry } from '../../core/ports.ts'

const p2p = (i: number) =>
  `/ip4/10.0.0.${i}/tcp/4001/p2p/12D3KooWD2sxGYDXC87bVNEA7n1yQTZZmsnKVUFoaVvkr85smwKB`

describe('delegates', () => {
  it('uses live workers’ /p2p/ addresses, at most 20, without repeats, filtering before cutting', async () => {
    const workers = createMemoryWorkerRegistry()
    await workers.announce({
      id: 'w1',
      multiaddrs: ['/ip4/1.2.3.4/tcp/1', 'garbage/p2p/x', p2p(0)],
      expires: 10_000,
    })
    await workers.announce({
      id: 'w2',
      multiaddrs: Array.from({ length: 25 }, (_, i) => p2p(i)),
      expires: 10_000,
    })
    const delegates = createDelegates({ cacheMs: 0 }, { workers, clock: { now: () => 0 } })
    expect(await delegates()).toEqual(Array.from({ length: 20 }, (_, i) => p2p(i)))
  })

  it('falls back when no worker is live, and is empty when there is nothing at all', async () => {
    const workers = createMemoryWorkerRegistry()
    await workers.announce({ id: 'expired', multiaddrs: [p2p(1)], expires: 10 })
    const clock = { now: () => 100 }
    expect(await createDelegates({ cacheMs: 0, fallback: () => [p2p(9)] }, { workers, clock })()).toEqual([
      p2p(9),
    ])
    expect(await createDelegates({ cacheMs: 0 }, { workers, clock })()).toEqual([])
  })

  it('skips workers that are not ready (their IPFS node does not answer)', async () => {
    const workers = createMemoryWorkerRegistry()
    const clock = { now: () => 0 }
    await workers.announce({ id: 'w1', multiaddrs: [p2p(1)], expires: 10, ready: false, problem: 'down' })
    const fallback = () => [p2p(9)]
    expect(await createDelegates({ cacheMs: 0, fallback }, { workers, clock })()).toEqual([p2p(9)])
    await workers.announce({ id: 'w2', multiaddrs: [p2p(2)], expires: 10, ready: true })
    expect(await createDelegates({ cacheMs: 0, fallback }, { workers, clock })()).toEqual([p2p(2)])
  })

  it('reads the registry at most once per cache period, and does not cache a failure', async () => {
    let t = 0
    let reads = 0
    let fail = true
    const workers: WorkerRegistry = {
      announce: async () => {},
      remove: async () => {},
      live: async (): Promise<WorkerInfo[]> => {
        reads++
        if (fail) throw new Error('registry down')
        return [{ id: 'w', multiaddrs: [p2p(1)], expires: Number.MAX_SAFE_INTEGER }]
      },
    }
    const delegates = createDelegates({ cacheMs: 5000 }, { workers, clock: { now: () => t } })
    await expect(delegates()).rejects.toThrow('registry down')
    fail = false
    expect(await delegates()).toEqual([p2p(1)])
    t = 4999
    expect(await Promise.all([delegates(), delegates()])).toEqual([[p2p(1)], [p2p(1)]])
    expect(reads).toBe(2)
    t = 5000
    await delegates()
    expect(reads).toBe(3)
  })
})
