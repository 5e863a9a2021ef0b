/**
 * The reconciler against in-memory ports: which pins it enqueues again, fails or leaves, that a second run
 * within the threshold does nothing, that a pin a worker takes meanwhile is left alone, and its bound.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import type { PinStore, ReceivedJob } from '../../core/ports.ts'
import { lastFailure, reconcilePins, staleAfterMsFor } from '../../core/reconcile.ts'
import { createTestLogger } from '../helpers/log.ts'

const MIN = 60_000
const T0 = 1_700_000_000_000
let now = T0
const clock = { now: () => now }
const opts = { staleAfterMs: 60 * MIN, maxAttempts: 3, limit: 100 }

let pins: MemoryPinStore
let queue: MemoryJobQueue
let lines: Array<{ level: string; msg?: string; obj: object }>
const ctx = () => ({ pins, queue, clock, log: createTestLogger(lines) })

beforeEach(() => {
  now = T0
  pins = createMemoryPinStore()
  queue = createMemoryJobQueue({ clock })
  lines = []
})

async function drain(): Promise<ReceivedJob[]> {
  const out: ReceivedJob[] = []
  for (;;) {
    const got = await queue.receive({ max: 10, waitSeconds: 0 })
    if (got.length === 0) return out
    out.push(...got)
  }
}

/** A pin claimed `attempts` times, the last attempt holding it with a lease until `leaseExpires`. */
async function pinning(store: PinStore, cid: string, attempts: number, at: number, leaseExpires: number) {
  await store.request(cid, ['/o'], at)
  for (let i = 1; i < attempts; i++) {
    await store.claim(cid, `att${i}`, at + 1, at)
    await store.settle(cid, `att${i}`, { status: 'queued', error: 'FETCH_STALLED: x' }, at)
  }
  await store.claim(cid, `att${attempts}`, leaseExpires, at)
}

describe('reconcilePins', () => {
  it('enqueues again a queued pin with no job for longer than the threshold, and only such pins', async () => {
    await pins.request('bafystale', ['/o'], T0 - 61 * MIN)
    await pins.request('bafyfresh', ['/o'], T0 - 59 * MIN)
    const result = await reconcilePins(opts, ctx())
    expect(result).toMatchObject({ examined: 1, enqueued: 1, failed: 0, changed: 0 })
    const jobs = await drain()
    expect(jobs.map((j) => j.job)).toEqual([{ cid: 'bafystale', origins: ['/o'] }])
    expect(await pins.get('bafystale')).toMatchObject({
      status: 'queued',
      updated: T0,
      error: 'RECONCILED: queued for 61 min with no job; enqueued again',
    })
    expect(lines.some((l) => l.msg?.startsWith('reconciler: queued for 61 min'))).toBe(true)
    expect(lines.find((l) => l.msg === 'reconcile done')?.obj).toMatchObject({ enqueued: 1 })
  })

  it('is idempotent: a second run before the threshold passes again does nothing, a later one enqueues again', async () => {
    await pins.request('bafystale', ['/o'], T0 - 61 * MIN)
    await reconcilePins(opts, ctx())
    now = T0 + 30 * MIN
    expect(await reconcilePins(opts, ctx())).toMatchObject({ examined: 0, enqueued: 0 })
    now = T0 + 61 * MIN
    expect(await reconcilePins(opts, ctx())).toMatchObject({ enqueued: 1 })
    // The last real error is kept, not nested.
    await pins.settleIfUnchanged(
      'bafystale',
      (await pins.get('bafystale'))!,
      {
        status: 'queued',
        error: 'RECONCILED: x; enqueued again (last error: FETCH_STALLED: no data (500 ms))',
      },
      now,
    )
    now += 61 * MIN
    await reconcilePins(opts, ctx())
    expect((await pins.get('bafystale'))?.error).toBe(
      'RECONCILED: queued for 61 min with no job; enqueued again (last error: FETCH_STALLED: no data (500 ms))',
    )
    expect(await drain()).toHaveLength(3)
  })

  it('enqueues again a pinning pin whose lease expired long ago, not one under a live or recent lease', async () => {
    await pinning(pins, 'bafydead', 1, T0 - 120 * MIN, T0 - 70 * MIN)
    await pinning(pins, 'bafyrecent', 1, T0 - 120 * MIN, T0 - 10 * MIN)
    await pinning(pins, 'bafylive', 1, T0 - 120 * MIN, T0 + 10 * MIN)
    const result = await reconcilePins(opts, ctx())
    expect(result).toMatchObject({ examined: 3, enqueued: 1, live: 2 })
    expect((await drain()).map((j) => j.job.cid)).toEqual(['bafydead'])
    expect(await pins.get('bafydead')).toMatchObject({
      status: 'queued',
      error: "RECONCILED: its attempt's lease expired 70 min ago (the worker died); enqueued again",
    })
    expect((await pins.get('bafydead'))?.leaseExpires).toBeUndefined()
    expect(await pins.get('bafylive')).toMatchObject({ status: 'pinning', attemptId: 'att1' })
  })

  it('fails a stuck pin that used up its attempts instead of looping it through the queue', async () => {
    await pinning(pins, 'bafyspent', 3, T0 - 120 * MIN, T0 - 70 * MIN)
    await pinning(pins, 'bafyqueued', 3, T0 - 120 * MIN, T0 - 119 * MIN)
    await pins.settle('bafyqueued', 'att3', { status: 'queued', error: 'FETCH_STALLED: x' }, T0 - 119 * MIN)
    const result = await reconcilePins(opts, ctx())
    expect(result).toMatchObject({ failed: 2, enqueued: 0 })
    expect(await drain()).toEqual([])
    expect(await pins.get('bafyspent')).toMatchObject({
      status: 'failed',
      error:
        "FETCH_STALLED: x (gave up after 3 attempts: its attempt's lease expired 70 min ago (the worker died))",
    })
    expect((await pins.get('bafyqueued'))?.status).toBe('failed')
  })

  it('leaves a pin a worker took between the read and the write', async () => {
    await pins.request('bafyraced', ['/o'], T0 - 61 * MIN)
    const racing: PinStore = {
      ...pins,
      async listByStatus(status, o) {
        const page = await pins.listByStatus(status, o)
        // A worker claims it right after the reconciler read it.
        for (const p of page.pins) await pins.claim(p.cid, 'worker', T0 + MIN, T0)
        return page
      },
    }
    const result = await reconcilePins(opts, { ...ctx(), pins: racing })
    expect(result).toMatchObject({ examined: 1, enqueued: 0, changed: 1 })
    expect(await pins.get('bafyraced')).toMatchObject({ status: 'pinning', attemptId: 'worker' })
    expect(await drain()).toEqual([])
  })

  it('examines at most `limit` pins, oldest first; the next run continues', async () => {
    for (let i = 0; i < 7; i++) await pins.request(`bafy${i}`, [], T0 - (100 - i) * MIN)
    expect(await reconcilePins({ ...opts, limit: 4 }, ctx())).toMatchObject({ examined: 4, enqueued: 4 })
    expect((await drain()).map((j) => j.job.cid)).toEqual(['bafy0', 'bafy1', 'bafy2', 'bafy3'])
    expect(await reconcilePins({ ...opts, limit: 4 }, ctx())).toMatchObject({ examined: 3, enqueued: 3 })
  })

  it('keeps the pin queued when the send fails: a later run sends again', async () => {
    await pins.request('bafystale', ['/o'], T0 - 61 * MIN)
    const result = await reconcilePins(opts, {
      ...ctx(),
      queue: {
        send: async () => {
          throw new Error('throttled')
        },
      },
    })
    expect(result).toMatchObject({ enqueued: 0, sendFailed: 1 })
    expect((await pins.get('bafystale'))?.status).toBe('queued')
    expect(lines.some((l) => l.level === 'error')).toBe(true)
  })
})

describe('thresholds', () => {
  it('defaults to 1 h, or twice the longest retry delay plus the visibility timeout when more', () => {
    expect(staleAfterMsFor({ retryMaxDelaySeconds: 900, visibilityTimeoutSeconds: 300 })).toBe(60 * MIN)
    expect(staleAfterMsFor({ retryMaxDelaySeconds: 1800, visibilityTimeoutSeconds: 600 })).toBe(80 * MIN)
  })

  it('finds the last real error under its own notes', () => {
    expect(lastFailure(undefined)).toBeUndefined()
    expect(lastFailure('FETCH_STALLED: x')).toBe('FETCH_STALLED: x')
    expect(lastFailure('RECONCILED: q; enqueued again')).toBeUndefined()
    expect(lastFailure('RECONCILED: q; enqueued again (last error: A: b (c))')).toBe('A: b (c)')
  })
})
