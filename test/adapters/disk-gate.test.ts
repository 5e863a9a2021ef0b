/**
 * Admission by disk (adapters/kubo/disk-gate.ts) around the in-memory queue, against a stand-in of kubo's
 * RPC API (`POST /api/v0/repo/stat`, answered as kubo does): a stand-in because the test sets the repo's size
 * as jobs would fill it, up to sizes a real disk here could not hold.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createDiskGate } from '../../adapters/kubo/disk-gate.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createTestLogger } from '../helpers/log.ts'

const GiB = 1024 ** 3
const MAX_CAR = 31 * GiB

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()))
})

async function startKubo(): Promise<{ url: string; repoBytes: number; broken: boolean; stats: number }> {
  const kubo = { url: '', repoBytes: 0, broken: false, stats: 0 }
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || !req.url?.startsWith('/api/v0/repo/stat')) {
      res.writeHead(404).end()
      return
    }
    kubo.stats++
    if (kubo.broken) {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ Message: 'repo locked', Code: 0, Type: 'error' }))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ RepoSize: kubo.repoBytes, StorageMax: 10e12 }))
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  kubo.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return kubo
}

async function queueWith(n: number) {
  const queue = createMemoryJobQueue()
  for (let i = 0; i < n; i++) await queue.send({ cid: `bafy-${i}`, origins: [] })
  return queue
}

describe('disk gate (against a stand-in of kubo repo/stat)', () => {
  it('admits only as many jobs as the disk holds at MAX_CAR_BYTES each, running jobs counted', async () => {
    const kubo = await startKubo()
    // The default task: 90 GiB of disk, 80 GiB for jobs.
    const gate = createDiskGate({
      apiUrl: kubo.url,
      jobDiskBytes: 80 * GiB,
      maxCarBytes: MAX_CAR,
      log: createTestLogger(),
    })
    const queue = await queueWith(10)
    const gated = gate.gate(queue)

    // Empty repo, no job: two 31 GiB jobs fit in 80 GiB, a third would not.
    const first = await gated.receive({ max: 10, waitSeconds: 0 })
    expect(first).toHaveLength(2)
    gate.jobs(2)
    gate.received(2)

    // Both running, their blocks growing in the repo: nothing more fits.
    kubo.repoBytes = 5 * GiB
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toEqual([])
    expect(queue.stats().visible).toBe(8)

    // One finished: its 20 GiB stay in the repo until GC, so still nothing (80 - 25 - 31 < 31).
    gate.jobs(1)
    kubo.repoBytes = 25 * GiB
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toEqual([])

    // GC ran: the running job's 5 GiB are left; one more fits.
    kubo.repoBytes = 5 * GiB
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toHaveLength(1)
    gate.stop()
  })

  it('gives receives in flight at once separate room, and counts what one brought until the worker counts its jobs', async () => {
    const kubo = await startKubo()
    const gate = createDiskGate({
      apiUrl: kubo.url,
      jobDiskBytes: 80 * GiB,
      maxCarBytes: MAX_CAR,
      log: createTestLogger(),
    })
    const memory = await queueWith(10)
    // The queue answers the first receive only when the test says so: it is in flight while others are sent.
    let answer: (() => void) | undefined
    const asked: number[] = []
    const gated = gate.gate({
      ...memory,
      async receive(o) {
        asked.push(o.max)
        if (asked.length === 1) await new Promise<void>((resolve) => (answer = resolve))
        return memory.receive(o)
      },
    })

    // Room for two jobs: the first receive takes both, so a second one sent meanwhile gets none.
    const first = gated.receive({ max: 10, waitSeconds: 0 })
    while (!answer) await new Promise((r) => setTimeout(r, 5))
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toEqual([])
    answer()
    expect(await first).toHaveLength(2)
    // Brought but not yet counted by the worker (a gate outside may hold them): still no room.
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toEqual([])
    gate.jobs(2)
    gate.received(2)
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toEqual([])
    // Both jobs ended and their blocks collected: room for two again, and only those were ever asked for.
    gate.jobs(0)
    expect(await gated.receive({ max: 10, waitSeconds: 0 })).toHaveLength(2)
    expect(asked).toEqual([2, 2])
    expect(memory.stats().visible).toBe(6)
    gate.stop()
  })

  it('never asks the queue for more than it asked for', async () => {
    const kubo = await startKubo()
    const gate = createDiskGate({
      apiUrl: kubo.url,
      jobDiskBytes: 190 * GiB,
      maxCarBytes: 1 * GiB,
      log: createTestLogger(),
    })
    const got = await gate.gate(await queueWith(10)).receive({ max: 3, waitSeconds: 0 })
    expect(got).toHaveLength(3)
    // The three count until the worker says it counts their jobs (and then as its jobs).
    expect(await gate.room()).toBe(187)
    gate.received(3)
    expect(await gate.room()).toBe(190)
    gate.stop()
  })

  it('takes no job while the repo size is unknown, and logs why', async () => {
    const kubo = await startKubo()
    kubo.broken = true
    const lines: Parameters<typeof createTestLogger>[0] = []
    const gate = createDiskGate({
      apiUrl: kubo.url,
      jobDiskBytes: 80 * GiB,
      maxCarBytes: MAX_CAR,
      log: createTestLogger(lines),
    })
    const queue = await queueWith(1)
    expect(await gate.gate(queue).receive({ max: 1, waitSeconds: 0 })).toEqual([])
    expect(queue.stats().visible).toBe(1)
    expect(lines.find((l) => l.level === 'warn')?.msg).toBe('repo size unknown: taking no job')
    kubo.broken = false
    expect(await gate.gate(queue).receive({ max: 1, waitSeconds: 0 })).toHaveLength(1)
    gate.stop()
  })
})
