/**
 * kubo garbage collection between jobs (adapters/kubo/gc.ts), against a stand-in of kubo's RPC API: a
 * node:http server answering `POST /api/v0/repo/gc` (newline-delimited JSON, streamed) and
 * `POST /api/v0/repo/stat` as kubo does. A stand-in because each test must hold a GC open, and set the repo's
 * size, to observe the intake gate; test/kubo/topology.test.ts runs the same GC against a real kubo.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createKuboGc } from '../../adapters/kubo/gc.ts'
import type { JobQueue, ReceivedJob } from '../../core/ports.ts'
import { createTestLogger } from '../helpers/log.ts'

interface Kubo {
  url: string
  calls: string[]
  repoBytes: number
  gcStatus: number
  /** Resolve to let the GC in progress finish. */
  gcGate?: Promise<void>
}

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
})

async function startKubo(): Promise<Kubo> {
  const kubo: Kubo = { url: '', calls: [], repoBytes: 0, gcStatus: 200 }
  const server = createServer(async (req, res) => {
    kubo.calls.push(`${req.method} ${req.url}`)
    if (req.method !== 'POST') {
      res.writeHead(405).end()
      return
    }
    if (req.url?.startsWith('/api/v0/repo/stat')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ RepoSize: kubo.repoBytes, StorageMax: 10e9 }))
      return
    }
    if (req.url?.startsWith('/api/v0/repo/gc')) {
      if (kubo.gcStatus !== 200) {
        res.writeHead(kubo.gcStatus, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ Message: 'repo locked', Code: 0, Type: 'error' }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-chunked-output': '1' })
      res.write(`${JSON.stringify({ Key: { '/': 'bafkreia' } })}\n{"Key":{"/":"baf`)
      await kubo.gcGate
      res.end(`kreib"}}\n${JSON.stringify({ Error: 'could not remove bafkreic' })}\n`)
      return
    }
    res.writeHead(404).end()
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  kubo.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return kubo
}

/** A queue whose receives resolve when the test says so. */
function fakeQueue() {
  const pending: Array<(jobs: ReceivedJob[]) => void> = []
  const queue: JobQueue = {
    send: async () => {},
    receive: ({ signal }) =>
      new Promise<ReceivedJob[]>((resolve, reject) => {
        pending.push(resolve)
        signal?.addEventListener('abort', () => reject(signal.reason))
      }),
    extend: async () => {},
    extendMany: async () => [],
    release: async () => {},
    delete: async () => {},
  }
  return { queue, pending }
}

const job: ReceivedJob = { id: 'm1', receipt: 'r1', receiveCount: 1, job: { cid: 'bafy', origins: [] } }
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms))
const gcCalls = (k: Kubo) => k.calls.filter((c) => c.startsWith('POST /api/v0/repo/gc')).length

describe('kubo repo gc (against a local stand-in of the kubo RPC API)', () => {
  it('collects when the worker holds no jobs, at most once per interval, and logs what it removed', async () => {
    const kubo = await startKubo()
    const lines: Parameters<typeof createTestLogger>[0] = []
    let now = 1_000_000
    const gc = createKuboGc({
      apiUrl: kubo.url,
      log: createTestLogger(lines),
      minIntervalMs: 60_000,
      clock: { now: () => now },
    })
    gc.jobs(2)
    gc.jobs(1)
    await gc.idle()
    expect(gcCalls(kubo)).toBe(0)
    gc.jobs(0)
    await tick()
    await gc.idle()
    expect(kubo.calls).toEqual(['POST /api/v0/repo/gc?stream-errors=true'])
    expect(lines.find((l) => l.msg === 'repo gc done')?.obj).toMatchObject({
      reason: 'idle',
      removed: 2,
      errors: 1,
    })

    gc.jobs(1)
    gc.jobs(0)
    await tick()
    await gc.idle()
    expect(gcCalls(kubo)).toBe(1)
    now += 60_000
    gc.jobs(1)
    gc.jobs(0)
    await tick()
    await gc.idle()
    expect(gcCalls(kubo)).toBe(2)
    gc.stop()
  })

  it('pauses intake while it collects, so no job starts during a GC', async () => {
    const kubo = await startKubo()
    let release = () => {}
    kubo.gcGate = new Promise<void>((r) => {
      release = r
    })
    const gc = createKuboGc({ apiUrl: kubo.url, log: createTestLogger(), minIntervalMs: 0 })
    const { queue, pending } = fakeQueue()
    const gated = gc.gate(queue)
    gc.jobs(0)
    await tick(50)
    expect(gc.pausing).toBe(true)
    const receive = gated.receive({ max: 1, waitSeconds: 20 })
    await tick()
    expect(pending).toHaveLength(0)
    release()
    await gc.idle()
    await tick()
    expect(gc.pausing).toBe(false)
    expect(pending).toHaveLength(1)
    pending[0]!([])
    expect(await receive).toEqual([])
    gc.stop()
  })

  it('waits for receives in flight, and skips the GC when they brought jobs', async () => {
    const kubo = await startKubo()
    const gc = createKuboGc({ apiUrl: kubo.url, log: createTestLogger(), minIntervalMs: 0 })
    const { queue, pending } = fakeQueue()
    const gated = gc.gate(queue)
    const receive = gated.receive({ max: 1, waitSeconds: 20 }).then((jobs) => {
      // As the worker does: it counts the jobs as soon as the receive returns.
      gc.jobs(jobs.length)
      return jobs
    })
    await tick()
    gc.jobs(0)
    await tick()
    expect(gcCalls(kubo)).toBe(0)
    pending[0]!([job])
    await receive
    await gc.idle()
    expect(gcCalls(kubo)).toBe(0)
    expect(gc.pausing).toBe(false)
    gc.stop()
  })

  it('above the high-water mark, stops taking jobs until the running ones finish, then collects at once', async () => {
    const kubo = await startKubo()
    kubo.repoBytes = 9e9
    const gc = createKuboGc({
      apiUrl: kubo.url,
      log: createTestLogger(),
      minIntervalMs: 3_600_000,
      highWaterBytes: 8e9,
      statIntervalMs: 20,
    })
    const { queue, pending } = fakeQueue()
    const gated = gc.gate(queue)
    gc.jobs(3)
    await tick(80)
    expect(kubo.calls).toContain('POST /api/v0/repo/stat?size-only=true')
    expect(gc.pausing).toBe(true)
    const receive = gated.receive({ max: 1, waitSeconds: 20 })
    gc.jobs(1)
    await tick()
    expect(gcCalls(kubo)).toBe(0)
    expect(pending).toHaveLength(0)
    kubo.repoBytes = 1e9
    gc.jobs(0)
    await tick(50)
    await gc.idle()
    expect(gcCalls(kubo)).toBe(1)
    expect(gc.pausing).toBe(false)
    await tick()
    expect(pending).toHaveLength(1)
    pending[0]!([])
    await receive
    gc.stop()
  })

  it('resumes intake when a GC fails, and says so', async () => {
    const kubo = await startKubo()
    kubo.gcStatus = 500
    const lines: Parameters<typeof createTestLogger>[0] = []
    const gc = createKuboGc({ apiUrl: kubo.url, log: createTestLogger(lines), minIntervalMs: 0 })
    gc.jobs(0)
    await tick()
    await gc.idle()
    expect(gc.pausing).toBe(false)
    expect(lines.find((l) => l.msg === 'repo gc failed')?.obj).toMatchObject({ reason: 'idle' })
    gc.stop()
  })

  it("lets a waiting receive go when stopped, and a receive's abort still aborts it", async () => {
    const kubo = await startKubo()
    kubo.gcGate = new Promise<void>(() => {})
    const gc = createKuboGc({ apiUrl: kubo.url, log: createTestLogger(), minIntervalMs: 0 })
    const { queue } = fakeQueue()
    const gated = gc.gate(queue)
    gc.jobs(0)
    await tick(50)
    const abort = new AbortController()
    const waiting = gated.receive({ max: 1, waitSeconds: 20, signal: abort.signal })
    abort.abort(new Error('shutting down'))
    await expect(waiting).rejects.toThrow('shutting down')
    gc.stop()
    await gc.idle()
    expect(gc.pausing).toBe(false)
  })
})
