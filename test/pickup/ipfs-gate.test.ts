/**
 * The worker takes no job while its IPFS node does not answer (pickup/ipfs-gate.ts): receives wait, probing
 * the node, and resume once it answers; the wait ends at once on abort (shutdown).
 */
import { describe, expect, it } from 'vitest'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createIpfsGate } from '../../pickup/ipfs-gate.ts'
import { createTestLogger } from '../helpers/log.ts'

describe('the IPFS gate on the worker queue', () => {
  it('holds receives while the node does not answer, and lets them through once it does', async () => {
    const queue = createMemoryJobQueue()
    await queue.send({ cid: 'bafkqaaa', origins: [] })
    let answering = false
    let probes = 0
    const lines: Array<{ level: string; msg?: string; obj: object }> = []
    const gate = createIpfsGate(queue, {
      probe: async () => {
        probes++
        if (!answering) throw new Error('connect ECONNREFUSED 127.0.0.1:5001')
      },
      log: createTestLogger(lines),
      retryMs: 5,
      maxRetryMs: 20,
    })

    let received: unknown[] | undefined
    const receiving = gate.queue.receive({ max: 1, waitSeconds: 0 }).then((r) => {
      received = r
    })
    while (probes < 3) await new Promise((r) => setTimeout(r, 5))
    // Probed several times, still waiting, not ready, and the job is still on the queue.
    expect(received).toBeUndefined()
    expect(gate.ready).toBe(false)
    answering = true
    await receiving
    expect(received).toHaveLength(1)
    expect(gate.ready).toBe(true)
    // One line when it stopped answering, one when it answered again; not one per probe.
    expect(lines.map((l) => l.level)).toEqual(['error', 'info'])
  })

  it('a receive waiting for the node ends when its signal aborts', async () => {
    const gate = createIpfsGate(createMemoryJobQueue(), {
      probe: async () => {
        throw new Error('down')
      },
      log: createTestLogger(),
      retryMs: 5,
    })
    const stop = new AbortController()
    const receiving = gate.queue.receive({ max: 1, waitSeconds: 0, signal: stop.signal })
    stop.abort(new Error('shutting down'))
    await expect(receiving).rejects.toThrow('shutting down')
  })

  it('a job a long poll brings back after the node stopped answering waits for the node too', async () => {
    const queue = createMemoryJobQueue()
    let answering = true
    const gate = createIpfsGate(queue, {
      probe: async () => {
        if (!answering) throw new Error('connect ECONNREFUSED 127.0.0.1:5001')
      },
      log: createTestLogger(),
      retryMs: 5,
      maxRetryMs: 20,
    })
    let received: Array<{ receiveCount: number }> | undefined
    // The long poll starts while the node answers...
    const receiving = gate.queue.receive({ max: 1, waitSeconds: 2 }).then((r) => {
      received = r
    })
    await new Promise((r) => setTimeout(r, 20))
    // ...then the node goes down and a job arrives.
    answering = false
    await queue.send({ cid: 'bafkqaaa', origins: [] })
    while (gate.ready) await new Promise((r) => setTimeout(r, 5))
    expect(received).toBeUndefined()
    answering = true
    await receiving
    expect(received).toHaveLength(1)
    // Held, not given back: received once, so no attempt was spent on the node being down.
    expect(received![0]!.receiveCount).toBe(1)
  })
})
