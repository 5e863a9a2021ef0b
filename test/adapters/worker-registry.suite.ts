/**
 * The WorkerRegistry contract (core/ports.ts), run against every implementation.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { WorkerInfo, WorkerRegistry } from '../../core/ports.ts'

/** A fresh, empty registry per test. */
export type WorkerRegistryFactory = () => Promise<WorkerRegistry>

const T0 = 1_700_000_000_000

const worker = (
  id: string,
  expires: number,
  multiaddrs = [`/ip4/127.0.0.1/tcp/4001/p2p/${id}`],
): WorkerInfo => ({
  id,
  multiaddrs,
  expires,
})

export function workerRegistrySuite(name: string, factory: WorkerRegistryFactory): void {
  describe(`WorkerRegistry: ${name}`, () => {
    let registry: WorkerRegistry
    beforeEach(async () => {
      registry = await factory()
    })

    it('lists nothing at first', async () => {
      expect(await registry.live(T0)).toEqual([])
    })

    it('lists the workers whose entries have not expired, by id', async () => {
      await registry.announce(worker('w2', T0 + 1000))
      await registry.announce(
        worker('w1', T0 + 2000, ['/ip4/10.0.0.1/tcp/4001/p2p/w1', '/dns4/w1/tcp/4001/p2p/w1']),
      )
      await registry.announce(worker('w3', T0 - 1))
      expect(await registry.live(T0)).toEqual([
        worker('w1', T0 + 2000, ['/ip4/10.0.0.1/tcp/4001/p2p/w1', '/dns4/w1/tcp/4001/p2p/w1']),
        worker('w2', T0 + 1000),
      ])
      // An entry expiring exactly now is stale.
      expect((await registry.live(T0 + 1000)).map((w) => w.id)).toEqual(['w1'])
      expect(await registry.live(T0 + 2000)).toEqual([])
    })

    it('a new announcement replaces the old one', async () => {
      await registry.announce(worker('w1', T0 + 10))
      await registry.announce(worker('w1', T0 + 5000, ['/ip4/10.9.9.9/tcp/1/p2p/w1']))
      expect(await registry.live(T0 + 100)).toEqual([worker('w1', T0 + 5000, ['/ip4/10.9.9.9/tcp/1/p2p/w1'])])
    })

    it('remove takes a worker out at once; removing an unknown one is harmless', async () => {
      await registry.announce(worker('w1', T0 + 1000))
      await registry.announce(worker('w2', T0 + 1000))
      await registry.remove('w1')
      await registry.remove('nobody')
      expect((await registry.live(T0)).map((w) => w.id)).toEqual(['w2'])
    })

    it('keeps readiness and the problem; an entry without them reads as before', async () => {
      const waiting: WorkerInfo = {
        ...worker('w1', T0 + 1000, []),
        ready: false,
        problem: 'the IPFS node does not answer: ECONNREFUSED',
      }
      await registry.announce(waiting)
      await registry.announce({ ...worker('w2', T0 + 1000), ready: true })
      await registry.announce(worker('w3', T0 + 1000))
      expect(await registry.live(T0)).toEqual([
        waiting,
        { ...worker('w2', T0 + 1000), ready: true },
        worker('w3', T0 + 1000),
      ])
      // Ready again: the problem goes with the new announcement.
      await registry.announce({ ...worker('w1', T0 + 2000), ready: true })
      expect((await registry.live(T0))[0]).toEqual({ ...worker('w1', T0 + 2000), ready: true })
    })

    it('keeps workers with no multiaddrs', async () => {
      await registry.announce(worker('w1', T0 + 1000, []))
      expect(await registry.live(T0)).toEqual([worker('w1', T0 + 1000, [])])
    })
  })
}
