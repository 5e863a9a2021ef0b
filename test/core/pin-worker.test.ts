/**
 * The worker loop against the in-memory queue (SQS semantics): continuous bounded concurrency, visibility
 * extension, release with a delay on retryable failure, deletion otherwise, and shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { ShutdownError } from '../../core/errors.ts'
import type { FetchOutcome } from '../../core/fetch-pin.ts'
import type { PinJob } from '../../core/pin.ts'
import { createPinWorker, type PinWorker, type PinWorkerOptions } from '../../core/pin-worker.ts'
import type { JobQueue } from '../../core/ports.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createManualTime } from '../helpers/manual-time.ts'

const log = createTestLogger()

/** One slot of each kind, a 30 s visibility timeout, failed jobs released with no delay; a test overrides. */
function workerOptions(overrides: Partial<PinWorkerOptions> = {}): PinWorkerOptions {
  return {
    transferSlots: 1,
    searchSlots: 1,
    visibilityTimeoutSeconds: 30,
    fetchTimeoutMs: 60_000,
    waitSeconds: 1,
    retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 },
    ...overrides,
  }
}

/** The queue with each release's delay recorded; the message comes back at once, so no test waits it out. */
function recordingReleases(memory: MemoryJobQueue): { queue: MemoryJobQueue; delays: number[] } {
  const delays: number[] = []
  const queue: MemoryJobQueue = Object.assign(Object.create(memory), {
    release: async (receipt: string, delaySeconds: number) => {
      delays.push(delaySeconds)
      return memory.release(receipt, 0)
    },
  })
  return { queue, delays }
}

let worker: PinWorker | undefined
afterEach(async () => {
  await worker?.stop(0)
  worker = undefined
})

const uploaded: FetchOutcome = { kind: 'uploaded', attemptId: 'a', key: 'k', bytes: 1, blocks: 1 }

function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) return resolve()
      if (Date.now() - started > ms) return reject(new Error('condition not met in time'))
      setTimeout(tick, 10)
    }
    tick()
  })
}

describe('pin worker', () => {
  it('keeps every slot busy: a long job does not hold back the others, and it never holds more than it runs', async () => {
    const queue = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
    let releaseLong: (() => void) | undefined
    const done: string[] = []
    let maxConcurrent = 0
    let current = 0
    worker = createPinWorker(workerOptions({ transferSlots: 2, searchSlots: 2 }), {
      queue,
      log,
      run: async (job: PinJob, signal, control) => {
        await control.startTransfer(signal)
        current++
        maxConcurrent = Math.max(maxConcurrent, current)
        if (job.cid === 'long') await new Promise<void>((r) => (releaseLong = r))
        else await new Promise((r) => setTimeout(r, 20))
        current--
        done.push(job.cid)
        return uploaded
      },
    })
    await queue.send({ cid: 'long', origins: [] })
    for (let i = 0; i < 5; i++) await queue.send({ cid: `short${i}`, origins: [] })
    worker.start()
    await waitFor(() => done.length === 5)
    expect(done).not.toContain('long')
    expect(maxConcurrent).toBe(2)
    // The worker only ever took what it had slots for: the long job's message is its only one in flight.
    expect(queue.stats()).toEqual({ visible: 0, invisible: 1 })
    releaseLong?.()
    await waitFor(() => done.length === 6)
    await waitFor(() => queue.stats().invisible === 0)
  })

  it('is full (receiving waits by design) only when every search slot is taken, not when it holds its transfer slots', async () => {
    const queue = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
    const found: Array<() => void> = []
    worker = createPinWorker(workerOptions({ transferSlots: 1, searchSlots: 4 }), {
      queue,
      log,
      run: async (_job, signal, control) => {
        await new Promise<void>((r) => found.push(r))
        await control.startTransfer(signal)
        return uploaded
      },
    })
    worker.start()
    expect(worker.full).toBe(false)
    for (let i = 0; i < 2; i++) await queue.send({ cid: `s${i}`, origins: [] })
    await waitFor(() => worker!.load.searching === 2)
    // More messages in hand than transfer slots, two search slots free: its receive loop must still be running.
    expect(worker.inFlight).toBeGreaterThan(1)
    expect(worker.full).toBe(false)
    for (let i = 2; i < 4; i++) await queue.send({ cid: `s${i}`, origins: [] })
    await waitFor(() => worker!.load.searching === 4)
    expect(worker.full).toBe(true)
    for (const resolve of found.splice(0)) resolve()
    await waitFor(() => queue.stats().invisible === 0)
    expect(worker.full).toBe(false)
  })

  it('searches for many jobs at once but transfers only its transfer slots, and keeps receiving while jobs wait for one', async () => {
    const queue = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
    const finish = new Map<string, () => void>()
    let transferring = 0
    let most = 0
    worker = createPinWorker(workerOptions({ transferSlots: 2, searchSlots: 6 }), {
      queue,
      log,
      run: async (job, signal, control) => {
        // Searches until the test lets it find its content, then transfers until the test ends it.
        await new Promise<void>((r) => finish.set(`found ${job.cid}`, r))
        await control.startTransfer(signal)
        transferring++
        most = Math.max(most, transferring)
        await new Promise<void>((r) => finish.set(`done ${job.cid}`, r))
        transferring--
        return uploaded
      },
    })
    for (let i = 0; i < 10; i++) await queue.send({ cid: `j${i}`, origins: [] })
    worker.start()
    // Six search at once (not two): the search slots, not the transfer slots, bound what it takes.
    await waitFor(() => worker!.load.searching === 6)
    expect(queue.stats()).toEqual({ visible: 4, invisible: 6 })

    // All six find their content at once: two transfer, four wait, keeping their messages.
    for (let i = 0; i < 6; i++) finish.get(`found j${i}`)?.()
    await waitFor(() => worker!.load.transferring === 2 && worker!.load.waiting === 4)
    // The two transferring free their search slots: two more messages are received and searched for, while
    // four jobs wait (another requester's message would be among them). Never more than the search slots
    // (searching and waiting) plus the transfer slots.
    await waitFor(() => worker!.load.searching === 2)
    expect(worker.load).toEqual({ searching: 2, waiting: 4, transferring: 2 })
    expect(queue.stats()).toEqual({ visible: 2, invisible: 8 })

    // Transfers end: waiting jobs take the slots in turn, and the rest of the queue is received.
    for (let round = 0; round < 10 && queue.stats().invisible + queue.stats().visible > 0; round++) {
      for (const [key, resolve] of [...finish]) {
        finish.delete(key)
        resolve()
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    await waitFor(() => queue.stats().visible === 0 && queue.stats().invisible === 0)
    expect(most).toBe(2)
  })

  it('keeps several receives in flight, each asking only for slots no other receive reserved; a full worker sends none', async () => {
    const memory = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
    const searchSlots = 100
    // Receives are answered only once four are in flight (or when the test says so), so they overlap.
    let inFlight = 0
    let most = 0
    let askedInFlight = 0
    const asks: number[] = []
    const breaches: string[] = []
    let gate: Promise<void> | undefined
    let open: (() => void) | undefined
    const closeGate = () => {
      gate = new Promise<void>((r) => (open = r))
    }
    closeGate()
    const queue: MemoryJobQueue = Object.assign(Object.create(memory), {
      receive: async (o: Parameters<JobQueue['receive']>[0]) => {
        inFlight++
        most = Math.max(most, inFlight)
        askedInFlight += o.max
        asks.push(o.max)
        // What the receives in flight may bring, beside the jobs in hand, never exceeds the search slots.
        if (askedInFlight + worker!.inFlight > searchSlots) {
          breaches.push(`${askedInFlight} asked with ${worker!.inFlight} in hand`)
        }
        if (inFlight === 4) open?.()
        await gate
        try {
          return await memory.receive(o)
        } finally {
          inFlight--
          askedInFlight -= o.max
        }
      },
    })
    const found = new Map<string, () => void>()
    worker = createPinWorker(workerOptions({ transferSlots: 1, searchSlots, receiveConcurrency: 4 }), {
      queue,
      log,
      run: async (job, signal) => {
        // Searches until the test ends it (content nobody serves, given up), or the worker stops.
        await new Promise<void>((r, reject) => {
          found.set(job.cid, r)
          signal.addEventListener('abort', () => reject(signal.reason), { once: true })
        })
        const gaveUp: FetchOutcome = {
          kind: 'failed',
          attemptId: 'a',
          code: 'STALLED',
          reason: 'no provider',
          retryable: false,
          attempts: 1,
        }
        return gaveUp
      },
    })
    for (let i = 0; i < 150; i++) await queue.send({ cid: `j${i}`, origins: [] })
    worker.start()
    await waitFor(() => worker!.inFlight === searchSlots && inFlight === 0)
    expect(most).toBe(4)
    expect(breaches).toEqual([])
    expect(asks.slice(0, 4)).toEqual([10, 10, 10, 10])
    expect(queue.stats()).toEqual({ visible: 50, invisible: searchSlots })

    // Full: no receive is sent. One job ends: exactly one receive, for one message, refills the slot.
    const before = asks.length
    closeGate()
    open?.()
    const [first] = found.keys()
    found.get(first!)?.()
    found.delete(first!)
    await waitFor(() => queue.stats().visible === 49 && worker!.inFlight === searchSlots && inFlight === 0)
    expect(asks.slice(before)).toEqual([1])
    expect(breaches).toEqual([])
  })

  it.each([1, 3])(
    'stops receiving while the jobs waiting for a transfer slot hold maxWaitingBytes of first blocks (%i receives in flight)',
    async (receiveConcurrency) => {
      const memory = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
      // How many jobs waited (60 bytes each) whenever the worker asked for messages.
      const waitingAtReceive: number[] = []
      const queue: MemoryJobQueue = Object.assign(Object.create(memory), {
        receive: (o: Parameters<JobQueue['receive']>[0]) => {
          waitingAtReceive.push(worker!.load.waiting)
          return memory.receive(o)
        },
      })
      const finish = new Map<string, () => void>()
      worker = createPinWorker(
        workerOptions({ transferSlots: 1, searchSlots: 6, maxWaitingBytes: 100, receiveConcurrency }),
        {
          queue,
          log,
          run: async (job, signal, control) => {
            await control.startTransfer(signal, 60)
            await new Promise<void>((r) => finish.set(job.cid, r))
            return uploaded
          },
        },
      )
      for (let i = 0; i < 10; i++) await queue.send({ cid: `j${i}`, origins: [] })
      worker.start()
      // Six received: one transfers, five wait holding 300 bytes, and search slots are free again.
      await waitFor(() => worker!.load.transferring === 1 && worker!.load.waiting === 5)
      expect(queue.stats()).toEqual({ visible: 4, invisible: 6 })
      for (let round = 0; round < 20 && queue.stats().invisible + queue.stats().visible > 0; round++) {
        await waitFor(() => finish.size > 0 || queue.stats().invisible + queue.stats().visible === 0)
        for (const [key, resolve] of [...finish]) {
          finish.delete(key)
          resolve()
        }
      }
      await waitFor(() => queue.stats().visible === 0 && queue.stats().invisible === 0)
      // It asked for more only while fewer than 100 bytes were held by waiting jobs (at most one).
      expect(waitingAtReceive.length).toBeGreaterThan(1)
      expect(Math.max(...waitingAtReceive)).toBeLessThanOrEqual(1)
    },
  )

  it('keeps a message delivered again while its job runs with that job (newest receipt), starting no second job', async () => {
    // An overloaded worker: its visibility extensions never arrive, so SQS delivers the message again.
    const memory = createMemoryJobQueue({ visibilityTimeoutSeconds: 1 })
    const received: number[] = []
    const queue: MemoryJobQueue = Object.assign(Object.create(memory), {
      extendMany: async () => [],
      receive: async (o: Parameters<JobQueue['receive']>[0]) => {
        const got = await memory.receive(o)
        for (const m of got) received.push(m.receiveCount)
        return got
      },
    })
    let finish: (() => void) | undefined
    let runs = 0
    worker = createPinWorker(
      workerOptions({ visibilityTimeoutSeconds: 1, searchSlots: 4, transferSlots: 4 }),
      {
        queue,
        log,
        run: async () => {
          runs++
          await new Promise<void>((r) => (finish = r))
          return uploaded
        },
      },
    )
    await queue.send({ cid: 'a', origins: [] })
    worker.start()
    await waitFor(() => received.length === 2)
    expect(received).toEqual([1, 2])
    finish?.()
    // Deleted through the newest receipt (a stale one would leave it in flight), by the one job that ran.
    await waitFor(() => queue.stats().invisible === 0 && queue.stats().visible === 0)
    expect(runs).toBe(1)
  })

  it('extends the visibility of a message while its job runs, until the job has run its fetch timeout', async () => {
    const memory = createMemoryJobQueue({ visibilityTimeoutSeconds: 300 })
    // The worker's time is the test's: each extension is recorded at the (manual) time it was asked for.
    const time = createManualTime()
    const extended: number[] = []
    const queue: MemoryJobQueue = Object.assign(Object.create(memory), {
      extendMany: async (receipts: readonly string[], seconds: number) => {
        for (const _ of receipts) extended.push(time.clock.now())
        return memory.extendMany(receipts, seconds)
      },
    })
    let finish: (() => void) | undefined
    let runs = 0
    worker = createPinWorker(workerOptions({ fetchTimeoutMs: 100_000 }), {
      queue,
      log,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        runs++
        await new Promise<void>((r) => (finish = r))
        return uploaded
      },
    })
    await queue.send({ cid: 'a', origins: [] })
    worker.start()
    await waitFor(() => runs === 1)
    const t0 = time.clock.now()
    // Every third of the visibility timeout (10 s) while it runs...
    await time.advance(90_000)
    expect(extended.map((t) => t - t0)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90].map((s) => s * 1000))
    // ...and no more once it has run FETCH_TIMEOUT_MS (its own timeout ends it first).
    await time.advance(60_000)
    expect(extended).toHaveLength(10)
    expect(queue.stats()).toEqual({ visible: 0, invisible: 1 })
    expect(runs).toBe(1)
    finish?.()
    await waitFor(() => queue.stats().invisible === 0)
  })

  it('extends every held message in one extendMany call a tick, not one call per message', async () => {
    const memory = createMemoryJobQueue({ visibilityTimeoutSeconds: 300 })
    const time = createManualTime()
    const calls: { at: number; receipts: number }[] = []
    let single = 0
    const queue: MemoryJobQueue = Object.assign(Object.create(memory), {
      extend: async (receipt: string, seconds: number) => {
        single++
        return memory.extend(receipt, seconds)
      },
      extendMany: async (receipts: readonly string[], seconds: number) => {
        calls.push({ at: time.clock.now(), receipts: receipts.length })
        return memory.extendMany(receipts, seconds)
      },
    })
    const finish: (() => void)[] = []
    worker = createPinWorker(workerOptions({ searchSlots: 5, fetchTimeoutMs: 100_000 }), {
      queue,
      log,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        await new Promise<void>((r) => finish.push(r))
        return uploaded
      },
    })
    for (let n = 0; n < 5; n++) await queue.send({ cid: `c${n}`, origins: [] })
    worker.start()
    await waitFor(() => finish.length === 5)
    const t0 = time.clock.now()
    await time.advance(30_000)
    expect(calls.map((c) => [c.at - t0, c.receipts])).toEqual([
      [10_000, 5],
      [20_000, 5],
      [30_000, 5],
    ])
    // One job ends: the next tick extends the four left.
    finish.shift()?.()
    await waitFor(() => worker?.inFlight === 4)
    await time.advance(10_000)
    expect(calls.at(-1)?.receipts).toBe(4)
    // Past the fetch timeout no message is extended any longer, and no call is made for none.
    await time.advance(80_000)
    const made = calls.length
    await time.advance(30_000)
    expect(calls).toHaveLength(made)
    expect(single).toBe(0)
    expect(queue.stats()).toEqual({ visible: 0, invisible: 4 })
    for (const f of finish) f()
    await waitFor(() => queue.stats().invisible === 0)
  })

  it('releases a retryable failure with the delay for its receive count, and deletes a final one', async () => {
    const { queue, delays } = recordingReleases(createMemoryJobQueue({ visibilityTimeoutSeconds: 30 }))
    const seen: Array<{ cid: string }> = []
    worker = createPinWorker(
      workerOptions({
        // 10 s doubling per receive, no jitter: the delays say which receive each was.
        retry: { baseDelaySeconds: 10, maxDelaySeconds: 900 },
        random: () => 0,
      }),
      {
        queue,
        log,
        run: async (job) => {
          seen.push({ cid: job.cid })
          const retryable = seen.length < 3
          return { kind: 'failed', attemptId: 'a', code: 'X', reason: 'y', retryable, attempts: seen.length }
        },
      },
    )
    await queue.send({ cid: 'a', origins: [] })
    worker.start()
    await waitFor(() => seen.length === 3 && queue.stats().invisible === 0)
    expect(delays).toEqual([10, 20])
    expect(queue.stats()).toEqual({ visible: 0, invisible: 0 })
  })

  it('does not delete a job whose pin another attempt holds: it comes back when that lease runs out', async () => {
    const { queue, delays } = recordingReleases(createMemoryJobQueue({ visibilityTimeoutSeconds: 30 }))
    const time = createManualTime()
    let runs = 0
    worker = createPinWorker(workerOptions(), {
      queue,
      log,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        runs++
        // The first delivery finds a lease that runs out in 90 s (its worker died); the next one claims.
        return runs === 1
          ? { kind: 'busy', attemptId: 'dead', leaseExpires: time.clock.now() + 90_000 }
          : uploaded
      },
    })
    await queue.send({ cid: 'a', origins: [] })
    worker.start()
    // Released, not deleted, for as long as the lease has left (and a second): then it comes back and is done.
    await waitFor(() => runs === 2)
    expect(delays).toEqual([91])
    await waitFor(() => queue.stats().invisible === 0 && queue.stats().visible === 0)
  })

  it('waits out a lease that runs out soon (its holder died) while the message stays invisible, then claims: no receive spent', async () => {
    const { queue, delays } = recordingReleases(createMemoryJobQueue({ visibilityTimeoutSeconds: 30 }))
    // Visibility extensions (the worker asks for them in batches).
    const extended: string[] = []
    const extendMany = queue.extendMany.bind(queue)
    queue.extendMany = async (receipts, seconds) => {
      extended.push(...receipts)
      return extendMany(receipts, seconds)
    }
    const time = createManualTime()
    const runs: number[] = []
    const expires = time.clock.now() + 20_000
    worker = createPinWorker(workerOptions(), {
      queue,
      log,
      clock: time.clock,
      timers: time.timers,
      run: async () => {
        runs.push(time.clock.now())
        // (A worker that gave the message back would get it again at once here: the fourth run ends that loop.)
        if (time.clock.now() < expires && runs.length < 4)
          return { kind: 'busy', attemptId: 'dead', leaseExpires: expires }
        return uploaded
      },
    })
    await queue.send({ cid: 'a', origins: [] })
    worker.start()
    await waitFor(() => runs.length === 1)
    // Until the lease has run out (and its margin), the message is neither given back nor claimed again.
    await time.advance(20_000)
    expect(runs).toHaveLength(1)
    expect(delays).toEqual([])
    expect(extended.length).toBeGreaterThan(0)
    await time.advance(1_000)
    await waitFor(() => runs.length === 2 && queue.stats().invisible === 0)
    expect(runs[1]).toBeGreaterThan(expires)
    expect(delays).toEqual([])
    expect(queue.stats()).toEqual({ visible: 0, invisible: 0 })
  })

  it('survives a settle that fails (release and the fallback send both refused): logged, left to SQS, no unhandled rejection', async () => {
    const memory = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    const lines: Array<{ level: string; msg?: string; obj: object }> = []
    let sqsDown = true
    // The real queue semantics, with SQS refusing the two calls that settle a retryable failure.
    const queue: JobQueue = {
      ...memory,
      release: async (receipt, delay) => {
        if (sqsDown) throw new Error('SQS unavailable (release)')
        return memory.release(receipt, delay)
      },
      send: async (job, opts) => {
        if (sqsDown) throw new Error('SQS unavailable (send)')
        return memory.send(job, opts)
      },
    }
    const ran: string[] = []
    try {
      worker = createPinWorker(workerOptions(), {
        queue,
        log: createTestLogger(lines),
        run: async (job) => {
          ran.push(job.cid)
          if (job.cid === 'a')
            return { kind: 'failed', attemptId: 'a', code: 'X', reason: 'y', retryable: true, attempts: 1 }
          return uploaded
        },
      })
      await memory.send({ cid: 'a', origins: [] })
      worker.start()
      await waitFor(() => ran.length === 1 && worker?.inFlight === 0)
      // Rejections are reported once the microtask queue drains: give them that turn.
      await new Promise((r) => setImmediate(r))
      await new Promise((r) => setImmediate(r))
      expect(unhandled).toEqual([])
      expect(lines.some((l) => l.level === 'error' && /settl/.test(l.msg ?? ''))).toBe(true)
      // The message is neither deleted nor lost: it is still in flight, and SQS makes it visible again.
      expect(memory.stats()).toEqual({ visible: 0, invisible: 1 })
      // The worker is still polling: the next job runs.
      sqsDown = false
      await memory.send({ cid: 'b', origins: [] })
      await waitFor(() => ran.includes('b') && memory.stats().visible + memory.stats().invisible === 1)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('on stop, aborts jobs past the grace period and releases their messages at once', async () => {
    const queue = createMemoryJobQueue({ visibilityTimeoutSeconds: 300 })
    let started = false
    worker = createPinWorker(
      workerOptions({ visibilityTimeoutSeconds: 300, retry: { baseDelaySeconds: 60, maxDelaySeconds: 900 } }),
      {
        queue,
        log,
        run: (_job, signal) =>
          new Promise<FetchOutcome>((resolve) => {
            started = true
            signal.addEventListener('abort', () => {
              const e = signal.reason instanceof ShutdownError ? signal.reason : new ShutdownError()
              resolve({
                kind: 'failed',
                attemptId: 'a',
                code: e.code,
                reason: e.message,
                retryable: true,
                attempts: 1,
              })
            })
          }),
      },
    )
    await queue.send({ cid: 'a', origins: [] })
    worker.start()
    await waitFor(() => started)
    await worker.stop(50)
    worker = undefined
    // Released with no delay, not left invisible for the 300 s visibility timeout.
    expect(queue.stats()).toEqual({ visible: 1, invisible: 0 })
  })
})
